package auth

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/postern/postern/internal/account"
)

// touchStore records TouchAppPassword calls; the other account.Store methods
// are not used by the recorder.
type touchStore struct {
	account.Store
	mu    sync.Mutex
	calls []string
}

func (s *touchStore) TouchAppPassword(ctx context.Context, id string, at time.Time, protocol, ip string, notBefore time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !notBefore.Equal(at.Add(-time.Minute)) {
		return nil
	}
	s.calls = append(s.calls, id+" "+protocol+" "+ip)
	return nil
}

func newTestRecorder(t *testing.T, buffer int) (*recorder, *touchStore, *metrics) {
	t.Helper()
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ts := &touchStore{}
	r := &recorder{accounts: ts, log: slog.New(slog.NewTextHandler(io.Discard, nil)), m: m, now: time.Now,
		interval: time.Hour, batch: 200, retention: time.Hour,
		records: make(chan LoginRecord, buffer), touches: make(chan touch, 16),
		touched: map[string]time.Time{}, stop: make(chan struct{})}
	return r, ts, m
}

func TestTouchAtMostOncePerMinute(t *testing.T) {
	r, ts, _ := newTestRecorder(t, 1)
	now := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	r.touch("a", IMAP, "192.0.2.1", now)
	r.touch("a", POP3, "192.0.2.2", now.Add(30*time.Second)) // within the minute: not even queued
	r.touch("b", SMTP, "192.0.2.3", now.Add(30*time.Second))
	r.touch("a", CalDAV, "192.0.2.4", now.Add(61*time.Second))
	if n := len(r.touches); n != 3 {
		t.Fatalf("%d touches queued, want 3", n)
	}
	r.done.Add(1)
	go r.touchLoop()
	close(r.stop)
	r.done.Wait()
	want := []string{"a imap 192.0.2.1", "b smtp 192.0.2.3", "a caldav 192.0.2.4"}
	if len(ts.calls) != 3 || ts.calls[0] != want[0] || ts.calls[1] != want[1] || ts.calls[2] != want[2] {
		t.Errorf("touches %v, want %v", ts.calls, want)
	}
}

func TestRecordsDropWhenFull(t *testing.T) {
	r, _, m := newTestRecorder(t, 2)
	for range 5 {
		r.add(LoginRecord{Protocol: IMAP})
	}
	if got := testutil.ToFloat64(m.recordsDropped); got != 3 {
		t.Errorf("dropped %v, want 3", got)
	}
}

func TestCleanUsername(t *testing.T) {
	long := ""
	for range 200 {
		long += "é"
	}
	cases := map[string]string{
		"Alice@Example.com":           "Alice@Example.com",
		"a\r\nBcc: x@y\x00\x7f\u0085": "aBcc: x@y",
		"bad\xffutf8":                 "bad\uFFFDutf8",
		long:                          long[:256], // 128 two-byte runes
	}
	for in, want := range cases {
		if got := cleanUsername(in); got != want {
			t.Errorf("cleanUsername(%q) = %q, want %q", in, got, want)
		}
	}
}
