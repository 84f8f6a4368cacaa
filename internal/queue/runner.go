package queue

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Attempt is one delivery attempt: a message to recipients of one domain.
type Attempt struct {
	From     string
	Rcpts    []string
	Domain   string
	Body     []byte
	SMTPUTF8 bool
	EightBit bool
}

// Outcome is what became of one recipient of an Attempt.
type Outcome struct {
	Rcpt      string
	Delivered bool
	Permanent bool   // failed for good: bounce
	Code      int    // the remote reply's code, 0 when there was none
	Enhanced  string // RFC 3463 status, e.g. "5.1.1"
	Text      string
	RemoteMTA string
}

// Deliverer delivers an Attempt and says what became of each recipient, in
// the order of Attempt.Rcpts.
type Deliverer interface {
	Deliver(ctx context.Context, a Attempt) []Outcome
}

// Schedule is when failed attempts are tried again and when the sender is
// told.
type Schedule struct {
	First       time.Duration // the wait after the first failure, doubling after each
	Max         time.Duration // the longest wait between attempts
	GiveUp      time.Duration // how long after arrival a message bounces
	DelayNotice time.Duration // how long after arrival the sender is told it is delayed
}

// DefaultSchedule: 1 minute doubling to 4 hours; a delay notice after 4
// hours and a bounce after 5 days, as Postfix's defaults do.
var DefaultSchedule = Schedule{First: time.Minute, Max: 4 * time.Hour, GiveUp: 5 * 24 * time.Hour, DelayNotice: 4 * time.Hour}

// wait is the pause after the attempts-th attempt failed.
func (s Schedule) wait(attempts int) time.Duration {
	d := s.First
	for i := 1; i < attempts && d < s.Max; i++ {
		d *= 2
	}
	return min(d, s.Max)
}

// Result classes, for metrics and logs.
const (
	ResultDelivered = "delivered"
	ResultDeferred  = "deferred"
	ResultBounced   = "bounced"
)

// Runner delivers the queue: it claims due recipients, hands each message
// and domain to the Deliverer, and settles the outcome. Run one per node;
// nodes share the work through the store's leases.
type Runner struct {
	Store     Store
	Deliverer Deliverer
	Hostname  string // the Reporting-MTA of DSNs and the domain of their Message-IDs
	Schedule  Schedule
	Workers   int // attempts at once, default 16
	// Lease is how long a claim lasts unless renewed (every third of it
	// while the attempt runs): when a node dies, another takes its
	// recipients over this long after its last renewal. Default 1 minute.
	Lease time.Duration
	Poll  time.Duration // how often the store is asked for due mail without a Wake, default 5 s
	Owner string        // this node's name in leases, default host, pid and a random part
	Log   *slog.Logger
	Now   func() time.Time
	// Result, when set, is called for every recipient's outcome with its
	// class (ResultDelivered, …).
	Result func(class string)

	once sync.Once
	wake chan struct{}
}

func (r *Runner) init() {
	r.once.Do(func() {
		r.wake = make(chan struct{}, 1)
		if r.Workers <= 0 {
			r.Workers = 16
		}
		if r.Lease <= 0 {
			r.Lease = time.Minute
		}
		if r.Poll <= 0 {
			r.Poll = 5 * time.Second
		}
		if r.Schedule == (Schedule{}) {
			r.Schedule = DefaultSchedule
		}
		if r.Owner == "" {
			host, _ := os.Hostname()
			r.Owner = fmt.Sprintf("%s/%d/%s", host, os.Getpid(), rand.Text()[:8])
		}
		if r.Log == nil {
			r.Log = slog.Default()
		}
		if r.Now == nil {
			r.Now = time.Now
		}
	})
}

// Wake makes the runner look for due mail now (after a submission).
func (r *Runner) Wake() {
	r.init()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends, then waits for the attempts under way.
func (r *Runner) Run(ctx context.Context) error {
	r.init()
	slots := make(chan struct{}, r.Workers)
	var wg sync.WaitGroup
	defer wg.Wait()
	backoff := time.Second
	for {
		free := r.Workers - len(slots)
		claimed := 0
		if free > 0 {
			claims, err := r.Store.ClaimDue(ctx, r.Owner, r.Now(), r.Lease, free)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				r.Log.Error("queue: claiming due mail", "err", err, "retry_in", backoff)
				if !sleep(ctx, backoff) {
					return nil
				}
				backoff = min(backoff*2, time.Minute)
				continue
			}
			backoff = time.Second
			for _, c := range claims {
				claimed += len(c.Recipients)
				slots <- struct{}{}
				wg.Add(1)
				go func() {
					defer func() { <-slots; wg.Done(); r.Wake() }()
					r.attempt(context.WithoutCancel(ctx), c)
				}()
			}
		}
		if claimed > 0 && claimed >= free {
			continue // more may be due
		}
		t := time.NewTimer(r.Poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-r.wake:
			t.Stop()
		case <-t.C:
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// attempt delivers one claim and settles it. An attempt outlives the
// runner's context: stopping the node lets the SMTP transaction under way
// finish rather than cut it (which would make the receiver's copy and our
// retry a duplicate).
func (r *Runner) attempt(ctx context.Context, c Claim) {
	log := r.Log.With("queue_id", c.Message.ID, "domain", c.Domain)
	body, err := r.Store.QueuedBody(ctx, c.Message.ID)
	if err != nil {
		log.Error("queue: reading a queued message", "err", err)
		return // the lease runs out and the recipients are tried again
	}
	a := Attempt{From: c.Message.From, Domain: c.Domain, Body: body, SMTPUTF8: c.Message.SMTPUTF8, EightBit: c.Message.EightBit}
	ids := make([]int64, 0, len(c.Recipients))
	for _, rc := range c.Recipients {
		a.Rcpts = append(a.Rcpts, rc.Address)
		ids = append(ids, rc.ID)
	}
	stop := r.keepLease(ctx, log, ids)
	outcomes := r.Deliverer.Deliver(ctx, a)
	stop()
	now := r.Now()
	var s Settlement
	var failed, delayed []reported
	for i, rc := range c.Recipients {
		o := Outcome{Rcpt: rc.Address, Enhanced: "4.4.0", Text: "no outcome from the delivery"}
		if i < len(outcomes) {
			o = outcomes[i]
		}
		class := ResultDeferred
		switch {
		case o.Delivered:
			class = ResultDelivered
			s.Delivered = append(s.Delivered, rc.ID)
		case o.Permanent || now.Sub(c.Message.CreatedAt) >= r.Schedule.GiveUp:
			class = ResultBounced
			s.Failed = append(s.Failed, rc.ID)
			failed = append(failed, reported{rc, o, !o.Permanent})
		default:
			s.Deferred = append(s.Deferred, Deferral{ID: rc.ID, NextAttempt: now.Add(r.Schedule.wait(rc.Attempts)), LastError: describe(o)})
			if !rc.DelayNotified && now.Sub(c.Message.CreatedAt) >= r.Schedule.DelayNotice {
				s.Notified = append(s.Notified, rc.ID)
				delayed = append(delayed, reported{rc, o, false})
			}
		}
		log.Info("queue: attempt", "rcpt", rc.Address, "attempt", rc.Attempts, "result", class,
			"code", o.Code, "status", o.Enhanced, "remote_mta", o.RemoteMTA, "reply", o.Text)
		if r.Result != nil {
			r.Result(class)
		}
	}
	if len(failed)+len(delayed) > 0 && c.Message.From != "" {
		sender, err := r.Store.QueueSender(ctx, c.Message.MemberID)
		if err != nil {
			log.Error("queue: reading the sender for a delivery report", "err", err)
			return
		}
		rep := report{Hostname: r.Hostname, Sender: sender, Arrival: c.Message.CreatedAt, Now: now, Original: body}
		if len(failed) > 0 {
			rep.Recipients, rep.Delayed = failed, false
			s.DSNs = append(s.DSNs, DSN{MemberID: sender.MemberID, Body: rep.build()})
		}
		if len(delayed) > 0 {
			rep.Recipients, rep.Delayed, rep.RetryUntil = delayed, true, c.Message.CreatedAt.Add(r.Schedule.GiveUp)
			s.DSNs = append(s.DSNs, DSN{MemberID: sender.MemberID, Body: rep.build()})
		}
	}
	if err := r.Store.Settle(ctx, r.Owner, s); err != nil {
		if errors.Is(err, ErrLeaseLost) {
			log.Warn("queue: the claim was lost during the attempt (another node or an operator took it)", "err", err)
			return
		}
		log.Error("queue: recording an attempt", "err", err)
	}
}

// keepLease renews the claim on ids every third of the lease until stop is
// called: an SMTP transaction may outlast a lease (a slow receiver has 10
// minutes to answer the final dot), and a live node must not be taken
// over.
func (r *Runner) keepLease(ctx context.Context, log *slog.Logger, ids []int64) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(r.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if err := r.Store.RenewLease(ctx, r.Owner, ids, r.Now().Add(r.Lease)); err != nil {
					log.Warn("queue: renewing a claim", "err", err)
				}
			}
		}
	}()
	return func() { close(done); <-finished }
}

// describe is an outcome as one line for operators and the next DSN.
func describe(o Outcome) string {
	s := o.Text
	if o.Code != 0 {
		s = fmt.Sprintf("%d %s %s", o.Code, o.Enhanced, o.Text)
	}
	if o.RemoteMTA != "" {
		s += " (" + o.RemoteMTA + ")"
	}
	return s
}
