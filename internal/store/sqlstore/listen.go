package sqlstore

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// commitSignals wakes the Listen channels of this DB after local commits.
type commitSignals struct {
	mu   sync.Mutex
	subs map[chan struct{}]struct{}
}

// onCommit is called by tx after every successful commit. On SQLite it
// wakes the Listen channels; on PostgreSQL only commits that wrote events
// do (notifyEvents).
func (db *DB) onCommit() {
	if db.Dialect != Postgres {
		db.wakeListeners()
	}
}

// wakeListeners wakes this DB's Listen channels.
func (db *DB) wakeListeners() {
	db.commits.mu.Lock()
	defer db.commits.mu.Unlock()
	for ch := range db.commits.subs {
		signal(ch)
	}
}

// signal wakes ch without blocking: one pending wake-up is enough, since the
// reader then reads everything new.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// notifier sends NOTIFY postern_events after commits that wrote events,
// for the other nodes; this process's own Listen channels are woken
// directly (notifyEvents), and the listener skips the NOTIFYs it sent
// itself (their payload is tag). It is sent after the commit, not inside
// the transaction: PostgreSQL takes one lock for the whole cluster from a
// notifying transaction's pre-commit to its end, WAL flush included, so a
// NOTIFY inside every delivery would make deliveries commit one at a time.
// One NOTIFY goes out at most every notifyGap, for all the commits since
// the last: under load a node commits hundreds of changes a second, and
// each NOTIFY is a statement here and a read of the events on every node,
// where the other nodes need no more than to hear of them within a few
// milliseconds (they poll every 100 ms besides). A process that dies
// between its commit and the NOTIFY leaves the other nodes to find the
// events at their next poll.
type notifier struct {
	once sync.Once
	wake chan struct{}
	done chan struct{} // closed by Close
	stop sync.Once
	tag  string       // this DB's payload, to know its own NOTIFYs
	sent atomic.Int64 // NOTIFYs sent, for tests
}

// notifyGap is the least time between two NOTIFYs of one process.
var notifyGap = 20 * time.Millisecond

// notifyEvents wakes this process's Listen channels and asks for a NOTIFY
// soon; it never blocks.
func (db *DB) notifyEvents() {
	if db.Dialect != Postgres {
		return // SQLite: Listen is woken by every commit (onCommit)
	}
	db.wakeListeners()
	db.notify.once.Do(func() {
		db.notify.wake = make(chan struct{}, 1)
		go db.sendNotifies(db.notify.wake, db.notify.done)
	})
	signal(db.notify.wake)
}

func (db *DB) sendNotifies(wake, done chan struct{}) {
	for {
		select {
		case <-done:
			return
		case <-wake:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if _, err := db.SQL.ExecContext(ctx, `SELECT pg_notify('postern_events', $1)`, db.notify.tag); err != nil {
			slog.Warn("notifying other nodes of events (they poll)", "err", err)
		}
		cancel()
		db.notify.sent.Add(1)
		t := time.NewTimer(notifyGap)
		select {
		case <-done:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// Listen returns a channel that receives a value soon after new events may
// have been committed, for events.Tailer's Wake; it is closed when ctx ends.
//
// On PostgreSQL a dedicated connection LISTENs on postern_events, which
// every process notifies after its commits that wrote events (notifier), so
// every node hears of them within notifyGap; this process's own such
// commits signal at once. When the connection fails it signals (something
// may have been missed) and reconnects with a growing back-off.
// On SQLite it signals after this process's own commits; other processes on
// the same file are caught by the tailer's polling.
func (db *DB) Listen(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	db.commits.mu.Lock()
	if db.commits.subs == nil {
		db.commits.subs = map[chan struct{}]struct{}{}
	}
	db.commits.subs[ch] = struct{}{}
	db.commits.mu.Unlock()
	go func() {
		if db.Dialect == Postgres {
			db.listenPostgres(ctx, ch) // until ctx ends
		} else {
			<-ctx.Done()
		}
		db.commits.mu.Lock()
		delete(db.commits.subs, ch)
		db.commits.mu.Unlock()
		close(ch)
	}()
	return ch
}

func (db *DB) listenPostgres(ctx context.Context, ch chan struct{}) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := db.listenOnce(ctx, ch, func() { backoff = 100 * time.Millisecond })
		if ctx.Err() != nil {
			return
		}
		slog.Error("listening for events", "err", err, "retry_in", backoff)
		signal(ch)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// listenOnce holds one LISTEN connection until it fails or ctx ends.
func (db *DB) listenOnce(ctx context.Context, ch chan struct{}, connected func()) error {
	conn, err := pgx.Connect(ctx, db.DSN)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN postern_events"); err != nil {
		return err
	}
	connected()
	// Events committed while no connection was listening were not notified.
	signal(ch)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if n.Payload != db.notify.tag {
			signal(ch)
		}
	}
}
