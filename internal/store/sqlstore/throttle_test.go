package sqlstore_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/internal/auth"
	"github.com/postern/postern/internal/authrec"
	"github.com/postern/postern/internal/store/sqlstore"
	"github.com/postern/postern/internal/store/storetest"
)

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// nodes returns n SharedThrottles on one PostgreSQL schema, each with its
// own connection pool: n nodes of one deployment.
func nodes(t *testing.T, n int, cfg authrec.ThrottleConfig) ([]*auth.SharedThrottle, *sqlstore.DB) {
	t.Helper()
	first := storetest.OpenPostgres(t)
	out := []*auth.SharedThrottle{auth.NewSharedThrottle(first, cfg, quietLog)}
	for len(out) < n {
		db, err := sqlstore.Open(context.Background(), first.DSN)
		if err != nil {
			t.Fatal(err)
		}
		db.SQL.SetMaxOpenConns(4)
		t.Cleanup(func() { db.Close() })
		out = append(out, auth.NewSharedThrottle(db, cfg, quietLog))
	}
	return out, first
}

// victim is the account tag of the failures below; a success for it
// forgives them.
var victim = tagOf(-1)

func failed(i int) auth.Tags { return auth.Tags{Pair: tagOf(i), Account: victim} }

func begin(t *testing.T, th auth.Throttle, ip string, now time.Time) time.Duration {
	t.Helper()
	w, ok := th.Begin(netip.MustParseAddr(ip), now)
	if !ok {
		t.Fatalf("attempt from %s refused", ip)
	}
	return w
}

// TestSharedThrottleAcrossNodes: sequential failures spread over three nodes
// get exactly the delays one node gives them (0, 0, 2, 4, 8, 15, 15 s).
func TestSharedThrottleAcrossNodes(t *testing.T) {
	ns, _ := nodes(t, 3, authrec.ThrottleConfig{})
	now := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	var got []time.Duration
	for i := range 7 {
		th := ns[i%3]
		w := begin(t, th, "192.0.2.1", now)
		now = now.Add(w)
		th.End(netip.MustParseAddr("192.0.2.1"), auth.Failed, failed(i), now)
		got = append(got, w)
		now = now.Add(time.Second)
	}
	want := []time.Duration{0, 0, 2 * time.Second, 4 * time.Second, 8 * time.Second, 15 * time.Second, 15 * time.Second}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("waits %v, want %v", got, want)
	}
	// IPv4-mapped IPv6 is the same client; another address is not affected.
	if w := begin(t, ns[1], "::ffff:192.0.2.1", now); w == 0 {
		t.Error("IPv4-mapped address escaped the penalty")
	}
	ns[1].End(netip.MustParseAddr("::ffff:192.0.2.1"), auth.Abandoned, auth.Tags{}, now)
	if w := begin(t, ns[2], "192.0.2.2", now); w != 0 {
		t.Errorf("clean address waits %v", w)
	}
	ns[2].End(netip.MustParseAddr("192.0.2.2"), auth.Succeeded, auth.Tags{Account: victim}, now)

	// A success for another account (the attacker's own) on one node
	// forgives nothing of the failures against the victim.
	now = now.Add(time.Minute)
	w := begin(t, ns[1], "192.0.2.1", now)
	ns[1].End(netip.MustParseAddr("192.0.2.1"), auth.Succeeded, auth.Tags{Account: tagOf(-2)}, now.Add(w))
	if w := begin(t, ns[2], "192.0.2.1", now.Add(time.Minute)); w != 15*time.Second {
		t.Errorf("after another account's success the block waits %v, want 15s", w)
	}
	ns[2].End(netip.MustParseAddr("192.0.2.1"), auth.Abandoned, auth.Tags{}, now.Add(time.Minute))

	// The victim's own success on one node forgives them for all.
	now = now.Add(2 * time.Minute)
	w = begin(t, ns[0], "192.0.2.1", now)
	ns[0].End(netip.MustParseAddr("192.0.2.1"), auth.Succeeded, auth.Tags{Account: victim}, now.Add(w))
	for _, th := range ns {
		if w := begin(t, th, "192.0.2.1", now.Add(time.Minute)); w != 0 {
			t.Errorf("after a success the block still waits %v", w)
		}
		th.End(netip.MustParseAddr("192.0.2.1"), auth.Succeeded, auth.Tags{Account: victim}, now.Add(time.Minute))
	}
}

// TestSharedThrottleRepeatsAndForget: a stale password retried on any node
// does not raise the penalty; a block quiet for Forget starts afresh.
func TestSharedThrottleRepeatsAndForget(t *testing.T) {
	ns, _ := nodes(t, 2, authrec.ThrottleConfig{Forget: 10 * time.Minute})
	now := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	ip := netip.MustParseAddr("2001:db8:1:2::7")
	for i := range 20 {
		th := ns[i%2]
		w := begin(t, th, ip.String(), now)
		now = now.Add(w)
		th.End(ip, auth.Failed, failed(1), now)
		now = now.Add(time.Second)
	}
	// The same pair twenty times is one failure: no delay yet. Another host
	// of the same /56 shares the entry.
	if w := begin(t, ns[0], "2001:db8:1:ff::1", now); w != 0 {
		t.Fatalf("stale retries raised the delay to %v", w)
	}
	ns[0].End(netip.MustParseAddr("2001:db8:1:ff::1"), auth.Failed, failed(2), now)
	if w := begin(t, ns[1], ip.String(), now.Add(time.Second)); w != 2*time.Second {
		t.Fatalf("second distinct failure: wait %v, want 2s", w)
	}
	ns[1].End(ip, auth.Abandoned, auth.Tags{}, now.Add(3*time.Second))
	now = now.Add(11 * time.Minute)
	if w := begin(t, ns[0], ip.String(), now); w != 0 {
		t.Errorf("forgotten block waits %v", w)
	}
	ns[0].End(ip, auth.Failed, failed(3), now)
	if w := begin(t, ns[1], ip.String(), now.Add(time.Second)); w != 0 {
		t.Errorf("one failure after forgetting: wait %v", w)
	}
}

// TestSharedThrottleParallel: parallel attempts of a penalised block on two
// nodes are spaced out as sequential failures would be, and refused once
// the queue reaches Backlog.
func TestSharedThrottleParallel(t *testing.T) {
	ns, db := nodes(t, 2, authrec.ThrottleConfig{Backlog: time.Minute})
	now := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	ip := netip.MustParseAddr("198.51.100.4")
	for i := range 3 {
		begin(t, ns[0], ip.String(), now)
		ns[0].End(ip, auth.Failed, failed(i), now)
	}
	var mu sync.Mutex
	var waits []time.Duration
	refused := 0
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, ok := ns[i%2].Begin(ip, now)
			mu.Lock()
			defer mu.Unlock()
			if !ok {
				refused++
				return
			}
			waits = append(waits, w)
		}()
	}
	wg.Wait()
	// After 3 failures the last start is 2 s from now; then 4, 8, 15, 15,
	// 15 s more: starts at 6, 14, 29, 44, 59 s; the next, 74 s, is past
	// the 60 s backlog.
	if len(waits) != 5 || refused != 7 {
		t.Fatalf("admitted %v, refused %d", waits, refused)
	}
	var longest time.Duration
	for _, w := range waits {
		longest = max(longest, w)
	}
	if longest != 59*time.Second {
		t.Errorf("waits %v: the last should start 59 s from now", waits)
	}
	// Attempts a dead node left in flight are ignored after a minute.
	later := now.Add(3 * time.Minute)
	th := auth.NewSharedThrottle(db, authrec.ThrottleConfig{}, quietLog)
	if w := begin(t, th, ip.String(), later); w != 4*time.Second {
		t.Errorf("after stale in-flight attempts: wait %v, want 4s", w)
	}
}

func TestPenaltiesNeedPostgres(t *testing.T) {
	db := storetest.OpenSQLite(t)
	if _, err := db.BeginPenalty(context.Background(), "192.0.2.1/32", time.Now(), authrec.ThrottleConfig{}); err == nil {
		t.Error("BeginPenalty worked on SQLite")
	}
}

// TestPenaltyPrune: forgotten penalties are deleted; recent ones stay.
func TestPenaltyPrune(t *testing.T) {
	db := storetest.OpenPostgres(t)
	ctx := context.Background()
	cfg := authrec.ThrottleConfig{Forget: time.Hour, Recent: 10}
	now := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	for i, at := range []time.Time{now.Add(-2 * time.Hour), now.Add(-time.Minute)} {
		key := fmt.Sprintf("192.0.2.%d/32", i)
		if err := db.FailPenalty(ctx, key, key+" account", tagOf(i), false, at, cfg); err != nil {
			t.Fatal(err)
		}
	}
	n, err := db.PrunePenalties(ctx, now, cfg)
	if err != nil || n != 2 { // the block's row and its account's
		t.Fatalf("pruned %d, %v", n, err)
	}
	if res, err := db.BeginPenalty(ctx, "192.0.2.1/32", now, cfg); err != nil || !res.Found {
		t.Errorf("recent penalty: %+v %v", res, err)
	}
}
