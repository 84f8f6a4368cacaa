package auth

import (
	"sync"
	"time"
)

// batches gathers values from many goroutines (the logins) for one that
// writes them in batches (login records, last uses, log lines). Unlike a
// channel, adding a value wakes nobody, except the first value of a batch:
// the writer then waits gather, or until max values wait, and takes them all.
// A channel woke the writer for every login, a thread wake-up per login on a
// busy server (docs/benchmarks.md).
type batches[T any] struct {
	limit  int           // values held at most; add refuses more
	max    int           // values written at once; as many wake the writer early
	gather time.Duration // how long the first value of a batch waits for others

	mu   sync.Mutex
	buf  []T
	kick chan struct{} // the first value of a batch arrived
	full chan struct{} // max values wait
}

func newBatches[T any](limit, max int, gather time.Duration) *batches[T] {
	max = min(max, limit)
	return &batches[T]{limit: limit, max: max, gather: gather,
		kick: make(chan struct{}, 1), full: make(chan struct{}, 1)}
}

// add queues v; it never blocks, and reports false when limit values wait.
func (b *batches[T]) add(v T) bool {
	b.mu.Lock()
	n := len(b.buf)
	if n >= b.limit {
		b.mu.Unlock()
		return false
	}
	b.buf = append(b.buf, v)
	b.mu.Unlock()
	switch n + 1 {
	case 1:
		signal(b.kick)
	case b.max:
		signal(b.full)
	}
	return true
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// run hands the values to write in batches of at most max until stop is
// closed, then writes what waits and returns. write must not keep the slice.
func (b *batches[T]) run(stop <-chan struct{}, write func([]T)) {
	t := time.NewTimer(time.Hour)
	t.Stop()
	var spare []T
	take := func() {
		b.mu.Lock()
		got := b.buf
		b.buf = spare[:0]
		b.mu.Unlock()
		for i := 0; i < len(got); i += b.max {
			write(got[i:min(i+b.max, len(got))])
		}
		clear(got) // drop references for the collector
		spare = got
	}
	for {
		select {
		case <-b.kick:
		case <-stop:
			take()
			return
		}
		t.Reset(b.gather)
		select {
		case <-t.C:
			// A batch filled as the timer fired: this take has it all.
			select {
			case <-b.full:
			default:
			}
		case <-b.full:
			t.Stop()
		case <-stop:
			take()
			return
		}
		take()
	}
}
