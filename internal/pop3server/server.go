// Package pop3server is Postern's POP3 server, written by hand: RFC 1939
// (the protocol), RFC 2449 (CAPA and extended response codes), RFC 2595
// (STLS) and RFC 5034 (AUTH, PLAIN only). It serves the member's INBOX from a
// mailstore.Store and authenticates through the one auth.Authenticator.
package pop3server

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"time"

	"github.com/postern/postern/internal/auth"
	"github.com/postern/postern/internal/mailstore"
	"github.com/postern/postern/internal/netserver"
	"github.com/postern/postern/internal/tlsconf"
)

// Timeouts. RFC 1939 §3: an autologout timer "MUST be of at least 10 minutes
// duration". Before authentication nothing is at stake for the client, so an
// idle connection is dropped sooner; this bounds what idle scanners can hold.
const (
	idleTimeout      = 10 * time.Minute
	preAuthTimeout   = 60 * time.Second
	writeTimeout     = 5 * time.Minute
	handshakeTimeout = 30 * time.Second
)

// Config is what the server needs; cmd/postern wires the concrete types.
type Config struct {
	Auth      auth.Authenticator
	Mail      mailstore.Store
	TLS       *tls.Config // nil: no STLS, no implicit TLS
	Plaintext tlsconf.Plaintext
	Log       *slog.Logger
	Hostname  string // shown in the greeting
	// Limits caps the connections of every listener together; over a cap
	// a connection is told refusal's -ERR and closed (closed at once on
	// implicit TLS).
	Limits netserver.Limits
}

// Server serves POP3 on any number of listeners.
type Server struct {
	cfg   Config
	conns *netserver.Group
	limit *netserver.Limiter
	ctx   context.Context // cancelled by Close: aborts store and auth calls
}

// New returns a server; call Serve for each listener.
func New(cfg Config) *Server {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "localhost"
	}
	if cfg.Plaintext == "" {
		cfg.Plaintext = tlsconf.PlaintextLoopback
	}
	log := cfg.Log.With("proto", "pop3")
	conns := netserver.New("pop3server", log)
	limit := netserver.NewLimiter("pop3server", cfg.Limits, log)
	return &Server{cfg: cfg, conns: conns, limit: limit, ctx: conns.Context()}
}

// Serve accepts connections on l until l fails or the server is closed. With
// implicitTLS (port 995, RFC 8314) every connection starts with a TLS
// handshake; otherwise it starts in clear and may upgrade with STLS. It
// returns nil after Close (at once when called after it) and the accept
// error otherwise.
func (s *Server) Serve(l net.Listener, implicitTLS bool) error {
	if implicitTLS && s.cfg.TLS == nil {
		return errors.New("pop3server: implicit TLS needs a TLS config")
	}
	r := refusal
	if implicitTLS {
		// The client's first expectation is a TLS handshake, to which an
		// -ERR in clear is garbage; completing one for a connection that is
		// to be refused would spend the CPU and the goroutine the caps save.
		r = netserver.Refusal{}
	}
	return s.conns.Serve(s.limit.Listener(l, r), func(c net.Conn) { s.handle(c, implicitTLS) })
}

// refusal is what a connection over a cap of Config.Limits is told in place
// of the greeting before the close: SYS/TEMP, a temporary problem of the
// server, not of the client's account (RFC 3206 §4).
var refusal = netserver.Refusal{
	PerAddr: "-ERR [SYS/TEMP] Too many connections from your address, try again later\r\n",
	Total:   "-ERR [SYS/TEMP] Too many connections, try again later\r\n",
}

// Close stops every listener, closes every connection without entering the
// UPDATE state (nothing is deleted, RFC 1939 §6), and waits for the sessions.
func (s *Server) Close() error { return s.conns.Close() }

// handle runs one connection from greeting to close.
func (s *Server) handle(raw net.Conn, implicitTLS bool) {
	defer func() {
		// A bug in one session must not take the server down.
		if r := recover(); r != nil {
			connLogger(s.cfg.Log, raw, "").Error("pop3 session panic", "panic", r)
		}
	}()
	// Revocable: a revoked credential ends the session with a reply.
	raw = netserver.NewRevocable(raw)
	c := raw
	if implicitTLS {
		tc := tls.Server(raw, s.cfg.TLS)
		raw.SetDeadline(time.Now().Add(handshakeTimeout))
		if err := tc.HandshakeContext(s.ctx); err != nil {
			connLogger(s.cfg.Log, raw, "").Debug("pop3 TLS handshake failed", "err", err)
			return
		}
		raw.SetDeadline(time.Time{})
		c = tc
	}
	sess := newSession(s, raw, c, implicitTLS)
	sess.run()
}
