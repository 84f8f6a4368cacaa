package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/dkim"
	"github.com/postern/postern/internal/store/sqlstore"
)

// RunDKIM is the conformance suite of the DKIM key store (dkim.Store). The
// store keeps sealed bytes it cannot read; these tests give it made-up ones.
func RunDKIM(t *testing.T, open func(testing.TB) *sqlstore.DB) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, *sqlstore.DB)
	}{
		{"Rotation", testDKIMRotation},
		{"Retire", testDKIMRetire},
		{"SelectorNeverReused", testDKIMSelectorTaken},
		{"OnlyIfNoneConcurrent", testDKIMOnlyIfNoneConcurrent},
		{"WithTheDomain", testDKIMWithDomain},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

var dkimT0 = time.Date(2026, 12, 3, 10, 0, 0, 123456000, time.UTC)

// fakePair is a pair of keys with recognisable made-up contents.
func fakePair(domain, tag string, at time.Time) []dkim.StoredKey {
	return []dkim.StoredKey{
		{Domain: domain, Selector: tag + "e", Algorithm: dkim.Ed25519, Sealed: []byte("sealed-" + tag + "e"),
			Public: "v=DKIM1; k=ed25519; p=" + tag, CreatedAt: at, Active: true},
		{Domain: domain, Selector: tag + "r", Algorithm: dkim.RSA, Sealed: []byte("sealed-" + tag + "r"),
			Public: "v=DKIM1; k=rsa; p=" + tag, CreatedAt: at, Active: true},
	}
}

func newDomain(t *testing.T, db *sqlstore.DB, name string) {
	t.Helper()
	if err := db.CreateDomain(context.Background(), &account.Domain{Name: name, CreatedAt: dkimT0}); err != nil {
		t.Fatal(err)
	}
}

// keyStates is a domain's keys as "selector:state" in order.
func keyStates(t *testing.T, db *sqlstore.DB, domain string) string {
	t.Helper()
	keys, err := db.DKIMKeys(context.Background(), domain)
	if err != nil {
		t.Fatal(err)
	}
	s := ""
	for _, k := range keys {
		if s != "" {
			s += " "
		}
		s += k.Selector + ":" + k.State()
	}
	return s
}

// testDKIMRotation: keys round-trip; a new pair becomes the active one and
// the old pair stays published; onlyIfNone adds nothing to a domain with
// keys; domains are apart; an unknown domain has none and takes none.
func testDKIMRotation(t *testing.T, db *sqlstore.DB) {
	ctx := context.Background()
	newDomain(t, db, "a.test")
	newDomain(t, db, "b.test")
	if keys, err := db.DKIMKeys(ctx, "a.test"); err != nil || len(keys) != 0 {
		t.Fatalf("new domain's keys: %+v %v", keys, err)
	}
	if ds, err := db.DomainsWithoutDKIMKeys(ctx); err != nil || fmt.Sprint(ds) != "[a.test b.test]" {
		t.Fatalf("without keys: %v %v", ds, err)
	}
	first := fakePair("a.test", "p1", dkimT0)
	if added, err := db.AddDKIMKeys(ctx, "a.test", first, false); err != nil || !added {
		t.Fatalf("add: %v %v", added, err)
	}
	keys, err := db.DKIMKeys(ctx, "a.test")
	if err != nil || len(keys) != 2 {
		t.Fatalf("keys: %+v %v", keys, err)
	}
	for i, k := range keys {
		w := first[i]
		if k.Domain != w.Domain || k.Selector != w.Selector || k.Algorithm != w.Algorithm || string(k.Sealed) != string(w.Sealed) ||
			k.Public != w.Public || !k.CreatedAt.Equal(dkimT0) || !k.Active || !k.RetiredAt.IsZero() {
			t.Errorf("key %d: %+v, want %+v", i, k, w)
		}
	}
	if ds, _ := db.DomainsWithoutDKIMKeys(ctx); fmt.Sprint(ds) != "[b.test]" {
		t.Errorf("without keys after adding to a.test: %v", ds)
	}
	if added, err := db.AddDKIMKeys(ctx, "a.test", fakePair("a.test", "px", dkimT0), true); err != nil || added {
		t.Fatalf("onlyIfNone on a domain with keys: %v %v", added, err)
	}
	if added, err := db.AddDKIMKeys(ctx, "a.test", fakePair("a.test", "p2", dkimT0.Add(time.Hour)), false); err != nil || !added {
		t.Fatalf("rotate: %v %v", added, err)
	}
	if got := keyStates(t, db, "a.test"); got != "p1e:published p1r:published p2e:active p2r:active" {
		t.Errorf("after rotation: %s", got)
	}
	if got := keyStates(t, db, "b.test"); got != "" {
		t.Errorf("b.test got keys: %s", got)
	}
	if keys, err := db.DKIMKeys(ctx, "missing.test"); err != nil || len(keys) != 0 {
		t.Errorf("unknown domain: %+v %v", keys, err)
	}
	if _, err := db.AddDKIMKeys(ctx, "missing.test", fakePair("missing.test", "p1", dkimT0), false); !errors.Is(err, account.ErrNotFound) {
		t.Errorf("add to an unknown domain: %v", err)
	}
}

// testDKIMRetire: only an inactive, published key retires, and its sealed
// private key is gone.
func testDKIMRetire(t *testing.T, db *sqlstore.DB) {
	ctx := context.Background()
	newDomain(t, db, "a.test")
	db.AddDKIMKeys(ctx, "a.test", fakePair("a.test", "p1", dkimT0), false)
	if err := db.RetireDKIMKey(ctx, "a.test", "p1e", dkimT0); !errors.Is(err, dkim.ErrNoKey) {
		t.Fatalf("retire an active key: %v", err)
	}
	db.AddDKIMKeys(ctx, "a.test", fakePair("a.test", "p2", dkimT0), false)
	at := dkimT0.Add(7 * 24 * time.Hour)
	if err := db.RetireDKIMKey(ctx, "a.test", "p1e", at); err != nil {
		t.Fatal(err)
	}
	if err := db.RetireDKIMKey(ctx, "a.test", "p1e", at); !errors.Is(err, dkim.ErrNoKey) {
		t.Errorf("retire twice: %v", err)
	}
	for _, c := range []struct{ domain, sel string }{{"a.test", "nope"}, {"b.test", "p1r"}} {
		if err := db.RetireDKIMKey(ctx, c.domain, c.sel, at); !errors.Is(err, dkim.ErrNoKey) {
			t.Errorf("retire %s of %s: %v", c.sel, c.domain, err)
		}
	}
	if got := keyStates(t, db, "a.test"); got != "p1e:retired p1r:published p2e:active p2r:active" {
		t.Errorf("after retiring p1e: %s", got)
	}
	keys, _ := db.DKIMKeys(ctx, "a.test")
	if keys[0].Sealed != nil || !keys[0].RetiredAt.Equal(at) || keys[0].Public == "" || string(keys[1].Sealed) != "sealed-p1r" {
		t.Errorf("retired key %+v, other %+v", keys[0], keys[1])
	}
}

// testDKIMSelectorTaken: a selector the domain had, even retired, is
// refused, and the failed rotation changes nothing; another domain may
// use it.
func testDKIMSelectorTaken(t *testing.T, db *sqlstore.DB) {
	ctx := context.Background()
	newDomain(t, db, "a.test")
	newDomain(t, db, "b.test")
	db.AddDKIMKeys(ctx, "a.test", fakePair("a.test", "p1", dkimT0), false)
	db.AddDKIMKeys(ctx, "a.test", fakePair("a.test", "p2", dkimT0), false)
	if err := db.RetireDKIMKey(ctx, "a.test", "p1e", dkimT0); err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"p1", "p2"} {
		if added, err := db.AddDKIMKeys(ctx, "a.test", fakePair("a.test", tag, dkimT0), false); !errors.Is(err, dkim.ErrSelectorTaken) || added {
			t.Errorf("reuse %s: %v %v", tag, added, err)
		}
	}
	if got := keyStates(t, db, "a.test"); got != "p1e:retired p1r:published p2e:active p2r:active" {
		t.Errorf("after refused rotations: %s", got)
	}
	if _, err := db.AddDKIMKeys(ctx, "b.test", fakePair("b.test", "p1", dkimT0), false); err != nil {
		t.Errorf("another domain's selector: %v", err)
	}
}

// testDKIMOnlyIfNoneConcurrent: nodes starting together each try to give
// a domain without keys its first pair; it gets one.
func testDKIMOnlyIfNoneConcurrent(t *testing.T, db *sqlstore.DB) {
	ctx := context.Background()
	newDomain(t, db, "a.test")
	var wg sync.WaitGroup
	var mu sync.Mutex
	var added int
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := db.AddDKIMKeys(ctx, "a.test", fakePair("a.test", fmt.Sprintf("n%d", i), dkimT0), true)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				added++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	keys, _ := db.DKIMKeys(ctx, "a.test")
	if added != 1 || len(keys) != 2 || !keys[0].Active || !keys[1].Active {
		t.Errorf("%d added, keys %+v", added, keys)
	}
}

// testDKIMWithDomain: with a maker set, a domain is created with its keys
// in one transaction: a maker's failure creates no domain, a duplicate
// domain adds no keys.
func testDKIMWithDomain(t *testing.T, db *sqlstore.DB) {
	ctx := context.Background()
	calls := 0
	db.SetDomainKeys(func(domain string) ([]dkim.StoredKey, error) {
		calls++
		if domain == "fail.test" {
			return nil, errors.New("no entropy today")
		}
		return fakePair(domain, fmt.Sprintf("p%d", calls), dkimT0), nil
	})
	newDomain(t, db, "a.test")
	if got := keyStates(t, db, "a.test"); got != "p1e:active p1r:active" {
		t.Errorf("new domain's keys: %s", got)
	}
	err := db.CreateDomain(ctx, &account.Domain{Name: "a.test", CreatedAt: dkimT0})
	if account.ErrorCode(err) != account.ECONFLICT {
		t.Errorf("duplicate domain: %v", err)
	}
	if got := keyStates(t, db, "a.test"); got != "p1e:active p1r:active" {
		t.Errorf("after the duplicate: %s", got)
	}
	if err := db.CreateDomain(ctx, &account.Domain{Name: "fail.test", CreatedAt: dkimT0}); err == nil {
		t.Error("created a domain whose keys failed")
	}
	if _, err := db.DomainByName(ctx, "fail.test"); !errors.Is(err, account.ErrNotFound) {
		t.Errorf("fail.test exists without keys: %v", err)
	}
	db.SetDomainKeys(nil)
	newDomain(t, db, "plain.test")
	if got := keyStates(t, db, "plain.test"); got != "" {
		t.Errorf("keys without a maker: %s", got)
	}
}
