package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/passhash"
	"github.com/postern/postern/internal/store/sqlstore"
)

// FastHash are argon2id parameters cheap enough for tests that hash a lot;
// only the passhash tests themselves use real parameters.
var FastHash = passhash.Params{Memory: 64, Time: 1, Threads: 1, Concurrency: 4}

// MainPassword is the main password of every member the fixtures create.
const MainPassword = "correct horse battery staple"

// Web is the actor of the suite's changes, as a browser would be.
var Web = account.Actor{Via: "web", IP: "203.0.113.7", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) TestBrowser/1.0"}

// Dates on either side of the default cut-off.
var (
	OptionalDate = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	EnforcedDate = time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Env is an account.Service over a fresh store, with a clock that advances one
// second per reading (so creation order is visible in timestamps) and the
// service's log captured.
type Env struct {
	DB   *sqlstore.DB
	Svc  *account.Service
	Key  []byte
	Logs *SyncBuffer

	mu  sync.Mutex
	now time.Time
}

// NewEnv returns an Env over db.
func NewEnv(t testing.TB, db *sqlstore.DB) *Env {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	e := &Env{DB: db, Key: key, Logs: &SyncBuffer{}, now: time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)}
	e.Svc = account.NewService(db, passhash.New(FastHash), account.Config{Key: key, BaseURL: "https://mail.example.test"})
	e.Svc.Now = e.Now
	e.Svc.Log = slog.New(slog.NewTextHandler(e.Logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return e
}

// Now reads the test clock and advances it by one second.
func (e *Env) Now() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = e.now.Add(time.Second)
	return e.now
}

// Domain creates the domain name (created at created) unless it exists.
func (e *Env) Domain(t testing.TB, name string, created time.Time) account.Domain {
	t.Helper()
	if d, err := e.DB.DomainByName(context.Background(), name); err == nil {
		return d
	}
	d, err := e.Svc.AddDomain(context.Background(), name, created)
	if err != nil {
		t.Fatalf("add domain %s: %v", name, err)
	}
	return d
}

// Enforced creates a member of enforced.test, a domain under the enforced policy.
func (e *Env) Enforced(t testing.TB, local string) account.Member {
	t.Helper()
	e.Domain(t, "enforced.test", EnforcedDate)
	return e.Member(t, local+"@enforced.test")
}

// Optional creates a member of optional.test with the setting on or off. The
// setting is written through the store without effects, so that tests count
// only the messages and events of what they do themselves.
func (e *Env) Optional(t testing.TB, local string, on bool) account.Member {
	t.Helper()
	e.Domain(t, "optional.test", OptionalDate)
	m := e.Member(t, local+"@optional.test")
	if on {
		if err := e.DB.SetUseAppPasswords(context.Background(), m.ID, true, account.Effects{}); err != nil {
			t.Fatal(err)
		}
		m = e.Reload(t, m)
	}
	return m
}

// Member adds the member email (its domain must exist) with MainPassword.
func (e *Env) Member(t testing.TB, email string) account.Member {
	t.Helper()
	m, err := e.Svc.AddMember(context.Background(), email, "", MainPassword)
	if err != nil {
		t.Fatalf("add member %s: %v", email, err)
	}
	return m
}

// Reload reads m again from the store.
func (e *Env) Reload(t testing.TB, m account.Member) account.Member {
	t.Helper()
	got, err := e.DB.MemberByID(context.Background(), m.ID)
	if err != nil {
		t.Fatalf("reload member %d: %v", m.ID, err)
	}
	return got
}

// Create makes an app password for m through the service and returns it with
// its plaintext.
func (e *Env) Create(t testing.TB, m account.Member, name string) (account.AppPassword, string) {
	t.Helper()
	p, plain, err := e.Svc.CreateAppPassword(context.Background(), m, name, Web)
	if err != nil {
		t.Fatalf("create app password %q: %v", name, err)
	}
	return p, plain
}

// Messages returns m's messages, newest first.
func (e *Env) Messages(t testing.TB, m account.Member) []account.Message {
	t.Helper()
	list, err := e.DB.Messages(context.Background(), m.ID)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// Events returns the account events of m in the outbox, in seq order. The
// mailbox.changed events that delivering a notification into the INBOX
// writes belong to the mail store and its suite, and are left out.
func (e *Env) Events(t testing.TB, m account.Member) []account.Event {
	t.Helper()
	awaitEvents(t, e.DB)
	all, err := e.DB.EventsAfter(context.Background(), account.EventPos{}, 100000)
	if err != nil {
		t.Fatal(err)
	}
	var out []account.Event
	for _, ev := range all {
		if ev.MemberID == m.ID && ev.Kind != account.EventMailboxChanged {
			out = append(out, ev)
		}
	}
	return out
}

// AppPasswords returns m's stored app passwords.
func (e *Env) AppPasswords(t testing.TB, m account.Member) []account.AppPassword {
	t.Helper()
	list, err := e.DB.AppPasswords(context.Background(), m.ID)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// WantCode fails t unless err carries the account error code code ("" for nil).
func WantCode(t testing.TB, err error, code string) {
	t.Helper()
	if got := account.ErrorCode(err); got != code {
		t.Fatalf("error %v: code %q, want %q", err, got, code)
	}
}

// WantNotFound fails t unless err is (or wraps) account.ErrNotFound.
func WantNotFound(t testing.TB, err error) {
	t.Helper()
	if !errors.Is(err, account.ErrNotFound) {
		t.Fatalf("error %v, want account.ErrNotFound", err)
	}
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers (log handlers).
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// RunAccount runs the account conformance suite: account.Service's rules
// exercised over the store that open returns (a fresh one per test).
func RunAccount(t *testing.T, open func(testing.TB) *sqlstore.DB) {
	tests := []struct {
		name string
		fn   func(*testing.T, *Env)
	}{
		{"DomainPolicy", testDomainPolicy},
		{"Domains", testDomains},
		{"Members", testMembers},
		{"Setting", testSetting},
		{"SetState", testSetState},
		{"Messages", testMessages},
		{"CreateForbiddenWhileOff", testCreateForbiddenWhileOff},
		{"AppNames", testAppNames},
		{"AppNameUniqueIgnoringCase", testAppNameUnique},
		{"AppNameConfusable", testAppNameConfusable},
		{"ConcurrentConfusableCreates", testConcurrentConfusableCreates},
		{"Limit", testLimit},
		{"ConcurrentCreates", testConcurrentCreates},
		{"List", testList},
		{"ActiveFollowsSetting", testActiveFollowsSetting},
		{"DeleteAndIDOR", testDeleteIDOR},
		{"NotificationMessages", testNotifications},
		{"EffectsInSameTransaction", testEffectsAtomic},
		{"ChangePassword", testChangePassword},
		{"VerifyMatrix", testVerifyMatrix},
		{"Credentials", testCredentials},
		{"Touch", testTouch},
		{"TouchBatch", testTouchBatch},
		{"Events", testEvents},
		{"EventsConcurrent", testEventsConcurrent},
		{"NoPlaintext", testNoPlaintext},
		{"ResolveRecipient", testResolveRecipient},
		{"ResolveAlias", testResolveAlias},
		{"Aliases", testAliases},
		{"AliasRefusals", testAliasRefusals},
		{"AliasMemberRace", testAliasMemberRace},
		{"CatchAll", testCatchAll},
		{"SendBudget", testSendBudget},
		{"SendLimited", testSendLimited},
		{"Senders", testSenders},
		{"Sent24h", testSent24h},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, NewEnv(t, open(t))) })
	}
}

// containsSecret reports whether s contains the plaintext p or its grouped form.
func containsSecret(s, p string) bool {
	return strings.Contains(s, p) || strings.Contains(s, account.GroupAppPassword(p))
}

// testResolveRecipient: a member's address, with or without a plus tag and
// in any case, reaches the member; an unknown address of a local domain is
// ENOTFOUND, another domain ENOTLOCAL, a malformed one EINVALID.
func testResolveRecipient(t *testing.T, e *Env) {
	ctx := context.Background()
	alice := e.Enforced(t, "alice")
	domain := strings.SplitN(alice.Email, "@", 2)[1]
	for _, c := range []struct{ addr, tag string }{
		{alice.Email, ""},
		{strings.ToUpper(alice.Email), ""},
		{"alice+news@" + domain, "news"},
		{"Alice+Shop.2024@" + strings.ToUpper(domain), "shop.2024"},
	} {
		r, err := e.Svc.ResolveRecipient(ctx, c.addr)
		if err != nil || len(r.Members) != 1 || r.Members[0].ID != alice.ID || r.Tag != c.tag {
			t.Errorf("%s: %+v %v", c.addr, r, err)
		}
	}
	for _, c := range []struct{ addr, code string }{
		{"bob@" + domain, account.ENOTFOUND},
		{"bob+alice@" + domain, account.ENOTFOUND},
		{"+news@" + domain, account.ENOTFOUND},
		{"alice@elsewhere.example", account.ENOTLOCAL},
		{"not an address", account.EINVALID},
	} {
		if _, err := e.Svc.ResolveRecipient(ctx, c.addr); account.ErrorCode(err) != c.code {
			t.Errorf("%s: %v, want %s", c.addr, err, c.code)
		}
	}
}

// testResolveAlias: an alias reaches its members, each once and by address,
// with or without a plus tag, suspended ones included; a member deleted is
// deleted from its aliases; the alias and member of one lookup never mix.
func testResolveAlias(t *testing.T, e *Env) {
	ctx := context.Background()
	// Created out of address order, so that no other order passes for it.
	carol, bob, alice := e.Enforced(t, "carol"), e.Enforced(t, "bob"), e.Enforced(t, "alice")
	if _, _, err := e.Svc.AddAlias(ctx, "sales@enforced.test", []string{carol.Email, alice.Email, bob.Email, alice.Email}, Web); err != nil {
		t.Fatal(err)
	}
	if err := e.Svc.SetState(ctx, bob, account.StateSuspended, account.Actor{Via: "cli"}); err != nil {
		t.Fatal(err)
	}
	want := of(alice, bob, carol)
	for _, c := range []struct{ addr, tag string }{
		{"sales@enforced.test", ""},
		{"SALES@Enforced.test", ""},
		{"sales+q3@enforced.test", "q3"},
	} {
		r, err := e.Svc.ResolveRecipient(ctx, c.addr)
		if err != nil || emails(r.Members) != want || r.Tag != c.tag || r.Alias != "sales@enforced.test" || r.CatchAll {
			t.Errorf("%s: %+v %v", c.addr, r, err)
		}
	}
	// A member whose address has a plus is found before the plus is read.
	plus := e.Member(t, "bob+list@enforced.test")
	if r, err := e.Svc.ResolveRecipient(ctx, "bob+list@enforced.test"); err != nil || emails(r.Members) != of(plus) || r.Tag != "" || r.Alias != "" {
		t.Errorf("bob+list: %+v %v", r, err)
	}
	execSQL(t, e.DB, `DELETE FROM members WHERE id = ?`, carol.ID)
	if r, err := e.Svc.ResolveRecipient(ctx, "sales@enforced.test"); err != nil || emails(r.Members) != of(alice, bob) {
		t.Errorf("after carol's deletion: %+v %v", r, err)
	}
	if a, err := e.Svc.Alias(ctx, "sales@enforced.test"); err != nil || len(a.Targets) != 2 {
		t.Errorf("alias after carol's deletion: %+v %v", a, err)
	}
}
