package events

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/internal/account"
)

// fakeSource is an outbox in memory that can be made to fail.
type fakeSource struct {
	mu      sync.Mutex
	events  []account.Event
	failing int // calls left that fail
	prunes  []time.Time
	reads   int
}

func (f *fakeSource) add(kind account.EventKind, member int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, account.Event{Seq: int64(len(f.events) + 1), Kind: kind, MemberID: member})
}

func (f *fakeSource) fail() error {
	if f.failing > 0 {
		f.failing--
		return errors.New("database down")
	}
	return nil
}

func (f *fakeSource) EventsAfter(ctx context.Context, after account.EventPos, limit int) ([]account.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	if err := f.fail(); err != nil {
		return nil, err
	}
	var out []account.Event
	for _, e := range f.events {
		if after.Before(e.Pos()) && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

func (f *fakeSource) LastEventPos(ctx context.Context) (account.EventPos, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(); err != nil {
		return account.EventPos{}, err
	}
	return account.EventPos{Seq: int64(len(f.events))}, nil
}

func (f *fakeSource) PruneEvents(ctx context.Context, before time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.prunes = append(f.prunes, before)
	return nil
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func collect(bus *Bus) (func() []int64, chan struct{}) {
	var mu sync.Mutex
	var seqs []int64
	got := make(chan struct{}, 1000)
	bus.Subscribe(0, func(e account.Event) {
		mu.Lock()
		seqs = append(seqs, e.Seq)
		mu.Unlock()
		got <- struct{}{}
	})
	return func() []int64 { mu.Lock(); defer mu.Unlock(); return append([]int64(nil), seqs...) }, got
}

func waitN(t *testing.T, got chan struct{}, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d events published", i, n)
		}
	}
}

func TestTailerPublishesNewEventsInOrder(t *testing.T) {
	src := &fakeSource{}
	src.add(account.EventSettingChanged, 1) // history: before the tailer started
	src.add(account.EventSettingChanged, 1)
	bus := NewBus()
	seqs, got := collect(bus)
	tl := &Tailer{Store: src, Bus: bus, Interval: time.Hour, Log: quiet(), Retention: -1}
	wake := make(chan struct{}, 1)
	tl.Wake = wake
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error)
	go func() { done <- tl.Run(ctx) }()
	<-tl.Ready()
	for i := 0; i < 1200; i++ { // more than one batch
		src.add(account.EventAppPasswordDeleted, 2)
	}
	wake <- struct{}{} // the interval is an hour: only the wake-up reads
	waitN(t, got, 1200)
	s := seqs()
	for i, seq := range s {
		if seq != int64(i+3) {
			t.Fatalf("published seq %d at %d, want %d (history must be skipped, order kept)", seq, i, i+3)
		}
	}
	if tl.Pos() != (account.EventPos{Seq: 1202}) {
		t.Errorf("Pos() = %v", tl.Pos())
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v", err)
	}
}

func TestTailerSurvivesStoreErrors(t *testing.T) {
	src := &fakeSource{failing: 3} // the start fails too
	bus := NewBus()
	seqs, got := collect(bus)
	tl := &Tailer{Store: src, Bus: bus, Interval: time.Millisecond, Log: quiet(), Retention: -1}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go tl.Run(ctx)
	<-tl.Ready()
	src.mu.Lock()
	src.failing = 2
	src.mu.Unlock()
	src.add(account.EventMemberSuspended, 5)
	src.add(account.EventMemberResumed, 5)
	waitN(t, got, 2)
	if s := seqs(); len(s) != 2 || s[0] != 1 || s[1] != 2 {
		t.Fatalf("published %v", s)
	}
}

func TestTailerPrunesOldEvents(t *testing.T) {
	src := &fakeSource{}
	now := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	tl := &Tailer{Store: src, Bus: NewBus(), Interval: time.Millisecond, Log: quiet(), Now: func() time.Time { return now }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tl.Run(ctx); close(done) }()
	<-tl.Ready()
	time.Sleep(50 * time.Millisecond) // many polls, one hour not passed: one prune
	cancel()
	<-done
	src.mu.Lock()
	defer src.mu.Unlock()
	if len(src.prunes) != 1 || !src.prunes[0].Equal(now.Add(-24*time.Hour)) {
		t.Fatalf("prunes %v, want one at now-24h", src.prunes)
	}
}

func TestTailerClosedWakeFallsBackToPolling(t *testing.T) {
	src := &fakeSource{}
	bus := NewBus()
	_, got := collect(bus)
	wake := make(chan struct{})
	close(wake)
	tl := &Tailer{Store: src, Bus: bus, Interval: 5 * time.Millisecond, Wake: wake, Log: quiet(), Retention: -1}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go tl.Run(ctx)
	<-tl.Ready()
	src.add(account.EventSettingChanged, 1)
	waitN(t, got, 1)
}

// A burst of wake-ups is read together: at most one read per Gap, and
// every event still published.
func TestTailerGathersWakeUps(t *testing.T) {
	src := &fakeSource{}
	bus := NewBus()
	_, got := collect(bus)
	wake := make(chan struct{}, 1)
	const gap = 20 * time.Millisecond
	tl := &Tailer{Store: src, Bus: bus, Interval: time.Hour, Gap: gap, Wake: wake, Log: quiet(), Retention: -1}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go tl.Run(ctx)
	<-tl.Ready()
	src.mu.Lock()
	reads0 := src.reads
	src.mu.Unlock()
	start := time.Now()
	const n = 100
	for range n {
		src.add(account.EventSettingChanged, 1)
		select {
		case wake <- struct{}{}:
		default:
		}
		time.Sleep(time.Millisecond)
	}
	waitN(t, got, n)
	elapsed := time.Since(start)
	src.mu.Lock()
	reads := src.reads - reads0
	src.mu.Unlock()
	if most := int(elapsed/gap) + 2; reads > most {
		t.Fatalf("%d wake-ups in %v made %d reads, want at most %d (one per %v)", n, elapsed, reads, most, gap)
	}
}
