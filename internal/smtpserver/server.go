// Package smtpserver is Postern's SMTP engine, one per Mode: mail
// submission (RFC 6409: the submission ports, STARTTLS (RFC 3207) or
// implicit TLS (RFC 8314), AUTH PLAIN and LOGIN (RFC 4954) through the one
// auth gateway), the MX listener that receives mail from the Internet (RFC
// 5321, no AUTH, an Inspector for sender authentication and spam filtering)
// and LMTP (RFC 2033) for a mail server in front. Every mode resolves
// recipients the same way (Recipients) and delivers a message to all its
// local recipients in one transaction (Mail.DeliverAll), to INBOX or Junk.
// CHUNKING (RFC 3030), PIPELINING (RFC 2920) and SMTPUTF8 (RFC 6531) are
// offered everywhere.
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

// Mode is the protocol a Server speaks: one engine, three doors in.
type Mode int

const (
	// Submission is RFC 6409: members log in (AUTH) and send as themselves.
	Submission Mode = iota
	// MX receives mail from the Internet (RFC 5321 on port 25): no AUTH,
	// any sender, local recipients only, an optional Inspector, and every
	// outside Authentication-Results field stripped.
	MX
	// LMTP is RFC 2033, for a mail server in front of Postern (Postfix's
	// lmtp transport): LHLO, and after the message one reply per accepted
	// recipient.
	LMTP
)

func (m Mode) String() string {
	switch m {
	case MX:
		return "mx"
	case LMTP:
		return "lmtp"
	}
	return "submission"
}

// Recipients says where mail to an address goes. *account.Service
// implements it; its errors carry account codes: EINVALID (501 5.1.3),
// ENOTLOCAL (550 5.7.1, never a relay), ENOTFOUND (550 5.1.1) and
// EUNAVAILABLE or any other (451 4.3.0).
type Recipients interface {
	ResolveRecipient(ctx context.Context, address string) (account.Recipient, error)
}

// Mail is the part of the mail store the server writes to. DeliverAll puts
// every copy of a message in one transaction; Quota is a member's storage
// use and limits.
type Mail interface {
	DeliverAll(ctx context.Context, ds []mailstore.Delivery) error
	Quota(ctx context.Context, memberID int64) (mailstore.Quota, error)
}

// Submitter stores what a member submitted: local copies and the copy
// queued for other domains, in one transaction (Submission mode with a
// queue).
type Submitter interface {
	Submit(ctx context.Context, s mailstore.Submission) error
}

// Signer returns the DKIM-Signature fields for a message from domain, nil
// when the domain signs nothing.
type Signer interface {
	Sign(ctx context.Context, domain string, msg []byte) ([]byte, error)
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
	// DefaultMaxHeaderBytes bounds a message's header section, 2.5 times
	// Postfix's header_size_limit (100 KiB): long ARC and DKIM chains fit,
	// and a header bomb (100,000 fields) that would cost every reader that
	// parses the header (IMAP ENVELOPE, filters) is refused at the door.
	DefaultMaxHeaderBytes = 256 << 10
	// DefaultMaxHeaderFields bounds the number of header fields: real mail
	// has tens; a reader's cost grows with the count, not only the size.
	DefaultMaxHeaderFields = 10000
	// traceReserve is room kept under mailstore.MaxMessageSize for the
	// fields added at delivery (Return-Path, Delivered-To, Received: the
	// hostname, HELO name and addresses are each at most 255 octets) and an
	// Inspector's (Authentication-Results, spam verdicts), so that a message
	// accepted at the advertised SIZE always fits in the store.
	traceReserve = 16 << 10
)

// Config is what New needs. Recipients and Mail are required, and Auth in
// Submission mode.
type Config struct {
	Mode       Mode
	Auth       auth.Authenticator // Submission only
	Recipients Recipients
	Mail       Mail
	// Submit, in Submission mode, stores what members submit (the local
	// copies, the queued copy, the send log the caps count); nil: local
	// copies through Mail.DeliverAll.
	Submit Submitter
	// Relay, in Submission mode with Submit, takes recipients outside
	// Postern's domains into the outbound queue; false refuses them (550
	// 5.7.1).
	Relay bool
	// Signer, when set, DKIM-signs what Submit queues.
	Signer Signer
	// Sending (Submission only) gives the addresses a member may send as
	// and its sending caps (sending.go); nil: its own address, no caps.
	Sending Sending
	// Inspector, when set, sees every message before delivery and may
	// refuse it, add header fields or send it to Junk (MX: sender
	// authentication, spam filtering). nil: no inspection.
	Inspector Inspector
	TLS       *tls.Config // nil: no STARTTLS, and Serve(l, true) fails
	Plaintext tlsconf.Plaintext
	Hostname  string // in the greeting, EHLO reply and Received header

	MaxMessageBytes int64 // default and cap: mailstore.MaxMessageSize less traceReserve
	MaxRecipients   int   // default DefaultMaxRecipients
	MaxDataLine     int   // default DefaultMaxDataLine
	MaxHeaderBytes  int   // default DefaultMaxHeaderBytes
	MaxHeaderFields int   // default DefaultMaxHeaderFields
	// Quota is the server's storage limit in octets, every mailbox
	// together, for members whose own setting and domain set none
	// (mailstore.Quota.Limit); 0 is none. Over the limit that applies a
	// recipient gets 452 4.2.2.
	Quota int64
	// RateLimit caps the recipients (RCPT commands) one client address
	// (IPv4, IPv6 /56) may give per minute on an MX server, with bursts of
	// as many; past it RCPT gets 451 4.7.1. 0 is no limit. Other modes
	// ignore it: their clients are members or the organisation's own MTA.
	RateLimit   int
	IdleTimeout time.Duration // default DefaultIdleTimeout
	Log         *slog.Logger  // default slog.Default()
	Now         func() time.Time
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
	rate    *rateLimiter    // MX's recipients per client address; nil: none
	ledger  sendLedger      // submission's open transactions, against the caps
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
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if cfg.MaxHeaderFields <= 0 {
		cfg.MaxHeaderFields = DefaultMaxHeaderFields
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
	log := cfg.Log.With("proto", cfg.Mode.String())
	conns := netserver.New("smtpserver", log)
	var rate *rateLimiter
	if cfg.Mode == MX && cfg.RateLimit > 0 {
		rate = newRateLimiter(cfg.RateLimit, time.Minute, cfg.Now)
	}
	return &Server{rate: rate,
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
