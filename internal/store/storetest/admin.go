package storetest

import (
	"context"
	"testing"

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
