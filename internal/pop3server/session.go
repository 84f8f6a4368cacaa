package pop3server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/postern/postern/internal/mailstore"
	"github.com/postern/postern/internal/netserver"
)

// Replies that must stay byte-identical. Every credential failure gets
// replyAuthFailed whatever the cause (unknown user, wrong password, policy,
// malformed PLAIN message), so a client learns nothing (docs/security.md).
// [AUTH] and [SYS/TEMP] are RFC 3206 codes announced by
// AUTH-RESP-CODE and RESP-CODES (RFC 2449 §8, RFC 5034 §6).
const (
	replyAuthFailed  = "-ERR [AUTH] Authentication failed."
	replyTempFailure = "-ERR [SYS/TEMP] Temporary server failure, try again later."
	replyTooLong     = "-ERR Line too long."
	replySyntax      = "-ERR Syntax error."
	replyUnknown     = "-ERR Unknown command."
	replyBadState    = "-ERR Command not valid in this state."
)

// maxAuthFailures is how many failed logins one connection may make before
// it is closed; the authenticator's own throttling applies on top of it.
const maxAuthFailures = 10

// maxBadCommands is how many unknown or malformed command lines one
// connection may send before it is closed.
const maxBadCommands = 20

type state int

const (
	stateAuthorization state = iota
	stateTransaction
)

// session is one POP3 connection. It is used by its own goroutine only,
// except for revoked and raw.Close, which Track's close func may call.
type session struct {
	srv   *Server
	cfg   *Config
	ctx   context.Context
	raw   net.Conn // the TCP connection (a *netserver.Revocable): closing it ends the session
	conn  net.Conn // raw, or TLS over raw
	r     *bufio.Reader
	w     *bufio.Writer
	isTLS bool
	ip    netip.Addr

	state        state
	user         string // from USER, waiting for PASS
	authFailures int
	badCommands  int
	revoked      atomic.Bool
	done         func() // from Authenticator.Track

	email   string
	mailbox mailstore.Mailbox
	msgs    []mailstore.MessageInfo // the snapshot taken at login (RFC 1939 §4)
	deleted []bool
}

// logger returns the server's logger with the connection's address and,
// once logged in, the member. It is made when something is logged, which
// most sessions never do (slog's With allocates).
func (s *session) logger() *slog.Logger {
	return connLogger(s.cfg.Log, s.raw, s.email)
}

func connLogger(log *slog.Logger, raw net.Conn, email string) *slog.Logger {
	args := []any{"proto", "pop3", "remote", raw.RemoteAddr().String()}
	if email != "" {
		args = append(args, "member", email)
	}
	return log.With(args...)
}

func newSession(srv *Server, raw, conn net.Conn, isTLS bool) *session {
	ip := netserver.RemoteIP(raw)
	return &session{
		srv: srv, cfg: &srv.cfg, ctx: srv.ctx,
		raw: raw, conn: conn, isTLS: isTLS, ip: ip,
		r: takeReader(conn),
		w: takeWriter(conn),
	}
}

// The sessions' 4 KiB read and write buffers come from pools and go back
// when a session ends: two thirds of the bytes a login allocated were these
// (docs/benchmarks.md), and a POP3 session is short.
var (
	readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, maxAuthLine) }}
	writers = sync.Pool{New: func() any { return bufio.NewWriter(nil) }}
)

func takeReader(c net.Conn) *bufio.Reader {
	r := readers.Get().(*bufio.Reader)
	r.Reset(c)
	return r
}

func takeWriter(c net.Conn) *bufio.Writer {
	w := writers.Get().(*bufio.Writer)
	w.Reset(timeoutWriter{c})
	return w
}

// release gives the buffers back; the session does no more I/O.
func (s *session) release() {
	s.r.Reset(nil)
	readers.Put(s.r)
	s.w.Reset(nil)
	writers.Put(s.w)
	s.r, s.w = nil, nil
}

// run greets the client and executes commands until QUIT, an I/O error, a
// timeout or a revocation. Only QUIT in the TRANSACTION state deletes
// anything (RFC 1939 §6): every other way out leaves the maildrop as it was.
func (s *session) run() {
	defer func() {
		s.release()
		if s.done != nil {
			s.done()
		}
		if s.revoked.Load() {
			s.logger().Info("pop3 session closed: credential revoked")
		}
	}()
	s.reply("+OK " + s.cfg.Hostname + " POP3 server ready.")
	for {
		if !s.flushIfIdle() {
			return
		}
		timeout := preAuthTimeout
		if s.state == stateTransaction {
			timeout = idleTimeout
		}
		s.conn.SetReadDeadline(time.Now().Add(timeout))
		line, err := readLine(s.r, maxAuthLine)
		switch {
		case errors.Is(err, errLineTooLong):
			if !s.badCommand(replyTooLong) {
				s.flush()
				return
			}
			continue
		case errors.Is(err, errFlood):
			s.reply(replyTooLong)
			s.flush()
			return
		case err != nil:
			if s.revoked.Load() {
				// RFC 3206 §4: [AUTH], the credentials are the problem.
				s.reply("-ERR [AUTH] Your login was revoked (the app password was deleted or the password changed); closing connection")
				s.flush()
				return
			}
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.logger().Debug("pop3 read", "err", err)
			}
			return
		}
		cmd, err := ParseCommand(line)
		ok := true
		switch {
		case err != nil:
			ok = s.badCommand(replySyntax)
		case len(line) > maxCommandLine && cmd.Name != "AUTH":
			// RFC 2449 §4: 255 octets is the command limit; only AUTH may
			// carry a longer initial response (RFC 5034 §4).
			ok = s.badCommand(replyTooLong)
		default:
			ok = s.dispatch(cmd)
		}
		if !ok {
			s.flush()
			return
		}
	}
}

// badCommand answers a line that is no valid command and reports whether
// the session goes on: a client that keeps sending garbage is not speaking
// POP3, and is cut off after maxBadCommands.
func (s *session) badCommand(reply string) bool {
	s.reply(reply)
	s.badCommands++
	if s.badCommands >= maxBadCommands {
		s.reply("-ERR Too many invalid commands, closing.")
		return false
	}
	return true
}

// dispatch runs one command and reports whether the session goes on.
func (s *session) dispatch(cmd Command) bool {
	if cmd.Name == "CAPA" {
		s.capa()
		return true
	}
	if cmd.Name == "QUIT" {
		if s.state == stateTransaction {
			s.update()
		} else {
			s.reply("+OK Bye.")
		}
		return false
	}
	if s.state == stateAuthorization {
		return s.authorization(cmd)
	}
	return s.transaction(cmd)
}

// capa answers CAPA (RFC 2449 §5). USER and SASL PLAIN appear only where
// plaintext passwords are allowed on this connection, STLS only before TLS.
func (s *session) capa() {
	lines := []string{"+OK Capability list follows.", "TOP", "UIDL"}
	if s.state == stateAuthorization {
		if s.plaintextAllowed() {
			lines = append(lines, "USER", "SASL PLAIN")
		}
		if s.cfg.TLS != nil && !s.isTLS {
			lines = append(lines, "STLS")
		}
	}
	lines = append(lines, "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING",
		"IMPLEMENTATION Postern", ".")
	for _, l := range lines {
		s.reply(l)
	}
}

func (s *session) plaintextAllowed() bool {
	return s.cfg.Plaintext.Allows(s.raw.RemoteAddr(), s.isTLS)
}

// reply queues one response line; it is sent by flushIfIdle or flush.
func (s *session) reply(line string) {
	s.w.WriteString(line)
	s.w.WriteString("\r\n")
}

// flush sends the queued responses.
func (s *session) flush() bool { return s.w.Flush() == nil }

// timeoutWriter gives every write its own deadline, so that a large RETR to a
// slow client may take as long as it keeps making progress, while a client
// that stops reading is dropped after writeTimeout.
type timeoutWriter struct{ c net.Conn }

func (w timeoutWriter) Write(p []byte) (int, error) {
	w.c.SetWriteDeadline(time.Now().Add(writeTimeout))
	return w.c.Write(p)
}

// flushIfIdle sends the queued responses unless more pipelined commands are
// already buffered (RFC 2449 §6.6 PIPELINING allows answering them in one
// write).
func (s *session) flushIfIdle() bool {
	if s.r.Buffered() > 0 && s.w.Buffered() < s.w.Size()/2 {
		return true
	}
	return s.flush()
}

// revoke is the close func given to Authenticator.Track: the credential the
// session logged in with is gone, so the session ends now, without the
// UPDATE state: its next read fails at once and the loop says why. It may
// run on any goroutine.
func (s *session) revoke() {
	s.revoked.Store(true)
	if rc, ok := s.raw.(*netserver.Revocable); ok {
		rc.Revoke()
		return
	}
	s.raw.Close()
}
