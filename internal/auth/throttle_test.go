package auth

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

func pairOf(i int) PairTag {
	var p PairTag
	copy(p[:], fmt.Sprintf("%08d", i))
	return p
}

// attempt runs one sequential attempt: Begin at now, then End with o once
// the wait has passed; it returns the wait and the time after it.
func attempt(t *testing.T, th Throttle, ip string, now time.Time, o Outcome, pair PairTag) (time.Duration, time.Time) {
	t.Helper()
	addr := netip.MustParseAddr(ip)
	wait, ok := th.Begin(addr, now)
	if !ok {
		t.Fatalf("attempt from %s refused", ip)
	}
	now = now.Add(wait)
	th.End(addr, o, pair, now)
	return wait, now
}

func TestThrottleDelays(t *testing.T) {
	cfg := ThrottleConfig{}
	want := []time.Duration{0, 0, 2 * time.Second, 4 * time.Second, 8 * time.Second, 15 * time.Second, 15 * time.Second}
	for n, w := range want {
		if got := cfg.Delay(n); got != w {
			t.Errorf("Delay(%d) = %v, want %v", n, got, w)
		}
	}
}

func TestThrottleGrowsWithDistinctFailures(t *testing.T) {
	th := NewMemThrottle(ThrottleConfig{})
	now := t0
	var got []time.Duration
	for i := range 7 {
		var w time.Duration
		w, now = attempt(t, th, "192.0.2.1", now, Failed, pairOf(i))
		got = append(got, w)
		now = now.Add(time.Second) // the client's own round trip
	}
	want := []time.Duration{0, 0, 2 * time.Second, 4 * time.Second, 8 * time.Second, 15 * time.Second, 15 * time.Second}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("waits %v, want %v", got, want)
	}
	// Another IP is not affected.
	if w, _ := attempt(t, th, "192.0.2.2", now, Failed, pairOf(0)); w != 0 {
		t.Errorf("other IP waits %v", w)
	}
}

func TestThrottleStaleRetriesDoNotGrow(t *testing.T) {
	th := NewMemThrottle(ThrottleConfig{})
	now := t0
	// Two distinct failures: the penalty is 2 s from now on.
	_, now = attempt(t, th, "198.51.100.9", now, Failed, pairOf(1))
	_, now = attempt(t, th, "198.51.100.9", now, Failed, pairOf(2))
	for i := range 500 {
		w, after := attempt(t, th, "198.51.100.9", now, Failed, pairOf(1+i%2))
		if w != 2*time.Second {
			t.Fatalf("retry %d waits %v, want 2s", i, w)
		}
		now = after.Add(time.Second)
	}
	// A new wrong pair still raises it.
	_, now = attempt(t, th, "198.51.100.9", now, Failed, pairOf(3))
	if w, _ := attempt(t, th, "198.51.100.9", now.Add(time.Second), Failed, pairOf(3)); w != 4*time.Second {
		t.Errorf("after a new pair: %v, want 4s", w)
	}
}

func TestThrottleRemembersOnlyTheLastPairs(t *testing.T) {
	th := NewMemThrottle(ThrottleConfig{Base: time.Millisecond, Max: time.Hour, Backlog: 24 * time.Hour})
	now := t0
	for i := range 11 {
		_, now = attempt(t, th, "192.0.2.7", now, Failed, pairOf(i))
	}
	before, _ := th.Begin(netip.MustParseAddr("192.0.2.7"), now)
	th.End(netip.MustParseAddr("192.0.2.7"), Failed, pairOf(0), now.Add(before)) // fell out of the last 10: counts
	after, _ := th.Begin(netip.MustParseAddr("192.0.2.7"), now.Add(before))
	if after <= before {
		t.Errorf("pair older than the last 10 did not count: %v then %v", before, after)
	}
}

func TestThrottleKeys(t *testing.T) {
	same := [][2]string{
		{"192.0.2.1", "::ffff:192.0.2.1"},
		{"2001:db8:1:100::1", "2001:db8:1:1ff:ffff::2"},
		{"fe80::1%eth0", "fe80::1"},
	}
	for _, p := range same {
		if IPKey(netip.MustParseAddr(p[0])) != IPKey(netip.MustParseAddr(p[1])) {
			t.Errorf("%s and %s should share a key", p[0], p[1])
		}
	}
	differ := [][2]string{
		{"192.0.2.1", "192.0.2.2"},
		{"2001:db8:1:100::1", "2001:db8:1:200::1"},
	}
	for _, p := range differ {
		if IPKey(netip.MustParseAddr(p[0])) == IPKey(netip.MustParseAddr(p[1])) {
			t.Errorf("%s and %s should not share a key", p[0], p[1])
		}
	}
}

func TestThrottleMappedAndSlash56ShareState(t *testing.T) {
	for _, c := range [][2]string{{"::ffff:203.0.113.5", "203.0.113.5"}, {"2001:db8:aa:bb00::1", "2001:db8:aa:bbff:1234::9"}} {
		th := NewMemThrottle(ThrottleConfig{})
		now := t0
		for i := range 3 {
			_, now = attempt(t, th, c[0], now, Failed, pairOf(i))
		}
		if w, _ := attempt(t, th, c[1], now, Failed, pairOf(9)); w != 4*time.Second {
			t.Errorf("%s after 3 failures from %s waits %v, want 4s", c[1], c[0], w)
		}
	}
}

func TestThrottleParallelCannotBypass(t *testing.T) {
	th := NewMemThrottle(ThrottleConfig{Backlog: time.Hour})
	ip := netip.MustParseAddr("192.0.2.50")
	// One failure puts the address on record; then 8 connections start an
	// attempt at the same instant: they are spaced out as 8 sequential
	// failures would be.
	_, now := attempt(t, th, "192.0.2.50", t0, Failed, pairOf(100))
	var waits []time.Duration
	for range 8 {
		w, ok := th.Begin(ip, now)
		if !ok {
			t.Fatal("refused")
		}
		waits = append(waits, w)
	}
	want := []time.Duration{0, 2, 6, 14, 29, 44, 59, 74}
	for i := range want {
		want[i] *= time.Second
	}
	if fmt.Sprint(waits) != fmt.Sprint(want) {
		t.Fatalf("parallel waits %v, want %v", waits, want)
	}
	for i := range 8 {
		th.End(ip, Failed, pairOf(i), now.Add(waits[i]))
	}
	// The next sequential attempt carries the penalty of all 9.
	if w, _ := attempt(t, th, "192.0.2.50", now.Add(2*time.Minute), Failed, pairOf(99)); w != 15*time.Second {
		t.Errorf("after 8 parallel failures: %v", w)
	}
}

// TestThrottleBurstFromCleanAddress: a client that has not failed may open
// several connections at once (Thunderbird, an office behind NAT) without
// delay; beyond the burst they are spaced out all the same.
func TestThrottleBurstFromCleanAddress(t *testing.T) {
	th := NewMemThrottle(ThrottleConfig{Backlog: time.Hour})
	ip := netip.MustParseAddr("192.0.2.52")
	var waits []time.Duration
	for range 16 {
		w, ok := th.Begin(ip, t0)
		if !ok {
			t.Fatal("refused")
		}
		waits = append(waits, w)
	}
	for i, w := range waits[:10] {
		if w != 0 {
			t.Errorf("attempt %d of a burst from a clean address waits %v", i+1, w)
		}
	}
	if waits[15] == 0 {
		t.Errorf("16 parallel attempts from one address were not spaced out: %v", waits)
	}
}

func TestThrottleBacklogRefuses(t *testing.T) {
	th := NewMemThrottle(ThrottleConfig{Backlog: 30 * time.Second})
	ip := netip.MustParseAddr("192.0.2.51")
	refused := 0
	for range 20 {
		if _, ok := th.Begin(ip, t0); !ok {
			refused++
		}
	}
	if refused == 0 {
		t.Fatal("20 parallel attempts never reached the backlog limit")
	}
}

func TestThrottleSuccessClears(t *testing.T) {
	th := NewMemThrottle(ThrottleConfig{})
	now := t0
	for i := range 4 {
		_, now = attempt(t, th, "192.0.2.60", now, Failed, pairOf(i))
	}
	_, now = attempt(t, th, "192.0.2.60", now, Succeeded, PairTag{})
	if w, _ := attempt(t, th, "192.0.2.60", now, Failed, pairOf(7)); w != 0 {
		t.Errorf("after a success: %v", w)
	}
}

func TestThrottleForgetsAndIsBounded(t *testing.T) {
	th := NewMemThrottle(ThrottleConfig{Entries: 3, Forget: time.Hour})
	now := t0
	for i := range 3 {
		_, now = attempt(t, th, "192.0.2.70", now, Failed, pairOf(i))
	}
	if w, _ := attempt(t, th, "192.0.2.70", now.Add(2*time.Hour), Failed, pairOf(9)); w != 0 {
		t.Errorf("after the forget time: %v", w)
	}
	for i := range 10 {
		attempt(t, th, fmt.Sprintf("198.51.100.%d", i), now, Failed, pairOf(i))
	}
	if n := th.Len(); n != 3 {
		t.Errorf("table holds %d entries, cap 3", n)
	}
}
