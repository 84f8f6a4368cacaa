package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// Group writes of one mailbox's changes on PostgreSQL.
//
// Every change to a mailbox's messages (APPEND, STORE, EXPUNGE) is one
// statement, and every change takes the mailbox row's lock first: UIDs and
// mod-sequences are handed out under it. When the sessions of one process
// change a mailbox at once (ten clients on one INBOX), each statement
// waited for the row behind the others inside PostgreSQL, each hand-over
// of the lock woke the next backend, and each commit flushed the WAL
// alone. So the changes this process makes to a mailbox are written by one
// goroutine per busy mailbox instead: it sends the statements queued by
// then in one pipeline (one round trip) as one transaction — BEGIN, the
// mailbox row's lock, the statements in the order they came, COMMIT — and
// answers each caller with its own statement's row. Their commit waits
// for the WAL flush (synchronous_commit as configured): each caller
// returns only once its change is on disk, in one flush for the batch.
//
// The lock is taken before any statement's snapshot, so each statement
// sees every change committed before it, by this process or another, and
// nothing else can change the mailbox's messages until the commit: the
// statements' compare-and-set tests (a STORE's messages still at the
// mod-sequence they were read at) need no lock on the messages. A
// statement that finds its messages changed writes nothing and returns no
// row, and its caller reads again, as after any lost race.
//
// When a statement fails, PostgreSQL ends the transaction and nothing of
// the batch is written; each statement then runs again alone, in a
// pipeline of its own, and gets its own answer.

// maxGroupWrite bounds the statements of one pipeline, so that a caller
// never waits behind an unbounded queue.
const maxGroupWrite = 32

// lockMailboxQueryPG starts a group write: the mailbox row's lock, before
// the snapshot of any of its statements.
const lockMailboxQueryPG = `SELECT 1 FROM mailboxes WHERE id = $1 FOR UPDATE`

// groupWrite is one statement waiting in its mailbox's queue.
type groupWrite struct {
	ctx   context.Context
	query string
	args  []any
	dest  []any
	err   error
	done  chan struct{}
}

// groupWrites holds the queues of the mailboxes being written, each
// present while its writer runs.
type groupWrites struct {
	mu sync.Mutex
	q  map[int64][]*groupWrite

	pipelines, statements uint64 // pipelines sent and their statements (tests)
}

// writeGrouped queues the statement (query with args, scanning its one row
// into dest) on the mailbox's writer and waits for its answer:
// sql.ErrNoRows when the statement returned no row.
func (db *DB) writeGrouped(ctx context.Context, mailboxID int64, query string, args []any, dest ...any) error {
	w := &groupWrite{ctx: ctx, query: query, args: args, dest: dest, done: make(chan struct{})}
	g := &db.groups
	g.mu.Lock()
	if g.q == nil {
		g.q = map[int64][]*groupWrite{}
	}
	q, running := g.q[mailboxID]
	g.q[mailboxID] = append(q, w)
	g.mu.Unlock()
	if !running {
		go db.runGroupWrites(mailboxID)
	}
	select {
	case <-w.done:
		return w.err
	case <-ctx.Done():
		// It may still be written: the session reports the error, and its
		// client finds the change, if any, on its next read.
		return ctx.Err()
	}
}

// runGroupWrites writes the mailbox's queue until it is empty.
func (db *DB) runGroupWrites(mailboxID int64) {
	g := &db.groups
	for {
		g.mu.Lock()
		q := g.q[mailboxID]
		if len(q) == 0 {
			delete(g.q, mailboxID)
			g.mu.Unlock()
			return
		}
		n := min(len(q), maxGroupWrite)
		batch := q[:n:n]
		g.q[mailboxID] = q[n:]
		g.mu.Unlock()
		db.writeBatch(mailboxID, batch)
	}
}

// writeBatch writes the batch in one pipeline and answers each caller;
// after a failure of the pipeline, each statement alone.
func (db *DB) writeBatch(mailboxID int64, batch []*groupWrite) {
	var live []*groupWrite
	for _, w := range batch {
		if err := w.ctx.Err(); err != nil {
			w.err = err
			close(w.done)
		} else {
			live = append(live, w)
		}
	}
	if len(live) == 0 {
		return
	}
	// No caller's context: the pipeline is everyone's.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := db.pipeline(ctx, mailboxID, live)
	if err == nil {
		db.onCommit()
		for _, w := range live {
			close(w.done)
		}
		return
	}
	if len(live) == 1 && !isRetryable(err) {
		live[0].err = err
		close(live[0].done)
		return
	}
	// Each alone, with the retries of writing (a deadlock with another
	// node, a serialization failure).
	for _, w := range live {
		w.err = db.retrying(func() error { return db.pipeline(ctx, mailboxID, []*groupWrite{w}) })
		if w.err == nil {
			db.onCommit()
		}
		close(w.done)
	}
}

// pipeline runs the statements of live in one transaction after the
// mailbox's lock, in one round trip, and sets each one's answer; an error
// means nothing was written.
func (db *DB) pipeline(ctx context.Context, mailboxID int64, live []*groupWrite) error {
	conn, err := db.planned.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	db.groups.mu.Lock()
	db.groups.pipelines++
	db.groups.statements += uint64(len(live))
	db.groups.mu.Unlock()
	return conn.Raw(func(dc any) error {
		b := &pgx.Batch{}
		b.Queue("BEGIN")
		b.Queue(lockMailboxQueryPG, mailboxID)
		for _, w := range live {
			b.Queue(w.query, w.args...)
		}
		b.Queue("COMMIT")
		pc := dc.(*stdlib.Conn).Conn()
		br := pc.SendBatch(ctx, b)
		_, err := br.Exec()
		if err == nil {
			_, err = br.Exec()
		}
		errs := make([]error, len(live))
		for i, w := range live {
			if err != nil {
				break
			}
			if err = br.QueryRow().Scan(w.dest...); errors.Is(err, pgx.ErrNoRows) {
				errs[i], err = sql.ErrNoRows, nil
			}
		}
		if err == nil {
			var tag pgconn.CommandTag
			if tag, err = br.Exec(); err == nil && tag.String() != "COMMIT" {
				err = errors.New("group write: the transaction was rolled back")
			}
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			// A statement's error leaves the transaction aborted, the
			// mailbox's lock still held: end it before the connection goes
			// back to the pool, or close the connection.
			if pc.PgConn().TxStatus() != 'I' {
				if _, rerr := pc.Exec(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil {
					pc.Close(context.WithoutCancel(ctx))
				}
			}
			return err
		}
		for i, w := range live {
			w.err = errs[i]
		}
		return nil
	})
}
