package storetest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/store/sqlstore"
)

// of lists the addresses of members, in order, as emails does.
func of(ms ...account.Member) string { return emails(ms) }

// execSQL runs a statement written with ? placeholders on either engine.
func execSQL(t testing.TB, db *sqlstore.DB, query string, args ...any) {
	t.Helper()
	if db.Dialect == sqlstore.Postgres {
		for i := 1; strings.Contains(query, "?"); i++ {
			query = strings.Replace(query, "?", fmt.Sprintf("$%d", i), 1)
		}
	}
	if _, err := db.SQL.ExecContext(context.Background(), query, args...); err != nil {
		t.Fatal(err)
	}
}

// testAliases: an alias is created with its targets, grows, lists and shows
// them by address, each once; targets are removed all or nothing; an alias
// left with no target stays (and reaches nobody); delete removes it.
func testAliases(t *testing.T, e *Env) {
	ctx := context.Background()
	e.Domain(t, "other.test", EnforcedDate)
	// Created out of address order, so that no other order passes for it.
	dave := e.Member(t, "dave@other.test")
	carol, bob, alice := e.Enforced(t, "carol"), e.Enforced(t, "bob"), e.Enforced(t, "alice")

	a, created, err := e.Svc.AddAlias(ctx, "Sales@Enforced.Test", []string{bob.Email, alice.Email, "BOB@enforced.test"}, Web)
	if err != nil || !created || a.Address != "sales@enforced.test" || emails(a.Targets) != of(alice, bob) {
		t.Fatalf("add: %s %s created %v, %v", a.Address, emails(a.Targets), created, err)
	}
	// Adding to an existing alias keeps its targets; a member of another
	// local domain may be a target.
	a, created, err = e.Svc.AddAlias(ctx, "sales@enforced.test", []string{dave.Email, alice.Email}, Web)
	if err != nil || created || emails(a.Targets) != of(alice, bob, dave) {
		t.Fatalf("add more: %s %s created %v, %v", a.Address, emails(a.Targets), created, err)
	}
	if _, _, err := e.Svc.AddAlias(ctx, "all@other.test", []string{carol.Email}, Web); err != nil {
		t.Fatal(err)
	}
	all, err := e.Svc.Aliases(ctx, "")
	if err != nil || len(all) != 2 || all[0].Address != "all@other.test" || all[1].Address != "sales@enforced.test" || len(all[1].Targets) != 3 {
		t.Fatalf("aliases: %+v %v", all, err)
	}
	if one, err := e.Svc.Aliases(ctx, "other.test"); err != nil || len(one) != 1 || emails(one[0].Targets) != of(carol) {
		t.Fatalf("aliases of other.test: %+v %v", one, err)
	}
	_, err = e.Svc.Aliases(ctx, "missing.test")
	WantCode(t, err, account.ENOTFOUND)

	// All or nothing: carol is no target, so bob stays too.
	_, err = e.Svc.RemoveAliasTargets(ctx, "sales@enforced.test", []string{bob.Email, carol.Email}, Web)
	WantCode(t, err, account.ENOTFOUND)
	if !strings.Contains(account.ErrorMessage(err), carol.Email) {
		t.Errorf("message %q does not name %s", account.ErrorMessage(err), carol.Email)
	}
	if a, _ := e.Svc.Alias(ctx, "sales@enforced.test"); len(a.Targets) != 3 {
		t.Fatalf("a refused removal removed targets: %+v", a)
	}
	if a, err = e.Svc.RemoveAliasTargets(ctx, "sales@enforced.test", []string{bob.Email, dave.Email}, Web); err != nil || emails(a.Targets) != of(alice) {
		t.Fatalf("remove: %s, %v", emails(a.Targets), err)
	}
	if a, err = e.Svc.RemoveAliasTargets(ctx, "sales@enforced.test", []string{alice.Email}, Web); err != nil || len(a.Targets) != 0 {
		t.Fatalf("remove the last: %s, %v", emails(a.Targets), err)
	}
	_, err = e.Svc.ResolveRecipient(ctx, "sales@enforced.test")
	WantCode(t, err, account.ENOTFOUND)

	if err := e.Svc.DeleteAlias(ctx, "sales@enforced.test", Web); err != nil {
		t.Fatal(err)
	}
	WantCode(t, e.Svc.DeleteAlias(ctx, "sales@enforced.test", Web), account.ENOTFOUND)
	_, err = e.Svc.Alias(ctx, "sales@enforced.test")
	WantCode(t, err, account.ENOTFOUND)
	_, err = e.Svc.RemoveAliasTargets(ctx, "sales@enforced.test", []string{alice.Email}, Web)
	WantCode(t, err, account.ENOTFOUND)
	// The address is free again, for a member too.
	e.Member(t, "sales@enforced.test")
}

// testAliasRefusals: targets must be members here; an alias's address must
// be in a local domain, without a plus tag, and never a member's; and a
// member cannot take an alias's address.
func testAliasRefusals(t *testing.T, e *Env) {
	ctx := context.Background()
	alice := e.Enforced(t, "alice")
	for _, c := range []struct {
		addr    string
		targets []string
		code    string
	}{
		{"sales@enforced.test", []string{"nobody@enforced.test"}, account.ENOTFOUND},
		{"sales@enforced.test", []string{alice.Email, "bob@gmail.example"}, account.EINVALID},
		{"sales@enforced.test", []string{"not an address"}, account.EINVALID},
		{"sales@enforced.test", nil, account.EINVALID},
		{"sales@elsewhere.example", []string{alice.Email}, account.ENOTLOCAL},
		{"sales+eu@enforced.test", []string{alice.Email}, account.EINVALID},
		{alice.Email, []string{alice.Email}, account.ECONFLICT},
		{"ALICE@enforced.test", []string{alice.Email}, account.ECONFLICT},
	} {
		_, _, err := e.Svc.AddAlias(ctx, c.addr, c.targets, Web)
		if account.ErrorCode(err) != c.code {
			t.Errorf("%s → %v: %v, want %s", c.addr, c.targets, err, c.code)
		}
	}
	if list, _ := e.Svc.Aliases(ctx, ""); len(list) != 0 {
		t.Fatalf("a refused alias was stored: %+v", list)
	}
	if _, _, err := e.Svc.AddAlias(ctx, "sales@enforced.test", []string{alice.Email}, Web); err != nil {
		t.Fatal(err)
	}
	_, err := e.Svc.AddMember(ctx, "Sales@enforced.test", "", MainPassword)
	WantCode(t, err, account.ECONFLICT)
	if !strings.Contains(account.ErrorMessage(err), "alias") {
		t.Errorf("message %q does not say why", account.ErrorMessage(err))
	}
	// The store's limit, checked after the insert, atomically.
	d, _ := e.DB.DomainByName(ctx, "enforced.test")
	bob := e.Enforced(t, "bob")
	_, err = e.DB.AddAliasTargets(ctx, d.ID, "sales@enforced.test", []int64{bob.ID}, 1, e.Now())
	WantCode(t, err, account.ELIMIT)
	if a, _ := e.Svc.Alias(ctx, "sales@enforced.test"); emails(a.Targets) != of(alice) {
		t.Fatalf("the limit let a target in: %+v", a)
	}
}

// testAliasMemberRace: an alias and a member created at once with the same
// address: exactly one of them wins, every time, whichever comes first.
func testAliasMemberRace(t *testing.T, e *Env) {
	ctx := context.Background()
	alice := e.Enforced(t, "alice")
	d, _ := e.DB.DomainByName(ctx, "enforced.test")
	for i := range 30 {
		addr := fmt.Sprintf("race%d@enforced.test", i)
		var wg sync.WaitGroup
		start := make(chan struct{})
		var memberErr, aliasErr error
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			m := account.Member{DomainID: d.ID, Email: addr, Name: "race", PasswordHash: "x", State: account.StateActive}
			memberErr = e.DB.CreateMember(ctx, &m)
		}()
		go func() {
			defer wg.Done()
			<-start
			_, aliasErr = e.DB.AddAliasTargets(ctx, d.ID, addr, []int64{alice.ID}, 10, e.Now())
		}()
		close(start)
		wg.Wait()
		_, mErr := e.DB.MemberByEmail(ctx, addr)
		_, aErr := e.DB.Alias(ctx, addr)
		if (mErr == nil) == (aErr == nil) || (memberErr == nil) == (aliasErr == nil) {
			t.Fatalf("%s: member %v (%v), alias %v (%v): want exactly one", addr, mErr, memberErr, aErr, aliasErr)
		}
		if memberErr != nil {
			WantCode(t, memberErr, account.ECONFLICT)
		} else {
			WantCode(t, aliasErr, account.ECONFLICT)
		}
	}
}

// testCatchAll: the catch-all member gets the domain's mail to unknown
// addresses only: never another domain's, never a known address's, never
// an emptied alias's; it can be turned off; deleting its member turns it off.
func testCatchAll(t *testing.T, e *Env) {
	ctx := context.Background()
	alice, bob := e.Enforced(t, "alice"), e.Enforced(t, "bob")
	e.Domain(t, "other.test", EnforcedDate)
	carol := e.Member(t, "carol@other.test")
	d, err := e.Svc.SetCatchAll(ctx, "Enforced.Test", bob.Email, Web)
	if err != nil || d.CatchAll != bob.Email {
		t.Fatalf("set: %+v %v", d, err)
	}
	if list, _ := e.DB.Domains(ctx); list[0].CatchAll != bob.Email || list[1].CatchAll != "" {
		t.Errorf("domains: %+v", list)
	}
	for addr, want := range map[string]account.Member{
		"nobody@enforced.test":     bob,
		"nobody+x@enforced.test":   bob,
		"alice+news@enforced.test": alice,
		alice.Email:                alice,
	} {
		r, err := e.Svc.ResolveRecipient(ctx, addr)
		if err != nil || emails(r.Members) != of(want) || r.CatchAll != (want.ID == bob.ID) {
			t.Errorf("%s: %s tag %q catch-all %v, %v; want %s", addr, emails(r.Members), r.Tag, r.CatchAll, err, want.Email)
		}
	}
	_, err = e.Svc.ResolveRecipient(ctx, "nobody@other.test")
	WantCode(t, err, account.ENOTFOUND)
	// An alias whose targets are all gone reaches nobody, not the catch-all.
	if _, _, err := e.Svc.AddAlias(ctx, "old@enforced.test", []string{carol.Email}, Web); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Svc.RemoveAliasTargets(ctx, "old@enforced.test", []string{carol.Email}, Web); err != nil {
		t.Fatal(err)
	}
	_, err = e.Svc.ResolveRecipient(ctx, "old@enforced.test")
	WantCode(t, err, account.ENOTFOUND)

	_, err = e.Svc.SetCatchAll(ctx, "enforced.test", "nobody@enforced.test", Web)
	WantCode(t, err, account.ENOTFOUND)
	_, err = e.Svc.SetCatchAll(ctx, "enforced.test", "x@gmail.example", Web)
	WantCode(t, err, account.EINVALID)
	_, err = e.Svc.SetCatchAll(ctx, "missing.test", bob.Email, Web)
	WantCode(t, err, account.ENOTFOUND)
	// Another domain's member may be the catch-all.
	if d, err := e.Svc.SetCatchAll(ctx, "enforced.test", carol.Email, Web); err != nil || d.CatchAll != carol.Email {
		t.Fatalf("set carol: %+v %v", d, err)
	}
	if d, err := e.Svc.SetCatchAll(ctx, "enforced.test", "", Web); err != nil || d.CatchAll != "" {
		t.Fatalf("off: %+v %v", d, err)
	}
	_, err = e.Svc.ResolveRecipient(ctx, "nobody@enforced.test")
	WantCode(t, err, account.ENOTFOUND)

	if _, err := e.Svc.SetCatchAll(ctx, "enforced.test", bob.Email, Web); err != nil {
		t.Fatal(err)
	}
	execSQL(t, e.DB, `DELETE FROM members WHERE id = ?`, bob.ID)
	if d, _ := e.DB.DomainByName(ctx, "enforced.test"); d.CatchAll != "" {
		t.Errorf("a deleted member stays the catch-all: %+v", d)
	}
	_, err = e.Svc.ResolveRecipient(ctx, "nobody@enforced.test")
	WantCode(t, err, account.ENOTFOUND)
}
