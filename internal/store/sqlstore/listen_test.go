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
