package dkim_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/internal/dkim"
	"github.com/postern/postern/internal/store/sqlstore"
	"github.com/postern/postern/internal/store/storetest"
)

// memStore is a dkim.Store in memory, whose rows a test may tamper with.
type memStore struct {
	mu      sync.Mutex
	domains []string
	keys    map[string][]dkim.StoredKey
}

func newMemStore(domains ...string) *memStore {
	return &memStore{domains: domains, keys: map[string][]dkim.StoredKey{}}
}

func (m *memStore) DKIMKeys(_ context.Context, domain string) ([]dkim.StoredKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]dkim.StoredKey(nil), m.keys[domain]...), nil
}

func (m *memStore) AddDKIMKeys(_ context.Context, domain string, keys []dkim.StoredKey, onlyIfNone bool) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range m.keys[domain] {
		if k.Active && onlyIfNone {
			return false, nil
		}
		for _, n := range keys {
			if n.Selector == k.Selector {
				return false, dkim.ErrSelectorTaken
			}
		}
	}
	for i := range m.keys[domain] {
		m.keys[domain][i].Active = false
	}
	m.keys[domain] = append(m.keys[domain], keys...)
	return true, nil
}

func (m *memStore) RetireDKIMKey(_ context.Context, domain, selector string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, k := range m.keys[domain] {
		if k.Selector == selector && !k.Active && k.Published() {
			m.keys[domain][i].RetiredAt, m.keys[domain][i].Sealed = at, nil
			return nil
		}
	}
	return dkim.ErrNoKey
}

func (m *memStore) DomainsWithoutDKIMKeys(context.Context) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, d := range m.domains {
		has := false
		for _, k := range m.keys[d] {
			has = has || k.Active
		}
		if !has {
			out = append(out, d)
		}
	}
	sort.Strings(out)
	return out, nil
}

func (m *memStore) edit(domain string, fn func(keys []dkim.StoredKey)) {
	m.mu.Lock()
	fn(m.keys[domain])
	m.mu.Unlock()
}

func ring(t *testing.T, st dkim.Store, key []byte) *dkim.Keyring {
	t.Helper()
	r, err := dkim.NewKeyring(st, key)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestSealRoundTrip: sealed keys open with the same secret key on another
// keyring (another node), and not with another secret key, not when a
// byte is changed, not when moved to another selector or domain, not when
// the public record is not theirs. The errors name the key, never its bytes.
func TestSealRoundTrip(t *testing.T) {
	ctx := context.Background()
	st := newMemStore("example.com")
	if _, err := ring(t, st, secret).Rotate(ctx, "example.com"); err != nil {
		t.Fatal(err)
	}
	node2 := ring(t, st, secret) // another node: same secret key file
	keys, err := node2.ActiveDKIMKeys(ctx, "example.com")
	if err != nil || len(keys) != 2 {
		t.Fatalf("another node: %d keys, %v", len(keys), err)
	}
	good, _ := st.DKIMKeys(ctx, "example.com")

	refused := func(name string, r *dkim.Keyring, tamper func(k []dkim.StoredKey)) {
		t.Helper()
		st.edit("example.com", func(k []dkim.StoredKey) { copy(k, good); tamper(k) })
		defer st.edit("example.com", func(k []dkim.StoredKey) { copy(k, good) })
		_, err := r.ActiveDKIMKeys(ctx, "example.com")
		if err == nil {
			t.Errorf("%s: the keys opened", name)
			return
		}
		if !strings.Contains(err.Error(), "the key p") || len(err.Error()) > 300 {
			t.Errorf("%s: error %q", name, err)
		}
		for _, k := range keys {
			der, _ := x509.MarshalPKCS8PrivateKey(k.Private)
			if strings.Contains(err.Error(), string(der[len(der)-16:])) {
				t.Errorf("%s: the error holds key bytes", name)
			}
		}
	}
	other := append([]byte{}, secret...)
	other[0] ^= 1
	refused("another secret key", ring(t, st, other), func([]dkim.StoredKey) {})
	for i := range 2 {
		for _, at := range []int{0, 1, 13, len(good[i].Sealed) - 1} {
			refused(fmt.Sprintf("key %d byte %d changed", i, at), node2, func(k []dkim.StoredKey) {
				k[i].Sealed = append([]byte{}, good[i].Sealed...)
				k[i].Sealed[at] ^= 0x20
			})
		}
		refused(fmt.Sprintf("key %d cut short", i), node2, func(k []dkim.StoredKey) { k[i].Sealed = good[i].Sealed[:20] })
		refused(fmt.Sprintf("key %d empty", i), node2, func(k []dkim.StoredKey) { k[i].Sealed = nil })
		refused(fmt.Sprintf("key %d renamed", i), node2, func(k []dkim.StoredKey) { k[i].Selector += "x" })
		refused(fmt.Sprintf("key %d of another domain", i), node2, func(k []dkim.StoredKey) { k[i].Domain = "example.org" })
		refused(fmt.Sprintf("key %d with another algorithm", i), node2, func(k []dkim.StoredKey) { k[i].Algorithm = good[1-i].Algorithm })
		refused(fmt.Sprintf("key %d with another record", i), node2, func(k []dkim.StoredKey) { k[i].Public = good[1-i].Public })
	}
	// The two keys' sealed forms swapped between their rows.
	refused("keys swapped", node2, func(k []dkim.StoredKey) { k[0].Sealed, k[1].Sealed = good[1].Sealed, good[0].Sealed })

	if _, err := dkim.NewKeyring(st, secret[:31]); err == nil {
		t.Error("a keyring with a 31-byte secret")
	}
}

// TestSealedIsFresh: sealing the same key twice gives different bytes (a
// random nonce), and neither holds the key.
func TestSealedIsFresh(t *testing.T) {
	ctx := context.Background()
	st := newMemStore("example.com")
	r := ring(t, st, secret)
	if _, err := r.Rotate(ctx, "example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Rotate(ctx, "example.com"); err != nil {
		t.Fatal(err)
	}
	keys, _ := st.DKIMKeys(ctx, "example.com")
	seen := map[string]bool{}
	for _, k := range keys {
		if len(k.Sealed) < 40 || seen[string(k.Sealed[:13])] {
			t.Errorf("sealed %s: %x", k.Selector, k.Sealed[:13])
		}
		seen[string(k.Sealed[:13])] = true
	}
}

// secretsOf returns byte strings that any copy of the keys in the clear
// would contain: the PKCS #8 encodings, the Ed25519 seed, the RSA private
// exponent and primes.
func secretsOf(t *testing.T, keys []dkim.Key) [][]byte {
	t.Helper()
	var out [][]byte
	for _, k := range keys {
		der, err := x509.MarshalPKCS8PrivateKey(k.Private)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, der)
		switch p := k.Private.(type) {
		case ed25519.PrivateKey:
			out = append(out, p.Seed())
		case *rsa.PrivateKey:
			out = append(out, p.D.Bytes(), p.Primes[0].Bytes(), p.Primes[1].Bytes(), x509.MarshalPKCS1PrivateKey(p))
		}
	}
	return out
}

// TestNoPrivateKeyInTheDatabase: on both engines, no row of dkim_keys (nor,
// on SQLite, any byte of the database files) holds a private key in the
// clear, in any of its encodings.
func TestNoPrivateKeyInTheDatabase(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		r := newRing(t, db, "example.com")
		// The pair made with the domain, now inactive, and the active pair.
		old, err := r.ActiveDKIMKeys(ctx, "example.com")
		if err != nil || len(old) != 2 {
			t.Fatalf("%d keys, %v", len(old), err)
		}
		if _, err := r.Rotate(ctx, "example.com"); err != nil {
			t.Fatal(err)
		}
		keys, err := r.ActiveDKIMKeys(ctx, "example.com")
		if err != nil || len(keys) != 2 {
			t.Fatalf("%d keys, %v", len(keys), err)
		}
		secrets := append(secretsOf(t, old), secretsOf(t, keys)...)
		rows, err := db.SQL.QueryContext(ctx, `SELECT selector, algorithm, private_sealed, public FROM dkim_keys`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			var sel, algo, pub string
			var sealed []byte
			if err := rows.Scan(&sel, &algo, &sealed, &pub); err != nil {
				t.Fatal(err)
			}
			n++
			row := bytes.Join([][]byte{[]byte(sel), []byte(algo), sealed, []byte(pub)}, []byte{0})
			for _, s := range secrets {
				if bytes.Contains(row, s) || bytes.Contains(row, s[:16]) {
					t.Errorf("row %s holds a private key in the clear", sel)
				}
			}
		}
		if n != 4 {
			t.Errorf("%d rows", n)
		}
		if db.Dialect == sqlstore.SQLite {
			db.SQL.ExecContext(ctx, `PRAGMA wal_checkpoint(FULL)`)
			for _, f := range []string{db.DSN, db.DSN + "-wal"} {
				b, err := os.ReadFile(f)
				if err != nil && !os.IsNotExist(err) {
					t.Fatal(err)
				}
				for _, s := range secrets {
					if bytes.Contains(b, s[:16]) {
						t.Errorf("%s holds a private key in the clear", filepath.Base(f))
					}
				}
			}
		}
	})
}

// TestSelectors: a pair is named by its month and algorithm; a second
// pair that month gets a number; a selector is never reused, retired or not.
func TestSelectors(t *testing.T) {
	ctx := context.Background()
	st := newMemStore("example.com")
	r := ring(t, st, secret)
	month := time.Date(2027, 1, 1, 1, 0, 0, 0, time.FixedZone("JST", 9*3600)) // still December in UTC
	r.Now = func() time.Time { return month }
	// A key made outside of pairs holds the RSA name alone.
	st.keys["example.com"] = []dkim.StoredKey{{Domain: "example.com", Selector: "p202612r2", Algorithm: dkim.RSA}}
	var got []string
	for range 3 {
		keys, err := r.Rotate(ctx, "example.com")
		if err != nil || len(keys) != 2 || !keys[0].Active || !keys[1].Active {
			t.Fatalf("rotate: %+v %v", keys, err)
		}
		got = append(got, keys[0].Selector+"/"+keys[1].Selector)
	}
	r.Now = func() time.Time { return month.Add(24 * time.Hour) }
	keys, _ := r.Rotate(ctx, "example.com")
	got = append(got, keys[0].Selector+"/"+keys[1].Selector)
	if s := strings.Join(got, " "); s != "p202612e/p202612r p202612e3/p202612r3 p202612e4/p202612r4 p202701e/p202701r" {
		t.Errorf("selectors %s", s)
	}
	if !keys[0].CreatedAt.Equal(month.Add(24*time.Hour)) || keys[0].CreatedAt.Location() != time.UTC || keys[0].Algorithm != dkim.Ed25519 || keys[1].Algorithm != dkim.RSA {
		t.Errorf("keys %+v", keys)
	}
	// Retired selectors stay taken.
	r.Now = func() time.Time { return month }
	if err := r.Retire(ctx, "example.com", "p202612e"); err != nil {
		t.Fatal(err)
	}
	keys, _ = r.Rotate(ctx, "example.com")
	if keys[0].Selector != "p202612e5" {
		t.Errorf("after a retirement: %s", keys[0].Selector)
	}
}

// TestRetire: only a published, inactive key retires; the messages say
// what to do instead.
func TestRetire(t *testing.T) {
	ctx := context.Background()
	st := newMemStore("example.com")
	r := ring(t, st, secret)
	first, _ := r.Rotate(ctx, "example.com")
	for sel, want := range map[string]string{first[0].Selector: "signs its mail: rotate first", "nope": "has no DKIM key nope"} {
		if err := r.Retire(ctx, "example.com", sel); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("retire %s: %v", sel, err)
		}
	}
	if _, err := r.Rotate(ctx, "example.com"); err != nil {
		t.Fatal(err)
	}
	if err := r.Retire(ctx, "example.com", first[1].Selector); err != nil {
		t.Fatal(err)
	}
	if err := r.Retire(ctx, "example.com", first[1].Selector); err == nil || !strings.Contains(err.Error(), "already retired") {
		t.Errorf("retire twice: %v", err)
	}
	keys, _ := r.Keys(ctx, "example.com")
	states := ""
	for _, k := range keys {
		states += k.State() + " "
	}
	if states != "published retired active active " || keys[1].Sealed != nil {
		t.Errorf("states %s, retired sealed %x", states, keys[1].Sealed)
	}
	// The keys that remain still open.
	if active, err := r.ActiveDKIMKeys(ctx, "example.com"); err != nil || len(active) != 2 {
		t.Errorf("active after retiring: %d %v", len(active), err)
	}
}

// TestEnsureKeys: the domains without keys get a pair each, once; those
// with keys keep theirs.
func TestEnsureKeys(t *testing.T) {
	ctx := context.Background()
	st := newMemStore("a.example", "b.example", "c.example")
	r := ring(t, st, secret)
	kept, _ := r.Rotate(ctx, "b.example")
	var made []string
	note := func(d string, keys []dkim.StoredKey) {
		made = append(made, d+":"+keys[0].Selector[:1]+keys[1].Selector[:1])
	}
	if err := r.EnsureKeys(ctx, note); err != nil {
		t.Fatal(err)
	}
	if s := strings.Join(made, " "); s != "a.example:pp c.example:pp" {
		t.Errorf("made %s", s)
	}
	made = nil
	if err := r.EnsureKeys(ctx, note); err != nil || made != nil {
		t.Errorf("again: %v %v", made, err)
	}
	for _, d := range []string{"a.example", "b.example", "c.example"} {
		keys, err := r.ActiveDKIMKeys(ctx, d)
		if err != nil || len(keys) != 2 {
			t.Errorf("%s: %d keys %v", d, len(keys), err)
		}
	}
	if keys, _ := r.Keys(ctx, "b.example"); len(keys) != 2 || keys[0].Selector != kept[0].Selector {
		t.Errorf("b.example's keys changed: %+v", keys)
	}
}
