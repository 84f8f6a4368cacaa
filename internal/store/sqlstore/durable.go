package sqlstore

import (
	"context"
	"sync"
	"time"

	"github.com/postern/postern/internal/mailstore"
)

// What a read may show on PostgreSQL.
//
// A change is acknowledged only once its commit is on disk: the group
// writes of mailbox changes (groupwrite.go) commit with the flush. Nothing
// is shown before it is on disk either: a change committed without the
// flush (another node running with synchronous_commit off, or an earlier
// version of Postern, which committed changes queued on a mailbox that
// way) is visible to other sessions before it is durable, so every read
// that reports UIDs or mod-sequences (State, Open, Mailbox, Mailboxes,
// Messages, Vanished) calls shown first, which waits for a flush unless
// this process already knows the mailbox durable up to the HIGHESTMODSEQ
// read (its own changes and earlier reads set the mark). A crash of the
// database's machine can then lose only changes that no client was told
// of, and since the WAL is written in order, a change survives only if
// every change it follows survives: no UID or mod-sequence a client has
// seen can be handed out again.

// flushQuery makes a commit that waits for the WAL flush up to its own
// record, which is after every commit that came before it: a
// transactional logical message is the smallest write that takes a
// transaction id, so its commit flushes (a read-only transaction, or
// txid_current alone, writes no commit record to wait for). It writes no
// table and takes no lock, and works at any wal_level.
const flushQuery = `SELECT pg_logical_emit_message(true, 'postern', '')`

// nextRound runs a read or write for every caller that asks for it while
// it waits: a caller joins the next round not yet started, never one
// already running (whose result may predate what the caller must see),
// and the callers that come while one round runs share the next. Every
// caller of one nextRound passes the same work.
type nextRound[T any] struct {
	mu      sync.Mutex
	pending *round[T]
	running bool

	rounds uint64 // rounds run (tests)
}

type round[T any] struct {
	done chan struct{}
	v    T
	err  error
}

// join returns the result of the next round of work.
func (q *nextRound[T]) join(ctx context.Context, work func(context.Context) (T, error)) (T, error) {
	q.mu.Lock()
	r := q.pending
	if r == nil {
		r = &round[T]{done: make(chan struct{})}
		q.pending = r
		if !q.running {
			q.running = true
			go q.run(work)
		}
	}
	q.mu.Unlock()
	select {
	case <-r.done:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// run runs the pending rounds until there are none.
func (q *nextRound[T]) run(work func(context.Context) (T, error)) {
	for {
		q.mu.Lock()
		r := q.pending
		q.pending = nil
		if r == nil {
			q.running = false
			q.mu.Unlock()
			return
		}
		q.rounds++
		q.mu.Unlock()
		// No caller's context: the round is everyone's.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		r.v, r.err = work(ctx)
		cancel()
		close(r.done)
	}
}

// durable returns once every commit made before the call is on disk, one
// flush for the callers that ask at once (nextRound: every flush covers
// every commit made before any of its callers asked). On SQLite every
// commit is (synchronous=FULL).
func (db *DB) durable(ctx context.Context) error {
	if db.Dialect != Postgres {
		return nil
	}
	_, err := db.flush.join(ctx, func(ctx context.Context) (struct{}, error) {
		_, err := db.SQL.ExecContext(ctx, flushQuery)
		return struct{}{}, err
	})
	return err
}

// durableMarks is, per mailbox, the HIGHESTMODSEQ up to which this process
// knows every change on disk: every change takes its mod-sequence under
// the mailbox's lock, so a change at or below a mark committed before the
// one that set it, and the WAL is flushed in order.
type durableMarks struct {
	mu sync.Mutex
	m  map[int64]uint64
}

// maxMarks bounds durableMarks; past it the marks start again (a mailbox
// then costs one flush more).
const maxMarks = 100_000

func (d *durableMarks) get(mailboxID int64) uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.m[mailboxID]
}

func (d *durableMarks) set(mailboxID int64, modseq uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil || len(d.m) >= maxMarks {
		d.m = map[int64]uint64{}
	}
	if d.m[mailboxID] < modseq {
		d.m[mailboxID] = modseq
	}
}

// shown returns once the mailbox's changes up to HIGHESTMODSEQ highest,
// just read, are on disk (see above): at once when a change of this
// process, or an earlier read, found them so.
func (db *DB) shown(ctx context.Context, mailboxID int64, highest uint64) error {
	if db.Dialect != Postgres || highest == 0 || db.marks.get(mailboxID) >= highest {
		return nil
	}
	if err := db.durable(ctx); err != nil {
		return err
	}
	db.marks.set(mailboxID, highest)
	return nil
}

// shownAll is shown for every mailbox of list, with one flush at most.
func (db *DB) shownAll(ctx context.Context, list []mailstore.Mailbox) error {
	if db.Dialect != Postgres {
		return nil
	}
	for _, mb := range list {
		if mb.HighestModSeq > db.marks.get(mb.ID) {
			if err := db.durable(ctx); err != nil {
				return err
			}
			for _, mb := range list {
				db.marks.set(mb.ID, mb.HighestModSeq)
			}
			return nil
		}
	}
	return nil
}

// writeConn returns how to write a change to the mailbox (one statement
// returning one row) and a function to call with the change's outcome. On
// PostgreSQL the change joins the mailbox's group write (groupwrite.go),
// whose commit waits for the flush, and once the function returns nil the
// mailbox is marked durable up to the change's mod-sequence.
func (db *DB) writeConn(mailboxID int64) (mailWrite, func(ctx context.Context, modseq int64, err error) error) {
	if db.Dialect != Postgres {
		return func(ctx context.Context, query string, args []any, dest ...any) error {
				return db.writing(ctx, func() error {
					return db.SQL.QueryRowContext(ctx, query, args...).Scan(dest...)
				})
			}, func(context.Context, int64, error) error {
				return nil
			}
	}
	return func(ctx context.Context, query string, args []any, dest ...any) error {
			return db.writeGrouped(ctx, mailboxID, query, args, dest...)
		}, func(ctx context.Context, modseq int64, err error) error {
			if err == nil && modseq > 0 {
				db.marks.set(mailboxID, uint64(modseq))
			}
			return err
		}
}

// mailWrite runs a change's statement, query with args, and scans its one
// row into dest (sql.ErrNoRows: none).
type mailWrite func(ctx context.Context, query string, args []any, dest ...any) error

// stateReads shares State's reads of a mailbox among the sessions of this
// process that ask at once (nextRound): every session of a mailbox re-reads
// it after each change to it, woken together. The callers share the
// result, which they only read.
type stateReads struct {
	mu sync.Mutex
	m  map[int64]*nextRound[mailboxState]
}

type mailboxState struct {
	mb   mailstore.Mailbox
	msgs mailstore.Listing
}

// sharedState is state, and shown of what it read, shared as stateReads
// says.
func (db *DB) sharedState(ctx context.Context, mailboxID int64) (mailstore.Mailbox, mailstore.Listing, error) {
	f := &db.reads
	f.mu.Lock()
	if f.m == nil || len(f.m) >= maxMarks {
		// A mailbox whose read runs keeps its own; the next read of it
		// starts a new one.
		f.m = map[int64]*nextRound[mailboxState]{}
	}
	q := f.m[mailboxID]
	if q == nil {
		q = &nextRound[mailboxState]{}
		f.m[mailboxID] = q
	}
	f.mu.Unlock()
	st, err := q.join(ctx, func(ctx context.Context) (mailboxState, error) {
		mb, msgs, err := db.state(ctx, mailboxID)
		if err == nil {
			err = db.shown(ctx, mb.ID, mb.HighestModSeq)
		}
		return mailboxState{mb, msgs}, err
	})
	return st.mb, st.msgs, err
}
