package queue_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-message"
	"github.com/postern/postern/internal/mailstore"
	"github.com/postern/postern/internal/queue"
	"github.com/postern/postern/internal/store/storetest"
)

// scripted answers each recipient as its local part says: ok, bounce,
// later.
type scripted struct {
	mu       sync.Mutex
	attempts []queue.Attempt
}

func (s *scripted) Deliver(ctx context.Context, a queue.Attempt) []queue.Outcome {
	s.mu.Lock()
	s.attempts = append(s.attempts, a)
	s.mu.Unlock()
	var out []queue.Outcome
	for _, r := range a.Rcpts {
		o := queue.Outcome{Rcpt: r, RemoteMTA: "mx." + a.Domain}
		switch {
		case strings.HasPrefix(r, "ok"):
			o.Delivered, o.Code, o.Enhanced, o.Text = true, 250, "2.0.0", "OK"
		case strings.HasPrefix(r, "bounce"):
			o.Permanent, o.Code, o.Enhanced, o.Text = true, 550, "5.1.1", "No such user\r\nX-Injected: yes"
		default:
			o.Code, o.Enhanced, o.Text = 451, "4.3.0", "Try later"
		}
		out = append(out, o)
	}
	return out
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type rig struct {
	env    *storetest.MailEnv
	q      queue.Store
	sender int64
	clock  *clock
	deliv  *scripted
	runner *queue.Runner
}

func newRig(t *testing.T, lang string) *rig {
	db := storetest.OpenSQLite(t)
	env := storetest.NewMailEnv(t, db)
	// The clock runs a second ahead: what is submitted now is due at once.
	r := &rig{env: env, q: db.Queue(), sender: env.NewMember(t), clock: &clock{now: time.Now().Add(time.Second)}, deliv: &scripted{}}
	if lang != "" {
		if err := db.SetLanguage(context.Background(), r.sender, lang); err != nil {
			t.Fatal(err)
		}
	}
	r.runner = &queue.Runner{Store: r.q, Deliverer: r.deliv, Hostname: "mail.here.test", Now: r.clock.Now,
		Poll: 10 * time.Millisecond, Log: quiet()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.runner.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

func (r *rig) submit(t *testing.T, rcpts ...string) {
	t.Helper()
	body := "From: <user@here.test>\r\nTo: someone\r\nSubject: Quarterly figures\r\nMessage-ID: <orig@here.test>\r\n\r\nThe figures.\r\n"
	err := r.env.Mail.Submit(context.Background(), mailstore.Submission{MemberID: r.sender,
		Outbound: &mailstore.Outbound{From: "user@here.test", Rcpts: rcpts, Body: []byte(body)}})
	if err != nil {
		t.Fatal(err)
	}
	r.runner.Wake()
}

// waitQueue waits until the queue holds want recipients and no attempt is
// under way (every lease free).
func (r *rig) waitQueue(t *testing.T, want int) []queue.Recipient {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		list, err := r.q.QueueEntries(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var rs []queue.Recipient
		for _, e := range list {
			rs = append(rs, e.Recipients...)
		}
		if len(rs) == want {
			settled := true
			for _, x := range rs {
				settled = settled && x.LastError != ""
			}
			if settled || want == 0 {
				return rs
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue holds %+v, want %d settled recipients", rs, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// inbox returns the sender's INBOX messages.
func (r *rig) inbox(t *testing.T) []string {
	return r.env.Bodies(t, r.env.Box(t, r.sender, "INBOX").ID)
}

// TestRunnerOutcomes: per recipient, a delivery is removed, a permanent
// failure bounces as an RFC 3464 report in the sender's INBOX, a temporary
// one waits for its next attempt.
func TestRunnerOutcomes(t *testing.T) {
	r := newRig(t, "")
	start := r.clock.Now()
	r.submit(t, "ok@far.example", "bounce@far.example", "later@far.example")
	left := r.waitQueue(t, 1)
	if left[0].Address != "later@far.example" || left[0].LastError != "451 4.3.0 Try later (mx.far.example)" ||
		!left[0].NextAttempt.Equal(start.Add(time.Minute).Truncate(time.Microsecond)) || left[0].Attempts != 1 {
		t.Errorf("deferred %+v", left[0])
	}
	if n := len(r.deliv.attempts); n != 1 || len(r.deliv.attempts[0].Rcpts) != 3 || r.deliv.attempts[0].Domain != "far.example" {
		t.Fatalf("attempts %+v", r.deliv.attempts)
	}
	msgs := r.inbox(t)
	if len(msgs) != 1 {
		t.Fatalf("INBOX holds %d messages, want the bounce", len(msgs))
	}
	parts := parseReport(t, msgs[0])
	if !strings.Contains(parts.subject, "Undelivered mail returned to sender") || !strings.Contains(parts.human, "<bounce@far.example>") ||
		strings.Contains(parts.human, "later@") || strings.Contains(parts.human, "ok@") {
		t.Errorf("human part:\n%s", parts.human)
	}
	for _, want := range []string{"Reporting-MTA: dns; mail.here.test", "Final-Recipient: rfc822; bounce@far.example", "Action: failed",
		"Status: 5.1.1", "Remote-MTA: dns; mx.far.example", "Diagnostic-Code: smtp; 550 5.1.1 No such user  X-Injected: yes"} {
		if !strings.Contains(parts.status, want) {
			t.Errorf("delivery-status lacks %q:\n%s", want, parts.status)
		}
	}
	if strings.Contains(parts.status, "\r\nX-Injected") {
		t.Error("a remote reply added a field to the report")
	}
	if !strings.Contains(parts.headers, "Message-ID: <orig@here.test>") || strings.Contains(parts.headers, "The figures") {
		t.Errorf("original headers part:\n%s", parts.headers)
	}

	// Not tried again before its time; then again, a minute's wait doubled.
	r.clock.add(59 * time.Second)
	r.runner.Wake()
	time.Sleep(50 * time.Millisecond)
	if n := len(r.deliv.attempts); n != 1 {
		t.Fatalf("tried again before its time: %d attempts", n)
	}
	r.clock.add(time.Second)
	r.runner.Wake()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		left = r.waitQueue(t, 1)
		if left[0].Attempts == 2 && left[0].LastError != "" && left[0].NextAttempt.After(r.clock.Now()) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no second attempt: %+v", left)
		}
	}
	if want := r.clock.Now().Add(2 * time.Minute).Truncate(time.Microsecond); !left[0].NextAttempt.Equal(want) {
		t.Errorf("second wait: next %v, want %v", left[0].NextAttempt, want)
	}
}

// TestRunnerDelayAndGiveUp: after the delay-notice time the sender is told
// once, in their language; after the give-up time the recipient bounces.
func TestRunnerDelayAndGiveUp(t *testing.T) {
	r := newRig(t, "ja")
	r.runner.Schedule = queue.Schedule{First: time.Minute, Max: time.Hour, GiveUp: 48 * time.Hour, DelayNotice: 4 * time.Hour}
	r.submit(t, "later@slow.example")
	r.waitQueue(t, 1)
	if len(r.inbox(t)) != 0 {
		t.Fatal("a report before the delay-notice time")
	}
	r.clock.add(5 * time.Hour)
	r.runner.Wake()
	left := waitFor(t, r, func(rs []queue.Recipient) bool { return len(rs) == 1 && rs[0].DelayNotified })
	_ = left
	msgs := r.inbox(t)
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want the delay notice", len(msgs))
	}
	p := parseReport(t, msgs[0])
	if !strings.Contains(p.subject, "配信が遅れているメール") || !strings.Contains(p.status, "Action: delayed") ||
		!strings.Contains(p.status, "Will-Retry-Until:") || !strings.Contains(p.human, "まで再試行します") {
		t.Errorf("delay notice:\n%s\n%s\n%s", p.subject, p.human, p.status)
	}
	// Another failed attempt: no second notice.
	r.clock.add(2 * time.Hour)
	r.runner.Wake()
	waitFor(t, r, func(rs []queue.Recipient) bool {
		return len(rs) == 1 && rs[0].Attempts >= 3 && rs[0].NextAttempt.After(r.clock.Now())
	})
	if n := len(r.inbox(t)); n != 1 {
		t.Fatalf("%d messages after another attempt, want still 1", n)
	}
	// Past the give-up time: a bounce, and the queue is empty.
	r.clock.add(48 * time.Hour)
	r.runner.Wake()
	r.waitQueue(t, 0)
	msgs = r.inbox(t)
	if len(msgs) != 2 {
		t.Fatalf("%d messages, want the bounce too", len(msgs))
	}
	p = parseReport(t, msgs[1])
	if !strings.Contains(p.subject, "配信できなかったメールの返送") || !strings.Contains(p.status, "Action: failed") ||
		!strings.Contains(p.status, "Status: 4.3.0") || !strings.Contains(p.human, "断念しました") {
		t.Errorf("bounce after giving up:\n%s\n%s\n%s", p.subject, p.human, p.status)
	}
}

func waitFor(t *testing.T, r *rig, ok func([]queue.Recipient) bool) []queue.Recipient {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		list, err := r.q.QueueEntries(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var rs []queue.Recipient
		for _, e := range list {
			rs = append(rs, e.Recipients...)
		}
		if ok(rs) {
			return rs
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue never reached the state: %+v", rs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type reportParts struct{ subject, human, status, headers string }

// parseReport reads a DSN with go-message, as a mail program would.
func parseReport(t *testing.T, raw string) reportParts {
	t.Helper()
	m, err := message.Read(bytes.NewReader([]byte(raw)))
	if err != nil {
		t.Fatalf("parse report: %v\n%s", err, raw)
	}
	var p reportParts
	dec := new(mime.WordDecoder)
	p.subject, _ = dec.DecodeHeader(m.Header.Get("Subject"))
	ct, params, _ := m.Header.ContentType()
	if ct != "multipart/report" || params["report-type"] != "delivery-status" || m.Header.Get("Auto-Submitted") != "auto-replied" {
		t.Fatalf("report header: %s %v", ct, params)
	}
	mr := m.MultipartReader()
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(part.Body)
		pct, _, _ := part.Header.ContentType()
		switch pct {
		case "text/plain":
			p.human = string(b)
		case "message/delivery-status":
			p.status = string(b)
		case "text/rfc822-headers":
			p.headers = string(b)
		}
	}
	if p.human == "" || p.status == "" || p.headers == "" {
		t.Fatalf("a part is missing: %+v", p)
	}
	return p
}

// slow holds every attempt until released, counting attempts.
type slow struct {
	mu       sync.Mutex
	attempts int
	release  chan struct{}
}

func (s *slow) Deliver(ctx context.Context, a queue.Attempt) []queue.Outcome {
	s.mu.Lock()
	s.attempts++
	s.mu.Unlock()
	<-s.release
	out := make([]queue.Outcome, len(a.Rcpts))
	for i, r := range a.Rcpts {
		out[i] = queue.Outcome{Rcpt: r, Delivered: true, Code: 250}
	}
	return out
}

// TestRunnerKeepsItsLease: an attempt that outlasts the lease keeps its
// claim by renewing it, so a second node never delivers the same message
// at the same time.
func TestRunnerKeepsItsLease(t *testing.T) {
	db := storetest.OpenSQLite(t)
	env := storetest.NewMailEnv(t, db)
	sender := env.NewMember(t)
	q := db.Queue()
	d := &slow{release: make(chan struct{})}
	var runners []*queue.Runner
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range 2 {
		r := &queue.Runner{Store: q, Deliverer: d, Hostname: "h", Lease: 300 * time.Millisecond, Poll: 20 * time.Millisecond,
			Owner: fmt.Sprintf("node-%d", i), Log: quiet()}
		runners = append(runners, r)
		wg.Add(1)
		go func() { defer wg.Done(); r.Run(ctx) }()
	}
	err := env.Mail.Submit(context.Background(), mailstore.Submission{MemberID: sender,
		Outbound: &mailstore.Outbound{From: "u@h", Rcpts: []string{"x@far.example"}, Body: []byte("Subject: x\r\n\r\nx\r\n")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range runners {
		r.Wake()
	}
	time.Sleep(1500 * time.Millisecond) // five leases
	d.mu.Lock()
	n := d.attempts
	d.mu.Unlock()
	close(d.release)
	if n != 1 {
		t.Errorf("%d attempts while the first was under way, want 1", n)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if list, _ := q.QueueEntries(context.Background()); len(list) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not settled")
		}
	}
	cancel()
	wg.Wait()
}
