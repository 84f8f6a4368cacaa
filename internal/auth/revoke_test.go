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

// TestRevocationFromAnotherProcess runs the gateway and its tailer on one
// *sqlstore.DB and makes the changes through a second, separately opened one
// on the same database: another process (SQLite file) or node (PostgreSQL)
// in effect. The live sessions that each change revokes are closed.
func TestRevocationFromAnotherProcess(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		f := newFixture(t, db, nil)
		tl := &events.Tailer{Store: db, Bus: f.bus, Wake: db.Listen(ctx)}
		go tl.Run(ctx)
		<-tl.Ready()

		other, err := sqlstore.Open(ctx, db.DSN)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		admin := storetest.NewEnv(t, other)
		admin.Svc.Config.Key = f.env.Key // one server secret for both processes

		m := f.env.Enforced(t, "live")
		p1, app1 := f.env.Create(t, m, "Phone")
		_, app2 := f.env.Create(t, m, "Laptop")
		opt := f.env.Optional(t, "mainpw", false)

		track := func(user, secret, protocol string) chan struct{} {
			t.Helper()
			l, err := f.gw.Authenticate(ctx, auth.Attempt{User: user, Secret: secret, Protocol: protocol,
				Mechanism: "PLAIN", RemoteIP: netip.MustParseAddr("127.0.0.1"), TLS: true})
			if err != nil {
				t.Fatalf("login %s: %v", user, err)
			}
			closed := make(chan struct{})
			done := f.gw.Track(l, protocol, func() { close(closed) })
			t.Cleanup(done)
			return closed
		}
		waitClosed := func(what string, ch chan struct{}) {
			t.Helper()
			start := time.Now()
			select {
			case <-ch:
				t.Logf("%s: closed after %v", what, time.Since(start))
			case <-time.After(10 * time.Second):
				t.Fatalf("%s: session not closed", what)
			}
		}
		stillOpen := func(what string, ch chan struct{}) {
			t.Helper()
			select {
			case <-ch:
				t.Errorf("%s: closed, should stay open", what)
			default:
			}
		}

		phone := track(m.Email, app1, auth.IMAP)
		laptop := track(m.Email, app2, auth.POP3)
		if err := admin.Svc.DeleteAppPassword(ctx, m, p1.ID, account.Actor{Via: "cli"}); err != nil {
			t.Fatal(err)
		}
		waitClosed("app password deleted", phone)
		stillOpen("other app password", laptop)

		mainSess := track(opt.Email, storetest.MainPassword, auth.SMTP)
		if err := admin.Svc.ChangePassword(ctx, opt, "", "a brand new password", true, false, account.Actor{Via: "cli"}); err != nil {
			t.Fatal(err)
		}
		waitClosed("main password changed", mainSess)

		if err := admin.Svc.SetState(ctx, m, account.StateSuspended, account.Actor{Via: "cli"}); err != nil {
			t.Fatal(err)
		}
		waitClosed("member suspended", laptop)
	})
}

// TestTrackAfterRevocation covers the race between a login checked just
// before a revocation and tracked just after the tailer published it.
func TestTrackAfterRevocation(t *testing.T) {
	db := storetest.OpenSQLite(t)
	f := newFixture(t, db, nil)
	m := f.env.Enforced(t, "race")
	p, app := f.env.Create(t, m, "Phone")
	l, err := f.try(m.Email, app, auth.IMAP, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	f.bus.Publish(account.Event{Kind: account.EventAppPasswordDeleted, MemberID: m.ID, AppPasswordID: p.ID})
	closed := make(chan struct{})
	defer f.gw.Track(l, auth.IMAP, func() { close(closed) })()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("a session revoked between login and Track stayed open")
	}
}
