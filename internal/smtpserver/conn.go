package smtpserver

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/postern/postern/internal/auth"
	"github.com/postern/postern/internal/netserver"
)

const (
	// maxCommandLine bounds ordinary command lines, CRLF included. RFC 5321
	// §4.5.3.1.4 says 512, plus room for extension parameters; lax clients
	// need a little more.
	maxCommandLine = 2048
	// maxAuthLine bounds AUTH command and SASL response lines: RFC 4954 §4
	// asks servers to accept 12288 octets (plus the CRLF).
	maxAuthLine = 12288 + 2
	// maxDiscard is how much of an over-long line is read and dropped before
	// the connection is given up on.
	maxDiscard = 1 << 20
	// maxErrors is how many bad commands or failed AUTHs a connection may
	// make before it is closed (RFC 5321 §4.3.2 allows a server to hang up).
	maxErrors = 10
	// handshakeTimeout bounds a TLS handshake.
	handshakeTimeout = 30 * time.Second
)

var (
	errLineTooLong = errors.New("line too long")
	errBadChar     = errors.New("bare CR or NUL in command line")
)

// conn is one SMTP session. Its fields are used by the session's goroutine
// only, except raw (closed by revoke from any goroutine).
type conn struct {
	s        *Server
	cfg      *Config
	raw      net.Conn // the TCP connection; closing it ends the session
	nc       net.Conn // raw, or the *tls.Conn over it
	r        *bufio.Reader
	w        *bufio.Writer
	log      *slog.Logger
	ctx      context.Context
	cancel   context.CancelFunc
	remoteIP netip.Addr
	implicit bool
	tls      *tls.ConnectionState // nil before TLS

	helo     string // "" until HELO/EHLO
	esmtp    bool   // EHLO, not HELO
	login    *auth.Login
	done     func() // from Authenticator.Track
	inTx     bool   // MAIL accepted
	from     string
	utf8     bool  // MAIL FROM had SMTPUTF8
	sizeHint int64 // MAIL FROM's SIZE, 0 without
	rcpts    []recipient
	body     *bodyWriter // the message so far, while BDAT chunks come in
	send     sendState   // submission's sender rule and caps (sending.go)
	errors   int
	quit     bool

	revokeOnce sync.Once
	revoked    chan struct{}
	rc         *netserver.Revocable // raw, so that a revocation can end the session with a reply
}

func newConn(s *Server, nc net.Conn, implicitTLS bool) *conn {
	ctx, cancel := context.WithCancel(s.ctx)
	rc := netserver.NewRevocable(nc)
	c := &conn{
		s: s, cfg: &s.cfg, raw: rc, nc: rc, implicit: implicitTLS, rc: rc,
		ctx: ctx, cancel: cancel, revoked: make(chan struct{}),
	}
	c.remoteIP = netserver.RemoteIP(nc)
	c.log = s.cfg.Log.With("proto", "smtp", "remote", c.remoteIP.String())
	size := max(16<<10, maxAuthLine, s.cfg.MaxDataLine+2)
	c.r = bufio.NewReaderSize(rc, size)
	c.w = bufio.NewWriter(rc)
	return c
}

func (c *conn) serve() {
	defer c.end()
	if c.implicit {
		if err := c.handshake(); err != nil {
			c.log.Info("smtp: TLS handshake failed", "err", err)
			return
		}
	}
	c.reply(220, "", c.cfg.Hostname+map[Mode]string{
		Submission: " ESMTP Postern submission ready",
		MX:         " ESMTP Postern ready",
		LMTP:       " LMTP Postern ready",
	}[c.cfg.Mode])
	for !c.quit {
		line, err := c.readLine(maxAuthLine)
		switch {
		case errors.Is(err, errLineTooLong):
			if verbIs(line, "AUTH") {
				c.fail(500, "5.5.6", "Authentication Exchange line is too long")
			} else {
				c.fail(500, "5.5.2", "Line too long")
			}
			continue
		case errors.Is(err, errBadChar):
			c.fail(500, "5.5.2", "Bare CR or NUL in command line; end lines with CRLF")
			continue
		case err != nil:
			c.readFailed(err)
			return
		}
		if len(line)+2 > maxCommandLine && !verbIs(line, "AUTH") {
			c.fail(500, "5.5.2", "Line too long")
			continue
		}
		c.dispatch(line)
	}
	c.flush()
}

// readFailed ends the session after a read error, saying why when the
// client can still hear it.
func (c *conn) readFailed(err error) {
	var ne net.Error
	select {
	case <-c.revoked:
		c.log.Info("smtp: session closed: credential revoked")
		c.reply(421, "4.7.0", c.cfg.Hostname+" Your login was revoked (the app password was deleted or the password changed); closing connection")
		c.flush()
		return
	default:
	}
	if errors.As(err, &ne) && ne.Timeout() {
		c.reply(421, "4.4.2", c.cfg.Hostname+" Idle timeout, closing connection")
		c.flush()
		return
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		c.log.Debug("smtp: read", "err", err)
	}
}

func (c *conn) dispatch(line string) {
	verb, arg, _ := strings.Cut(line, " ")
	arg = strings.TrimSpace(arg)
	verb = strings.ToUpper(verb)
	switch verb {
	case "EHLO", "HELO", "LHLO":
		if (verb == "LHLO") != (c.cfg.Mode == LMTP) {
			c.fail(500, "5.5.1", "Command not recognized: this server greets with "+c.helloVerb())
			return
		}
		c.hello(arg, verb != "HELO")
	case "STARTTLS":
		c.starttls(arg)
	case "AUTH":
		if c.cfg.Mode != Submission {
			// RFC 4954 §4: AUTH is not offered here; no one logs in to MX.
			c.fail(502, "5.5.1", "AUTH not available on this port")
			return
		}
		c.auth(arg)
	case "MAIL":
		c.mail(arg)
	case "RCPT":
		c.rcpt(arg)
	case "DATA":
		c.data(arg)
	case "BDAT":
		c.bdat(arg)
	case "RSET":
		c.resetTx()
		c.reply(250, "2.0.0", "OK")
	case "NOOP":
		c.reply(250, "2.0.0", "OK")
	case "QUIT":
		c.reply(221, "2.0.0", c.cfg.Hostname+" closing connection")
		c.quit = true
	case "VRFY":
		// RFC 5321 §3.5.3: 252 when the server will not verify.
		c.reply(252, "2.5.0", "Cannot VRFY user, but will accept message for local members")
	case "HELP":
		c.reply(214, "2.0.0", map[Mode]string{
			Submission: "Postern mail submission (RFC 6409): EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA, BDAT",
			MX:         "Postern (RFC 5321): EHLO, STARTTLS, MAIL, RCPT, DATA, BDAT",
			LMTP:       "Postern LMTP (RFC 2033): LHLO, MAIL, RCPT, DATA, BDAT",
		}[c.cfg.Mode])
	default:
		c.fail(500, "5.5.2", "Command not recognized")
	}
}

// helloVerb is the greeting command of the session's protocol.
func (c *conn) helloVerb() string {
	if c.cfg.Mode == LMTP {
		return "LHLO"
	}
	return "EHLO"
}

// hello answers HELO, EHLO (RFC 5321 §4.1.1.1) and LHLO (RFC 2033 §4.1). A
// new greeting resets the transaction but not the authentication.
func (c *conn) hello(arg string, esmtp bool) {
	domain, _, _ := strings.Cut(arg, " ")
	if !validHelo(domain) {
		c.fail(501, "5.5.4", "Syntax: "+c.helloVerb()+" domain-or-address-literal")
		return
	}
	c.resetTx()
	c.helo, c.esmtp = domain, esmtp
	if !esmtp {
		c.reply(250, "", c.cfg.Hostname)
		return
	}
	lines := []string{
		c.cfg.Hostname,
		"PIPELINING",
		"8BITMIME",
		"SMTPUTF8",
		"CHUNKING",
		"ENHANCEDSTATUSCODES",
		fmt.Sprintf("SIZE %d", c.cfg.MaxMessageBytes),
		fmt.Sprintf("LIMITS RCPTMAX=%d", c.cfg.MaxRecipients), // RFC 9422
	}
	if c.tls == nil && c.cfg.TLS != nil {
		lines = append(lines, "STARTTLS")
	}
	// RFC 4954 §4 and SPEC §5: no AUTH offered where a password would cross
	// the network in the clear.
	if c.cfg.Mode == Submission && c.plaintextAllowed() {
		lines = append(lines, "AUTH PLAIN LOGIN")
	}
	c.replyLines(250, lines)
}

// validHelo accepts a domain or address literal: printable US-ASCII without
// spaces, so that it can go into the Received header as it is.
func validHelo(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f || s[i] == '(' || s[i] == ')' {
			return false
		}
	}
	return true
}

func (c *conn) plaintextAllowed() bool {
	return c.cfg.Plaintext.Allows(c.raw.RemoteAddr(), c.tls != nil)
}

// starttls upgrades the connection (RFC 3207).
func (c *conn) starttls(arg string) {
	switch {
	case arg != "":
		c.fail(501, "5.5.4", "Syntax: STARTTLS")
		return
	case c.tls != nil:
		c.fail(503, "5.5.1", "TLS already active")
		return
	case c.cfg.TLS == nil:
		c.fail(502, "5.5.1", "STARTTLS not available")
		return
	}
	c.reply(220, "2.0.0", "Ready to start TLS")
	c.flush()
	// RFC 3207 §4.2, CVE-2011-0411: commands pipelined after STARTTLS were
	// sent in the clear and must not be run inside the TLS session.
	if n := c.r.Buffered(); n > 0 {
		c.log.Info("smtp: discarded input pipelined after STARTTLS", "bytes", n)
	}
	if err := c.handshake(); err != nil {
		c.log.Info("smtp: STARTTLS handshake failed", "err", err)
		c.quit = true
		return
	}
	// RFC 3207 §4.2: forget everything learnt before TLS; the client must
	// send EHLO again.
	c.helo, c.esmtp = "", false
	c.resetTx()
	c.logout()
}

// handshake runs the server side of TLS over raw and switches the session's
// reader and writer to it, dropping any buffered plaintext.
func (c *conn) handshake() error {
	tc := tls.Server(c.raw, c.cfg.TLS)
	c.raw.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := tc.HandshakeContext(c.ctx); err != nil {
		return fmt.Errorf("tls handshake: %w", err)
	}
	c.raw.SetDeadline(time.Time{})
	st := tc.ConnectionState()
	c.nc, c.tls = tc, &st
	c.r.Reset(tc)
	c.w.Reset(tc)
	return nil
}

// readLine reads one line of at most limit octets with its line end, and
// returns it without the line end. Before blocking it sends the replies held
// back for pipelining (RFC 2920 §3.1: flush when no more input is waiting).
// Over-long lines are drained and reported as errLineTooLong with their
// start, so the caller can tell an AUTH line from another.
func (c *conn) readLine(limit int) (string, error) {
	if c.r.Buffered() == 0 {
		if err := c.flush(); err != nil {
			return "", err
		}
	}
	c.nc.SetReadDeadline(time.Now().Add(c.cfg.IdleTimeout))
	b, err := c.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) || err == nil && len(b) > limit {
		start := string(b[:min(len(b), 16)])
		for n := len(b); errors.Is(err, bufio.ErrBufferFull); n += len(b) {
			if n > maxDiscard {
				return start, fmt.Errorf("line over %d octets: %w", maxDiscard, io.ErrShortBuffer)
			}
			b, err = c.r.ReadSlice('\n')
		}
		if err != nil {
			return start, err
		}
		return start, errLineTooLong
	}
	if err != nil {
		return "", err
	}
	// Commands may end in a bare LF: lenient, and harmless because only DATA
	// content travels on (RFC 5321 §2.3.8 concerns are handled in readData).
	b = b[:len(b)-1]
	if len(b) > 0 && b[len(b)-1] == '\r' {
		b = b[:len(b)-1]
	}
	for _, ch := range b {
		if ch == '\r' || ch == 0 {
			return "", errBadChar
		}
	}
	return string(b), nil
}

func verbIs(line, verb string) bool {
	v, _, _ := strings.Cut(line, " ")
	return strings.EqualFold(v, verb)
}

// reply queues a one-line reply. enh is the RFC 3463 enhanced code, ""
// where RFC 2034 §3 wants none (greeting, EHLO, 334, 354).
func (c *conn) reply(code int, enh, text string) {
	if enh != "" {
		fmt.Fprintf(c.w, "%d %s %s\r\n", code, enh, text)
	} else {
		fmt.Fprintf(c.w, "%d %s\r\n", code, text)
	}
}

func (c *conn) replyLines(code int, lines []string) {
	for i, l := range lines {
		sep := "-"
		if i == len(lines)-1 {
			sep = " "
		}
		fmt.Fprintf(c.w, "%d%s%s\r\n", code, sep, l)
	}
}

// fail replies with an error and closes the connection after too many.
func (c *conn) fail(code int, enh, text string) {
	c.reply(code, enh, text)
	c.errors++
	if c.errors >= maxErrors {
		c.reply(421, "4.7.0", c.cfg.Hostname+" Too many errors, closing connection")
		c.quit = true
	}
}

func (c *conn) flush() error {
	c.nc.SetWriteDeadline(time.Now().Add(c.cfg.IdleTimeout))
	if err := c.w.Flush(); err != nil {
		return fmt.Errorf("write reply: %w", err)
	}
	return nil
}

// resetTx ends the mail transaction (RSET, EHLO, after DATA).
func (c *conn) resetTx() {
	c.inTx, c.from, c.utf8, c.sizeHint, c.rcpts, c.body = false, "", false, 0, nil, nil
}

// revoke is the close function given to Authenticator.Track: the login's
// credential was revoked, so the session ends now: the revocable
// connection wakes the session's goroutine from any read (and bounds its
// writes), and readFailed tells the client why (421 4.7.0) before closing.
func (c *conn) revoke() {
	c.revokeOnce.Do(func() {
		close(c.revoked)
		c.rc.Revoke()
	})
}

func (c *conn) logout() {
	if c.done != nil {
		c.done()
		c.done = nil
	}
	c.login = nil
}

func (c *conn) end() {
	c.releaseSend()
	c.logout()
	c.cancel()
	if c.tls != nil {
		// Best effort close_notify; raw is closed by the server in any case.
		c.nc.SetWriteDeadline(time.Now().Add(time.Second))
		c.nc.Close()
	}
	c.raw.Close()
}
