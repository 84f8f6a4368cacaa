package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/internal/mailstore"
	"github.com/postern/postern/internal/queue"
	"github.com/postern/postern/internal/store/sqlstore"
)

// RunQueue runs the outbound queue's suite on a fresh database.
func RunQueue(t *testing.T, open func(testing.TB) *sqlstore.DB) {
	tests := []struct {
		name string
		fn   func(*testing.T, *MailEnv)
	}{
		{"SubmitOneTransaction", testQueueSubmit},
		{"ClaimAndSettle", testQueueClaimSettle},
		{"LeaseExpiry", testQueueLeaseExpiry},
		{"ConcurrentClaims", testQueueConcurrentClaims},
		{"WholeMessages", testQueueWholeMessages},
		{"OperatorActions", testQueueActions},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, NewMailEnv(t, open(t))) })
	}
}

func (e *MailEnv) submit(t testing.TB, member int64, local []mailstore.Delivery, rcpts ...string) {
	t.Helper()
	sub := mailstore.Submission{MemberID: member, AppPasswordID: "ap1", Local: local}
	if len(rcpts) > 0 {
		sub.Outbound = &mailstore.Outbound{From: "user@x.test", Rcpts: rcpts, Body: []byte("Subject: out\r\n\r\nhello\r\n"), EightBit: true}
	}
	if err := e.Mail.Submit(context.Background(), sub); err != nil {
		t.Fatal(err)
	}
}

// testQueueSubmit: local copies and the queued copy commit together; a
// local delivery that fails queues nothing.
func testQueueSubmit(t *testing.T, e *MailEnv) {
	ctx := context.Background()
	a, b := e.NewMember(t), e.NewMember(t)
	q := e.DB.Queue()
	e.submit(t, a, []mailstore.Delivery{{MemberID: b, Body: []byte("local copy")}}, "x@remote.example", "Y@Other.example")
	wantEq(t, "b's INBOX", e.Bodies(t, e.Box(t, b, "INBOX").ID), []string{"local copy"})
	list, err := q.QueueEntries(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("entries %+v, %v", list, err)
	}
	m := list[0]
	wantEq(t, "sender", m.Message.MemberID, a)
	wantEq(t, "app password", m.Message.AppPasswordID, "ap1")
	wantEq(t, "8bit", m.Message.EightBit, true)
	wantEq(t, "size", m.Size, int64(len("Subject: out\r\n\r\nhello\r\n")))
	wantEq(t, "recipients", len(m.Recipients), 2)
	wantEq(t, "domain lower-cased", m.Recipients[1].Domain, "other.example")
	wantEq(t, "address kept", m.Recipients[1].Address, "Y@Other.example")

	// A delivery to a member that does not exist fails the whole submission.
	err = e.Mail.Submit(ctx, mailstore.Submission{MemberID: a, Local: []mailstore.Delivery{{MemberID: 1 << 40, Body: []byte("x")}},
		Outbound: &mailstore.Outbound{From: "a@x", Rcpts: []string{"z@remote.example"}, Body: []byte("x")}})
	if err == nil {
		t.Fatal("a submission with a failing local copy succeeded")
	}
	if list, _ := q.QueueEntries(ctx); len(list) != 1 {
		t.Fatalf("the failed submission queued something: %+v", list)
	}
	s, err := q.QueueStats(ctx)
	if err != nil || s.Recipients != 2 || s.Held != 0 || s.Oldest.IsZero() {
		t.Errorf("stats %+v, %v", s, err)
	}
}

// testQueueClaimSettle: a claim groups by message and domain; settling
// removes the delivered and failed, defers the rest, and delivers the DSN.
func testQueueClaimSettle(t *testing.T, e *MailEnv) {
	ctx := context.Background()
	a := e.NewMember(t)
	q := e.DB.Queue()
	e.submit(t, a, nil, "one@remote.example", "two@remote.example", "three@other.example")
	now := time.Now()
	claims, err := q.ClaimDue(ctx, "node-a", now, time.Minute, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(claims) != 2 || len(claims[0].Recipients)+len(claims[1].Recipients) != 3 {
		t.Fatalf("claims %+v", claims)
	}
	byDomain := map[string]queue.Claim{}
	for _, c := range claims {
		byDomain[c.Domain] = c
		wantEq(t, "message", c.Message.MemberID, a)
		if c.Recipients[0].Attempts != 1 {
			t.Errorf("attempts %d", c.Recipients[0].Attempts)
		}
	}
	body, err := q.QueuedBody(ctx, claims[0].Message.ID)
	if err != nil || string(body) != "Subject: out\r\n\r\nhello\r\n" {
		t.Fatalf("body %q, %v", body, err)
	}
	// Claimed: nobody else gets them.
	if again, err := q.ClaimDue(ctx, "node-b", now, time.Minute, 100); err != nil || len(again) != 0 {
		t.Fatalf("claimed twice: %+v, %v", again, err)
	}
	r := byDomain["remote.example"].Recipients
	other := byDomain["other.example"].Recipients[0]
	// Another node cannot settle them.
	if err := q.Settle(ctx, "node-b", queue.Settlement{Delivered: []int64{r[0].ID}}); !errors.Is(err, queue.ErrLeaseLost) {
		t.Fatalf("settle by another node: %v", err)
	}
	next := now.Add(time.Hour)
	err = q.Settle(ctx, "node-a", queue.Settlement{
		Delivered: []int64{r[0].ID},
		Failed:    []int64{r[1].ID},
		Deferred:  []queue.Deferral{{ID: other.ID, NextAttempt: next, LastError: "451 4.3.0 later"}},
		Notified:  []int64{other.ID},
		DSNs:      []queue.DSN{{MemberID: a, Body: []byte("Subject: bounce\r\n\r\nfailed\r\n")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	wantEq(t, "DSN in the INBOX", e.Bodies(t, e.Box(t, a, "INBOX").ID), []string{"Subject: bounce\r\n\r\nfailed\r\n"})
	list, _ := q.QueueEntries(ctx)
	if len(list) != 1 || len(list[0].Recipients) != 1 {
		t.Fatalf("left %+v", list)
	}
	left := list[0].Recipients[0]
	if left.ID != other.ID || left.LastError != "451 4.3.0 later" || !left.DelayNotified || !left.NextAttempt.Equal(next.Truncate(time.Microsecond)) {
		t.Errorf("deferred %+v", left)
	}
	// Not due before its time; due after, with its lease free.
	if c, _ := q.ClaimDue(ctx, "node-b", now.Add(30*time.Minute), time.Minute, 100); len(c) != 0 {
		t.Errorf("claimed before its time: %+v", c)
	}
	c, err := q.ClaimDue(ctx, "node-b", next, time.Minute, 100)
	if err != nil || len(c) != 1 || c[0].Recipients[0].Attempts != 2 {
		t.Fatalf("due claim %+v, %v", c, err)
	}
	if err := q.Settle(ctx, "node-b", queue.Settlement{Delivered: []int64{other.ID}}); err != nil {
		t.Fatal(err)
	}
	if list, _ := q.QueueEntries(ctx); len(list) != 0 {
		t.Errorf("a delivered message stays: %+v", list)
	}
	if s, _ := q.QueueStats(ctx); s.Recipients != 0 || !s.Oldest.IsZero() {
		t.Errorf("stats of an empty queue %+v", s)
	}
}

// testQueueLeaseExpiry: a node that dies holding a claim loses it when the
// lease runs out; its late settlement is refused.
func testQueueLeaseExpiry(t *testing.T, e *MailEnv) {
	ctx := context.Background()
	a := e.NewMember(t)
	q := e.DB.Queue()
	e.submit(t, a, nil, "one@remote.example")
	now := time.Now()
	c, err := q.ClaimDue(ctx, "dead", now, time.Minute, 10)
	if err != nil || len(c) != 1 {
		t.Fatalf("%+v, %v", c, err)
	}
	if c2, _ := q.ClaimDue(ctx, "alive", now.Add(59*time.Second), time.Minute, 10); len(c2) != 0 {
		t.Fatal("taken over before the lease ended")
	}
	// A renewal keeps it; only the owner renews.
	ids := []int64{c[0].Recipients[0].ID}
	if err := q.RenewLease(ctx, "dead", ids, now.Add(90*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := q.RenewLease(ctx, "alive", ids, now.Add(time.Hour)); !errors.Is(err, queue.ErrLeaseLost) {
		t.Fatalf("renewed by another node: %v", err)
	}
	if c2, _ := q.ClaimDue(ctx, "alive", now.Add(89*time.Second), time.Minute, 10); len(c2) != 0 {
		t.Fatal("taken over before the renewed lease ended")
	}
	c2, err := q.ClaimDue(ctx, "alive", now.Add(91*time.Second), time.Minute, 10)
	if err != nil || len(c2) != 1 {
		t.Fatalf("not taken over: %+v, %v", c2, err)
	}
	id := c[0].Recipients[0].ID
	if err := q.Settle(ctx, "dead", queue.Settlement{Failed: []int64{id}, DSNs: []queue.DSN{{MemberID: a, Body: []byte("x")}}}); !errors.Is(err, queue.ErrLeaseLost) {
		t.Fatalf("late settlement: %v", err)
	}
	if got := e.Bodies(t, e.Box(t, a, "INBOX").ID); len(got) != 0 {
		t.Fatalf("a refused settlement delivered its DSN: %q", got)
	}
	if err := q.Settle(ctx, "alive", queue.Settlement{Delivered: []int64{id}}); err != nil {
		t.Fatal(err)
	}
}

// testQueueConcurrentClaims: claimers running together never get the same
// recipient.
func testQueueConcurrentClaims(t *testing.T, e *MailEnv) {
	ctx := context.Background()
	a := e.NewMember(t)
	q := e.DB.Queue()
	var rcpts []string
	for i := range 60 {
		rcpts = append(rcpts, fmt.Sprintf("r%d@remote.example", i))
	}
	for i := 0; i < 60; i += 6 {
		e.submit(t, a, nil, rcpts[i:i+6]...)
	}
	var mu sync.Mutex
	seen := map[int64]string{}
	var wg sync.WaitGroup
	now := time.Now()
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := fmt.Sprintf("node-%d", w)
			for {
				claims, err := q.ClaimDue(ctx, owner, now, time.Hour, 4)
				if err != nil {
					t.Error(err)
					return
				}
				if len(claims) == 0 {
					return
				}
				mu.Lock()
				for _, c := range claims {
					for _, r := range c.Recipients {
						if prev, dup := seen[r.ID]; dup {
							t.Errorf("recipient %d claimed by %s and %s", r.ID, prev, owner)
						}
						seen[r.ID] = owner
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	wantEq(t, "claimed", len(seen), 60)
}

// testQueueActions: hold keeps recipients from claims, release and retry
// make them due now, delete removes the message.
func testQueueActions(t *testing.T, e *MailEnv) {
	ctx := context.Background()
	a := e.NewMember(t)
	q := e.DB.Queue()
	e.submit(t, a, nil, "one@remote.example", "two@remote.example")
	e.submit(t, a, nil, "three@remote.example")
	list, _ := q.QueueEntries(ctx)
	first, second := list[0].Message.ID, list[1].Message.ID
	now := time.Now()
	if n, err := q.QueueAct(ctx, queue.Hold, []int64{first}, now); err != nil || n != 2 {
		t.Fatalf("hold: %d, %v", n, err)
	}
	c, _ := q.ClaimDue(ctx, "n", now, time.Minute, 10)
	if len(c) != 1 || c[0].Message.ID != second {
		t.Fatalf("held recipients claimed: %+v", c)
	}
	if s, _ := q.QueueStats(ctx); s.Held != 2 || s.Recipients != 3 {
		t.Errorf("stats %+v", s)
	}
	if n, err := q.QueueAct(ctx, queue.Release, []int64{first}, now); err != nil || n != 2 {
		t.Fatalf("release: %d, %v", n, err)
	}
	if c, _ := q.ClaimDue(ctx, "n", now, time.Minute, 10); len(c) != 1 || c[0].Message.ID != first {
		t.Fatalf("released recipients not claimed: %+v", c)
	}
	e1, err := q.QueueEntry(ctx, first)
	if err != nil || len(e1.Recipients) != 2 || e1.Recipients[0].Held {
		t.Fatalf("entry %+v, %v", e1, err)
	}
	if n, err := q.QueueAct(ctx, queue.Delete, []int64{first}, now); err != nil || n != 2 {
		t.Fatalf("delete: %d, %v", n, err)
	}
	if _, err := q.QueueEntry(ctx, first); err == nil {
		t.Fatal("a deleted message is still there")
	}
	if n, err := q.QueueAct(ctx, queue.Retry, nil, now.Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("retry all: %d, %v", n, err)
	}
}

// testQueueWholeMessages: the limit counts messages, and a message's due
// recipients are claimed together.
func testQueueWholeMessages(t *testing.T, e *MailEnv) {
	ctx := context.Background()
	a := e.NewMember(t)
	q := e.DB.Queue()
	e.submit(t, a, nil, "one@remote.example", "two@remote.example", "three@remote.example")
	e.submit(t, a, nil, "four@remote.example")
	c, err := q.ClaimDue(ctx, "n", time.Now(), time.Minute, 1)
	if err != nil || len(c) != 1 || len(c[0].Recipients) != 3 {
		t.Fatalf("claim of one message: %+v, %v", c, err)
	}
	c, err = q.ClaimDue(ctx, "n", time.Now(), time.Minute, 5)
	if err != nil || len(c) != 1 || len(c[0].Recipients) != 1 || c[0].Recipients[0].Address != "four@remote.example" {
		t.Fatalf("second claim: %+v, %v", c, err)
	}
}
