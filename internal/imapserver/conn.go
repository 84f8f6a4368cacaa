package imapserver

import (
	"crypto/tls"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/postern/postern/internal/netserver"
)

// Timeouts. go-imap adds its own: 30 s to finish a command, 30 s of silence
// before login and 35 min after it (RFC 9051 §5.4 asks for at least 30 min,
// IDLE included).
const (
	handshakeTimeout = 30 * time.Second
	// defaultLoginWindow bounds the whole unauthenticated phase, so that a
	// client cannot hold a connection open for ever with NOOPs and no login.
	defaultLoginWindow = 3 * time.Minute
)

// Limits on client input (docs/security.md), enforced by go-imap's
// decoder as it reads (imapserver.Limits): before anything is allocated for
// a literal, and before a command that broke one is run.
const (
	// maxLine caps one line and maxCommand the non-literal octets of one
	// command (its lines joined by literals); past either the client is
	// told BYE. RFC 7162 §4 asks servers to take lines of at least 8 KiB.
	maxLine    = 48 << 10
	maxCommand = 48 << 10
	// maxLiteralPreAuth bounds a literal before login: a user name or a
	// password fits easily (RFC 4616 fields are at most 255 octets).
	maxLiteralPreAuth = 8 << 10
)

// connState is one client connection: the socket, whose reads another
// goroutine can make fail (netserver.Revocable) so that the goroutine
// serving the connection says BYE and ends it, and what the session needs
// to know of it. go-imap serves it (ServeConn) directly, or through TLS.
type connState struct {
	*netserver.Revocable
	srv      *Server
	remoteIP netip.Addr
	// plainAuth: the client may send a password before TLS.
	plainAuth bool

	conn      atomic.Pointer[imapserver.Conn] // once go-imap serves it
	byeText   atomic.Pointer[string]          // set by end
	closeOnce sync.Once
}

func newConnState(s *Server, raw net.Conn) *connState {
	return &connState{
		Revocable: netserver.NewRevocable(raw),
		srv:       s,
		remoteIP:  netserver.RemoteIP(raw),
		plainAuth: s.cfg.Plaintext.Allows(raw.RemoteAddr(), false),
	}
}

// quickAck is netserver.QuickAck; tests watch it.
var quickAck = netserver.QuickAck

// connOf returns the connState go-imap's connection c serves.
func connOf(c *imapserver.Conn) *connState {
	nc := c.NetConn()
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	st, _ := nc.(*connState)
	return st
}

// logger returns the server's logger with the client's address. It is made
// when something is logged, which most connections never do: slog's With
// allocates a handler, a few per cent of a login's CPU when done for every
// connection.
func (st *connState) logger() *slog.Logger {
	return st.srv.log.With("remote", st.remoteIP.String())
}

// served records the go-imap connection, and hands it an end already
// asked for.
func (st *connState) served(c *imapserver.Conn) {
	st.conn.Store(c)
	if t := st.byeText.Load(); t != nil {
		c.SetTimeoutBye(*t)
	}
}

// end makes the connection say BYE with text and close, from any
// goroutine: its reads fail at once, its writes get a second
// (netserver.Revocable), and the goroutine serving it writes the BYE
// (RFC 9051 §7.1.5) between two responses. A connection still in its TLS
// handshake is just closed.
func (st *connState) end(text string) {
	st.byeText.Store(&text)
	if c := st.conn.Load(); c != nil {
		c.SetTimeoutBye(text)
	}
	st.Revoke()
}

// shutdown ends the connection when the server closes.
func (st *connState) shutdown() { st.end("Server shutting down") }

func (st *connState) close() {
	st.closeOnce.Do(func() {
		st.Revocable.Close()
		st.srv.conns.Untrack(st)
	})
}
