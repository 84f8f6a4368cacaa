package auth_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/auth"
	"github.com/postern/postern/internal/events"
	"github.com/postern/postern/internal/store/sqlstore"
	"github.com/postern/postern/internal/store/storetest"
)

// clock is the real time plus an offset that tests move forward (pauses).
type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

type fixture struct {
	env   *storetest.Env
	db    *sqlstore.DB
	gw    *auth.Gateway
	bus   *events.Bus
	clock *clock
	logs  *storetest.SyncBuffer
}

// newFixture returns a Gateway over db with a millisecond throttle, so that
// tests of the account counter are not slowed by the per-IP penalty.
func newFixture(t *testing.T, db *sqlstore.DB, mod func(*auth.Config)) *fixture {
	t.Helper()
	f := &fixture{env: storetest.NewEnv(t, db), db: db, bus: events.NewBus(), clock: &clock{}, logs: &storetest.SyncBuffer{}}
	cfg := auth.Config{
		Service: f.env.Svc, Store: db, Bus: f.bus, Key: f.env.Key,
		ThrottleConfig: auth.ThrottleConfig{Base: time.Millisecond, Max: 2 * time.Millisecond},
		FlushInterval:  10 * time.Millisecond,
		Log:            slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer:     prometheus.NewRegistry(),
		Now:            f.clock.Now,
	}
	if mod != nil {
		mod(&cfg)
	}
	gw, err := auth.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Close() })
	f.gw = gw
	return f
}

func (f *fixture) try(user, secret, protocol, ip string) (auth.Login, error) {
	return f.gw.Authenticate(context.Background(), auth.Attempt{User: user, Secret: secret, Protocol: protocol,
		Mechanism: "PLAIN", RemoteIP: netip.MustParseAddr(ip), TLS: true})
}

// wantFail checks the one generic failure and returns its logged reason.
func wantFail(t *testing.T, err error, what string) string {
	t.Helper()
	if account.ErrorCode(err) != account.EUNAUTHORIZED || account.ErrorMessage(err) != account.ErrAuthFailed.Message {
		t.Fatalf("%s: got %v (code %q), want the generic failure", what, err, account.ErrorCode(err))
	}
	return account.FailureReason(err)
}

func TestPolicyMatrix(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		f := newFixture(t, db, nil)
		ctx := context.Background()
		enf := f.env.Enforced(t, "enf")
		_, enfApp := f.env.Create(t, enf, "Phone")
		on := f.env.Optional(t, "on", true)
		_, onApp := f.env.Create(t, on, "Phone")
		off := f.env.Optional(t, "off", true)
		_, offApp := f.env.Create(t, off, "Phone") // made while on, then the setting goes off
		if err := db.SetUseAppPasswords(ctx, off.ID, false, account.Effects{}); err != nil {
			t.Fatal(err)
		}
		susp := f.env.Enforced(t, "susp")
		_, suspApp := f.env.Create(t, susp, "Phone")
		suspOff := f.env.Optional(t, "suspoff", false)
		for _, m := range []account.Member{susp, suspOff} {
			if err := f.env.Svc.SetState(ctx, m, account.StateSuspended, account.Actor{Via: "cli"}); err != nil {
				t.Fatal(err)
			}
		}
		main := storetest.MainPassword
		cases := []struct {
			name, user, secret string
			ok                 bool
			appPassword        bool
			reason             string
		}{
			{"enforced main", enf.Email, main, false, false, "policy"},
			{"enforced app", enf.Email, enfApp, true, true, ""},
			{"enforced app grouped", "ENF@Enforced.Test", account.GroupAppPassword(enfApp), true, true, ""},
			{"enforced app plus one", enf.Email, enfApp + "a", false, false, "bad-password"},
			{"enforced wrong", enf.Email, "wrong password 1", false, false, "bad-password"},
			{"optional-on main", on.Email, main, false, false, "policy"},
			{"optional-on app", on.Email, onApp, true, true, ""},
			{"optional-on wrong", on.Email, "wrong password 2", false, false, "bad-password"},
			{"optional-off main", off.Email, main, true, false, ""},
			{"optional-off main upper-case user", strings.ToUpper(off.Email), main, true, false, ""},
			{"optional-off app", off.Email, offApp, false, false, "bad-password"},
			{"optional-off wrong", off.Email, "wrong password 3", false, false, "bad-password"},
			{"optional-off main plus one", off.Email, main + "!", false, false, "bad-password"},
			{"unknown user", "nobody@enforced.test", main, false, false, "unknown-user"},
			{"unknown domain", "nobody@nowhere.test", enfApp, false, false, "unknown-user"},
			{"malformed user", "not an address\r\n", main, false, false, "unknown-user"},
			{"suspended app", susp.Email, suspApp, false, false, "suspended"},
			{"suspended main (optional-off)", suspOff.Email, main, false, false, "suspended"},
			{"suspended wrong", susp.Email, "wrong password 4", false, false, "bad-password"},
		}
		for i, c := range cases {
			ip := fmt.Sprintf("192.0.2.%d", i+1)
			l, err := f.try(c.user, c.secret, auth.IMAP, ip)
			if !c.ok {
				if r := wantFail(t, err, c.name); r != c.reason {
					t.Errorf("%s: logged reason %q, want %q", c.name, r, c.reason)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
				continue
			}
			if l.Member.Email != strings.ToLower(c.user) || l.Credential.IsMain() == c.appPassword {
				t.Errorf("%s: login %+v", c.name, l)
			}
		}
		// Nothing secret in the logs or the login records.
		f.gw.Close()
		recs, err := db.LoginRecords(ctx, 0, true, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != len(cases) {
			t.Errorf("%d login records, want %d", len(recs), len(cases))
		}
		var dump strings.Builder
		for _, r := range recs {
			fmt.Fprintf(&dump, "%+v\n", r)
			if strings.ContainsAny(r.Username, "\r\n") {
				t.Errorf("record username %q keeps control characters", r.Username)
			}
		}
		for _, secret := range []string{main, enfApp, onApp, offApp, suspApp, account.GroupAppPassword(enfApp), "wrong password"} {
			if strings.Contains(f.logs.String(), secret) || strings.Contains(dump.String(), secret) {
				t.Errorf("a secret appears in the logs or login records")
			}
		}
		if !strings.Contains(f.logs.String(), "reason=policy") || !strings.Contains(f.logs.String(), "protocol=imap") {
			t.Errorf("attempts not logged with their reason:\n%s", f.logs.String())
		}
	})
}

func pausedMessages(t *testing.T, f *fixture, m account.Member) int {
	t.Helper()
	n := 0
	for _, msg := range f.env.Messages(t, m) {
		if msg.Kind == account.MsgAccountPaused {
			n++
		}
	}
	return n
}

func TestHundredFailuresPauseTheAccount(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		f := newFixture(t, db, nil)
		ctx := context.Background()
		m := f.env.Optional(t, "victim", false)
		protocols := []string{auth.IMAP, auth.POP3, auth.SMTP, auth.CalDAV}
		for i := range 100 {
			_, err := f.try(m.Email, fmt.Sprintf("guess %d", i), protocols[i%4], fmt.Sprintf("198.51.100.%d", i%200))
			wantFail(t, err, "guess")
		}
		st, err := db.AuthState(ctx, m.ID)
		if err != nil || !st.PausedUntil.After(f.clock.Now()) {
			t.Fatalf("after 100 failures: %+v %v, want paused", st, err)
		}
		_, err = f.try(m.Email, storetest.MainPassword, auth.IMAP, "203.0.113.1")
		if r := wantFail(t, err, "correct password while paused"); r != "paused" {
			t.Errorf("reason %q, want paused", r)
		}
		for i := range 5 {
			_, err := f.try(m.Email, fmt.Sprintf("more %d", i), auth.SMTP, "203.0.113.2")
			wantFail(t, err, "while paused")
		}
		if n := pausedMessages(t, f, m); n != 1 {
			t.Errorf("%d paused messages, want exactly 1", n)
		}
		var pausedEvents int
		for _, e := range f.env.Events(t, m) {
			if e.Kind == account.EventAccountPaused {
				pausedEvents++
			}
		}
		if pausedEvents != 1 {
			t.Errorf("%d paused events, want 1", pausedEvents)
		}
		// After the pause the right password works and resets the counter.
		f.clock.Advance(16 * time.Minute)
		if _, err := f.try(m.Email, storetest.MainPassword, auth.IMAP, "203.0.113.1"); err != nil {
			t.Fatalf("after the pause: %v", err)
		}
		if st, _ := db.AuthState(ctx, m.ID); st.Failures != 0 || !st.PausedUntil.IsZero() || len(st.Tags) != 0 {
			t.Errorf("not reset: %+v", st)
		}
	})
}

func TestStaleRetriesDoNotPause(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		f := newFixture(t, db, nil)
		ctx := context.Background()
		m := f.env.Optional(t, "phone", false)
		for i := range 500 {
			_, err := f.try(m.Email, "the old password", auth.IMAP, "198.51.100.7")
			if r := wantFail(t, err, "stale retry"); r != "bad-password" {
				t.Fatalf("retry %d: reason %q", i, r)
			}
		}
		st, err := db.AuthState(ctx, m.ID)
		if err != nil || st.Failures != 1 || !st.PausedUntil.IsZero() {
			t.Fatalf("after 500 identical retries: %+v %v, want 1 failure and no pause", st, err)
		}
		if n := pausedMessages(t, f, m); n != 0 {
			t.Errorf("%d paused messages", n)
		}
		if _, err := f.try(m.Email, storetest.MainPassword, auth.IMAP, "198.51.100.7"); err != nil {
			t.Fatalf("correct password: %v", err)
		}
		if st, _ := db.AuthState(ctx, m.ID); st.Failures != 0 {
			t.Errorf("success did not reset: %+v", st)
		}
	})
}

// TestSuccessResetsTheCounter: a correct main password ends the count of
// failures against it.
func TestSuccessResetsTheCounter(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		f := newFixture(t, db, func(c *auth.Config) { c.MaxFailures = 5 })
		ctx := context.Background()
		m := f.env.Optional(t, "reset", false)
		for round := range 3 {
			for i := range 4 {
				_, err := f.try(m.Email, fmt.Sprintf("round %d guess %d", round, i), auth.POP3, "192.0.2.99")
				wantFail(t, err, "guess")
			}
			if _, err := f.try(m.Email, storetest.MainPassword, auth.POP3, "192.0.2.99"); err != nil {
				t.Fatalf("round %d: correct main password: %v", round, err)
			}
		}
		if st, _ := db.AuthState(ctx, m.ID); st.Failures != 0 || !st.PausedUntil.IsZero() {
			t.Errorf("12 failures in runs of 4 separated by successes paused the account: %+v", st)
		}
	})
}

// TestAppPasswordsNeverPaused: guesses from 101 addresses pause the
// account, and its app passwords log in all the same, without delay, from
// those addresses too; their success does not reset the count of guesses
// (or holding one app password would let guessing at the main password go
// on forever), and the member gets one message.
func TestAppPasswordsNeverPaused(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		f := newFixture(t, db, nil)
		ctx := context.Background()
		m := f.env.Enforced(t, "target")
		_, app := f.env.Create(t, m, "Phone")
		for i := range 101 {
			_, err := f.try(m.Email, fmt.Sprintf("guess %d", i), auth.IMAP, fmt.Sprintf("198.51.%d.%d", 100+i/200, i%200))
			wantFail(t, err, "guess")
			if i == 50 {
				if _, err := f.try(m.Email, app, auth.SMTP, "203.0.113.5"); err != nil {
					t.Fatalf("app password during the attack: %v", err)
				}
			}
		}
		st, err := db.AuthState(ctx, m.ID)
		if err != nil || !st.PausedUntil.After(f.clock.Now()) {
			t.Fatalf("after 101 failures: %+v %v, want paused", st, err)
		}
		for _, ip := range []string{"198.51.100.7", "203.0.113.5", "2001:db8::1"} {
			if _, err := f.try(m.Email, app, auth.IMAP, ip); err != nil {
				t.Fatalf("app password from %s while paused: %v", ip, err)
			}
		}
		if st, _ := db.AuthState(ctx, m.ID); !st.PausedUntil.After(f.clock.Now()) {
			t.Errorf("an app password's success ended the pause: %+v", st)
		}
		if n := pausedMessages(t, f, m); n != 1 {
			t.Errorf("%d paused messages, want 1", n)
		}
	})
}

// TestOneMessagePerAttack: an attack that goes on pauses the account again
// and again but tells the member once a day, not once per pause; a day
// without failures forgets the count.
func TestOneMessagePerAttack(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		f := newFixture(t, db, func(c *auth.Config) { c.MaxFailures = 10 })
		ctx := context.Background()
		m := f.env.Enforced(t, "target")
		guess := 0
		pauseAgain := func() {
			t.Helper()
			for range 10 {
				guess++
				_, err := f.try(m.Email, fmt.Sprintf("guess %d", guess), auth.IMAP, fmt.Sprintf("198.51.100.%d", guess%200))
				wantFail(t, err, "guess")
			}
			if st, _ := db.AuthState(ctx, m.ID); !st.PausedUntil.After(f.clock.Now()) {
				t.Fatalf("after 10 more failures: %+v, want paused", st)
			}
			f.clock.Advance(16 * time.Minute)
		}
		for range 5 {
			pauseAgain()
		}
		if n := pausedMessages(t, f, m); n != 1 {
			t.Errorf("5 pauses in 80 minutes: %d messages, want 1", n)
		}
		f.clock.Advance(24 * time.Hour)
		pauseAgain()
		if n := pausedMessages(t, f, m); n != 2 {
			t.Errorf("a pause a day later: %d messages, want 2", n)
		}
		// Nine failures, a quiet day, one more: no pause.
		f.clock.Advance(time.Hour)
		for i := range 9 {
			_, err := f.try(m.Email, fmt.Sprintf("typo %d", i), auth.IMAP, "192.0.2.9")
			wantFail(t, err, "typo")
		}
		f.clock.Advance(25 * time.Hour)
		_, err := f.try(m.Email, "one more typo", auth.IMAP, "192.0.2.9")
		wantFail(t, err, "typo")
		if st, _ := db.AuthState(ctx, m.ID); !st.PausedUntil.Before(f.clock.Now()) || st.Failures != 1 {
			t.Errorf("after a quiet day: %+v, want 1 failure and no pause", st)
		}
	})
}

// TestCorrectAppPasswordNotThrottled: from an address whose failures put
// every further guess an hour away, the member's app passwords log in at
// once, 64 at a time; a main password from there waits its turn.
func TestCorrectAppPasswordNotThrottled(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		f := newFixture(t, db, func(c *auth.Config) {
			c.ThrottleConfig = auth.ThrottleConfig{Base: time.Hour, Max: time.Hour, Backlog: 24 * time.Hour}
		})
		m := f.env.Enforced(t, "office")
		_, app := f.env.Create(t, m, "Phone")
		bob := f.env.Optional(t, "bob", false)
		const ip = "192.0.2.44"
		for i := range 2 {
			_, err := f.try(m.Email, fmt.Sprintf("guess %d", i), auth.IMAP, ip)
			wantFail(t, err, "guess")
		}
		attempt := func(user, secret string, within time.Duration) error {
			ctx, cancel := context.WithTimeout(context.Background(), within)
			defer cancel()
			_, err := f.gw.Authenticate(ctx, auth.Attempt{User: user, Secret: secret, Protocol: auth.IMAP,
				Mechanism: "LOGIN", RemoteIP: netip.MustParseAddr(ip), TLS: true})
			return err
		}
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for range 64 {
			wg.Add(1)
			go func() { defer wg.Done(); errs <- attempt(m.Email, app, 20*time.Second) }()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("app password from a throttled address: %v", err)
			}
		}
		// The throttle is on for everything else: the main password (right
		// or wrong, it is not known before the hash) waits the hour.
		err := attempt(bob.Email, storetest.MainPassword, 300*time.Millisecond)
		if r := wantFail(t, err, "main password from a throttled address"); r != "canceled" {
			t.Errorf("reason %q, want canceled (waiting behind the throttle)", r)
		}
	})
}

func TestLoginRecordsAndLastUsed(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		old := auth.LoginRecord{At: time.Now().Add(-31 * 24 * time.Hour), Username: "old@enforced.test", Protocol: auth.IMAP,
			Mechanism: "LOGIN", IP: "192.0.2.1", Result: auth.ResultOK}
		if err := db.AddLoginRecords(ctx, []auth.LoginRecord{old}); err != nil {
			t.Fatal(err)
		}
		f := newFixture(t, db, nil)
		m := f.env.Enforced(t, "rec")
		p, app := f.env.Create(t, m, "Thunderbird")
		l, err := f.gw.Authenticate(ctx, auth.Attempt{User: m.Email, Secret: app, Protocol: auth.CalDAV, Mechanism: "BASIC",
			RemoteIP: netip.MustParseAddr("::ffff:192.0.2.33"), TLS: true})
		if err != nil || l.Credential.AppPasswordID != p.ID {
			t.Fatalf("login: %+v %v", l, err)
		}
		_, err = f.gw.Authenticate(ctx, auth.Attempt{User: "evil\r\nInjected: yes\x00" + strings.Repeat("x", 300), Secret: "nope",
			Protocol: auth.SMTP, Mechanism: "LOGIN", RemoteIP: netip.MustParseAddr("2001:db8::1")})
		wantFail(t, err, "hostile user name")

		var recs []auth.LoginRecord
		waitFor(t, "login records", func() bool {
			recs, err = db.LoginRecords(ctx, 0, true, 100)
			return err == nil && len(recs) == 2
		})
		byProto := map[string]auth.LoginRecord{}
		for _, r := range recs {
			byProto[r.Protocol] = r
		}
		ok := byProto[auth.CalDAV]
		if ok.MemberID != m.ID || ok.Username != m.Email || ok.Mechanism != "BASIC" || ok.IP != "192.0.2.33" || !ok.TLS ||
			ok.Result != auth.ResultOK || ok.AppPasswordID != p.ID || ok.Reason != "" {
			t.Errorf("success record %+v", ok)
		}
		bad := byProto[auth.SMTP]
		if bad.MemberID != 0 || bad.Result != auth.ResultFail || bad.Reason != "unknown-user" || bad.IP != "2001:db8::1" || bad.TLS ||
			strings.ContainsAny(bad.Username, "\r\n\x00") || len([]rune(bad.Username)) > 128 {
			t.Errorf("failure record %+v", bad)
		}
		waitFor(t, "last used", func() bool {
			list := f.env.AppPasswords(t, m)
			return len(list) == 1 && !list[0].LastUsedAt.IsZero()
		})
		got := f.env.AppPasswords(t, m)[0]
		if got.LastUsedProtocol != auth.CalDAV || got.LastUsedIP != "192.0.2.33" {
			t.Errorf("last used %+v", got)
		}
	})
}

func TestStoreDownFailsClosed(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		f := newFixture(t, db, nil)
		m := f.env.Optional(t, "down", false)
		db.SQL.Close()
		_, err := f.try(m.Email, storetest.MainPassword, auth.IMAP, "192.0.2.5")
		if account.ErrorCode(err) != account.EUNAVAILABLE {
			t.Fatalf("with the database closed: %v (code %q), want EUNAVAILABLE", err, account.ErrorCode(err))
		}
		if strings.Contains(err.Error(), storetest.MainPassword) || strings.Contains(account.ErrorMessage(err), "sql") {
			t.Errorf("error leaks: %v", err)
		}
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestThrottleIsApplied checks the wiring of the per-IP throttle: after two
// distinct failures the third attempt from the same address (here mapped to
// IPv6) waits; a client that hangs up meanwhile gets the generic failure
// without its secret being checked.
func TestThrottleIsApplied(t *testing.T) {
	db := storetest.OpenSQLite(t)
	f := newFixture(t, db, func(c *auth.Config) {
		c.ThrottleConfig = auth.ThrottleConfig{Base: time.Hour, Max: time.Hour, Backlog: 24 * time.Hour}
	})
	m := f.env.Optional(t, "slow", false)
	for i := range 2 {
		_, err := f.try(m.Email, fmt.Sprintf("wrong %d", i), auth.IMAP, "192.0.2.200")
		wantFail(t, err, "free failure")
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	_, err := f.gw.Authenticate(ctx, auth.Attempt{User: m.Email, Secret: storetest.MainPassword, Protocol: auth.IMAP,
		RemoteIP: netip.MustParseAddr("::ffff:192.0.2.200")})
	if r := wantFail(t, err, "throttled and abandoned"); r != "canceled" {
		t.Errorf("reason %q, want canceled", r)
	}
	// Another address is not held up.
	if _, err := f.try(m.Email, storetest.MainPassword, auth.IMAP, "192.0.2.201"); err != nil {
		t.Fatal(err)
	}
}
