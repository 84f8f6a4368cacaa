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

// victim and own are the account tags of the attacks below: a member under
// attack, and an account the attacker holds.
var victim, own = pairOf(-1), pairOf(-2)

// attempt runs one sequential attempt against the victim's account: Begin
// at now, then End with o once the wait has passed; it returns the wait and
// the time after it.
func attempt(t *testing.T, th Throttle, ip string, now time.Time, o Outcome, pair PairTag) (time.Duration, time.Time) {
	t.Helper()
	return attemptAs(t, th, ip, now, o, Tags{Pair: pair, Account: victim})
}

func attemptAs(t *testing.T, th Throttle, ip string, now time.Time, o Outcome, tags Tags) (time.Duration, time.Time) {
	t.Helper()
	addr := netip.MustParseAddr(ip)
	wait, ok := th.Begin(addr, now)
	if !ok {
		t.Fatalf("attempt from %s refused", ip)
	}
	now = now.Add(wait)
	th.End(addr, o, tags, now)
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
	th.End(netip.MustParseAddr("192.0.2.7"), Failed, Tags{Pair: pairOf(0)}, now.Add(before)) // fell out of the last 10: counts
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
		th.End(ip, Failed, Tags{Pair: pairOf(i)}, now.Add(waits[i]))
	}
	// The next sequential attempt carries the penalty of all 9.
	if w, _ := attempt(t, th, "192.0.2.50", now.Add(2*time.Minute), Failed, pairOf(99)); w != 15*time.Second {
		t.Errorf("after 8 parallel failures: %v", w)
	}
}

// TestThrottleCleanAddressNotSlowed: an address with no failure on record
// (an office behind NAT at 9:00, 64 phones reconnecting) is never delayed
// or refused, however many attempts it has in flight.
func TestThrottleCleanAddressNotSlowed(t *testing.T) {
	th := NewMemThrottle(ThrottleConfig{Backlog: 30 * time.Second})
	ip := netip.MustParseAddr("192.0.2.52")
	for round := range 3 {
		for i := range 500 {
			w, ok := th.Begin(ip, t0)
			if !ok || w != 0 {
				t.Fatalf("round %d: attempt %d of a burst from a clean address: wait %v, admitted %v", round, i+1, w, ok)
			}
		}
		for range 500 {
			th.End(ip, Succeeded, Tags{Account: pairOf(round)}, t0)
		}
	}
}

func TestThrottleBacklogRefuses(t *testing.T) {
	th := NewMemThrottle(ThrottleConfig{Backlog: 30 * time.Second})
	ip := netip.MustParseAddr("192.0.2.51")
	attempt(t, th, "192.0.2.51", t0, Failed, pairOf(1))
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

// TestThrottleSuccessForgivesOnlyItsAccount: a member's own typos are
// forgiven by their correct password; an attacker's guesses at a victim
// are not forgiven by the attacker's login to an account of their own.
func TestThrottleSuccessForgivesOnlyItsAccount(t *testing.T) {
	th := NewMemThrottle(ThrottleConfig{})
	now := t0
	for i := range 4 {
		_, now = attempt(t, th, "192.0.2.60", now, Failed, pairOf(i))
	}
	_, now = attemptAs(t, th, "192.0.2.60", now, Succeeded, Tags{Account: own})
	if w, _ := attempt(t, th, "192.0.2.60", now, Failed, pairOf(7)); w != 8*time.Second {
		t.Errorf("after a success for another account: %v, want 8s (5 failures on record)", w)
	}
	// The victim's correct password (the member behind the same NAT)
	// forgives the failures against the victim.
	_, now = attempt(t, th, "192.0.2.60", now, Succeeded, PairTag{})
	if w, _ := attempt(t, th, "192.0.2.60", now, Failed, pairOf(8)); w != 0 {
		t.Errorf("after the account's own success: %v", w)
	}

	// Mixed: two failures against the attacker's own account, three
	// against the victim; the own success takes off its two only.
	th = NewMemThrottle(ThrottleConfig{})
	now = t0
	for i := range 2 {
		_, now = attemptAs(t, th, "192.0.2.61", now, Failed, Tags{Pair: pairOf(10 + i), Account: own})
	}
	for i := range 3 {
		_, now = attempt(t, th, "192.0.2.61", now, Failed, pairOf(20+i))
	}
	_, now = attemptAs(t, th, "192.0.2.61", now, Succeeded, Tags{Account: own})
	if w, _ := attempt(t, th, "192.0.2.61", now, Failed, pairOf(30)); w != 4*time.Second {
		t.Errorf("3 victim failures left: %v, want 4s", w)
	}
}

// TestThrottleSprayNotForgiven: failures against more accounts than are
// attributed stay counted whatever succeeds.
func TestThrottleSprayNotForgiven(t *testing.T) {
	th := NewMemThrottle(ThrottleConfig{Base: time.Millisecond, Max: time.Second, Backlog: 24 * time.Hour})
	now := t0
	for i := range maxAttributed + 8 {
		_, now = attemptAs(t, th, "192.0.2.62", now, Failed, Tags{Pair: pairOf(i), Account: pairOf(1000 + i)})
	}
	for i := range maxAttributed + 8 {
		_, now = attemptAs(t, th, "192.0.2.62", now, Succeeded, Tags{Account: pairOf(1000 + i)})
	}
	if w, _ := th.Begin(netip.MustParseAddr("192.0.2.62"), now); w == 0 {
		t.Errorf("a spray over %d accounts was forgiven entirely", maxAttributed+8)
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
