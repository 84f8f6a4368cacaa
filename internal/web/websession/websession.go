// Package websession declares the web sessions that the member web UI and
// its JSON API keep in the database. It is a package of its own, with no
// imports of ours, so that the store (internal/store/sqlstore) can implement
// Store without depending on the web package's templates and handlers.
package websession

import (
	"context"
	"time"
)

// Record is one signed-in browser or API client. The token in the cookie is
// never stored: IDHash is its SHA-256, so that a copy of the database does not
// let anyone take over a session.
type Record struct {
	IDHash []byte // SHA-256 of the 256-bit random token
	// PublicID names the session in the sessions list of the Security page
	// and the API: 128 random bits of its own, unrelated to the token, so
	// that nothing shown can be turned into a cookie.
	PublicID   string
	MemberID   int64
	CreatedAt  time.Time // for the absolute timeout
	LastSeenAt time.Time // for the idle timeout
	ReauthAt   time.Time // when the main password was last entered in this session
	CSRF       string    // the token that HTML forms of this session carry
	UserAgent  string
	IP         string
}

// Store keeps web sessions. Implementations return an error wrapping
// account.ErrNotFound from Get when there is no such session.
type Store interface {
	CreateWebSession(ctx context.Context, r Record) error
	WebSession(ctx context.Context, idHash []byte) (Record, error)
	// TouchWebSession moves last_seen_at forward (idle timeout).
	TouchWebSession(ctx context.Context, idHash []byte, at time.Time) error
	// ReauthWebSession records that the main password was just entered.
	ReauthWebSession(ctx context.Context, idHash []byte, at time.Time) error
	DeleteWebSession(ctx context.Context, idHash []byte) error
	// MemberWebSessions lists the member's sessions, the most recently
	// used first (the sessions list; expired ones are left to the caller).
	MemberWebSessions(ctx context.Context, memberID int64) ([]Record, error)
	// DeleteMemberWebSession signs out the member's session publicID; an
	// error wrapping account.ErrNotFound when the member has no such session
	// (another member's id included).
	DeleteMemberWebSession(ctx context.Context, memberID int64, publicID string) error
	// DeleteMemberWebSessions signs the member out everywhere except the
	// session keep (nil: everywhere); used when the main password changes.
	DeleteMemberWebSessions(ctx context.Context, memberID int64, keep []byte) (int64, error)
	// PruneWebSessions deletes sessions idle since before idleBefore or
	// created before createdBefore.
	PruneWebSessions(ctx context.Context, idleBefore, createdBefore time.Time) (int64, error)

	// PutReveal keeps a one-time view; it ends with its session.
	PutReveal(ctx context.Context, v Reveal) error
	// TakeReveal deletes the view id of the session sessionID and returns
	// it, whether or not it has expired (the caller checks ExpiresAt); an
	// error wrapping account.ErrNotFound when the session has no such view,
	// so that a view is shown at most once, on any node.
	TakeReveal(ctx context.Context, id string, sessionID []byte) (Reveal, error)
}

// Reveal is a one-time view of a secret just made for the member, such as a
// new third-party app password, for the page a form redirects to: the form's
// response carries no secret, and reloading the page cannot re-send the form.
type Reveal struct {
	ID        string // random; the only part of it in the page's URL
	SessionID []byte // IDHash of the web session it is bound to
	ExpiresAt time.Time
	// Sealed is the secret encrypted under a key derived from the session's
	// cookie token, which the store never holds.
	Sealed []byte
}
