package netserver

import (
	"net"
	"sync"
	"time"
)

// revokeGrace is how long a revoked session has to write its last reply.
const revokeGrace = time.Second

// Revocable is a connection that another goroutine can end politely: after
// Revoke, every read fails at once as a timeout (whatever deadline the
// session sets later) and writes get at most revokeGrace, so the session's
// goroutine wakes up, sees why and says so in its protocol (SMTP 421 4.7.0,
// POP3 -ERR [AUTH]) before it closes. Closing the socket instead would cut
// the client off without a word. Wrap the raw connection, below TLS: a TLS
// connection's deadlines are its transport's.
type Revocable struct {
	net.Conn

	mu      sync.Mutex
	revoked time.Time
}

// NewRevocable wraps c.
func NewRevocable(c net.Conn) *Revocable { return &Revocable{Conn: c} }

// Revoke makes pending and future reads fail and bounds writes.
func (r *Revocable) Revoke() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.revoked.IsZero() {
		r.revoked = time.Now()
	}
	r.Conn.SetReadDeadline(time.Unix(1, 0))
	r.Conn.SetWriteDeadline(r.revoked.Add(revokeGrace))
}

// Revoked reports whether Revoke was called.
func (r *Revocable) Revoked() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.revoked.IsZero()
}

func (r *Revocable) SetDeadline(t time.Time) error {
	if err := r.SetReadDeadline(t); err != nil {
		return err
	}
	return r.SetWriteDeadline(t)
}

func (r *Revocable) SetReadDeadline(t time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.revoked.IsZero() {
		t = time.Unix(1, 0)
	}
	return r.Conn.SetReadDeadline(t)
}

func (r *Revocable) SetWriteDeadline(t time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if limit := r.revoked.Add(revokeGrace); !r.revoked.IsZero() && (t.IsZero() || t.After(limit)) {
		t = limit
	}
	return r.Conn.SetWriteDeadline(t)
}
