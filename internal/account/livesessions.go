package account

import (
	"context"
	"time"
)

// LiveSession is a live third-party session (IMAP, POP3, SMTP, CalDAV,
// CardDAV) on one of the nodes, as every node publishes its own
// (auth.Registry) and an administrator sees them.
type LiveSession struct {
	Node          string // the node that holds it
	ID            int64  // its number on the node
	MemberID      int64
	Protocol      string
	IP            string
	Client        string // what the client said it is (IMAP ID name), "" when nothing
	AppPasswordID string // "" for the main password
	AppName       string // the app password's name, when it still exists
	StartedAt     time.Time
}

// LiveSessionStore keeps the published sessions; *sqlstore.DB implements it.
type LiveSessionStore interface {
	// PublishSessions writes, in one transaction, the node's heartbeat at
	// at, deletes its sessions closed and inserts its sessions opened;
	// with full, every session of the node is deleted first (opened is
	// then all of them). It also deletes the nodes whose heartbeat is
	// older than staleBefore, with their sessions. known is false when
	// the node had no heartbeat row (first publication, or the row was
	// lost): the caller publishes in full next time.
	PublishSessions(ctx context.Context, node string, at, staleBefore time.Time, full bool, opened []LiveSession, closed []int64) (known bool, err error)
	// ForgetNode deletes the node's heartbeat and sessions (its shutdown).
	ForgetNode(ctx context.Context, node string) error
	// LiveSessionsOf lists the member's sessions of the nodes whose
	// heartbeat is at aliveAfter or later, oldest first.
	LiveSessionsOf(ctx context.Context, memberID int64, aliveAfter time.Time) ([]LiveSession, error)
}

// LiveSessionHeartbeat is how often a node writes its heartbeat at least;
// a node silent for LiveSessionTimeout is taken for dead, and its sessions
// are no longer listed.
const (
	LiveSessionHeartbeat = 30 * time.Second
	LiveSessionTimeout   = 3 * LiveSessionHeartbeat
)

// LiveSessions lists the member's live third-party sessions on every node,
// oldest first. Each node publishes its sessions about once a second: a
// session opened in the last seconds may be missing, one closed may still
// show. EndSessions closes them all, on every node.
func (s *Service) LiveSessions(ctx context.Context, m Member) ([]LiveSession, error) {
	ls, ok := s.store.(LiveSessionStore)
	if !ok {
		return nil, nil
	}
	return ls.LiveSessionsOf(ctx, m.ID, s.Now().Add(-LiveSessionTimeout))
}
