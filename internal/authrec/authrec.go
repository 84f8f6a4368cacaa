// Package authrec declares what the authentication gateway (internal/auth)
// keeps in the database: the failure counters, the login records and the
// shared login penalties, with the store interfaces that
// internal/store/sqlstore implements. It is a package of its own, importing
// only account, so that the store implements them without depending on the
// gateway (internal/archtest checks that storage imports no front end).
package authrec

import (
	"context"
	"time"

	"github.com/postern/postern/internal/account"
)

// Store is the authentication state kept in the database, so that every
// process and node sees the same account counters and login records.
// internal/store/sqlstore implements it; internal/auth uses it.
type Store interface {
	// AuthState returns the member's failure counter and pause; the zero
	// AuthState when there is none.
	AuthState(ctx context.Context, memberID int64) (AuthState, error)
	// RecordAuthFailure counts one failed login of the member, atomically
	// across processes: a tag equal to one of the last RecentFailures tags
	// is not counted; otherwise the tag is remembered and the counter rises.
	// When it reaches limit, the member is paused until now+pause and the
	// counter starts again; Paused in the result is true for exactly that
	// failure. onPause (the member's message and event) is written in the
	// same transaction when no message went out in the last AlertEvery
	// (Alerted), so that it is sent once per attack, even on a crash; its
	// audit entries are written with every pause.
	// Failures while paused are not counted; a counter with no failure in
	// FailuresForget starts afresh.
	RecordAuthFailure(ctx context.Context, memberID int64, tag PairTag, now time.Time, limit int, pause time.Duration, onPause account.Effects) (FailureResult, error)
	// ResetAuthFailures forgets the member's failures and pause.
	ResetAuthFailures(ctx context.Context, memberID int64) error

	// AddLoginRecords appends records in one transaction. Records are never
	// changed afterwards (the audit log shows them).
	AddLoginRecords(ctx context.Context, recs []LoginRecord) error
	// PruneLoginRecords deletes records older than before.
	PruneLoginRecords(ctx context.Context, before time.Time) (int64, error)
}

// RecentFailures is how many failed secrets per account are remembered (as
// tags) so that their repetition does not count again.
const RecentFailures = 10

const (
	// FailuresForget: an account whose last failure is older starts its
	// count afresh, so that a year of a member's typos never pauses it.
	FailuresForget = 24 * time.Hour
	// AlertEvery: the member is told of an attack at most once in this time.
	AlertEvery = 24 * time.Hour
)

// AuthState is an account's failure counter.
type AuthState struct {
	Failures    int
	PausedUntil time.Time // zero: not paused
	Tags        []PairTag // the last failed tags, oldest first
}

// FailureResult says what RecordAuthFailure did.
type FailureResult struct {
	Counted     bool      // false: a repeat of a recent failure, or paused
	Failures    int       // the counter after this failure
	Paused      bool      // this failure started a pause
	Alerted     bool      // and its message was written (none in the last AlertEvery)
	PausedUntil time.Time // the pause in force, if any
}

// Protocols, as recorded in login records and "last used".
const (
	IMAP    = "imap"
	POP3    = "pop3"
	SMTP    = "smtp"
	CalDAV  = "caldav"
	CardDAV = "carddav"
	Web     = "web" // sign-ins and re-authentications of the member web UI and API (auth.Gateway.SignIn)
)

// Results of login records.
const (
	ResultOK    = "ok"
	ResultFail  = "fail"
	ResultError = "error" // temporary failure: store down, client gone
)

// LoginRecord is one third-party login attempt, kept 30 days for the
// member's and the operator's eyes. Never the secret.
type LoginRecord struct {
	At            time.Time
	MemberID      int64  // 0 when the user is unknown
	Username      string // as sent, clipped, without control characters
	Protocol      string
	Mechanism     string
	IP            string
	TLS           bool
	Result        string // ResultOK, ResultFail, ResultError
	Reason        string // for failures: "unknown-user", "bad-password", "policy", ...
	AppPasswordID string
	Client        string // Attempt.Client, clipped
}

// PairTag identifies a user+secret pair without holding the secret: the first
// 8 bytes of an HMAC under the server key (see auth.Gateway.pairTag).
type PairTag [8]byte

// ThrottleConfig tunes the login throttle (auth.MemThrottle and
// auth.SharedThrottle, whose shared part is PenaltyStore). Zero fields take the defaults, which
// follow Dovecot's auth penalty: no delay after the first failure, then
// 2 s, 4 s, 8 s, capped at 15 s.
type ThrottleConfig struct {
	Free    int           // failures without delay (default 1)
	Base    time.Duration // delay after Free+1 failures (default 2 s); doubles with each further one
	Max     time.Duration // cap of one attempt's delay (default 15 s)
	Backlog time.Duration // refuse unchecked when a client's queue reaches this far ahead (default 2 min)
	Forget  time.Duration // an IP block with no failure for this long starts afresh (default 30 min)
	Entries int           // most IP blocks kept; least recently used go first (default 100 000)
	Recent  int           // failed pairs remembered per IP block (default 10)
}

// WithDefaults returns c with its zero fields set to the defaults.
func (c ThrottleConfig) WithDefaults() ThrottleConfig {
	if c.Free <= 0 {
		c.Free = 1
	}
	if c.Base <= 0 {
		c.Base = 2 * time.Second
	}
	if c.Max <= 0 {
		c.Max = 15 * time.Second
	}
	if c.Backlog <= 0 {
		c.Backlog = 2 * time.Minute
	}
	if c.Forget <= 0 {
		c.Forget = 30 * time.Minute
	}
	if c.Entries <= 0 {
		c.Entries = 100_000
	}
	if c.Recent <= 0 {
		c.Recent = 10
	}
	return c
}

// Delay returns the delay of an attempt made after n penalised failures.
func (c ThrottleConfig) Delay(n int) time.Duration {
	c = c.WithDefaults()
	if n <= c.Free {
		return 0
	}
	d := c.Base
	for i := c.Free + 1; i < n && d < c.Max; i++ {
		d *= 2
	}
	return min(d, c.Max)
}

// PenaltyStore keeps the per-IP-block failure state that auth.SharedThrottle
// shares between nodes (internal/store/sqlstore implements it on
// PostgreSQL). Only blocks with a recent failure have a penalty, so that a
// login from a clean address costs one indexed lookup that finds nothing.
// key is auth.IPKey(ip).String() ("" for an unknown peer), or for the web's
// per-account schedule "web-account:" and a keyed tag of the address (see
// auth.Gateway.SignIn); cfg has its defaults filled in.
type PenaltyStore interface {
	// BeginPenalty schedules an attempt of a block that has a penalty (a
	// failure within cfg.Forget): it starts at max(the previous attempt's
	// start, now) + cfg.Delay(failures + attempts in flight). Admitted is
	// false, and nothing changes, when that start is more than cfg.Backlog
	// away; otherwise the attempt is counted in flight. Found is false when
	// the block has no penalty.
	BeginPenalty(ctx context.Context, key string, now time.Time, cfg ThrottleConfig) (PenaltyStart, error)
	// FailPenalty counts a failed attempt of the block (not again when pair
	// is one of its last cfg.Recent failures) and, with release, ends one
	// attempt in flight. The failure is also counted under acctKey (the
	// block's failures against one account), for ForgivePenalty.
	FailPenalty(ctx context.Context, key, acctKey string, pair PairTag, release bool, now time.Time, cfg ThrottleConfig) error
	// ForgivePenalty takes the failures counted under acctKey off the
	// block's penalty (a client there knows that account's secret) and
	// forgets the block when none are left.
	ForgivePenalty(ctx context.Context, key, acctKey string) error
	// ReleasePenalty ends one attempt in flight without an outcome.
	ReleasePenalty(ctx context.Context, key string) error
	// PrunePenalties deletes the penalties forgotten by now.
	PrunePenalties(ctx context.Context, now time.Time, cfg ThrottleConfig) (int64, error)
}

// PenaltyStart is what BeginPenalty decided.
type PenaltyStart struct {
	Found    bool
	Admitted bool
	Start    time.Time // when the attempt may be checked
}
