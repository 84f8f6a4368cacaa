package main

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestGCPercentFor(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		live uint64
		want int
	}{
		{0, 100},              // nothing read yet
		{1 * mib, 1000},       // capped
		{8 * mib, 700},        // next cycle at 64 MiB
		{16 * mib, 300},       // likewise
		{32 * mib, 100},       // doubling reaches the floor
		{500 * mib, 100},      // a large heap keeps the default
		{63 * mib / 2, 103},   // just below half: the next cycle at the floor
		{64*mib/11 - 1, 1000}, // the cap's edge
	} {
		if got := gcPercentFor(c.live, 64*mib); got != c.want {
			t.Errorf("live %d: %d, want %d", c.live, got, c.want)
		}
	}
}

// TestGCFloorFollowsCycles runs collections until the floor has seen one,
// and checks the percentage it set, then that stop gives the default back.
func TestGCFloorFollowsCycles(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	g := startGCFloor(1 << 40) // far above any test's heap: the cap
	if g == nil {
		t.Fatal("not started without GOGC and GOMEMLIMIT")
	}
	for i := 0; i < 1000 && g.cycles.Load() < 2; i++ {
		runtime.GC()
		runtime.Gosched()
	}
	if g.cycles.Load() < 2 {
		t.Fatalf("the finalizer saw %d cycles", g.cycles.Load())
	}
	if p := debug.SetGCPercent(-1); p != gcPercentMax {
		t.Errorf("GC percent %d, want %d", p, gcPercentMax)
	}
	debug.SetGCPercent(gcPercentMax)
	g.stop()
	n := g.cycles.Load()
	for i := 0; i < 1000; i++ {
		runtime.GC()
		runtime.Gosched()
		if p := debug.SetGCPercent(-1); p == 100 {
			debug.SetGCPercent(100)
			if g.cycles.Load() != n {
				t.Error("cycles counted after stop")
			}
			return
		} else {
			debug.SetGCPercent(p)
		}
	}
	t.Error("the default percentage was not restored after stop")
}

func TestGCFloorLeavesOperatorSettings(t *testing.T) {
	t.Setenv("GOGC", "200")
	if startGCFloor(gcHeapFloor) != nil {
		t.Error("started although GOGC is set")
	}
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "1GiB")
	if startGCFloor(gcHeapFloor) != nil {
		t.Error("started although GOMEMLIMIT is set")
	}
}
