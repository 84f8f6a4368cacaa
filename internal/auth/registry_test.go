package auth

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/events"
)

type fakeSession struct {
	name   string
	closed atomic.Int32
	ch     chan struct{}
}

func (s *fakeSession) close() {
	if s.closed.Add(1) == 1 {
		close(s.ch)
	}
}

func newTestRegistry(t *testing.T) (*Registry, *metrics) {
	t.Helper()
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return newRegistry(m, time.Now), m
}

func login(member int64, apID string) Login {
	return Login{Member: account.Member{ID: member}, Credential: account.Credential{AppPasswordID: apID}}
}

// waitClosed waits for the sessions in want to be closed and checks that the
// others stay open (the close funcs run on their own goroutine).
func waitClosed(t *testing.T, all []*fakeSession, want ...*fakeSession) {
	t.Helper()
	for _, s := range want {
		select {
		case <-s.ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("session %s not closed", s.name)
		}
	}
	// Give a wrongly closed session the same chance to show up: the close
	// funcs of one event run in order on one goroutine, and a second event
	// processed after it is a barrier.
	for _, s := range all {
		isWanted := false
		for _, w := range want {
			isWanted = isWanted || w == s
		}
		if !isWanted && s.closed.Load() != 0 {
			t.Errorf("session %s closed, should stay open", s.name)
		}
		if s.closed.Load() > 1 {
			t.Errorf("session %s closed %d times", s.name, s.closed.Load())
		}
	}
}

func TestRegistryClosesTheRightSessions(t *testing.T) {
	cases := []struct {
		name  string
		event account.Event
		want  []string
	}{
		{"app password deleted", account.Event{Kind: account.EventAppPasswordDeleted, MemberID: 1, AppPasswordID: "p1"}, []string{"p1-imap", "p1-pop3"}},
		{"password changed", account.Event{Kind: account.EventPasswordChanged, MemberID: 1}, []string{"main"}},
		{"setting changed", account.Event{Kind: account.EventSettingChanged, MemberID: 1}, []string{"main", "p1-imap", "p1-pop3", "p2"}},
		{"suspended", account.Event{Kind: account.EventMemberSuspended, MemberID: 1}, []string{"main", "p1-imap", "p1-pop3", "p2"}},
		{"other member", account.Event{Kind: account.EventSettingChanged, MemberID: 3}, nil},
		{"not a revocation", account.Event{Kind: account.EventAppPasswordCreated, MemberID: 1, AppPasswordID: "p1"}, nil},
		{"mail", account.Event{Kind: account.EventMailboxChanged, MemberID: 1, MailboxID: 4}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, m := newTestRegistry(t)
			bus := events.NewBus()
			defer bus.Subscribe(0, r.HandleEvent)()
			mk := func(name string, l Login, proto string) *fakeSession {
				s := &fakeSession{name: name, ch: make(chan struct{})}
				r.Track(l, proto, s.close)
				return s
			}
			all := []*fakeSession{
				mk("main", login(1, ""), IMAP),
				mk("p1-imap", login(1, "p1"), IMAP),
				mk("p1-pop3", login(1, "p1"), POP3),
				mk("p2", login(1, "p2"), SMTP),
				mk("other", login(2, ""), IMAP),
				mk("other-p1", login(2, "p1"), IMAP), // same id under another member cannot happen; still must not close
			}
			if got := testutil.ToFloat64(m.sessions.WithLabelValues(IMAP)); got != 4 {
				t.Errorf("imap gauge %v, want 4", got)
			}
			bus.Publish(c.event)
			bus.Publish(c.event) // a repeat closes nothing twice
			var want []*fakeSession
			for _, s := range all {
				for _, n := range c.want {
					if s.name == n {
						want = append(want, s)
					}
				}
			}
			waitClosed(t, all, want...)
		})
	}
}

func TestRegistryDoneAndGauge(t *testing.T) {
	r, m := newTestRegistry(t)
	s := &fakeSession{name: "s", ch: make(chan struct{})}
	done := r.Track(login(1, "p1"), CalDAV, s.close)
	if r.Len() != 1 || testutil.ToFloat64(m.sessions.WithLabelValues(CalDAV)) != 1 {
		t.Fatal("not tracked")
	}
	done()
	done() // idempotent
	if r.Len() != 0 || testutil.ToFloat64(m.sessions.WithLabelValues(CalDAV)) != 0 {
		t.Fatalf("after done: len %d gauge %v", r.Len(), testutil.ToFloat64(m.sessions.WithLabelValues(CalDAV)))
	}
	r.HandleEvent(account.Event{Kind: account.EventSettingChanged, MemberID: 1})
	time.Sleep(10 * time.Millisecond)
	if s.closed.Load() != 0 {
		t.Error("an ended session was closed")
	}
}

func TestRegistryClosesLateTrackAfterRevocation(t *testing.T) {
	r, _ := newTestRegistry(t)
	// The login was checked (generation taken) before the revocation was
	// published, and tracked after it.
	l := login(1, "p1")
	l.gen = r.generation()
	r.HandleEvent(account.Event{Kind: account.EventAppPasswordDeleted, MemberID: 1, AppPasswordID: "p1"})
	late := &fakeSession{name: "late", ch: make(chan struct{})}
	r.Track(l, IMAP, late.close)
	other := &fakeSession{name: "other-cred", ch: make(chan struct{})}
	l2 := login(1, "p2")
	l2.gen = l.gen
	r.Track(l2, IMAP, other.close)
	// A login checked after the revocation is not affected.
	fresh := &fakeSession{name: "fresh", ch: make(chan struct{})}
	l3 := login(1, "p1")
	l3.gen = r.generation()
	r.Track(l3, IMAP, fresh.close)
	waitClosed(t, []*fakeSession{late, other, fresh}, late)
}
