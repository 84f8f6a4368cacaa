package events

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/postern/postern/internal/account"
)

// Source is the outbox as the Tailer reads it; account.Store has these
// methods, and so does internal/store/sqlstore.
type Source interface {
	// EventsAfter returns up to limit events after pos, in EventPos order.
	EventsAfter(ctx context.Context, after account.EventPos, limit int) ([]account.Event, error)
	LastEventPos(ctx context.Context) (account.EventPos, error)
	// PruneEvents deletes events created before t.
	PruneEvents(ctx context.Context, before time.Time) error
}

// Tailer reads the outbox and publishes every new event on Bus, in EventPos
// order. It starts after the last event present when it starts: older events
// are history, and the sessions they would have closed did not exist in this
// process. Each process runs one.
//
// The stores never let an event appear behind one already read (see
// account.EventPos), so reading "after the last seen" misses nothing.
type Tailer struct {
	Store    Source
	Bus      *Bus
	Interval time.Duration   // polling period; default 100 ms
	Wake     <-chan struct{} // optional: a signal to read at once (LISTEN/NOTIFY, local commits)
	// Gap is the least time from one read to the next a Wake starts
	// (default 5 ms): under load commits wake the tailer hundreds of
	// times a second, and each read hands every session of a changed
	// mailbox a re-read; a few milliseconds gathers them.
	Gap time.Duration
	Log *slog.Logger // default slog.Default()
	// Retention is how long events are kept (default 24 h); they are pruned
	// once an hour. Negative: never prune (a read-only tailer).
	Retention time.Duration
	Now       func() time.Time // default time.Now

	readyOnce sync.Once
	ready     chan struct{}
	mu        sync.Mutex
	pos       account.EventPos
}

// batch is how many events one query reads.
const batch = 500

func (t *Tailer) init() {
	t.readyOnce.Do(func() { t.ready = make(chan struct{}) })
}

// Ready is closed once the tailer knows where the outbox ends: events
// committed after that are published.
func (t *Tailer) Ready() <-chan struct{} {
	t.init()
	return t.ready
}

// Pos returns the position after which events are yet to be published.
func (t *Tailer) Pos() account.EventPos {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pos
}

// Run tails until ctx ends. Store errors are logged and retried with a
// growing back-off (up to 5 s); they never stop the tailer.
func (t *Tailer) Run(ctx context.Context) error {
	t.init()
	interval := t.Interval
	if interval <= 0 {
		interval = 100 * time.Millisecond
	}
	log := t.Log
	if log == nil {
		log = slog.Default()
	}
	now := t.Now
	if now == nil {
		now = time.Now
	}
	gap := t.Gap
	if gap <= 0 {
		gap = 5 * time.Millisecond
	}
	retention := t.Retention
	if retention == 0 {
		retention = 24 * time.Hour
	}

	backoff := interval
	fail := func(what string, err error) bool {
		log.Error("event tailer: "+what, "err", err, "retry_in", backoff)
		if !sleep(ctx, backoff) {
			return false
		}
		backoff = min(backoff*2, 5*time.Second)
		return true
	}

	var pos account.EventPos
	for {
		p, err := t.Store.LastEventPos(ctx)
		if err == nil {
			pos = p
			break
		}
		if ctx.Err() != nil || !fail("reading the last event", err) {
			return ctx.Err()
		}
	}
	t.mu.Lock()
	t.pos = pos
	t.mu.Unlock()
	close(t.ready)
	backoff = interval

	wake := t.Wake
	nextPrune := now()
	for {
		if retention > 0 && !now().Before(nextPrune) {
			nextPrune = now().Add(time.Hour)
			if err := t.Store.PruneEvents(ctx, now().Add(-retention)); err != nil && ctx.Err() == nil {
				log.Error("event tailer: pruning events", "err", err)
			}
		}
		read := time.Now()
		for {
			list, err := t.Store.EventsAfter(ctx, pos, batch)
			if err != nil {
				if ctx.Err() != nil || !fail("reading events", err) {
					return ctx.Err()
				}
				continue
			}
			backoff = interval
			for _, e := range list {
				t.Bus.Publish(e)
				pos = e.Pos()
			}
			t.mu.Lock()
			t.pos = pos
			t.mu.Unlock()
			if len(list) < batch {
				break
			}
		}
		tm := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			tm.Stop()
			return ctx.Err()
		case <-tm.C:
		case _, ok := <-wake:
			tm.Stop()
			if !ok {
				wake = nil // closed: poll only
			}
			if !sleep(ctx, gap-time.Since(read)) {
				return ctx.Err()
			}
		}
	}
}

// sleep waits d; false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}
