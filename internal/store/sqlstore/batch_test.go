package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// openBatchDB opens a SQLite database with a scratch table.
func openBatchDB(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "batch.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.SQL.Exec(`CREATE TABLE batch_t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	return db
}

// queued starts one db.tx per fn while the test holds the write lock, and
// lets the lock go once all of them wait in the queue, so that they commit
// as one batch, after calling before (if not nil). It returns each one's
// error.
func queued(t *testing.T, db *DB, ctxs []context.Context, fns []func(*sql.Tx) error, before func()) []error {
	t.Helper()
	db.writer <- struct{}{}
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = db.tx(ctxs[i], fn)
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		db.txq.mu.Lock()
		n := len(db.txq.pending)
		db.txq.mu.Unlock()
		if n == len(fns) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d transactions queued", n, len(fns))
		}
		time.Sleep(time.Millisecond)
	}
	if before != nil {
		before()
	}
	db.releaseWriter()
	wg.Wait()
	return errs
}

func background(n int) []context.Context {
	ctxs := make([]context.Context, n)
	for i := range ctxs {
		ctxs[i] = context.Background()
	}
	return ctxs
}

func rowsOf(t *testing.T, db *DB) map[string]int {
	t.Helper()
	rows, err := db.SQL.Query(`SELECT k, v FROM batch_t`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var k string
		var v int
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		out[k] = v
	}
	return out
}

// Transactions queued behind the write lock commit in one SQLite
// transaction, in queue order; one that fails is rolled back to its
// savepoint and fails alone: its rows are not written, its after-commit
// functions do not run, the others' do, after the commit.
func TestQueuedTransactionsCommitTogether(t *testing.T) {
	db := openBatchDB(t)
	ctx := context.Background()
	var mu sync.Mutex
	seen := map[*sql.Tx]bool{}
	var hooks []string
	insert := func(k string, v int, fail error) func(*sql.Tx) error {
		return func(tx *sql.Tx) error {
			mu.Lock()
			seen[tx] = true
			mu.Unlock()
			if _, err := tx.ExecContext(ctx, `INSERT INTO batch_t (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = v + excluded.v`, k, v); err != nil {
				return err
			}
			db.afterCommit(tx, func() {
				var n int
				// After the commit: another connection sees the row.
				if err := db.SQL.QueryRow(`SELECT v FROM batch_t WHERE k = ?`, k).Scan(&n); err != nil {
					t.Errorf("hook of %s before the commit: %v", k, err)
				}
				mu.Lock()
				hooks = append(hooks, k)
				mu.Unlock()
			})
			return fail
		}
	}
	boom := errors.New("boom")
	fns := []func(*sql.Tx) error{
		insert("a", 1, nil),
		insert("b", 1, boom),
		insert("a", 10, nil),
		insert("c", 1, nil),
		// A statement error leaves the transaction open: rolled back to
		// the savepoint, this one's first insert goes too.
		func(tx *sql.Tx) error {
			if err := insert("d", 1, nil)(tx); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO batch_t (k, v) VALUES ('e', NULL)`)
			return err
		},
	}
	errs := queued(t, db, background(len(fns)), fns, nil)
	for i, err := range errs {
		switch i {
		case 1:
			if !errors.Is(err, boom) {
				t.Errorf("transaction %d: %v, want boom", i, err)
			}
		case 4:
			if err == nil {
				t.Errorf("transaction %d: no error for a NULL in a NOT NULL column", i)
			}
		default:
			if err != nil {
				t.Errorf("transaction %d: %v", i, err)
			}
		}
	}
	if got := rowsOf(t, db); fmt.Sprint(got) != fmt.Sprint(map[string]int{"a": 11, "c": 1}) {
		t.Errorf("rows %v, want a=11 c=1", got)
	}
	if len(seen) != 1 {
		t.Errorf("%d transactions, want the five in one", len(seen))
	}
	if fmt.Sprint(hooks) != "[a a c]" && fmt.Sprint(hooks) != "[a c a]" {
		t.Errorf("after-commit functions ran for %v, want a, a and c", hooks)
	}
}

// A transaction whose caller gave up while it waited in the queue is not
// run; one whose
// transaction fails in a way that ends the shared transaction (here, an
// error the retries treat as the lock held by another process) makes every
// other of the batch run again alone, so they still commit.
func TestQueuedTransactionsCancelledAndFallback(t *testing.T) {
	db := openBatchDB(t)
	ctx := context.Background()
	cancelled, cancel := context.WithCancel(ctx)
	ran := map[string]int{}
	var mu sync.Mutex
	insert := func(k string, fail error) func(*sql.Tx) error {
		return func(tx *sql.Tx) error {
			mu.Lock()
			ran[k]++
			mu.Unlock()
			if _, err := tx.ExecContext(ctx, `INSERT INTO batch_t (k, v) VALUES (?, 1)`, k); err != nil {
				return err
			}
			return fail
		}
	}
	locked := errors.New("database is locked (5) (SQLITE_BUSY)")
	ctxs := []context.Context{ctx, cancelled, ctx, ctx}
	errs := queued(t, db, ctxs, []func(*sql.Tx) error{insert("a", nil), insert("x", nil), insert("b", locked), insert("c", nil)}, cancel)
	if errs[0] != nil || errs[3] != nil {
		t.Errorf("errors %v, want a and c committed", errs)
	}
	if !errors.Is(errs[1], context.Canceled) {
		t.Errorf("cancelled transaction: %v", errs[1])
	}
	if !errors.Is(errs[2], locked) {
		t.Errorf("failing transaction: %v", errs[2])
	}
	if got := rowsOf(t, db); fmt.Sprint(got) != fmt.Sprint(map[string]int{"a": 1, "c": 1}) {
		t.Errorf("rows %v, want a and c", got)
	}
	if ran["x"] != 0 {
		t.Errorf("the cancelled transaction ran %d times", ran["x"])
	}
	// b: once in the batch, then alone with writing's five retries.
	if ran["b"] != 7 {
		t.Errorf("b ran %d times, want 1 + 6", ran["b"])
	}
}

// Many writers at once: every transaction commits once, none is lost or
// answered twice, whatever the batches were.
func TestQueuedTransactionsUnderLoad(t *testing.T) {
	db := openBatchDB(t)
	ctx := context.Background()
	const writers, each = 16, 40
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				k := fmt.Sprintf("%d-%d", w, i)
				errs <- db.tx(ctx, func(tx *sql.Tx) error {
					_, err := tx.ExecContext(ctx, `INSERT INTO batch_t (k, v) VALUES (?, 1)`, k)
					return err
				})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := len(rowsOf(t, db)); n != writers*each {
		t.Fatalf("%d rows, want %d", n, writers*each)
	}
}
