package passhash

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

var cheap = Params{Memory: 64, Time: 1, Threads: 1, Concurrency: 2}

func TestHashVerify(t *testing.T) {
	ctx := context.Background()
	h := New(cheap)
	enc, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Errorf("encoded %q", enc)
	}
	if err := h.Verify(ctx, enc, "correct horse battery staple"); err != nil {
		t.Errorf("right password: %v", err)
	}
	for _, wrong := range []string{"", "correct horse battery stapl", "correct horse battery staple ", "Correct horse battery staple"} {
		if err := h.Verify(ctx, enc, wrong); !errors.Is(err, ErrMismatch) {
			t.Errorf("Verify(%q) = %v, want ErrMismatch", wrong, err)
		}
	}
	// No stored hash (unknown user): the same work, and a mismatch for any input.
	for _, pw := range []string{"", "postern-dummy-password", "correct horse battery staple"} {
		if err := h.Verify(ctx, "", pw); !errors.Is(err, ErrMismatch) {
			t.Errorf("Verify(\"\", %q) = %v, want ErrMismatch", pw, err)
		}
	}
	again, _ := h.Hash(ctx, "correct horse battery staple")
	if again == enc {
		t.Errorf("two hashes of one password are equal: no salt")
	}
	// Parameters travel with the hash: a hasher with other parameters verifies it.
	if err := New(Params{Memory: 128, Time: 2, Threads: 1}).Verify(ctx, enc, "correct horse battery staple"); err != nil {
		t.Errorf("verify under other parameters: %v", err)
	}
	for _, bad := range []string{
		"plain", "$argon2i$v=19$m=64,t=1,p=1$c2FsdA$a2V5", "$argon2id$v=18$m=64,t=1,p=1$c2FsdA$a2V5",
		"$argon2id$v=19$m=4194304,t=1,p=1$c2FsdA$a2V5", // 4 GiB: refused before any work
		"$argon2id$v=19$m=64,t=1,p=0$c2FsdA$a2V5", "$argon2id$v=19$m=64,t=1,p=1$!!$a2V5", "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$",
	} {
		if err := h.Verify(ctx, bad, "x"); err == nil {
			t.Errorf("Verify(%q) accepted", bad)
		}
	}
}

// TestDefaultParams: the OWASP parameters, m=19 MiB, t=2, p=1.
func TestDefaultParams(t *testing.T) {
	h := New(Default)
	enc, err := h.Hash(context.Background(), "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("encoded %q", enc)
	}
	if err := h.Verify(context.Background(), enc, "correct horse battery staple"); err != nil {
		t.Error(err)
	}
	// Half the CPUs, at least one: a flood of wrong passwords must leave
	// CPU to the logins that need no hash (issue 6, docs/benchmarks.md).
	if want := max(1, runtime.GOMAXPROCS(0)/2); cap(h.slots) != want || DefaultConcurrency() != want {
		t.Errorf("default concurrency %d, want %d (GOMAXPROCS %d)", cap(h.slots), want, runtime.GOMAXPROCS(0))
	}
}

// TestConcurrencyBound: when Concurrency hashes are running, the next one
// waits (and gives up with its context) instead of allocating its memory.
func TestConcurrencyBound(t *testing.T) {
	h := New(cheap)
	enc, _ := h.Hash(context.Background(), "pw")
	if cap(h.slots) != 2 {
		t.Fatalf("%d slots, want 2", cap(h.slots))
	}
	// Occupy both slots, as two hashes in progress would.
	h.slots <- struct{}{}
	h.slots <- struct{}{}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.Hash(ctx, "pw"); !errors.Is(err, context.Canceled) {
		t.Errorf("Hash with no free slot: %v, want context.Canceled", err)
	}
	if err := h.Verify(ctx, enc, "pw"); !errors.Is(err, context.Canceled) {
		t.Errorf("Verify with no free slot: %v, want context.Canceled", err)
	}
	// A waiting hash proceeds once a slot is released.
	done := make(chan error, 1)
	go func() { done <- h.Verify(context.Background(), enc, "pw") }()
	h.release()
	if err := <-done; err != nil {
		t.Errorf("Verify after a release: %v", err)
	}
	h.release()

	// Many at once all complete, and every slot is free afterwards.
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.Verify(context.Background(), enc, "pw"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	// Under contention a slot stays taken for a while after its hash (see
	// done); all are free again soon after.
	for deadline := time.Now().Add(10 * time.Second); len(h.slots) != 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if len(h.slots) != 0 {
		t.Errorf("%d slots still held", len(h.slots))
	}
}

// TestContendedSlotRests: a slot released while another hash waits stays
// taken for a while (hashing gets at most half its CPUs under a flood), and
// one released with nobody waiting is free at once.
func TestContendedSlotRests(t *testing.T) {
	h := New(Params{Memory: 64, Time: 1, Threads: 1, Concurrency: 1})
	enc, _ := h.Hash(context.Background(), "pw")
	if len(h.slots) != 0 {
		t.Fatalf("uncontended: %d slots held after the hash", len(h.slots))
	}
	h.slots <- struct{}{} // a hash in progress
	waiter := make(chan error, 1)
	go func() { waiter <- h.Verify(context.Background(), enc, "pw") }()
	for h.waiting.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	h.done(time.Now().Add(-time.Hour)) // the hash in progress ends, having taken "an hour"
	if len(h.slots) != 1 {
		t.Fatalf("the slot was released at once although a hash was waiting")
	}
	select {
	case err := <-waiter:
		t.Fatalf("the waiting hash ran before the slot's rest: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
}
