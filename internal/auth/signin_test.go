package auth_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/auth"
	"github.com/postern/postern/internal/store/sqlstore"
	"github.com/postern/postern/internal/store/storetest"
)

func (f *fixture) signIn(user, pw, ip string) (account.Member, error) {
	return f.gw.SignIn(context.Background(), auth.Attempt{User: user, Secret: pw, Mechanism: "API",
		RemoteIP: netip.MustParseAddr(ip), TLS: true})
}

// waitRecords waits until there are n login records of protocol for user
// as sent, in any case (throttled attempts have no member id: no lookup was
// made for them).
func waitRecords(t *testing.T, db *sqlstore.DB, user, protocol string, n int) []auth.LoginRecord {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		recs, err := db.LoginRecords(context.Background(), 0, true, 1000)
		if err != nil {
			t.Fatal(err)
		}
		var out []auth.LoginRecord
		for _, r := range recs {
			if r.Protocol == protocol && strings.EqualFold(r.Username, user) {
				out = append(out, r)
			}
		}
		if len(out) >= n || time.Now().After(deadline) {
			if len(out) != n {
				t.Fatalf("%d %s login records, want %d: %+v", len(out), protocol, n, out)
			}
			return out
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSignInMainPasswordOnly: the web takes the main password, never an app
// password, whatever the policy; failures are the one generic failure.
func TestSignInMainPasswordOnly(t *testing.T) {
	db := storetest.OpenSQLite(t)
	f := newFixture(t, db, nil)
	enf := f.env.Enforced(t, "web")
	_, app := f.env.Create(t, enf, "Phone")
	opt := f.env.Optional(t, "webopt", false)
	for _, m := range []account.Member{enf, opt} {
		got, err := f.signIn(strings.ToUpper(m.Email), storetest.MainPassword, "192.0.2.10")
		if err != nil || got.ID != m.ID {
			t.Fatalf("main password of %s: %+v %v", m.Email, got, err)
		}
	}
	for _, c := range []struct{ user, pw, reason string }{
		{enf.Email, app, "bad-password"},
		{enf.Email, storetest.MainPassword + "x", "bad-password"},
		{"nobody@enforced.test", storetest.MainPassword, "unknown-user"},
		{"not an address", storetest.MainPassword, "unknown-user"},
	} {
		_, err := f.signIn(c.user, c.pw, "192.0.2.11")
		if r := wantFail(t, err, c.user); r != c.reason {
			t.Errorf("%s: reason %q, want %q", c.user, r, c.reason)
		}
	}
	if err := f.env.Svc.SetState(context.Background(), opt, account.StateSuspended, account.Actor{Via: "cli"}); err != nil {
		t.Fatal(err)
	}
	_, err := f.signIn(opt.Email, storetest.MainPassword, "192.0.2.12")
	if r := wantFail(t, err, "suspended"); r != "suspended" {
		t.Errorf("suspended member: reason %q", r)
	}
	recs := waitRecords(t, db, enf.Email, auth.Web, 3)
	for _, r := range recs {
		if r.Mechanism != "API" || !r.TLS || r.AppPasswordID != "" {
			t.Errorf("record %+v", r)
		}
	}
	if strings.Contains(f.logs.String(), app) || strings.Contains(f.logs.String(), storetest.MainPassword) {
		t.Error("a secret reached the log")
	}
}

// TestWebFailuresPauseThirdPartyLogins: 100 failures spread over the web and
// the protocols pause third-party logins with the main password, while the
// member can still sign in to the web, which leaves the pause in place.
func TestWebFailuresPauseThirdPartyLogins(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		f := newFixture(t, db, func(c *auth.Config) {
			c.WebAccountThrottle = auth.ThrottleConfig{Base: time.Millisecond, Max: 2 * time.Millisecond}
		})
		ctx := context.Background()
		// Apps log in with the main password (the setting is off): that is
		// what a pause holds back. App passwords never are (TestAppPasswordsNeverPaused).
		m := f.env.Optional(t, "mixed", false)
		app := storetest.MainPassword
		protocols := []string{auth.Web, auth.IMAP, auth.SMTP, auth.POP3, auth.CalDAV}
		for i := range 100 {
			ip := fmt.Sprintf("198.51.100.%d", i%200)
			var err error
			if p := protocols[i%5]; p == auth.Web {
				_, err = f.signIn(m.Email, fmt.Sprintf("web guess %d", i), ip)
			} else {
				_, err = f.try(m.Email, fmt.Sprintf("guess %d", i), p, ip)
			}
			wantFail(t, err, "guess")
			if i == 98 {
				if _, err := f.try(m.Email, app, auth.IMAP, "203.0.113.1"); err != nil {
					t.Fatalf("99 failures must not pause yet: %v", err)
				}
				// That success reset the counter: start the 100 again.
				if st, _ := db.AuthState(ctx, m.ID); st.Failures != 0 {
					t.Fatalf("not reset: %+v", st)
				}
			}
		}
		st, _ := db.AuthState(ctx, m.ID)
		if st.PausedUntil.After(f.clock.Now()) {
			t.Fatalf("paused after 1 failure since the reset: %+v", st)
		}
		for i := range 99 {
			var err error
			if p := protocols[i%5]; p == auth.Web {
				_, err = f.signIn(m.Email, fmt.Sprintf("web again %d", i), "192.0.2.50")
			} else {
				_, err = f.try(m.Email, fmt.Sprintf("again %d", i), p, "192.0.2.51")
			}
			wantFail(t, err, "guess")
		}
		st, err := db.AuthState(ctx, m.ID)
		if err != nil || !st.PausedUntil.After(f.clock.Now()) {
			t.Fatalf("after 100 failures: %+v %v, want paused", st, err)
		}
		_, err = f.try(m.Email, app, auth.IMAP, "203.0.113.1")
		if r := wantFail(t, err, "main password while paused"); r != "paused" {
			t.Errorf("reason %q, want paused", r)
		}
		// The web is not paused: the member signs in to change the password.
		if got, err := f.signIn(m.Email, storetest.MainPassword, "203.0.113.9"); err != nil || got.ID != m.ID {
			t.Fatalf("web sign-in while paused: %v", err)
		}
		// ... and the pause holds until its time.
		_, err = f.try(m.Email, app, auth.SMTP, "203.0.113.1")
		if r := wantFail(t, err, "main password after a web sign-in"); r != "paused" {
			t.Errorf("reason %q, want paused", r)
		}
		if n := pausedMessages(t, f, m); n != 1 {
			t.Errorf("%d paused messages, want 1", n)
		}
		f.clock.Advance(16 * time.Minute)
		if _, err := f.try(m.Email, app, auth.IMAP, "203.0.113.1"); err != nil {
			t.Fatalf("after the pause: %v", err)
		}
		waitRecords(t, db, m.Email, auth.Web, 20+20+1)
	})
}

// TestWebSuccessResetsTheCounter: a correct web sign-in resets the account's
// counter, as a correct third-party login does.
func TestWebSuccessResetsTheCounter(t *testing.T) {
	db := storetest.OpenSQLite(t)
	f := newFixture(t, db, nil)
	m := f.env.Optional(t, "reset", false)
	for i := range 3 {
		_, err := f.try(m.Email, fmt.Sprintf("guess %d", i), auth.IMAP, "192.0.2.30")
		wantFail(t, err, "guess")
	}
	if st, _ := db.AuthState(context.Background(), m.ID); st.Failures != 3 {
		t.Fatalf("counter %d, want 3", st.Failures)
	}
	if _, err := f.signIn(m.Email, storetest.MainPassword, "192.0.2.31"); err != nil {
		t.Fatal(err)
	}
	if st, _ := db.AuthState(context.Background(), m.ID); st.Failures != 0 || len(st.Tags) != 0 {
		t.Fatalf("not reset: %+v", st)
	}
}

// TestWebAccountThrottle: after the free failures against one address, a
// queue longer than the backlog is refused at once, from any address, even
// with the right password; unknown addresses queue alike; a quiet hour
// forgets. The per-IP throttle refuses alike across accounts.
func TestWebAccountThrottle(t *testing.T) {
	db := storetest.OpenSQLite(t)
	slow := auth.ThrottleConfig{Free: 1, Base: time.Hour, Max: time.Hour, Backlog: time.Minute}
	f := newFixture(t, db, func(c *auth.Config) { c.WebAccountThrottle = slow })
	m := f.env.Optional(t, "slow", false)
	for _, user := range []string{m.Email, "ghost@optional.test"} {
		for i := range 2 {
			_, err := f.signIn(user, fmt.Sprintf("guess %d", i), fmt.Sprintf("192.0.2.%d", 40+i))
			wantFail(t, err, "free failure")
		}
		_, err := f.signIn(user, storetest.MainPassword, "192.0.2.99")
		if account.ErrorCode(err) != auth.CodeThrottled {
			t.Fatalf("%s after 2 failures: %v, want %s", user, err, auth.CodeThrottled)
		}
	}
	// Third-party logins have no per-account queue: only the counter.
	if _, err := f.try(m.Email, storetest.MainPassword, auth.IMAP, "192.0.2.99"); err != nil {
		t.Fatalf("IMAP: %v", err)
	}
	f.clock.Advance(61 * time.Minute)
	if _, err := f.signIn(m.Email, storetest.MainPassword, "192.0.2.99"); err != nil {
		t.Fatalf("after a quiet hour: %v", err)
	}

	ipSlow := newFixture(t, db, func(c *auth.Config) { c.ThrottleConfig = slow })
	for i := range 2 {
		_, err := ipSlow.signIn(fmt.Sprintf("u%d@optional.test", i), "wrong password", "198.51.100.77")
		wantFail(t, err, "free failure")
	}
	if _, err := ipSlow.signIn(m.Email, storetest.MainPassword, "198.51.100.77"); account.ErrorCode(err) != auth.CodeThrottled {
		t.Fatalf("third attempt from one address: %v, want %s", err, auth.CodeThrottled)
	}
}

// TestWebFailuresSharedBetweenNodes: on PostgreSQL, web failures on one node
// raise the per-IP delay and the per-account web schedule that a second
// node, with its own connection pool, applies; both count on the account.
func TestWebFailuresSharedBetweenNodes(t *testing.T) {
	db := storetest.OpenPostgres(t)
	other, err := sqlstore.Open(context.Background(), db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	ipCfg := auth.ThrottleConfig{Free: 1, Base: 10 * time.Minute, Max: 10 * time.Minute, Backlog: time.Hour}
	acctCfg := auth.ThrottleConfig{Free: 1, Base: time.Hour, Max: time.Hour, Backlog: time.Minute}
	a := newFixture(t, db, func(c *auth.Config) {
		c.Throttle = auth.NewSharedThrottle(db, ipCfg, c.Log)
		c.WebAccountThrottle = acctCfg
	})
	thrB := auth.NewSharedThrottle(other, ipCfg, slog.New(slog.DiscardHandler))
	b := newFixture(t, other, func(c *auth.Config) {
		c.Service, c.Key = a.env.Svc, a.env.Key // one deployment: one secret
		c.Throttle = thrB
		c.WebAccountThrottle = acctCfg
	})
	m := a.env.Optional(t, "nodes", false)

	ip := netip.MustParseAddr("192.0.2.200")
	for i := range 2 {
		_, err := a.signIn(m.Email, fmt.Sprintf("guess %d", i), ip.String())
		wantFail(t, err, "node A")
	}
	// Node B never saw a failure from that address, yet delays it.
	wait, ok := thrB.Begin(ip, time.Now())
	thrB.End(ip, auth.Abandoned, auth.Tags{}, time.Now())
	if !ok || wait < 9*time.Minute {
		t.Fatalf("node B's delay after two web failures on node A: %v %v, want about 10 min", wait, ok)
	}
	// Node B refuses the account's next web attempt from a clean address.
	_, err = b.signIn(m.Email, storetest.MainPassword, "203.0.113.200")
	if account.ErrorCode(err) != auth.CodeThrottled {
		t.Fatalf("node B after two failures on node A: %v, want %s", err, auth.CodeThrottled)
	}
	if st, err := other.AuthState(context.Background(), m.ID); err != nil || st.Failures != 2 {
		t.Fatalf("account counter on node B: %+v %v, want 2", st, err)
	}
	recs := waitRecords(t, other, m.Email, auth.Web, 3)
	var fails, throttled int
	for _, r := range recs {
		switch {
		case r.Result == auth.ResultFail && r.Reason == "bad-password":
			fails++
		case r.Result == auth.ResultFail && r.Reason == "throttled":
			throttled++
		}
	}
	if fails != 2 || throttled != 1 {
		t.Errorf("records %+v", recs)
	}
}
