package storetest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/store/sqlstore"
)

// RunAdmin runs the suite of administrators and domain security policies
// over the store that open returns (a fresh one per test).
func RunAdmin(t *testing.T, open func(testing.TB) *sqlstore.DB) {
	tests := []struct {
		name string
		fn   func(*testing.T, *Env)
	}{
		{"Roles", testAdminRoles},
		{"Expiry", testExpiry},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, NewEnv(t, open(t))) })
	}
}

func testAdminRoles(t *testing.T, e *Env) {
	ctx := context.Background()
	e.Domain(t, "a.example", EnforcedDate)
	e.Domain(t, "b.example", EnforcedDate)
	root := e.Member(t, "root@a.example")
	dom := e.Member(t, "dom@a.example")
	plain := e.Member(t, "plain@a.example")

	if _, err := e.Svc.GrantAdmin(ctx, "root@a.example", nil); err != nil {
		t.Fatal(err)
	}
	// Granted twice: no error, one role.
	if _, err := e.Svc.GrantAdmin(ctx, "root@a.example", nil); err != nil {
		t.Fatal(err)
	}
	roles, err := e.Svc.GrantAdmin(ctx, "dom@a.example", []string{"b.example", "A.example"})
	if err != nil {
		t.Fatal(err)
	}
	if len(roles) != 2 || roles[0].Domain != "a.example" || roles[1].Domain != "b.example" {
		t.Fatalf("roles of dom: %+v", roles)
	}
	_, err = e.Svc.GrantAdmin(ctx, "dom@a.example", []string{"c.example"})
	WantCode(t, err, account.ENOTFOUND)

	all, err := e.Svc.AdminRoles(ctx)
	if err != nil || len(all) != 3 || all[0].Email != "dom@a.example" || all[2].Email != "root@a.example" || all[2].Domain != "" {
		t.Fatalf("all roles: %+v, %v", all, err)
	}

	access := func(m account.Member) account.AdminAccess {
		t.Helper()
		a, err := e.Svc.AdminAccess(ctx, e.Reload(t, m))
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	if a := access(root); !a.Org || !a.CanDomain("b.example") {
		t.Fatalf("root: %+v", a)
	}
	if a := access(dom); a.Org || !a.CanDomain("a.example") || !a.CanDomain("b.example") || a.CanDomain("c.example") {
		t.Fatalf("dom: %+v", a)
	}
	if a, _ := e.Svc.AdminAccess(ctx, plain); a.IsAdmin() {
		t.Fatalf("plain: %+v", a)
	}
	// Another domain's admin cannot tell a domain it does not administer
	// from one that does not exist.
	_, err = e.Svc.AdminDomain(ctx, account.AdminAccess{Domains: []string{"b.example"}}, "a.example")
	WantCode(t, err, account.ENOTFOUND)
	if d, err := e.Svc.AdminDomain(ctx, access(dom), "B.EXAMPLE"); err != nil || d.Name != "b.example" {
		t.Fatalf("AdminDomain: %+v, %v", d, err)
	}

	// A suspended admin administers nothing.
	if err := e.Svc.SetState(ctx, root, account.StateSuspended); err != nil {
		t.Fatal(err)
	}
	if a, _ := e.Svc.AdminAccess(ctx, e.Reload(t, root)); a.IsAdmin() {
		t.Fatalf("suspended root: %+v", a)
	}

	if err := e.Svc.RevokeAdmin(ctx, "dom@a.example", "b.example"); err != nil {
		t.Fatal(err)
	}
	WantCode(t, e.Svc.RevokeAdmin(ctx, "dom@a.example", "b.example"), account.ENOTFOUND)
	if a := access(dom); a.CanDomain("b.example") || !a.CanDomain("a.example") {
		t.Fatalf("dom after revoke: %+v", a)
	}
	if err := e.Svc.RevokeAdmin(ctx, "dom@a.example", ""); err != nil {
		t.Fatal(err)
	}
	if a := access(dom); a.IsAdmin() {
		t.Fatalf("dom after revoking all: %+v", a)
	}
	WantCode(t, e.Svc.RevokeAdmin(ctx, "plain@a.example", ""), account.ENOTFOUND)
}

// testExpiry: app passwords unused for the domain's days are warned about
// a week before, once, and deleted with a message and a revoking event; a
// use in between keeps them; running twice (two nodes) changes nothing more.
func testExpiry(t *testing.T, e *Env) {
	ctx := context.Background()
	m := e.Enforced(t, "exp")
	other := e.Optional(t, "keep", true)
	old, _ := e.Create(t, m, "Old phone")
	used, _ := e.Create(t, m, "Laptop")
	e.Create(t, other, "Other domain")
	setDays := func(domain string, days int) {
		t.Helper()
		d, err := e.Svc.Domain(ctx, domain)
		if err != nil {
			t.Fatal(err)
		}
		p := d.Security
		p.ExpireUnusedDays = days
		if _, err := e.Svc.SetSecurityPolicy(ctx, domain, p, Web); err != nil {
			t.Fatal(err)
		}
	}
	setDays("enforced.test", 30)
	start := old.CreatedAt
	run := func(at time.Time) account.ExpiryResult {
		t.Helper()
		res, err := e.Svc.ExpireAppPasswords(ctx, at)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := run(start.Add(20 * 24 * time.Hour)); res != (account.ExpiryResult{}) {
		t.Fatalf("after 20 days: %+v", res)
	}
	// Day 24: both within a week of expiry; warned once each.
	if res := run(start.Add(24 * 24 * time.Hour)); res.Warned != 2 || res.Expired != 0 {
		t.Fatalf("after 24 days: %+v", res)
	}
	if res := run(start.Add(24*24*time.Hour + time.Hour)); res != (account.ExpiryResult{}) {
		t.Fatalf("warned twice: %+v", res)
	}
	// The laptop is used on day 25: kept.
	if err := e.DB.TouchAppPassword(ctx, used.ID, start.Add(25*24*time.Hour), "imap", "192.0.2.1", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if res := run(start.Add(31 * 24 * time.Hour)); res.Expired != 1 || res.Warned != 0 {
		t.Fatalf("after 31 days: %+v", res)
	}
	if res := run(start.Add(31 * 24 * time.Hour)); res != (account.ExpiryResult{}) {
		t.Fatalf("run again: %+v", res)
	}
	left := e.AppPasswords(t, m)
	if len(left) != 1 || left[0].ID != used.ID {
		t.Fatalf("left: %+v", left)
	}
	if len(e.AppPasswords(t, other)) != 1 {
		t.Fatal("a domain without expiry lost an app password")
	}
	var warned, expired int
	for _, msg := range e.Messages(t, m) {
		switch msg.Kind {
		case account.MsgAppPasswordExpiring:
			warned++
		case account.MsgAppPasswordExpired:
			expired++
			if !strings.Contains(msg.Subject, "Old phone") {
				t.Errorf("expired message: %+v", msg)
			}
		}
	}
	if warned != 2 || expired != 1 {
		t.Fatalf("messages: %d warnings, %d expiries", warned, expired)
	}
	var revoked bool
	for _, ev := range e.Events(t, m) {
		revoked = revoked || ev.Kind == account.EventAppPasswordDeleted && ev.AppPasswordID == old.ID
	}
	if !revoked {
		t.Fatal("no event closes the expired password's sessions")
	}
	// Used again after its warning, the laptop is warned about again later.
	if res := run(start.Add(50 * 24 * time.Hour)); res.Warned != 1 {
		t.Fatalf("second warning: %+v", res)
	}
}
