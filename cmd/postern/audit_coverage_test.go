package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/internal/mailstore"
	"github.com/postern/postern/internal/store/sqlstore"
)

// readOnlyCommands are the commands that change nothing an administrator
// answers for, with why. Every other command must be in auditedSteps.
var readOnlyCommands = map[string]string{
	"serve":            "runs the server; what it does is audited where it happens",
	"demo":             "runs a throw-away server with demo data",
	"admin list":       "reads",
	"domain list":      "reads",
	"domain dns":       "reads",
	"domain dkim list": "reads",
	"user list":        "reads",
	"user sessions":    "reads",
	"alias list":       "reads",
	"alias show":       "reads",
	"queue list":       "reads",
	"queue show":       "reads",
	"apppass list":     "reads",
	"audit":            "reads (an export from the console is audited: it hands the log out)",
	"migrate":          "changes the schema, not the data; recorded in the migrations table",
	"version":          "reads",
	"backup":           "reads: copies the installation as it is",
	"restore":          "writes a new data folder, not a running installation: its audit log is the backup's",
	"quickstart":       "sets up a new, empty installation: its domain, admin and role are written by the audited calls of domain add, user add and admin grant",
}

// auditStep runs one command and expects an audit entry of action by
// actor (ActorCLI unless said).
type auditStep struct {
	cmd    string // the command's name, as in the table
	args   func() []string
	stdin  string
	action string
	actor  string
}

// TestEveryMutatingCommandIsAudited runs every command that changes
// something and checks that the audit log got its entry; a command added to
// the table without being listed here or in readOnlyCommands fails the
// test, so that a new command cannot forget its audit entry unnoticed.
func TestEveryMutatingCommandIsAudited(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"POSTERN_DATA": dir}
	run := func(stdin string, args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		a := &app{stdin: strings.NewReader(stdin), stdout: &stdout, stderr: &stderr,
			getenv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
		defer a.close()
		if code := exitCode(a, dispatch(context.Background(), a, args)); code != 0 {
			t.Fatalf("%v: %d %s", args, code, stderr.String())
		}
		return stdout.String()
	}
	csvFile := filepath.Join(dir, "import.csv")
	if err := os.WriteFile(csvFile, []byte("email,name\ncarol@audit.example,Carol\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// An inactive DKIM key to retire: the first pair, once rotated.
	var oldSelector string
	selector := func() []string {
		var keys []dkimKeyJSON
		if err := json.Unmarshal([]byte(run("", "domain", "dkim", "list", "audit.example", "--json")), &keys); err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if k.State == "published" {
				oldSelector = k.Selector
			}
		}
		return []string{"domain", "dkim", "retire", "audit.example", oldSelector}
	}
	// A queued message for the queue's commands.
	queued := func(act string) func() []string {
		return func() []string {
			db, err := sqlstore.Open(context.Background(), filepath.Join(dir, "postern.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var bob int64
			db.SQL.QueryRow(`SELECT id FROM members WHERE email = 'bob@audit.example'`).Scan(&bob)
			if err := db.Mail().Submit(context.Background(), mailstore.Submission{MemberID: bob, AppPasswordID: "ap-1",
				Outbound: &mailstore.Outbound{From: "bob@audit.example", Rcpts: []string{"x@far.example"}, Body: []byte("Subject: x\r\n\r\nx\r\n")}}); err != nil {
				t.Fatal(err)
			}
			return []string{"queue", act, "--all"}
		}
	}
	args := func(a ...string) func() []string { return func() []string { return a } }
	later := time.Now().AddDate(0, 0, 60).UTC().Format(time.RFC3339)
	steps := []auditStep{
		{cmd: "domain add", args: args("domain", "add", "audit.example"), action: "domain.added"},
		{cmd: "user add", args: args("user", "add", "bob@audit.example"), action: "member.added"},
		{cmd: "admin grant", args: args("admin", "grant", "bob@audit.example", "--org"), action: "admin.granted"},
		{cmd: "admin revoke", args: args("admin", "revoke", "bob@audit.example"), action: "admin.revoked"},
		{cmd: "domain set", args: args("domain", "set", "audit.example", "--quota", "1GiB"), action: "quota.changed"},
		{cmd: "domain policy", args: args("domain", "policy", "audit.example", "--expire-unused-days", "30"), action: "policy.changed"},
		{cmd: "domain catchall", args: args("domain", "catchall", "audit.example", "bob@audit.example"), action: "catchall.changed"},
		{cmd: "domain dkim rotate", args: args("domain", "dkim", "rotate", "audit.example"), action: "dkim.rotated"},
		{cmd: "domain dkim retire", args: selector, action: "dkim.retired"},
		{cmd: "user import", args: args("user", "import", csvFile), action: "member.added"},
		{cmd: "user rename", args: args("user", "rename", "carol@audit.example", "carol2@audit.example"), action: "member.renamed"},
		{cmd: "user reset-password", args: args("user", "reset-password", "bob@audit.example"), action: "password.reset"},
		{cmd: "user unpause", args: args("user", "unpause", "bob@audit.example"), action: "account.unpaused"},
		{cmd: "user end-sessions", args: args("user", "end-sessions", "bob@audit.example"), action: "sessions.ended"},
		{cmd: "user passwd", args: args("user", "passwd", "bob@audit.example", "--password-stdin"), stdin: "a long enough new password 1\n", action: "password.reset"},
		{cmd: "user set", args: args("user", "set", "bob@audit.example", "--quota", "2GiB"), action: "quota.changed"},
		{cmd: "user suspend", args: args("user", "suspend", "bob@audit.example"), action: "member.suspended"},
		{cmd: "user resume", args: args("user", "resume", "bob@audit.example"), action: "member.resumed"},
		{cmd: "alias add", args: args("alias", "add", "team@audit.example", "bob@audit.example", "carol2@audit.example"), action: "alias.changed"},
		{cmd: "alias delete", args: args("alias", "delete", "team@audit.example", "carol2@audit.example"), action: "alias.changed"},
		{cmd: "alias delete", args: args("alias", "delete", "team@audit.example"), action: "alias.deleted"},
		{cmd: "apppass create", args: args("apppass", "create", "bob@audit.example", "--name", "Mail"), action: "apppass.created"},
		{cmd: "apppass delete", args: args("apppass", "delete", "bob@audit.example", "--all"), action: "apppass.deleted"},
		{cmd: "apppass create", args: args("apppass", "create", "bob@audit.example", "--name", "Old"), action: "apppass.created"},
		{cmd: "apppass expire", args: args("apppass", "expire", "--at", later), action: "apppass.expired", actor: "system"},
		{cmd: "audit retention", args: args("audit", "retention", "400"), action: "audit.retention"},
		{cmd: "queue hold", args: queued("hold"), action: "queue.changed"},
		{cmd: "queue release", args: args("queue", "release", "--all"), action: "queue.changed"},
		{cmd: "queue retry", args: args("queue", "retry", "--all"), action: "queue.changed"},
		{cmd: "queue delete", args: args("queue", "delete", "--all"), action: "queue.changed"},
		{cmd: "user delete", args: args("user", "delete", "carol2@audit.example", "--yes"), action: "member.deleted"},
		{cmd: "domain add", args: args("domain", "add", "empty.example"), action: "domain.added"},
		{cmd: "domain delete", args: args("domain", "delete", "empty.example"), action: "domain.deleted"},
		{cmd: "domain delete", args: args("domain", "delete", "audit.example", "--with-members"), action: "domain.deleted"},
	}

	covered := map[string]bool{}
	for _, s := range steps {
		covered[s.cmd] = true
	}
	for _, c := range commands {
		_, ro := readOnlyCommands[c.name]
		if !ro && !covered[c.name] {
			t.Errorf("%q is neither in readOnlyCommands nor audited in this test: give it an audit entry and a step here", c.name)
		}
		if ro && covered[c.name] {
			t.Errorf("%q is both read-only and audited", c.name)
		}
	}

	count := func(action string) int {
		var list []auditJSON
		if err := json.Unmarshal([]byte(run("", "audit", "--action", action, "--limit", "10000", "--json")), &list); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range list {
			if e.Action == action {
				n++
			}
		}
		return n
	}
	for _, s := range steps {
		argv := s.args()
		before := count(s.action)
		run(s.stdin, argv...)
		var list []auditJSON
		if err := json.Unmarshal([]byte(run("", "audit", "--action", s.action, "--limit", "1", "--json")), &list); err != nil {
			t.Fatal(err)
		}
		actor := s.actor
		if actor == "" {
			actor = "cli"
		}
		if after := count(s.action); after <= before || len(list) == 0 || list[0].Actor != actor {
			t.Errorf("%v: %d %s entries before, %d after; newest %+v, want by %s", argv, before, s.action, after, list, actor)
		}
	}
	// The domain deleted with its member: bob's deletion is audited too.
	var list []auditJSON
	if err := json.Unmarshal([]byte(run("", "audit", "--action", "member.deleted", "--json")), &list); err != nil || len(list) != 2 || list[0].Member != "bob@audit.example" {
		t.Errorf("member deletions: %+v %v", list, err)
	}
}
