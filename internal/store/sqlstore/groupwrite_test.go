package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/internal/store/sqlstore"
	"github.com/postern/postern/internal/store/storetest"
)

// Statements queued on one mailbox while its row is locked elsewhere are
// written in one pipeline; when one of them fails, the pipeline writes
// nothing and each runs again alone: the failing one gets its own error,
// the others commit.
func TestGroupWriteFailureRunsEachAlone(t *testing.T) {
	db := storetest.OpenPostgres(t)
	ctx := context.Background()
	env := storetest.NewMailEnv(t, db)
	in := env.Box(t, env.NewMember(t), "INBOX")

	other, tx := lockedElsewhere(t, db, in.ID)

	// The first statement's pipeline waits for the lock; the next two
	// queue behind it and go together.
	type result struct {
		n   int64
		err error
	}
	first, bad, good := make(chan result, 1), make(chan result, 1), make(chan result, 1)
	write := func(ch chan result, query string) {
		var n int64
		err := db.WriteGroupedForTest(ctx, in.ID, query, []any{in.ID}, &n)
		ch <- result{n, err}
	}
	go write(first, `UPDATE mailboxes SET subscribed = subscribed WHERE id = $1 RETURNING 1`)
	waitForLock(t, other)
	p0, s0 := db.GroupWrites()
	go write(bad, `SELECT 1 / (id - id) FROM mailboxes WHERE id = $1`)
	time.Sleep(50 * time.Millisecond)
	go write(good, `UPDATE mailboxes SET subscribed = subscribed WHERE id = $1 RETURNING 2`)
	time.Sleep(50 * time.Millisecond)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if r := <-first; r.err != nil || r.n != 1 {
		t.Fatalf("first: %+v", r)
	}
	if r := <-bad; r.err == nil || !strings.Contains(r.err.Error(), "division by zero") {
		t.Fatalf("failing statement: %+v", r)
	}
	if r := <-good; r.err != nil || r.n != 2 {
		t.Fatalf("statement beside the failing one: %+v", r)
	}
	// The pipeline of the two, then each alone.
	if p, s := db.GroupWrites(); p-p0 != 3 || s-s0 != 4 {
		t.Fatalf("%d pipelines of %d statements after the first, want 3 of 4", p-p0, s-s0)
	}

	// A failed statement's transaction is ended, not left holding the
	// mailbox's lock on an idle connection of the pool.
	var n int64
	if err := db.WriteGroupedForTest(ctx, in.ID, `SELECT 1 / (id - id) FROM mailboxes WHERE id = $1`, []any{in.ID}, &n); err == nil {
		t.Fatal("a division by zero succeeded")
	}
	var aborted int
	if err := other.SQL.QueryRowContext(ctx, `SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'`).Scan(&aborted); err != nil || aborted != 0 {
		t.Fatalf("%d sessions left in a transaction, %v", aborted, err)
	}
	if _, err := other.SQL.ExecContext(ctx, `SELECT 1 FROM mailboxes WHERE id = $1 FOR UPDATE NOWAIT`, in.ID); err != nil {
		t.Fatalf("the mailbox's lock after a failed group write: %v", err)
	}

	// A statement that returns no row answers sql.ErrNoRows.
	if err := db.WriteGroupedForTest(ctx, in.ID, `SELECT 1 FROM mailboxes WHERE id = $1 AND id < 0`, []any{in.ID}, &n); !errors.Is(err, sql.ErrNoRows) {
		t.Fatalf("no row: %v", err)
	}
}

// waitForLock returns once a session of the database waits for a lock.
func waitForLock(t *testing.T, other *sqlstore.DB) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		var waiting int
		if err := other.SQL.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("nothing ever waited for the lock")
		}
	}
}
