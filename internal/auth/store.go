package auth

import (
	"context"
	"github.com/postern/postern/internal/account"
	"time"
)

// Store is the authentication state kept in the database, so that every
// process and node sees the same account counters and login records.
// internal/store/sqlstore implements it.
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
