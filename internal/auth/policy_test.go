package auth_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/auth"
	"github.com/postern/postern/internal/events"
	"github.com/postern/postern/internal/store/sqlstore"
	"github.com/postern/postern/internal/store/storetest"
)

// otherProcess opens a second store on db's database, as another process
// (SQLite) or node (PostgreSQL) would, with the same server secret.
func otherProcess(t *testing.T, f *fixture) *storetest.Env {
	t.Helper()
	other, err := sqlstore.Open(context.Background(), f.db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	e := storetest.NewEnv(t, other)
	e.Svc.Config.Key = f.env.Key
	return e
}

func setPolicy(t *testing.T, e *storetest.Env, domain string, mod func(*account.SecurityPolicy)) {
	t.Helper()
	ctx := context.Background()
	d, err := e.Svc.Domain(ctx, domain)
	if err != nil {
		t.Fatal(err)
	}
	p := d.Security
	mod(&p)
	if _, err := e.Svc.SetSecurityPolicy(ctx, domain, p, account.Actor{Via: "cli"}); err != nil {
		t.Fatal(err)
	}
}

// TestDomainPolicyRefusals: each rule of a domain's security policy
// refuses the logins it should with the one generic failure (the reason
// only in the log), from the next login on, although the change is made by
// another process and the gateway's store caches credentials.
func TestDomainPolicyRefusals(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		db.SetCredentialCache(1000) // no effect on PostgreSQL
		f := newFixture(t, db, nil)
		admin := otherProcess(t, f)
		enf := f.env.Enforced(t, "enf")
		_, app := f.env.Create(t, enf, "Phone")
		opt := f.env.Optional(t, "opt", false)
		main := storetest.MainPassword
		ok := func(user, secret, protocol, ip string) {
			t.Helper()
			if _, err := f.try(user, secret, protocol, ip); err != nil {
				t.Fatalf("%s over %s from %s: %v", user, protocol, ip, err)
			}
		}
		refused := func(user, secret, protocol, ip, reason string) {
			t.Helper()
			_, err := f.try(user, secret, protocol, ip)
			if got := wantFail(t, err, user+" over "+protocol+" from "+ip); got != reason {
				t.Fatalf("%s over %s from %s: reason %q, want %q", user, protocol, ip, got, reason)
			}
		}
		// Cached before the changes.
		ok(enf.Email, app, auth.IMAP, "127.0.0.1")
		ok(opt.Email, main, auth.POP3, "127.0.0.1")

		setPolicy(t, admin, "enforced.test", func(p *account.SecurityPolicy) { p.Protocols = []string{auth.IMAP, auth.SMTP} })
		ok(enf.Email, app, auth.IMAP, "127.0.0.1")
		refused(enf.Email, app, auth.POP3, "127.0.0.1", "policy-protocol")
		refused(enf.Email, app, auth.CalDAV, "127.0.0.1", "policy-protocol")
		refused(enf.Email, "wrong password 1", auth.POP3, "127.0.0.1", "bad-password") // the credential first

		setPolicy(t, admin, "enforced.test", func(p *account.SecurityPolicy) {
			p.Protocols = nil
			p.Networks = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}
		})
		ok(enf.Email, app, auth.POP3, "10.1.2.3")
		ok(enf.Email, app, auth.CardDAV, "2001:db8::5")
		ok(enf.Email, app, auth.IMAP, "::ffff:10.9.9.9")
		refused(enf.Email, app, auth.IMAP, "127.0.0.1", "policy-address")
		refused(enf.Email, app, auth.SMTP, "192.0.2.1", "policy-address")

		setPolicy(t, admin, "enforced.test", func(p *account.SecurityPolicy) { p.Networks = nil })
		ok(enf.Email, app, auth.IMAP, "127.0.0.1")

		// The setting forced on: an optional domain's member without app
		// passwords can no longer log in with the main password.
		setPolicy(t, admin, "optional.test", func(p *account.SecurityPolicy) { p.ForceAppPasswords = true })
		refused(opt.Email, main, auth.POP3, "127.0.0.1", "policy")
		setPolicy(t, admin, "optional.test", func(p *account.SecurityPolicy) { p.ForceAppPasswords = false })
		ok(opt.Email, main, auth.POP3, "127.0.0.1")

		// A refused login does not count toward the account's pause.
		setPolicy(t, admin, "optional.test", func(p *account.SecurityPolicy) { p.Protocols = []string{} })
		for range 3 {
			refused(opt.Email, main, auth.IMAP, "127.0.0.1", "policy-protocol")
		}
		st, err := db.AuthState(context.Background(), opt.ID)
		if err != nil || st.Failures != 0 {
			t.Fatalf("failures after policy refusals: %+v, %v", st, err)
		}
	})
}

// TestPolicyChangeClosesSessions: a policy change made by another process
// or node closes the live sessions the new policy refuses, and only those.
func TestPolicyChangeClosesSessions(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		f := newFixture(t, db, nil)
		tl := &events.Tailer{Store: db, Bus: f.bus, Wake: db.Listen(ctx)}
		go tl.Run(ctx)
		<-tl.Ready()
		admin := otherProcess(t, f)

		enf := f.env.Enforced(t, "live")
		_, app := f.env.Create(t, enf, "Phone")
		opt := f.env.Optional(t, "mainpw", false)
		track := func(user, secret, protocol, ip string) chan struct{} {
			t.Helper()
			l, err := f.gw.Authenticate(ctx, auth.Attempt{User: user, Secret: secret, Protocol: protocol,
				Mechanism: "PLAIN", RemoteIP: netip.MustParseAddr(ip), TLS: true})
			if err != nil {
				t.Fatalf("login %s: %v", user, err)
			}
			closed := make(chan struct{})
			t.Cleanup(f.gw.Track(l, protocol, func() { close(closed) }))
			return closed
		}
		waitClosed := func(what string, ch chan struct{}) {
			t.Helper()
			select {
			case <-ch:
			case <-time.After(10 * time.Second):
				t.Fatalf("%s: session not closed", what)
			}
		}
		isOpen := func(ch chan struct{}) bool {
			select {
			case <-ch:
				return false
			default:
				return true
			}
		}
		imap := track(enf.Email, app, auth.IMAP, "127.0.0.1")
		pop := track(enf.Email, app, auth.POP3, "127.0.0.1")
		dav := track(enf.Email, app, auth.CalDAV, "10.0.0.7")
		mainSess := track(opt.Email, storetest.MainPassword, auth.IMAP, "127.0.0.1")

		setPolicy(t, admin, "enforced.test", func(p *account.SecurityPolicy) { p.Protocols = []string{auth.POP3, auth.CalDAV} })
		waitClosed("IMAP turned off", imap)
		setPolicy(t, admin, "enforced.test", func(p *account.SecurityPolicy) {
			p.Networks = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
		})
		waitClosed("address outside the allowlist", pop)
		setPolicy(t, admin, "optional.test", func(p *account.SecurityPolicy) { p.ForceAppPasswords = true })
		waitClosed("setting forced on", mainSess)
		// The sessions each change allowed stayed. (The tailer publishes in
		// order: the last change's sessions were checked after the others'.)
		if !isOpen(dav) {
			t.Error("a session every change allowed was closed")
		}
	})
}

// TestTrackAfterPolicyChange: a login checked before its domain's policy
// changed, tracked after the change was published, is closed at once (the
// app reconnects under the new policy); another domain's is not.
func TestTrackAfterPolicyChange(t *testing.T) {
	db := storetest.OpenSQLite(t)
	f := newFixture(t, db, nil)
	m := f.env.Enforced(t, "race")
	_, app := f.env.Create(t, m, "Phone")
	other := f.env.Optional(t, "other", false)
	l, err := f.try(m.Email, app, auth.IMAP, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	lo, err := f.try(other.Email, storetest.MainPassword, auth.IMAP, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	f.bus.Publish(account.Event{Kind: account.EventPolicyChanged, DomainID: m.DomainID})
	closed, otherClosed := make(chan struct{}), make(chan struct{})
	defer f.gw.Track(lo, auth.IMAP, func() { close(otherClosed) })()
	defer f.gw.Track(l, auth.IMAP, func() { close(closed) })()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("a session checked before the policy change and tracked after it stayed open")
	}
	select {
	case <-otherClosed:
		t.Fatal("another domain's session was closed")
	default:
	}
}
