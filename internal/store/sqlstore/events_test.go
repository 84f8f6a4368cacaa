package sqlstore_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/store/sqlstore"
	"github.com/postern/postern/internal/store/storetest"
)

// TestEventsOpenTransaction: on PostgreSQL an event written by a transaction
// that is still open, whose id is below a later transaction's that has
// committed, is not skipped by a reader that goes on reading meanwhile. The
// later event waits until the earlier transaction ends; then both are read.
// And a transaction held open too long is named in a warning.
func TestEventsOpenTransaction(t *testing.T) {
	db := storetest.OpenPostgres(t)
	ctx := context.Background()
	e := storetest.NewEnv(t, db)
	m := e.Enforced(t, "alice")
	if err := db.AwaitEvents(ctx); err != nil {
		t.Fatal(err)
	}
	pos, err := db.LastEventPos(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	read := func() {
		t.Helper()
		evs, err := db.EventsAfter(ctx, pos, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			seen[ev.MailboxID] = true
			pos = ev.Pos()
		}
	}

	early, err := db.SQL.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer early.Rollback()
	if _, err := early.ExecContext(ctx, `INSERT INTO events (kind, member_id, mailbox_id, created_at) VALUES ($1, $2, 1, 0)`,
		string(account.EventMailboxChanged), m.ID); err != nil {
		t.Fatal(err)
	}
	if err := db.AddMessage(ctx, m.ID, account.Effects{Events: []account.Event{{Kind: account.EventMailboxChanged, MemberID: m.ID, MailboxID: 2}}}); err != nil {
		t.Fatal(err)
	}
	read()
	if seen[2] {
		t.Fatal("the later event was read while an earlier transaction was open")
	}

	var logs bytes.Buffer
	var mu sync.Mutex
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil)))
	defer slog.SetDefault(prev)
	defer sqlstore.SetHorizonTimes(0, 200*time.Millisecond)()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		read()
		mu.Lock()
		warned := strings.Contains(logs.String(), "holds back events")
		mu.Unlock()
		if warned {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no warning about the open transaction")
		}
	}
	if seen[2] {
		t.Fatal("the later event was read while an earlier transaction was open")
	}

	if err := early.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := db.AwaitEvents(ctx); err != nil {
		t.Fatal(err)
	}
	read()
	if !seen[1] || !seen[2] {
		t.Fatalf("read %v, want events 1 and 2", seen)
	}
	mu.Lock()
	defer mu.Unlock()
	if out := logs.String(); !strings.Contains(out, "pid=") || !strings.Contains(out, "idle in transaction") {
		t.Errorf("the warning does not name the session: %s", out)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
