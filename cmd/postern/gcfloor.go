package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

// gcHeapFloor is the heap size below which serve's garbage collector does
// not start a cycle. With the default GOGC=100 a cycle starts when the heap
// has doubled since the last one; a server with a small live heap (a few
// MiB under imaptest's ten sessions) then collects hundreds of times a
// second, and GC was an eighth of the server's CPU per login cycle
// (docs/benchmarks.md). A larger live heap (thousands of connections)
// keeps GOGC=100: the floor raises the percentage only while twice the
// live heap is below it, so it costs at most this much memory. 32 MiB saved
// as much CPU as 64 did, and left the memory of 10,000 connections in IDLE
// as it was; 64 added 4 KiB per connection.
const gcHeapFloor = 32 << 20

// gcPercentMax bounds the percentage the floor sets (a nearly empty heap).
const gcPercentMax = 1000

// gcPercentFor returns the GOGC percentage that puts the next cycle at the
// floor, for a live heap of live bytes, or 100 when the doubling rule
// reaches the floor anyway.
func gcPercentFor(live, floor uint64) int {
	if live == 0 || 2*live >= floor {
		return 100
	}
	p := int((floor - live) * 100 / live)
	return min(max(p, 100), gcPercentMax)
}

// gcFloor keeps the GC percentage at gcPercentFor of the live heap: after
// every cycle (a finalizer, run by the runtime once an object is found
// unreachable, re-armed each time) it reads the live heap and sets the
// percentage for the next. Nothing is tuned when the operator set GOGC or
// GOMEMLIMIT. stop ends it.
type gcFloor struct {
	floor   uint64
	stopped atomic.Bool
	cycles  atomic.Int64 // cycles seen, for tests
	percent atomic.Int64 // the percentage set last
	sample  []metrics.Sample
}

func startGCFloor(floor uint64) *gcFloor {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return nil
	}
	g := &gcFloor{floor: floor, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	g.arm()
	return g
}

// sentinel is allocated to be collected: its finalizer marks a cycle. The
// pointer keeps it out of the tiny allocator, whose blocks several objects
// share (a finalizer there may never run).
type sentinel struct {
	_ *byte
	_ [24]byte
}

func (g *gcFloor) arm() {
	s := new(sentinel)
	runtime.SetFinalizer(s, func(*sentinel) { g.afterGC() })
}

func (g *gcFloor) afterGC() {
	if g.stopped.Load() {
		debug.SetGCPercent(100)
		return
	}
	g.cycles.Add(1)
	metrics.Read(g.sample)
	var live uint64
	if g.sample[0].Value.Kind() == metrics.KindUint64 {
		live = g.sample[0].Value.Uint64()
	}
	p := gcPercentFor(live, g.floor)
	if int64(p) != g.percent.Load() {
		debug.SetGCPercent(p)
		g.percent.Store(int64(p))
	}
	g.arm()
}

// stop gives the collector its default back at the next cycle.
func (g *gcFloor) stop() {
	if g != nil {
		g.stopped.Store(true)
	}
}
