package auth

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/postern/postern/internal/account"
)

// touchStore records TouchAppPasswords calls, in the service's place.
type touchStore struct {
	mu    sync.Mutex
	calls []string
}

func (s *touchStore) TouchAppPasswords(ctx context.Context, uses []account.Touch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range uses {
		if u.NotBefore.Equal(u.At.Add(-time.Minute)) {
			s.calls = append(s.calls, u.ID+" "+u.Protocol+" "+u.IP)
		}
	}
	return nil
}

func newTestRecorder(t *testing.T, buffer int) (*recorder, *touchStore, *metrics) {
	t.Helper()
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ts := &touchStore{}
	r := newRecorder(nil, ts, slog.New(slog.NewTextHandler(io.Discard, nil)), m, time.Now, time.Hour, 200, buffer, time.Hour)
	return r, ts, m
}

func TestTouchAtMostOncePerMinute(t *testing.T) {
	r, ts, _ := newTestRecorder(t, 1)
	now := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	r.touch("a", IMAP, "192.0.2.1", now)
	r.touch("a", POP3, "192.0.2.2", now.Add(30*time.Second)) // within the minute: not even queued
	r.touch("b", SMTP, "192.0.2.3", now.Add(30*time.Second))
	r.touch("a", CalDAV, "192.0.2.4", now.Add(61*time.Second))
	if n := len(r.touches.buf); n != 3 {
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

// TestSuccessfulLoginsCoalesced: a successful third-party login is recorded
// once a minute per member, credential, protocol and address; failures and
// web sign-ins always are.
func TestSuccessfulLoginsCoalesced(t *testing.T) {
	r, _, m := newTestRecorder(t, 100)
	now := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	ok := func(d time.Duration, proto, ip, ap string) LoginRecord {
		return LoginRecord{At: now.Add(d), MemberID: 7, Protocol: proto, IP: ip, AppPasswordID: ap, Result: ResultOK}
	}
	for _, rec := range []LoginRecord{
		ok(0, IMAP, "192.0.2.1", "a"),             // recorded
		ok(time.Second, IMAP, "192.0.2.1", "a"),   // the same within the minute
		ok(2*time.Second, IMAP, "192.0.2.1", "a"), // again
		ok(3*time.Second, IMAP, "192.0.2.2", "a"), // another address: recorded
		ok(4*time.Second, POP3, "192.0.2.1", "a"), // another protocol: recorded
		ok(5*time.Second, IMAP, "192.0.2.1", "b"), // another app password: recorded
		{At: now, MemberID: 7, Protocol: IMAP, IP: "192.0.2.1", AppPasswordID: "", Result: ResultFail},
		{At: now, MemberID: 7, Protocol: IMAP, IP: "192.0.2.1", AppPasswordID: "", Result: ResultFail},
		{At: now, MemberID: 7, Protocol: Web, IP: "192.0.2.1", Result: ResultOK},
		{At: now, MemberID: 7, Protocol: Web, IP: "192.0.2.1", Result: ResultOK},
		ok(61*time.Second, IMAP, "192.0.2.1", "a"), // a minute later: recorded
	} {
		r.add(rec)
	}
	if n := len(r.records.buf); n != 9 {
		t.Errorf("%d records queued, want 9", n)
	}
	if got := testutil.ToFloat64(m.recordsCoalesced); got != 2 {
		t.Errorf("coalesced %v, want 2", got)
	}
}

// TestRecentSetBounded: past recentMax keys a minute nothing more is
// remembered, so every further key counts as new; a minute later there is
// room again.
func TestRecentSetBounded(t *testing.T) {
	var s recentSet
	now := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	for i := range recentMax + 10 {
		if s.seen(fmt.Sprint(i), now) {
			t.Fatalf("key %d seen before", i)
		}
	}
	if len(s.cur) != recentMax {
		t.Errorf("%d keys held, want %d", len(s.cur), recentMax)
	}
	if s.seen(fmt.Sprint(recentMax+5), now) {
		t.Error("a key that could not be remembered was reported as seen")
	}
	if !s.seen("0", now.Add(30*time.Second)) {
		t.Error("a remembered key was not seen")
	}
	if s.seen("new", now.Add(70*time.Second)) || !s.seen("new", now.Add(71*time.Second)) {
		t.Error("no room a minute later")
	}
	if !s.seen("1", now.Add(59*time.Second)) {
		t.Error("a key of the previous minute was forgotten within its minute")
	}
	if s.seen("1", now.Add(61*time.Second)) {
		t.Error("a key was seen more than a minute after it was remembered")
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
