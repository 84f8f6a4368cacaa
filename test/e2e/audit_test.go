package e2e

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/internal/store/sqlstore"
)

// auditLine is an entry of postern audit --json.
type auditLine struct {
	Time       time.Time `json:"time"`
	Action     string    `json:"action"`
	Actor      string    `json:"actor"`
	ActorEmail string    `json:"actor_email"`
	Member     string    `json:"member"`
	IP         string    `json:"ip"`
	Client     string    `json:"client"`
	Protocol   string    `json:"protocol"`
	Detail     string    `json:"detail"`
}

// TestAuditLogShowsEveryAction runs CLI commands, web API actions and IMAP
// logins (python imaplib) against the binary on both engines, then finds
// every one of them in postern audit --json, with who, from where and with
// which client, and the same entries in its --csv export.
func TestAuditLogShowsEveryAction(t *testing.T) {
	Engines(t, func(t *testing.T, in *Instance) {
		in.MustRun(t, "domain", "add", "example.com")
		alice := addMember(t, in, "alice@example.com")
		laptop := createAppPass(t, in, alice.Email, "Laptop")
		in.MustRun(t, "audit", "retention", "400")
		srv := in.StartServer(t)

		// The web: a wrong and a right sign-in, an app password made and
		// one deleted, from a browser that says who it is.
		const ua = "AuditE2E-Browser/1.0"
		c := newWebClient(t, srv)
		if code, body := c.do("POST", "/api/v1/session", map[string]string{"email": alice.Email, "password": "not it"}, "User-Agent", ua); code != 401 {
			t.Fatalf("wrong sign-in: %d %s", code, body)
		}
		if code, body := c.do("POST", "/api/v1/session", map[string]string{"email": alice.Email, "password": alice.Main}, "User-Agent", ua); code != 200 {
			t.Fatalf("sign-in: %d %s", code, body)
		}
		code, body := c.do("POST", "/api/v1/me/app-passwords", map[string]string{"name": "Phone"}, "User-Agent", ua)
		if code != 201 {
			t.Fatalf("create: %d %s", code, body)
		}
		var phone appPass
		if err := json.Unmarshal(body, &phone); err != nil {
			t.Fatal(err)
		}
		if code, body := c.do("DELETE", "/api/v1/me/app-passwords/"+laptop.ID, nil, "User-Agent", ua); code != 204 && code != 200 {
			t.Fatalf("delete: %d %s", code, body)
		}

		// IMAP: the new app password logs in, the deleted one does not.
		ok := newAttempt("imap-login", srv.Addr("imap"), alice.Email, phone.Password, "none")
		bad := newAttempt("imap-login", srv.Addr("imap"), alice.Email, laptop.Password, "none")
		if res := pyLogins(t, []pyAttempt{ok, bad}); !res[0].OK || res[1].OK {
			t.Fatalf("imaplib logins: %+v", res)
		}

		in.MustRun(t, "user", "suspend", alice.Email)
		in.MustRun(t, "user", "resume", alice.Email)

		// Login records are written in batches: poll until the IMAP ones are in.
		var entries []auditLine
		waitFor(t, "IMAP logins in the audit log", 30*time.Second, func() string {
			entries = nil
			in.RunJSON(t, &entries, "audit", "--json", "--limit", "1000")
			n := 0
			for _, e := range entries {
				if e.Protocol == "imap" {
					n++
				}
			}
			if n != 2 {
				return fmt.Sprintf("%d IMAP logins recorded", n)
			}
			return ""
		})
		find := func(action string, match func(auditLine) bool) auditLine {
			t.Helper()
			for _, e := range entries {
				if e.Action == action && (match == nil || match(e)) {
					return e
				}
			}
			t.Fatalf("no %s entry in %+v", action, entries)
			return auditLine{}
		}
		cli := func(e auditLine) bool { return e.Actor == "cli" && e.Client == "postern command" && e.IP == "" }
		web := func(e auditLine) bool {
			return e.Actor == "member" && e.ActorEmail == alice.Email && e.IP == "127.0.0.1" && e.Client == ua
		}
		find("domain.added", cli)
		find("member.added", func(e auditLine) bool { return cli(e) && e.Member == alice.Email })
		find("apppass.created", func(e auditLine) bool { return cli(e) && strings.Contains(e.Detail, laptop.ID) })
		find("audit.retention", func(e auditLine) bool { return cli(e) && e.Detail == "400 days" })
		find("signin.fail", func(e auditLine) bool { return e.IP == "127.0.0.1" && e.Client == ua && e.Detail == "bad-password" })
		find("signin.ok", web)
		find("apppass.created", func(e auditLine) bool { return web(e) && strings.Contains(e.Detail, "Phone") })
		find("apppass.deleted", func(e auditLine) bool { return web(e) && strings.Contains(e.Detail, laptop.ID) })
		find("login.ok", func(e auditLine) bool { return e.IP == ok.Src && e.Member == alice.Email && e.Client == "imap LOGIN" })
		find("login.fail", func(e auditLine) bool { return e.IP == bad.Src && e.Member == alice.Email })
		find("member.suspended", func(e auditLine) bool { return cli(e) && e.Member == alice.Email })
		find("member.resumed", func(e auditLine) bool { return cli(e) && e.Member == alice.Email })
		for i := 1; i < len(entries); i++ {
			if entries[i].Time.After(entries[i-1].Time) {
				t.Fatalf("entries out of order at %d: %v after %v", i, entries[i].Time, entries[i-1].Time)
			}
		}

		// Filters, and the CSV export of the same log.
		var imap []auditLine
		in.RunJSON(t, &imap, "audit", "--json", "--member", alice.Email, "--action", "login")
		if len(imap) != 2 {
			t.Errorf("--member --action login: %d entries, want 2", len(imap))
		}
		out := in.MustRun(t, "audit", "--csv", "--limit", "1000")
		recs, err := csv.NewReader(bytes.NewReader([]byte(out))).ReadAll()
		if err != nil {
			t.Fatalf("audit --csv: %v\n%s", err, out)
		}
		if strings.Join(recs[0], ",") != "time,action,actor,actor_email,member,domain,ip,client,protocol,result,detail" {
			t.Fatalf("CSV header %v", recs[0])
		}
		if len(recs)-1 != len(entries) {
			t.Fatalf("CSV has %d entries, --json %d", len(recs)-1, len(entries))
		}
		for i, r := range recs[1:] {
			e := entries[i]
			if r[1] != e.Action || r[2] != e.Actor || r[6] != e.IP || r[7] != e.Client || r[4] != e.Member {
				t.Errorf("CSV row %d %v differs from %+v", i, r, e)
			}
		}

		if r := in.Run(t, "audit", "--json", "--csv"); r.Code != 2 {
			t.Errorf("--json --csv: %s", r)
		}
		// No command edits the log, and the database itself refuses to
		// (docs/security.md).
		withStore(t, in, func(ctx context.Context, db *sqlstore.DB) {
			for _, q := range []string{`UPDATE audit_log SET ip = '10.0.0.1'`, `UPDATE login_records SET ip = '10.0.0.1'`} {
				if _, err := db.SQL.ExecContext(ctx, q); err == nil || !strings.Contains(err.Error(), "append-only") {
					t.Errorf("%s: %v", q, err)
				}
			}
		})
	})
}
