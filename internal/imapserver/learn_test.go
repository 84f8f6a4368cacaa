package imapserver

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/internal/mailstore"
	"github.com/postern/postern/internal/rspamd"
	"github.com/postern/postern/internal/rspamd/rspamdtest"
)

// fakeLearner records what it is taught; with gate set, each Learn first
// waits for a value on it.
type fakeLearner struct {
	got  chan lesson
	gate chan struct{}
}

type lesson struct {
	spam bool
	body string
}

func newFakeLearner() *fakeLearner { return &fakeLearner{got: make(chan lesson, 1000)} }

func (f *fakeLearner) Learn(ctx context.Context, spam bool, body []byte) error {
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.got <- lesson{spam, string(body)}
	return nil
}

// next returns the next lesson, failing after a while without one.
func (f *fakeLearner) next(t *testing.T) lesson {
	t.Helper()
	select {
	case l := <-f.got:
		return l
	case <-time.After(10 * time.Second):
		t.Fatal("no lesson")
		return lesson{}
	}
}

// none fails if a lesson comes.
func (f *fakeLearner) none(t *testing.T) {
	t.Helper()
	select {
	case l := <-f.got:
		t.Fatalf("unexpected lesson: spam=%v %q", l.spam, l.body)
	case <-time.After(200 * time.Millisecond):
	}
}

func deliverN(t *testing.T, e *env, n int) []string {
	t.Helper()
	var bodies []string
	for i := range n {
		b := fmt.Sprintf("From: x@example.org\r\nSubject: message %d\r\n\r\nbody %d\r\n", i+1, i+1)
		if err := e.mail.Deliver(context.Background(), e.member.ID, []byte(b)); err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, b)
	}
	return bodies
}

// TestJunkLearning: MOVE and COPY into Junk teach spam with the message's
// bytes; out of Junk teaches ham, except into Trash; filing between other
// mailboxes teaches nothing.
func TestJunkLearning(t *testing.T) {
	f := newFakeLearner()
	e := newEnv(t, envOptions{learner: f})
	bodies := deliverN(t, e, 3)
	c := dial(t, e.addr)
	c.login()
	c.ok("c", "CREATE Archive")
	c.ok("s", "SELECT INBOX")

	c.ok("m1", "UID MOVE 1 Junk")
	if l := f.next(t); !l.spam || l.body != bodies[0] {
		t.Fatalf("MOVE into Junk: %+v", l)
	}
	c.ok("c2", "UID COPY 2 Junk")
	if l := f.next(t); !l.spam || l.body != bodies[1] {
		t.Fatalf("COPY into Junk: %+v", l)
	}
	c.ok("c3", "UID COPY 3 Archive")
	f.none(t)

	c.ok("s2", "SELECT Junk") // message 1 is UID 1, message 2 UID 2
	c.ok("m2", "UID MOVE 1 INBOX")
	if l := f.next(t); l.spam || l.body != bodies[0] {
		t.Fatalf("MOVE out of Junk: %+v", l)
	}
	c.ok("m3", "UID COPY 2 Archive")
	if l := f.next(t); l.spam || l.body != bodies[1] {
		t.Fatalf("COPY out of Junk: %+v", l)
	}
	c.ok("m4", "UID MOVE 2 Trash")
	f.none(t)
	c.ok("s3", "SELECT Archive")
	c.ok("m5", "UID MOVE 1:* Trash")
	f.none(t)
	if learnt, failed, dropped := e.srv.LearnStats(); learnt != 4 || failed != 0 || dropped != 0 {
		t.Errorf("stats: learnt %d failed %d dropped %d", learnt, failed, dropped)
	}
}

// TestJunkLearningAfterExpunge: a client without MOVE copies into Junk and
// expunges the original before the learner gets to it; the copy is taught.
func TestJunkLearningAfterExpunge(t *testing.T) {
	f := newFakeLearner()
	f.gate = make(chan struct{})
	e := newEnv(t, envOptions{learner: f})
	bodies := deliverN(t, e, 2)
	c := dial(t, e.addr)
	c.login()
	c.ok("s", "SELECT INBOX")
	c.ok("c1", "UID COPY 1 Junk") // the learner holds this one at its gate
	c.ok("c2", "UID COPY 2 Junk")
	c.ok("d", `UID STORE 1:2 +FLAGS (\Deleted)`)
	c.ok("x", "EXPUNGE")
	for range 2 {
		select {
		case f.gate <- struct{}{}:
		case <-time.After(10 * time.Second):
			t.Fatal("the learner was not asked")
		}
	}
	for i := range 2 {
		if l := f.next(t); !l.spam || l.body != bodies[i] {
			t.Fatalf("lesson %d: %+v", i, l)
		}
	}
}

// TestJunkLearningQueueFull: a learner that does not answer never holds up
// the commands; what does not fit in the queue is dropped and counted.
func TestJunkLearningQueueFull(t *testing.T) {
	f := newFakeLearner()
	f.gate = make(chan struct{}) // never opened
	lr := newLearner(f, bodyStore{}, slog.New(slog.DiscardHandler))
	defer lr.close()
	jobs := make([]learnJob, learnQueue+100)
	done := make(chan struct{})
	go func() { lr.enqueue(jobs); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("enqueue blocked")
	}
	// The worker may have taken one job off the queue before blocking.
	if d := lr.dropped.Load(); d != 100 && d != 99 {
		t.Errorf("dropped %d, want 100 (or 99)", d)
	}
}

// bodyStore has a body for every message ID, and nothing else.
type bodyStore struct{ mailstore.Store }

func (bodyStore) Body(context.Context, int64) ([]byte, error) { return []byte("x"), nil }

// TestJunkLearningRspamd: MOVE into Junk teaches a real rspamd (Bayes on
// its own Redis) through internal/rspamd.
func TestJunkLearningRspamd(t *testing.T) {
	rs := rspamdtest.Start(t)
	cl, err := rspamd.New(rspamd.Config{URL: rs.CheckURL, ControllerURL: rs.ControllerURL, Password: rspamdtest.Password,
		Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{learner: cl})
	body := "From: x@example.org\r\nTo: alice@example.com\r\nSubject: Winner\r\nMessage-ID: <junk-learning@example.org>\r\n\r\n" +
		strings.Repeat("Congratulations winner claim your casino bonus prize now with this exclusive limited offer today. ", 3) + "\r\n"
	if err := e.mail.Deliver(context.Background(), e.member.ID, []byte(body)); err != nil {
		t.Fatal(err)
	}
	spam0, _ := rs.Learns(t)
	c := dial(t, e.addr)
	c.login()
	c.ok("s", "SELECT INBOX")
	c.ok("m", "UID MOVE 1 Junk")
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if spam, _ := rs.Learns(t); spam == spam0+1 {
			break
		}
		if time.Now().After(deadline) {
			learnt, failed, dropped := e.srv.LearnStats()
			t.Fatalf("rspamd learnt nothing (learnt %d failed %d dropped %d)\n%s", learnt, failed, dropped, rs.Log())
		}
	}
}
