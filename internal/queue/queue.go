// Package queue is Postern's outbound mail queue: the messages members
// submitted to other domains, stored in the database in the transaction
// that accepted them, and the Runner that delivers them — any node may,
// each recipient claimed with a lease — retries what failed temporarily on
// a back-off schedule, and writes delivery status notifications (RFC 3464)
// into the sender's INBOX: a delay notice once, a bounce when a recipient
// fails for good. It knows no store and no SMTP client of ours: it declares
// the Store and the Deliverer it needs, and cmd/postern adapts them.
package queue

import (
	"context"
	"errors"
	"time"
)

// ErrLeaseLost is Settle's refusal when a claimed recipient is no longer
// the caller's: its lease ran out and another node took it, or an operator
// deleted it. Nothing of the settlement is written; the other party's
// outcome stands.
var ErrLeaseLost = errors.New("queue: the claim on a recipient was lost")

// Message is a queued message.
type Message struct {
	ID            int64
	MemberID      int64  // the sender
	AppPasswordID string // the app password it was submitted with, "" for the main password
	From          string // the envelope sender
	Body          []byte // as it leaves: trace fields and DKIM signatures included
	SMTPUTF8      bool
	EightBit      bool
	CreatedAt     time.Time
}

// Recipient is one recipient of a queued message, waiting for delivery.
type Recipient struct {
	ID            int64
	MessageID     int64
	Address       string
	Domain        string
	Held          bool // an administrator holds it: never attempted until released
	Attempts      int
	NextAttempt   time.Time
	LastError     string // the last attempt's reply or failure, for operators and the DSN
	DelayNotified bool
}

// Entry is a message and its waiting recipients, as operators list them.
type Entry struct {
	Message    Message // Body left out of lists
	Size       int64
	Recipients []Recipient
}

// Claim is a set of recipients of one message in one domain that a runner
// leased for an attempt.
type Claim struct {
	Message    Message // without Body
	Domain     string
	Recipients []Recipient
}

// Sender is what a DSN needs to know of the member it goes to.
type Sender struct {
	MemberID int64
	Email    string
	Language string // "" or "en": English; "ja": Japanese
}

// Store keeps the queue. Every method that ends a claim checks the lease
// is still the caller's (owner), so a node that was presumed dead and woke
// up late cannot undo another node's work.
type Store interface {
	// ClaimDue leases up to limit due, unheld recipients whose lease is
	// free or expired, grouped by message and domain.
	ClaimDue(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]Claim, error)
	// RenewLease extends the owner's claim on ids to until, while an
	// attempt is under way; ErrLeaseLost when one is no longer the owner's.
	RenewLease(ctx context.Context, owner string, ids []int64, until time.Time) error
	// QueuedBody returns a queued message's body.
	QueuedBody(ctx context.Context, messageID int64) ([]byte, error)
	// Settle ends an attempt for the claimed recipients in one transaction:
	// delivered and failed ones are removed (the message with its last
	// recipient), deferred ones get their next attempt and last error, and
	// each DSN is delivered into its member's INBOX.
	Settle(ctx context.Context, owner string, s Settlement) error
	// QueueSender returns the member who sent a message, for its DSNs.
	QueueSender(ctx context.Context, memberID int64) (Sender, error)

	// Operators' view and actions (postern queue …).
	QueueEntries(ctx context.Context) ([]Entry, error)
	QueueEntry(ctx context.Context, messageID int64) (Entry, error)
	// QueueAct applies an action to the recipients of the messages ids (all
	// messages when ids is empty): retry now, hold, release, delete. It
	// returns how many recipients it changed.
	QueueAct(ctx context.Context, act Action, ids []int64, now time.Time) (int, error)
	QueueStats(ctx context.Context) (Stats, error)
}

// Settlement is the outcome of one attempt.
type Settlement struct {
	Delivered []int64
	Failed    []int64
	Deferred  []Deferral
	Notified  []int64 // deferred recipients a delay notice was sent for
	DSNs      []DSN
}

// Deferral is a recipient to try again.
type Deferral struct {
	ID          int64
	NextAttempt time.Time
	LastError   string
}

// DSN is a report to deliver into a member's INBOX.
type DSN struct {
	MemberID int64
	Body     []byte
}

// Action is what an operator does to queued recipients.
type Action string

const (
	Retry   Action = "retry"
	Hold    Action = "hold"
	Release Action = "release"
	Delete  Action = "delete"
)

// Stats are the queue's figures for metrics.
type Stats struct {
	Recipients int       // waiting, held included
	Held       int       // held by an operator
	Oldest     time.Time // the oldest queued message's arrival; zero when empty
}
