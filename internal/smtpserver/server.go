// Package smtpserver is Postern's mail submission server (RFC 6409): SMTP on
// the submission ports, STARTTLS (RFC 3207) or implicit TLS (RFC 8314), AUTH
// PLAIN and LOGIN (RFC 4954) through the one auth gateway, and delivery of the
// authenticated member's mail to local members' INBOX.
//
// The protocol engine is written here rather than taken from go-smtp's
// server: go-smtp v0.25.1 hard-codes replies that RFC 4954 and the security
// checklist require otherwise (454 instead of 501 5.5.2 for bad base64, 500
// 5.4.0 and a hang-up instead of 500 5.5.6 for a long AUTH line, 502 instead
// of 503 for MAIL before EHLO, 523 instead of 538 before TLS), decides
// AllowInsecureAuth per server instead of per remote address, and passes bare
// LF through DATA. Its client is used by the tests.
package smtpserver

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/auth"
	"github.com/postern/postern/internal/mailstore"
	"github.com/postern/postern/internal/netserver"
	"github.com/postern/postern/internal/tlsconf"
)

// MemberLookup finds recipients. *sqlstore.DB implements it. Both methods
// return an error wrapping account.ErrNotFound (code ENOTFOUND) when the row
// does not exist; any other error is temporary.
type MemberLookup interface {
	MemberByEmail(ctx context.Context, email string) (account.Member, error)
	// DomainByName tells a local domain (deliver or 550 5.1.1) from a
	// foreign one (550 5.7.1: this server does not relay).
	DomainByName(ctx context.Context, name string) (account.Domain, error)
}

// Defaults of the optional Config fields.
const (
	DefaultMaxRecipients = 100
	// DefaultIdleTimeout is RFC 5321 §4.5.3.2.7's server timeout.
	DefaultIdleTimeout = 5 * time.Minute
	// DefaultMaxDataLine is the longest DATA line accepted, CRLF included.
	// RFC 5321 §4.5.3.1.6 says 1000, but real clients send longer lines
	// (unwrapped HTML); 8 KiB keeps memory bounded without refusing them.
	DefaultMaxDataLine = 8 << 10
	// traceReserve is room kept under mailstore.MaxMessageSize for the
	// Return-Path and Received fields added at delivery (hostname, HELO name
	// and addresses are each at most 255 octets), so that a message accepted
	// at the advertised SIZE always fits in the store.
	traceReserve = 2048
)

// Config is what New needs. Auth, Accounts and Mail are required.
type Config struct {
	Auth      auth.Authenticator
	Accounts  MemberLookup
	Mail      mailstore.Store
	TLS       *tls.Config // nil: no STARTTLS, and Serve(l, true) fails
	Plaintext tlsconf.Plaintext
	Hostname  string // in the greeting, EHLO reply and Received header

	MaxMessageBytes int64         // default and cap: mailstore.MaxMessageSize less traceReserve
	MaxRecipients   int           // default DefaultMaxRecipients
	MaxDataLine     int           // default DefaultMaxDataLine
	IdleTimeout     time.Duration // default DefaultIdleTimeout
	Log             *slog.Logger  // default slog.Default()
	Now             func() time.Time
	// Limits caps the connections of every listener together; over a cap
	// a connection is told 421 and closed (closed at once on implicit TLS).
	Limits netserver.Limits
}

// Server serves SMTP submission on any number of listeners.
type Server struct {
	cfg   Config
	conns *netserver.Group
	limit *netserver.Limiter
	// refusal is the 421 of a connection over a cap of Config.Limits, in
	// place of the greeting (RFC 5321 §3.1: the server may answer 421 and
	// close); 4.7.0 is a temporary refusal by policy (RFC 3463).
	refusal netserver.Refusal
	ctx     context.Context // cancelled by Close: ends logins and deliveries
}

// New returns a server for cfg, filling in defaults.
func New(cfg Config) *Server {
	if limit := int64(mailstore.MaxMessageSize - traceReserve); cfg.MaxMessageBytes <= 0 || cfg.MaxMessageBytes > limit {
		cfg.MaxMessageBytes = limit
	}
	if cfg.MaxRecipients <= 0 {
		cfg.MaxRecipients = DefaultMaxRecipients
	}
	if cfg.MaxDataLine <= 0 {
		cfg.MaxDataLine = DefaultMaxDataLine
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "localhost"
	}
	if cfg.Plaintext == "" {
		cfg.Plaintext = tlsconf.PlaintextLoopback
	}
	log := cfg.Log.With("proto", "smtp")
	conns := netserver.New("smtpserver", log)
	return &Server{
		cfg: cfg, conns: conns, ctx: conns.Context(),
		limit: netserver.NewLimiter("smtpserver", cfg.Limits, log),
		refusal: netserver.Refusal{
			PerAddr: "421 4.7.0 " + cfg.Hostname + " Too many connections from your address, try again later\r\n",
			Total:   "421 4.7.0 " + cfg.Hostname + " Too many connections, try again later\r\n",
		},
	}
}

// Serve accepts connections on l until Close. With implicitTLS every
// connection starts with a TLS handshake (port 465, RFC 8314 §3.3). It
// returns nil after Close (at once when called after it) and the accept
// error otherwise.
func (s *Server) Serve(l net.Listener, implicitTLS bool) error {
	if implicitTLS && s.cfg.TLS == nil {
		return errors.New("smtpserver: implicit TLS needs a TLS config")
	}
	r := s.refusal
	if implicitTLS {
		// The client's first expectation is a TLS handshake, to which a 421
		// in clear is garbage; completing one for a connection that is to be
		// refused would spend the CPU and the goroutine the caps save.
		r = netserver.Refusal{}
	}
	return s.conns.Serve(s.limit.Listener(l, r), func(nc net.Conn) { newConn(s, nc, implicitTLS).serve() })
}

// Close stops every listener, closes every connection and waits for their
// goroutines to end.
func (s *Server) Close() error { return s.conns.Close() }
