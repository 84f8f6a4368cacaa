package sqlstore

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// commitSignals wakes the Listen channels of this DB after local commits.
type commitSignals struct {
	mu   sync.Mutex
	subs map[chan struct{}]struct{}
}

// onCommit is called by tx after every successful commit.
func (db *DB) onCommit() {
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

// notifier sends NOTIFY postern_events after commits that wrote events.
// It is sent after the commit, not inside the transaction: PostgreSQL takes
// one lock for the whole cluster from a notifying transaction's pre-commit
// to its end, WAL flush included, so a NOTIFY inside every delivery would
// make deliveries commit one at a time. Commits that land while one NOTIFY
// is being sent share the next. A process that dies between its commit and
// the NOTIFY leaves the other nodes to find the events at their next poll.
type notifier struct {
	once sync.Once
	wake chan struct{}
	done chan struct{} // closed by Close
	stop sync.Once
}

// notifyEvents asks for a NOTIFY soon; it never blocks.
func (db *DB) notifyEvents() {
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
		if _, err := db.SQL.ExecContext(ctx, `SELECT pg_notify('postern_events', '')`); err != nil {
			slog.Warn("notifying other nodes of events (they poll)", "err", err)
		}
		cancel()
	}
}

// Listen returns a channel that receives a value soon after new events may
// have been committed, for events.Tailer's Wake; it is closed when ctx ends.
//
// On PostgreSQL a dedicated connection LISTENs on postern_events, which
// every process notifies after its commits that wrote events (notifier), so
// every node hears of them at once; when the connection fails it signals
// (something may have been missed) and reconnects with a growing back-off.
// On SQLite it signals after this process's own commits; other processes on
// the same file are caught by the tailer's polling.
func (db *DB) Listen(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	if db.Dialect == Postgres {
		go db.listenPostgres(ctx, ch)
		return ch
	}
	db.commits.mu.Lock()
	if db.commits.subs == nil {
		db.commits.subs = map[chan struct{}]struct{}{}
	}
	db.commits.subs[ch] = struct{}{}
	db.commits.mu.Unlock()
	go func() {
		<-ctx.Done()
		db.commits.mu.Lock()
		delete(db.commits.subs, ch)
		db.commits.mu.Unlock()
		close(ch)
	}()
	return ch
}

func (db *DB) listenPostgres(ctx context.Context, ch chan struct{}) {
	defer close(ch)
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
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		signal(ch)
	}
}
