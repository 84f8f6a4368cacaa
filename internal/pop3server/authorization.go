package pop3server

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/auth"
	"github.com/postern/postern/internal/sasl"
)

// authorization runs a command in the AUTHORIZATION state (RFC 1939 §4) and
// reports whether the session goes on.
func (s *session) authorization(cmd Command) bool {
	switch cmd.Name {
	case "USER":
		if !s.plaintextAllowed() {
			s.refusePlaintext()
			return true
		}
		if cmd.Rest == "" {
			s.reply(replySyntax)
			return true
		}
		// Always +OK: whether the user exists is for PASS to not tell.
		s.user = cmd.Rest
		s.reply("+OK Send your password.")
	case "PASS":
		if !s.plaintextAllowed() {
			s.refusePlaintext()
			return true
		}
		if s.user == "" {
			s.reply("-ERR USER first.")
			return true
		}
		user := s.user
		s.user = ""
		// The whole rest of the line: passwords may contain spaces (RFC 1939 §7).
		return s.login(user, cmd.Rest, "USER")
	case "AUTH":
		return s.auth(cmd)
	case "STLS":
		return s.stls()
	case "STAT", "LIST", "RETR", "DELE", "NOOP", "RSET", "TOP", "UIDL":
		s.reply(replyBadState)
	default:
		return s.badCommand(replyUnknown)
	}
	return true
}

// refusePlaintext answers USER, PASS and AUTH on a connection where the
// plaintext-auth policy forbids passwords without TLS (SPEC §5). It is sent
// before any credential is looked at, so it tells nothing about one.
func (s *session) refusePlaintext() {
	if s.cfg.TLS != nil && !s.isTLS {
		s.reply("-ERR [AUTH] Plaintext authentication disallowed without TLS, use STLS first.")
		return
	}
	s.reply("-ERR [AUTH] Plaintext authentication disallowed without TLS.")
}

// auth runs AUTH (RFC 5034 §4). Only PLAIN is offered, as SASL PLAIN in CAPA.
// "AUTH" alone lists the mechanisms, as many servers do for old clients.
func (s *session) auth(cmd Command) bool {
	if len(cmd.Args) == 0 {
		s.reply("+OK Mechanisms follow.")
		if s.plaintextAllowed() {
			s.reply("PLAIN")
		}
		s.reply(".")
		return true
	}
	if len(cmd.Args) > 2 {
		s.reply(replySyntax)
		return true
	}
	if !strings.EqualFold(cmd.Args[0], "PLAIN") {
		s.reply("-ERR Unsupported authentication mechanism.")
		return true
	}
	if !s.plaintextAllowed() {
		s.refusePlaintext()
		return true
	}
	var resp string
	if len(cmd.Args) == 2 {
		resp = cmd.Args[1]
	} else {
		// An empty server challenge is "+ " (RFC 5034 §4).
		s.reply("+ ")
		if !s.flush() {
			return false
		}
		s.conn.SetReadDeadline(time.Now().Add(preAuthTimeout))
		line, err := readLine(s.r, maxAuthLine)
		if errors.Is(err, errLineTooLong) {
			s.reply(replyTooLong)
			return true
		}
		if err != nil {
			return false
		}
		resp = string(trimEOL(line))
	}
	if resp == "*" {
		// RFC 5034 §4: a "*" cancels, and the server MUST answer -ERR.
		s.reply("-ERR Authentication cancelled.")
		return true
	}
	msg, err := decodeResponse(resp)
	if err != nil {
		// RFC 5034 §4: a response that is not base64 rejects the command.
		s.reply("-ERR Invalid base64 data.")
		return true
	}
	_, user, pass, err := sasl.DecodePlain(msg)
	if err != nil {
		// A malformed PLAIN message says nothing about an account, but it
		// gets the one failure reply all the same.
		s.logger().Info("pop3 login failed", "mechanism", "PLAIN", "reason", "malformed", "err", err)
		return s.failed()
	}
	return s.login(user, pass, "PLAIN")
}

// decodeResponse decodes one SASL response line. "=" is the empty response
// (RFC 5034 §4); anything else must be padded base64 with nothing around it.
func decodeResponse(s string) ([]byte, error) {
	if s == "=" {
		return nil, nil
	}
	if s == "" || len(s) > base64.StdEncoding.EncodedLen(sasl.MaxPlainLen) {
		return nil, errors.New("pop3: bad SASL response length")
	}
	return base64.StdEncoding.Strict().DecodeString(s)
}

// login asks the authenticator and, on success, opens INBOX and enters the
// TRANSACTION state.
func (s *session) login(user, secret, mechanism string) bool {
	l, err := s.cfg.Auth.Authenticate(s.ctx, auth.Attempt{
		User: user, Secret: secret, Protocol: auth.POP3, Mechanism: mechanism,
		RemoteIP: s.ip, TLS: s.isTLS,
	})
	if err != nil {
		if account.ErrorCode(err) == account.EUNAUTHORIZED {
			return s.failed() // the gateway logged the attempt
		}
		s.logger().Warn("pop3 login error", "mechanism", mechanism, "err", err)
		s.reply(replyTempFailure)
		return true
	}
	s.done = s.cfg.Auth.Track(l, auth.POP3, s.revoke)
	if err := s.openInbox(l.Member.ID); err != nil {
		s.logger().Error("pop3 open INBOX", "member", l.Member.Email, "err", err)
		s.done()
		s.done = nil
		s.reply(replyTempFailure)
		return true
	}
	s.email = l.Member.Email // the gateway logged the login
	s.state = stateTransaction
	n, size := s.count()
	s.replyf("+OK Logged in, %d messages (%d octets).", n, size)
	return true
}

// failed answers a failed login; a connection that keeps failing is closed.
func (s *session) failed() bool {
	s.reply(replyAuthFailed)
	s.authFailures++
	return s.authFailures < maxAuthFailures
}

// stls upgrades to TLS (RFC 2595 §4). Whatever the client sent after STLS
// before the handshake is thrown away with the old reader (the STARTTLS
// injection of CVE-2011-0411), and everything learnt before, a pending USER
// included, is forgotten.
func (s *session) stls() bool {
	switch {
	case s.cfg.TLS == nil:
		s.reply("-ERR STLS not available.")
		return true
	case s.isTLS:
		s.reply("-ERR Already using TLS.")
		return true
	}
	s.reply("+OK Begin TLS negotiation.")
	if !s.flush() {
		return false
	}
	if n := s.r.Buffered(); n > 0 {
		s.logger().Warn("pop3 discarded input pipelined after STLS", "octets", n)
	}
	tc := tls.Server(s.raw, s.cfg.TLS)
	s.raw.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := tc.HandshakeContext(s.ctx); err != nil {
		s.logger().Debug("pop3 STLS handshake failed", "err", err)
		return false
	}
	s.raw.SetDeadline(time.Time{})
	s.conn, s.isTLS, s.user = tc, true, ""
	// The plaintext sent after STLS is thrown away with the reader's buffer.
	s.r.Reset(tc)
	s.w.Reset(timeoutWriter{tc})
	return true
}
