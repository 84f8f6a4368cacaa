package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/store/sqlstore"
	"github.com/postern/postern/internal/store/storetest"
)

func drain(ch <-chan struct{}) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

func waitSignal(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatalf("%s: channel closed", what)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no signal", what)
	}
}

// TestListen checks that Listen wakes up after an event is committed: on
// PostgreSQL through LISTEN/NOTIFY from another connection pool (another
// node), on SQLite after this DB's own commits. The channel closes with ctx.
func TestListen(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		ctx, cancel := context.WithCancel(context.Background())
		ch := db.Listen(ctx)
		writer := db
		if db.Dialect == sqlstore.Postgres {
			other, err := sqlstore.Open(ctx, db.DSN)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			writer = other
			waitSignal(t, ch, "connected") // the listener signals once it listens
		}
		e := storetest.NewEnv(t, writer)
		m := e.Enforced(t, "listen")
		drain(ch)
		if err := writer.AddMessage(ctx, m.ID, account.Effects{Events: []account.Event{{Kind: account.EventSettingChanged, MemberID: m.ID}}}); err != nil {
			t.Fatal(err)
		}
		waitSignal(t, ch, "event committed")
		cancel()
		for range ch { // closed when ctx ends
		}
	})
}

// TestListenOwnCommitsAndFewNotifies checks, on PostgreSQL, that a
// process's own commits that write events wake its Listen channel without
// a NOTIFY's round trip, and that a burst of such commits sends at most one
// NOTIFY per notify gap, which still reaches another node.
func TestListenOwnCommitsAndFewNotifies(t *testing.T) {
	db := storetest.OpenPostgres(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	own := db.Listen(ctx)
	other := storetest.OpenOther(t, db)
	remote := other.Listen(ctx)
	waitSignal(t, own, "own listener connected")
	waitSignal(t, remote, "other listener connected")
	e := storetest.NewEnv(t, db)
	m := e.Enforced(t, "burst")
	ev := account.Effects{Events: []account.Event{{Kind: account.EventSettingChanged, MemberID: m.ID}}}

	drain(own)
	if err := db.AddMessage(ctx, m.ID, ev); err != nil {
		t.Fatal(err)
	}
	select {
	case <-own: // woken by the commit itself
	default:
		t.Fatal("own commit did not wake the process's own Listen channel at once")
	}
	waitSignal(t, remote, "first NOTIFY")

	sent0 := db.NotifiesSent()
	start := time.Now()
	const commits = 40
	for range commits {
		if err := db.AddMessage(ctx, m.ID, ev); err != nil {
			t.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	waitSignal(t, remote, "NOTIFY after the burst")
	time.Sleep(2 * sqlstore.NotifyGap())
	sent := db.NotifiesSent() - sent0
	if most := int64(elapsed/sqlstore.NotifyGap()) + 2; sent > most || sent >= commits {
		t.Fatalf("%d commits in %v sent %d NOTIFYs, want at most %d (one per %v)", commits, elapsed, sent, most, sqlstore.NotifyGap())
	}
}
