package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// SQLite group commit. SQLite lets one writer in at a time and a commit in
// WAL mode with synchronous=FULL costs an fsync and a WAL frame for every
// page the transaction touched. Sessions changing one mailbox touch the
// same pages (the mailbox row, its counts, the right edges of the message
// indexes), so the transactions queued behind the one committing are run
// together: the writer that gets the lock runs every queued transaction,
// each inside a savepoint of one SQLite transaction, and commits once.
// Each caller still returns only after the commit that holds its change
// (on disk), and a transaction that fails is rolled back to its savepoint
// and fails alone, as if it had run by itself before or after the others.
//
// PostgreSQL has no such queue here: its changes already commit in
// parallel and share WAL flushes (durable.go).

// maxBatch bounds the transactions of one commit, so that a caller never
// waits behind an unbounded queue.
const maxBatch = 32

// pendingTx is one caller's transaction waiting in the queue.
type pendingTx struct {
	ctx  context.Context
	fn   func(*sql.Tx) error
	lazy bool       // may commit without the fsync (txLazy)
	done chan error // buffered: the leader never waits for the caller
}

// txQueue holds the transactions waiting for the write lock.
type txQueue struct {
	mu      sync.Mutex
	pending []*pendingTx
}

// remove takes p out of the queue; false when a writer has taken it.
func (q *txQueue) remove(p *pendingTx) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, o := range q.pending {
		if o == p {
			q.pending = append(q.pending[:i], q.pending[i+1:]...)
			return true
		}
	}
	return false
}

// take removes and returns up to maxBatch of the queued transactions, the
// oldest first.
func (q *txQueue) take() []*pendingTx {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := min(len(q.pending), maxBatch)
	batch := append([]*pendingTx(nil), q.pending[:n]...)
	q.pending = append(q.pending[:0], q.pending[n:]...)
	return batch
}

// txSQLite is tx on SQLite: fn is queued, and whichever caller gets the
// write lock first commits everything queued by then, fn included.
func (db *DB) txSQLite(ctx context.Context, lazy bool, fn func(*sql.Tx) error) error {
	p := &pendingTx{ctx: ctx, fn: fn, lazy: lazy, done: make(chan error, 1)}
	db.txq.mu.Lock()
	db.txq.pending = append(db.txq.pending, p)
	db.txq.mu.Unlock()
	for {
		select {
		case err := <-p.done:
			return err
		case <-ctx.Done():
			if db.txq.remove(p) {
				return ctx.Err()
			}
			// A writer has it: its result, whatever it is, is the answer.
			return <-p.done
		case db.writer <- struct{}{}:
		}
		batch := db.txq.take()
		if len(batch) > 0 {
			db.commitBatch(batch)
		}
		db.releaseWriter()
		// fn was in this batch or in one before it (whose writer answered
		// before letting the lock go), or still queued past maxBatch.
		select {
		case err := <-p.done:
			return err
		default:
		}
	}
}

// commitBatch runs the batch's transactions in one SQLite transaction and
// answers each. It holds the write lock.
func (db *DB) commitBatch(batch []*pendingTx) {
	var live []*pendingTx
	for _, p := range batch {
		if err := p.ctx.Err(); err != nil {
			p.done <- err
		} else {
			live = append(live, p)
		}
	}
	if len(live) == 0 {
		return
	}
	// Lazily only when every transaction of the batch may (lazy.go).
	pool := db.async
	for _, p := range live {
		if !p.lazy {
			pool = db.SQL
		}
	}
	if len(live) == 1 {
		p := live[0]
		err := db.runAlone(pool, p)
		db.committedLazily(pool, err, 1)
		p.done <- err
		return
	}
	errs, err := db.runTogether(pool, live)
	if err != nil {
		// The shared transaction itself failed (the lock held by another
		// process, a full disk, a statement error that ended the whole
		// transaction): nothing of it was committed. Each runs alone, as
		// without the queue, with the retries of writing.
		for _, p := range live {
			err := db.runAlone(pool, p)
			db.committedLazily(pool, err, 1)
			p.done <- err
		}
		return
	}
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		}
	}
	db.committedLazily(pool, nil, ok)
	db.onCommit()
	for i, p := range live {
		p.done <- errs[i]
	}
}

// committedLazily notes n transactions committed through pool, if that
// was lazily, for the background flush.
func (db *DB) committedLazily(pool *sql.DB, err error, n int) {
	if pool == db.async && err == nil {
		db.lazy.count.Add(uint64(n))
		db.lazy.dirty.Store(true)
	}
}

// runAlone runs p's transaction by itself, retried as writing retries,
// under the write lock the caller holds.
func (db *DB) runAlone(pool *sql.DB, p *pendingTx) error {
	return db.retrying(func() error {
		err := db.runTx(p.ctx, pool, p.fn)
		if err == nil {
			db.onCommit()
		}
		return err
	})
}

// runTx runs fn in a transaction of its own and the functions it left for
// after the commit.
func (db *DB) runTx(ctx context.Context, pool *sql.DB, fn func(*sql.Tx) error) error {
	tx, err := pool.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	err = fn(tx)
	if err == nil {
		err = tx.Commit()
	} else {
		tx.Rollback()
	}
	hooks := db.takeHooks(tx)
	if err == nil {
		for _, h := range hooks {
			h()
		}
	}
	return err
}

// runTogether runs the transactions of live in one transaction, each in a
// savepoint, and commits it. It returns each one's own error (one that
// failed was rolled back to its savepoint, its after-commit functions
// dropped), or an error of the shared transaction, which is then rolled
// back whole.
func (db *DB) runTogether(pool *sql.DB, live []*pendingTx) ([]error, error) {
	// The transaction is everyone's: no one caller's cancellation ends it.
	ctx := context.WithoutCancel(live[0].ctx)
	tx, err := pool.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	fail := func(err error) ([]error, error) {
		tx.Rollback()
		db.takeHooks(tx)
		return nil, err
	}
	errs := make([]error, len(live))
	for i, p := range live {
		if _, err := tx.ExecContext(ctx, `SAVEPOINT batch`); err != nil {
			return fail(err)
		}
		mark := db.hookCount(tx)
		if err := p.fn(tx); err != nil {
			if isRetryable(err) {
				return fail(err)
			}
			errs[i] = err
			db.dropHooks(tx, mark)
			if _, rerr := tx.ExecContext(ctx, `ROLLBACK TO batch`); rerr != nil {
				return fail(errors.Join(err, rerr))
			}
		}
		if _, err := tx.ExecContext(ctx, `RELEASE batch`); err != nil {
			return fail(err)
		}
	}
	if err := tx.Commit(); err != nil {
		db.takeHooks(tx)
		return nil, err
	}
	for _, h := range db.takeHooks(tx) {
		h()
	}
	return errs, nil
}
