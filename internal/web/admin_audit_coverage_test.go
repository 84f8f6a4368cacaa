package web

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/postern/postern/internal/account"
)

// consoleAction is one POST route of the console as the audit coverage
// test drives it: the request, and the audit entry it must leave.
type consoleAction struct {
	pattern string
	path    string
	form    url.Values
	action  string
}

// TestEveryConsoleActionIsAudited posts to every POST route of the console
// as the organisation admin and checks that each left its audit entry with
// the admin's address as the actor. A POST route registered without a case
// here fails the test: a new action cannot forget its audit entry.
func TestEveryConsoleActionIsAudited(t *testing.T) {
	a := newAdminEnv(t)
	ctx := context.Background()
	cli := account.Actor{Via: "cli"}
	m := a.member("tgt@old.example", "Target")
	if err := a.svc.SetUseAppPasswords(ctx, m, true, cli); err != nil {
		t.Fatal(err)
	}
	m, _ = a.svc.Member(ctx, m.Email)
	p, _, err := a.svc.CreateAppPassword(ctx, m, "Phone", cli)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.svc.CreateAppPassword(ctx, m, "Laptop", cli); err != nil {
		t.Fatal(err)
	}
	const mb = "/admin/domains/{domain}/members/{email}/"
	tgt := "/admin/domains/old.example/members/tgt@old.example/"
	v := func(kv ...string) url.Values {
		form := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			form.Set(kv[i], kv[i+1])
		}
		return form
	}
	cases := []consoleAction{
		{"POST /admin/domains/new", "/admin/domains/new", v("name", "added.example"), account.AuditDomainAdded},
		{"POST /admin/domains/{domain}/policy", "/admin/domains/old.example/policy", v("expire", "30", "protocol_imap", "1"), account.AuditPolicyChanged},
		{"POST /admin/domains/{domain}/members/new", "/admin/domains/old.example/members/new", v("local", "new1", "name", "New"), account.AuditMemberAdded},
		{"POST /admin/domains/{domain}/members/import", "/admin/domains/old.example/members/import", v("csv", "email,name\nnew2@old.example,Two\n"), account.AuditMemberAdded},
		{"POST " + mb + "suspend", tgt + "suspend", nil, account.AuditMemberSuspended},
		{"POST " + mb + "resume", tgt + "resume", nil, account.AuditMemberResumed},
		{"POST " + mb + "reset-password", tgt + "reset-password", nil, account.AuditPasswordReset},
		{"POST " + mb + "unpause", tgt + "unpause", nil, account.AuditPauseLifted},
		{"POST " + mb + "end-sessions", tgt + "end-sessions", nil, account.AuditSessionsEnded},
		{"POST " + mb + "app-passwords/{id}/delete", tgt + "app-passwords/" + p.ID + "/delete", nil, account.AuditAppPasswordDeleted},
		{"POST " + mb + "app-passwords-delete", tgt + "app-passwords-delete", nil, account.AuditAppPasswordDeleted},
		{"POST " + mb + "setting-off", tgt + "setting-off", nil, account.AuditSettingChanged},
		{"POST " + mb + "setting-on", tgt + "setting-on", nil, account.AuditSettingChanged},
		{"POST " + mb + "rename", tgt + "rename", v("new", "tgt2@old.example"), account.AuditMemberRenamed},
		{"POST " + mb + "delete", "/admin/domains/old.example/members/tgt2@old.example/delete", v("confirm_email", "tgt2@old.example"), account.AuditMemberDeleted},
		{"POST /admin/audit/retention", "/admin/audit/retention", v("days", "400"), account.AuditRetentionChanged},
		{"POST /admin/domains/{domain}/delete", "/admin/domains/added.example/delete", v("confirmed", "1"), account.AuditDomainDeleted},
	}
	covered := map[string]bool{}
	for _, c := range cases {
		covered[c.pattern] = true
	}
	for _, pattern := range a.srv.adminPatterns {
		if method, _ := adminPath(t, pattern); method == http.MethodPost && !covered[pattern] {
			t.Errorf("%s has no case in this test: give it an audit entry and a case here", pattern)
		}
	}
	for _, c := range cases {
		q := account.AuditQuery{Action: c.action, Limit: account.MaxAuditPage}
		before, err := a.svc.AuditLog(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if c.form == nil {
			c.form = url.Values{}
		}
		r := a.org.adminPost(c.path, c.form)
		if r.StatusCode != http.StatusSeeOther && r.StatusCode != http.StatusOK {
			t.Fatalf("POST %s: %d %s", c.path, r.StatusCode, r.body)
		}
		after, err := a.svc.AuditLog(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(after) <= len(before) {
			t.Errorf("POST %s: no new %s entry", c.path, c.action)
			continue
		}
		if e := after[0]; e.Actor != account.ActorAdmin || e.ActorEmail != "root@new.example" {
			t.Errorf("POST %s: %s entry by %s %q, want the admin root@new.example", c.path, c.action, e.Actor, e.ActorEmail)
		}
	}
}
