package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/authrec"
	"github.com/postern/postern/internal/store/sqlstore"
	"github.com/postern/postern/internal/store/storetest"
)

// The credential cache (credcache.go) must be exact: a change committed
// through any handle of the database (another process: the CLI beside the
// server) is seen by the very next Credentials of every other handle. These
// tests open the same SQLite file twice, which is what two processes do:
// each handle has its own cache and maps the same generation file.

// openPair opens the SQLite file path twice; both handles are closed when
// the test ends.
func openPair(t *testing.T) (a, b *sqlstore.DB, path string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "postern.db")
	return openCredDB(t, path), openCredDB(t, path), path
}

func openCredDB(t testing.TB, path string) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func credsOf(t testing.TB, db *sqlstore.DB, email string) (account.Member, []account.AppPassword) {
	t.Helper()
	m, list, err := db.Credentials(context.Background(), email)
	if err != nil {
		t.Fatalf("credentials of %s: %v", email, err)
	}
	return m, list
}

// cachedCreds calls Credentials and fails unless the answer came from the
// cache (the hit counter grows by one; db must have no other reader).
func cachedCreds(t testing.TB, db *sqlstore.DB, email string) (account.Member, []account.AppPassword) {
	t.Helper()
	before := db.CredentialCacheStats()
	m, list := credsOf(t, db, email)
	if after := db.CredentialCacheStats(); after.Hits != before.Hits+1 || after.Misses != before.Misses {
		t.Fatalf("credentials of %s were not answered from the cache: hits %d→%d, misses %d→%d",
			email, before.Hits, after.Hits, before.Misses, after.Misses)
	}
	return m, list
}

// warmCreds reads email through db until the cache holds it: the first read
// of a member the cache does not know is not kept (no counter could be read
// before it), the second is, and the third is a hit.
func warmCreds(t testing.TB, db *sqlstore.DB, email string) {
	t.Helper()
	for i := range 2 {
		before := db.CredentialCacheStats().Hits
		credsOf(t, db, email)
		if db.CredentialCacheStats().Hits != before {
			t.Fatalf("read %d of %s, unknown to the cache, was a hit", i+1, email)
		}
	}
	cachedCreds(t, db, email)
}

func hasAppPassword(list []account.AppPassword, id string) bool {
	return slices.ContainsFunc(list, func(p account.AppPassword) bool { return p.ID == id })
}

func credTag(i int) authrec.PairTag {
	var tag authrec.PairTag
	copy(tag[:], fmt.Sprintf("cc%06d", i))
	return tag
}

// TestCredentialCacheAcrossHandles: every change of what Credentials returns,
// made through handle B, is seen by handle A's next call, although A was
// answering from its cache just before; and A caches the new state again.
func TestCredentialCacheAcrossHandles(t *testing.T) {
	ctx := context.Background()
	a, b, _ := openPair(t)
	e := storetest.NewEnv(t, b) // every change goes through B
	alice := e.Enforced(t, "alice")
	bob := e.Optional(t, "bob", true)
	if !a.CredentialCacheStats().Enabled || !b.CredentialCacheStats().Enabled {
		t.Fatal("the credential cache is off on SQLite")
	}
	warmCreds(t, a, alice.Email)
	warmCreds(t, a, bob.Email)

	// step checks that A answers from its cache a state that check refuses,
	// that after change (through B) A's very next answer passes check, and
	// that this new state is then cached.
	step := func(name, email string, change func() error, check func(account.Member, []account.AppPassword) error) {
		t.Helper()
		m, list := cachedCreds(t, a, email)
		if err := check(m, list); err == nil {
			t.Fatalf("%s: the state before the change already passes the check", name)
		}
		if err := change(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		m, list = credsOf(t, a, email)
		if err := check(m, list); err != nil {
			t.Fatalf("%s: handle A's next Credentials after the change: %v", name, err)
		}
		m, list = cachedCreds(t, a, email)
		if err := check(m, list); err != nil {
			t.Fatalf("%s: the cached copy after the change: %v", name, err)
		}
	}
	present := func(id *string) func(account.Member, []account.AppPassword) error {
		return func(_ account.Member, list []account.AppPassword) error {
			if !hasAppPassword(list, *id) {
				return fmt.Errorf("app password %s absent (%d listed)", *id, len(list))
			}
			return nil
		}
	}
	absent := func(id *string) func(account.Member, []account.AppPassword) error {
		return func(_ account.Member, list []account.AppPassword) error {
			if hasAppPassword(list, *id) {
				return fmt.Errorf("app password %s still listed", *id)
			}
			return nil
		}
	}

	var p1, p2 string
	step("create an app password", alice.Email, func() error {
		p, _, err := e.Svc.CreateAppPassword(ctx, e.Reload(t, alice), "Laptop", storetest.Web)
		p1 = p.ID
		return err
	}, present(&p1))
	step("create a second app password", alice.Email, func() error {
		p, _, err := e.Svc.CreateAppPassword(ctx, e.Reload(t, alice), "Phone", storetest.Web)
		p2 = p.ID
		return err
	}, present(&p2))
	step("delete an app password", alice.Email, func() error {
		return e.Svc.DeleteAppPassword(ctx, e.Reload(t, alice), p1, storetest.Web)
	}, absent(&p1))
	if _, list := credsOf(t, a, alice.Email); !hasAppPassword(list, p2) || len(list) != 1 {
		t.Fatalf("after deleting one of two app passwords: %+v", list)
	}

	state := func(want account.State) func(account.Member, []account.AppPassword) error {
		return func(m account.Member, _ []account.AppPassword) error {
			if m.State != want {
				return fmt.Errorf("state %q, want %q", m.State, want)
			}
			return nil
		}
	}
	step("suspend", alice.Email, func() error {
		return e.Svc.SetState(ctx, e.Reload(t, alice), account.StateSuspended, account.Actor{Via: "cli"})
	}, state(account.StateSuspended))
	step("resume", alice.Email, func() error {
		return e.Svc.SetState(ctx, e.Reload(t, alice), account.StateActive, account.Actor{Via: "cli"})
	}, state(account.StateActive))

	onRecord := func(want bool) func(account.Member, []account.AppPassword) error {
		return func(m account.Member, _ []account.AppPassword) error {
			if m.FailuresOnRecord != want {
				return fmt.Errorf("FailuresOnRecord %v, want %v", m.FailuresOnRecord, want)
			}
			return nil
		}
	}
	now := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	step("record a failure", alice.Email, func() error {
		_, err := b.RecordAuthFailure(ctx, alice.ID, credTag(1), now, 10, 15*time.Minute, account.Effects{})
		return err
	}, onRecord(true))
	step("reset the failures", alice.Email, func() error {
		return b.ResetAuthFailures(ctx, alice.ID)
	}, onRecord(false))

	// A last use moves no counter: no login checks it, and each app
	// password's once-a-minute write would otherwise cost its member's next
	// login a read. The listing shows it at once.
	used := time.Date(2025, 3, 2, 10, 11, 12, 13000, time.UTC)
	credsOf(t, a, alice.Email)
	before := a.CredentialCacheStats()
	if err := b.TouchAppPassword(ctx, p2, used, "imap", "192.0.2.44", used); err != nil {
		t.Fatal(err)
	}
	if _, list := credsOf(t, a, alice.Email); !hasAppPassword(list, p2) {
		t.Fatalf("after a last use: %+v", list)
	}
	if after := a.CredentialCacheStats(); after.Misses != before.Misses || after.Hits != before.Hits+1 {
		t.Errorf("a last use invalidated the cache: %+v, then %+v", before, after)
	}
	listed, err := b.AppPasswords(ctx, alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(listed, func(p account.AppPassword) bool { return p.ID == p2 }); i < 0 ||
		!listed[i].LastUsedAt.Equal(used) || listed[i].LastUsedProtocol != "imap" || listed[i].LastUsedIP != "192.0.2.44" {
		t.Errorf("listed after a last use: %+v", listed)
	}

	oldHash := e.Reload(t, alice).PasswordHash
	step("change the main password, deleting the app passwords", alice.Email, func() error {
		return e.Svc.ChangePassword(ctx, e.Reload(t, alice), "", "a brand-new main password for alice", true, true, storetest.Web)
	}, func(m account.Member, list []account.AppPassword) error {
		if m.PasswordHash == oldHash {
			return errors.New("the old password hash")
		}
		if len(list) != 0 {
			return fmt.Errorf("%d app passwords left", len(list))
		}
		return nil
	})

	setting := func(want bool) func(account.Member, []account.AppPassword) error {
		return func(m account.Member, _ []account.AppPassword) error {
			if m.UseAppPasswords != want {
				return fmt.Errorf("UseAppPasswords %v, want %v", m.UseAppPasswords, want)
			}
			return nil
		}
	}
	step("setting off", bob.Email, func() error {
		return e.Svc.SetUseAppPasswords(ctx, e.Reload(t, bob), false, storetest.Web)
	}, setting(false))
	step("setting on", bob.Email, func() error {
		return e.Svc.SetUseAppPasswords(ctx, e.Reload(t, bob), true, storetest.Web)
	}, setting(true))

	// What A answers now is what the database holds.
	for _, email := range []string{alice.Email, bob.Email} {
		am, alist := credsOf(t, a, email)
		bm, blist := credsOf(t, b, email)
		if fmt.Sprint(am, alist) != fmt.Sprint(bm, blist) {
			t.Errorf("%s: handle A has %+v %+v, handle B %+v %+v", email, am, alist, bm, blist)
		}
	}
}

// TestCredentialCacheRace: writers on handle B create and delete app
// passwords while readers on handle A keep reading the same members; each
// writer, as soon as its write returns, finds it in A's next answer.
func TestCredentialCacheRace(t *testing.T) {
	ctx := context.Background()
	a, b, _ := openPair(t)
	e := storetest.NewEnv(t, b)
	const nMembers, writersPerMember, rounds, readers = 3, 2, 12, 3
	members := make([]account.Member, nMembers)
	for i := range members {
		members[i] = e.Enforced(t, fmt.Sprintf("race%d", i))
	}
	if _, err := a.WarmCredentials(ctx); err != nil {
		t.Fatal(err)
	}

	done := make(chan struct{})
	var readersWG, writersWG sync.WaitGroup
	for r := range readers {
		readersWG.Add(1)
		go func() {
			defer readersWG.Done()
			for k := r; ; k++ {
				select {
				case <-done:
					return
				default:
				}
				want := members[k%nMembers]
				m, list, err := a.Credentials(ctx, want.Email)
				if err != nil {
					t.Errorf("reader: %v", err)
					return
				}
				if m.ID != want.ID || m.Email != want.Email {
					t.Errorf("reader: credentials of %s returned member %d %s", want.Email, m.ID, m.Email)
					return
				}
				for _, p := range list {
					if p.MemberID != want.ID {
						t.Errorf("reader: %s got app password %s of member %d", want.Email, p.ID, p.MemberID)
						return
					}
				}
			}
		}()
	}
	for i, m := range members {
		for w := range writersPerMember {
			writersWG.Add(1)
			go func() {
				defer writersWG.Done()
				for k := range rounds {
					p, _, err := e.Svc.CreateAppPassword(ctx, m, fmt.Sprintf("w%d-%d", w, k), storetest.Web)
					if err != nil {
						t.Errorf("member %d writer %d: create: %v", i, w, err)
						return
					}
					if _, list := credsOf(t, a, m.Email); !hasAppPassword(list, p.ID) {
						t.Errorf("member %d writer %d round %d: the app password just created is not in handle A's answer", i, w, k)
					}
					if err := e.Svc.DeleteAppPassword(ctx, m, p.ID, storetest.Web); err != nil {
						t.Errorf("member %d writer %d: delete: %v", i, w, err)
						return
					}
					if _, list := credsOf(t, a, m.Email); hasAppPassword(list, p.ID) {
						t.Errorf("member %d writer %d round %d: the app password just deleted is still in handle A's answer", i, w, k)
					}
				}
			}()
		}
	}
	writersWG.Wait()
	close(done)
	readersWG.Wait()

	// Quiet again: A's answers equal the database's and are cached.
	for _, m := range members {
		credsOf(t, a, m.Email)
		am, alist := cachedCreds(t, a, m.Email)
		bm, blist := credsOf(t, b, m.Email)
		if fmt.Sprint(am, alist) != fmt.Sprint(bm, blist) || len(alist) != 0 {
			t.Errorf("%s after the race: handle A has %+v %+v, handle B %+v %+v", m.Email, am, alist, bm, blist)
		}
	}
}

// TestCredentialCacheWarm covers WarmCredentials, turning the cache off, its
// size limit, and closing and opening the database again.
func TestCredentialCacheWarm(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "postern.db")
	db := openCredDB(t, path)
	ref := openCredDB(t, path) // the database's answers, without a cache
	ref.SetCredentialCache(0)
	e := storetest.NewEnv(t, db)
	var emails []string
	for i := range 5 {
		m := e.Enforced(t, fmt.Sprintf("warm%d", i))
		for k := range i % 3 {
			e.Create(t, m, fmt.Sprintf("app %d", k))
		}
		emails = append(emails, m.Email)
	}
	same := func(t *testing.T, db *sqlstore.DB, email string) {
		t.Helper()
		m, list := credsOf(t, db, email)
		rm, rlist := credsOf(t, ref, email)
		if fmt.Sprint(m, list) != fmt.Sprint(rm, rlist) {
			t.Errorf("%s: %+v %+v, the database has %+v %+v", email, m, list, rm, rlist)
		}
	}

	t.Run("warm", func(t *testing.T) {
		db.SetCredentialCache(sqlstore.DefaultCredentialCache) // a fresh cache
		if st := db.CredentialCacheStats(); !st.Enabled || st.Entries != 0 || st.Hits != 0 || st.Misses != 0 {
			t.Fatalf("a fresh cache: %+v", st)
		}
		n, err := db.WarmCredentials(ctx)
		if err != nil || n != len(emails) {
			t.Fatalf("WarmCredentials = %d, %v; want %d members", n, err, len(emails))
		}
		if st := db.CredentialCacheStats(); st.Entries != len(emails) {
			t.Fatalf("after warming: %d entries, want %d", st.Entries, len(emails))
		}
		for _, email := range emails {
			cachedCreds(t, db, email) // the first read after warming is a hit
			same(t, db, email)
		}
		if st := db.CredentialCacheStats(); st.Misses != 0 {
			t.Errorf("%d misses after warming", st.Misses)
		}
	})

	t.Run("off", func(t *testing.T) {
		db.SetCredentialCache(0)
		if st := db.CredentialCacheStats(); st.Enabled || st.Entries != 0 {
			t.Fatalf("cache off: %+v", st)
		}
		if n, err := db.WarmCredentials(ctx); n != 0 || err != nil {
			t.Fatalf("WarmCredentials with the cache off = %d, %v", n, err)
		}
		for _, email := range emails {
			same(t, db, email)
		}
		// Changes through this handle still move the counters for the others.
		other := openCredDB(t, path)
		warmCreds(t, other, emails[0])
		p, _ := e.Create(t, memberByEmail(t, db, emails[0]), "while off")
		if _, list := credsOf(t, other, emails[0]); !hasAppPassword(list, p.ID) {
			t.Fatal("a change through a handle with the cache off is not seen by another handle's cache")
		}
		if st := db.CredentialCacheStats(); st.Enabled || st.Hits != 0 || st.Entries != 0 {
			t.Fatalf("cache off after use: %+v", st)
		}
	})

	t.Run("limit", func(t *testing.T) {
		const limit = 2
		db.SetCredentialCache(limit)
		if n, err := db.WarmCredentials(ctx); err != nil || n != limit {
			t.Fatalf("WarmCredentials with room for %d = %d, %v", limit, n, err)
		}
		for round := range 4 {
			for _, email := range emails {
				same(t, db, email)
				if st := db.CredentialCacheStats(); st.Entries > limit || !st.Enabled {
					t.Fatalf("round %d: %+v with a limit of %d", round, st, limit)
				}
			}
		}
		if st := db.CredentialCacheStats(); st.Entries != limit {
			t.Errorf("%d entries after reading %d members, want the limit %d", st.Entries, len(emails), limit)
		}
	})

	t.Run("close and open", func(t *testing.T) {
		db.SetCredentialCache(sqlstore.DefaultCredentialCache)
		warmCreds(t, db, emails[1])
		if err := db.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		if _, _, err := db.Credentials(ctx, emails[1]); err == nil {
			t.Error("Credentials on a closed handle answered (from a cache?)")
		}
		again := openCredDB(t, path)
		if st := again.CredentialCacheStats(); !st.Enabled || st.Entries != 0 {
			t.Fatalf("reopened: %+v", st)
		}
		if n, err := again.WarmCredentials(ctx); err != nil || n != len(emails) {
			t.Fatalf("WarmCredentials after reopening = %d, %v", n, err)
		}
		for _, email := range emails {
			cachedCreds(t, again, email)
			same(t, again, email)
		}
		// Invalidation still works through the reopened mapping.
		m := memberByEmail(t, ref, emails[1])
		e2 := storetest.NewEnv(t, ref)
		p, _ := e2.Create(t, m, "after reopening")
		if _, list := credsOf(t, again, emails[1]); !hasAppPassword(list, p.ID) {
			t.Fatal("a change after reopening is not seen")
		}
	})
}

// memberByEmail reads the member email through db.
func memberByEmail(t testing.TB, db *sqlstore.DB, email string) account.Member {
	t.Helper()
	m, err := db.MemberByEmail(context.Background(), email)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestCredentialCacheGenFile: the generation file lies beside the database,
// readable and writable by its owner only.
func TestCredentialCacheGenFile(t *testing.T) {
	_, _, path := openPair(t)
	st, err := os.Stat(path + "-gen")
	if err != nil {
		t.Fatalf("the generation file: %v", err)
	}
	if perm := st.Mode().Perm(); perm != 0o600 || !st.Mode().IsRegular() {
		t.Errorf("%s: mode %v, want a regular file with 0600", path+"-gen", st.Mode())
	}
	if st.Size() == 0 {
		t.Errorf("%s is empty", path+"-gen")
	}
}

// TestCredentialCacheEngines: PostgreSQL has no cache (its nodes share no
// memory) and SQLite has one; on both, Credentials follows every change.
func TestCredentialCacheEngines(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		sqlite := db.Dialect == sqlstore.SQLite
		db.SetCredentialCache(100)
		if got := db.CredentialCacheStats().Enabled; got != sqlite {
			t.Fatalf("credential cache enabled = %v on %s", got, db.Dialect)
		}
		e := storetest.NewEnv(t, db)
		m := e.Enforced(t, "engine")
		for range 3 {
			credsOf(t, db, m.Email)
		}
		if n, err := db.WarmCredentials(ctx); err != nil || (!sqlite && n != 0) {
			t.Fatalf("WarmCredentials = %d, %v", n, err)
		}
		p, _ := e.Create(t, m, "Mail")
		if _, list := credsOf(t, db, m.Email); !hasAppPassword(list, p.ID) {
			t.Fatal("the new app password is absent")
		}
		if err := e.Svc.DeleteAppPassword(ctx, m, p.ID, storetest.Web); err != nil {
			t.Fatal(err)
		}
		if _, list := credsOf(t, db, m.Email); hasAppPassword(list, p.ID) {
			t.Fatal("the deleted app password is still listed")
		}
		if err := e.Svc.SetState(ctx, m, account.StateSuspended, account.Actor{Via: "cli"}); err != nil {
			t.Fatal(err)
		}
		if got, _ := credsOf(t, db, m.Email); got.State != account.StateSuspended {
			t.Fatalf("state %q after suspending", got.State)
		}
		if _, _, err := db.Credentials(ctx, "nobody@enforced.test"); !errors.Is(err, account.ErrNotFound) {
			t.Fatalf("credentials of an unknown member: %v", err)
		}
		if st := db.CredentialCacheStats(); !sqlite && st != (sqlstore.CacheStats{}) {
			t.Errorf("PostgreSQL cache stats %+v", st)
		}
	})
}

// TestCredentialCacheHandleEvent: an event from the outbox drops the cached
// credentials it names (its member's, or every member's for a domain's
// event) when account.EventKind.ChangesLogin says so, and a mailbox event
// leaves them.
func TestCredentialCacheHandleEvent(t *testing.T) {
	db := openCredDB(t, filepath.Join(t.TempDir(), "postern.db"))
	e := storetest.NewEnv(t, db)
	alice, bob := e.Enforced(t, "alice"), e.Enforced(t, "bob")
	for _, c := range []struct {
		event      account.Event
		alice, bob bool // dropped
	}{
		{account.Event{Kind: account.EventMailboxChanged, MemberID: alice.ID, MailboxID: 1}, false, false},
		{account.Event{Kind: account.EventAppPasswordDeleted, MemberID: alice.ID, AppPasswordID: "x"}, true, false},
		{account.Event{Kind: account.EventMemberResumed, MemberID: bob.ID}, false, true},
		{account.Event{Kind: account.EventPolicyChanged, DomainID: alice.DomainID}, true, true},
	} {
		for _, email := range []string{alice.Email, bob.Email} {
			for i := 0; ; i++ {
				before := db.CredentialCacheStats().Hits
				if credsOf(t, db, email); db.CredentialCacheStats().Hits != before {
					break
				} else if i == 2 {
					t.Fatalf("%s is not cached", email)
				}
			}
		}
		db.HandleEvent(c.event)
		for _, m := range []struct {
			email   string
			dropped bool
		}{{alice.Email, c.alice}, {bob.Email, c.bob}} {
			before := db.CredentialCacheStats().Misses
			credsOf(t, db, m.email)
			if dropped := db.CredentialCacheStats().Misses != before; dropped != m.dropped {
				t.Errorf("%s: %s's cached credentials dropped %v, want %v", c.event.Kind, m.email, dropped, m.dropped)
			}
		}
	}
}
