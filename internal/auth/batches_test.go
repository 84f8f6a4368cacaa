package auth

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// collect runs b's writer and returns what it wrote, batch by batch, once
// stop is closed.
func collect(b *batches[int], stop chan struct{}) (wait func() [][]int, seen <-chan int) {
	var (
		mu  sync.Mutex
		got [][]int
		wg  sync.WaitGroup
	)
	ch := make(chan int, 1000)
	wg.Add(1)
	go func() {
		defer wg.Done()
		b.run(stop, func(vs []int) {
			mu.Lock()
			got = append(got, slices.Clone(vs))
			mu.Unlock()
			ch <- len(vs)
		})
	}()
	return func() [][]int { wg.Wait(); return got }, ch
}

// TestBatchesFullWakesWriter: max values are written at once, long before
// the gather time; values beyond limit are refused; stop writes the rest.
func TestBatchesFullWakesWriter(t *testing.T) {
	b := newBatches[int](10, 4, time.Hour)
	stop := make(chan struct{})
	wait, seen := collect(b, stop)
	for i := range 4 {
		if !b.add(i) {
			t.Fatalf("add %d refused", i)
		}
	}
	select {
	case n := <-seen:
		if n != 4 {
			t.Fatalf("first batch of %d, want 4", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a full batch did not wake the writer")
	}
	for i := 4; i < 14; i++ {
		b.add(i)
	}
	if b.add(99) {
		t.Error("an 11th waiting value was accepted")
	}
	close(stop)
	got := wait()
	want := [][]int{{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9, 10, 11}, {12, 13}}
	if len(got) != len(want) {
		t.Fatalf("batches %v, want %v", got, want)
	}
	for i := range want {
		if !slices.Equal(got[i], want[i]) {
			t.Fatalf("batches %v, want %v", got, want)
		}
	}
}

// TestBatchesGather: a lone value is written after the gather time, and so
// is a value added after the first batch went out.
func TestBatchesGather(t *testing.T) {
	b := newBatches[int](100, 50, time.Millisecond)
	stop := make(chan struct{})
	wait, seen := collect(b, stop)
	for i := range 3 {
		b.add(i)
		select {
		case <-seen:
		case <-time.After(10 * time.Second):
			t.Fatalf("value %d was not written while the writer ran", i)
		}
	}
	close(stop)
	var all []int
	for _, vs := range wait() {
		all = append(all, vs...)
	}
	if !slices.Equal(all, []int{0, 1, 2}) {
		t.Errorf("wrote %v, want [0 1 2]", all)
	}
}

// TestBatchesConcurrent: values added from many goroutines are all written,
// once each, in each goroutine's order.
func TestBatchesConcurrent(t *testing.T) {
	const writers, each = 8, 500
	b := newBatches[int](writers*each, 64, time.Millisecond)
	stop := make(chan struct{})
	wait, _ := collect(b, stop)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if !b.add(w*each + i) {
					t.Error("add refused below the limit")
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	last := make([]int, writers)
	for i := range last {
		last[i] = -1
	}
	n := 0
	for _, vs := range wait() {
		if len(vs) > 64 {
			t.Errorf("a batch of %d, max 64", len(vs))
		}
		for _, v := range vs {
			w, i := v/each, v%each
			if i <= last[w] {
				t.Fatalf("writer %d: %d after %d", w, i, last[w])
			}
			last[w] = i
			n++
		}
	}
	if n != writers*each {
		t.Errorf("%d values written, want %d", n, writers*each)
	}
}
