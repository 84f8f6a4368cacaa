package smtpserver

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	gosasl "github.com/emersion/go-sasl"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/auth"
	"github.com/postern/postern/internal/sasl"
)

// The one reply to every failed login, whatever the reason (SPEC §5,
// docs/security.md): unknown user, wrong password, a main password
// refused by policy, a suspended member and a malformed SASL message all get
// these same bytes.
const (
	authFailedCode = 535
	authFailedEnh  = "5.7.8"
	authFailedText = "Authentication credentials invalid"
)

// errCredentials marks a failure that the client must see as the generic 535
// (malformed PLAIN or LOGIN fields). Wrapped causes are for logs only.
var errCredentials = errors.New("credentials invalid")

// auth runs the AUTH command (RFC 4954 §4).
func (c *conn) auth(arg string) {
	switch {
	case !c.esmtp:
		c.fail(503, "5.5.1", "Send EHLO first")
		return
	case c.login != nil:
		c.fail(503, "5.5.1", "Already authenticated")
		return
	case c.inTx:
		c.fail(503, "5.5.1", "AUTH is not allowed during a mail transaction")
		return
	case !c.plaintextAllowed():
		// RFC 4954 §6; checked before the mechanism or initial response is
		// looked at, so the client learns nothing but "use TLS".
		c.fail(538, "5.7.11", "Encryption required for requested authentication mechanism")
		return
	}
	fields := strings.Fields(arg)
	if len(fields) < 1 || len(fields) > 2 {
		c.fail(501, "5.5.4", "Syntax: AUTH mechanism [initial-response]")
		return
	}
	mech := strings.ToUpper(fields[0])
	var srv gosasl.Server
	switch mech {
	case "PLAIN":
		srv = &plainServer{check: c.check(mech)}
	case "LOGIN":
		srv = newLoginServer(c.check(mech))
	default:
		c.fail(504, "5.5.4", "Unrecognized authentication mechanism; use PLAIN or LOGIN")
		return
	}
	var resp []byte // nil: no initial response
	if len(fields) == 2 {
		var err error
		if resp, err = decodeResponse(fields[1]); err != nil {
			c.fail(501, "5.5.2", "Cannot decode base64 initial response")
			return
		}
	}
	for {
		challenge, done, err := srv.Next(resp)
		if err != nil {
			c.authFailed(mech, err)
			return
		}
		if done {
			break
		}
		c.reply(334, "", base64.StdEncoding.EncodeToString(challenge))
		line, err := c.readLine(maxAuthLine)
		switch {
		case errors.Is(err, errLineTooLong):
			c.fail(500, "5.5.6", "Authentication Exchange line is too long")
			return
		case errors.Is(err, errBadChar):
			c.fail(501, "5.5.2", "Cannot decode base64 response")
			return
		case err != nil:
			c.readFailed(err)
			c.quit = true
			return
		case line == "*":
			c.fail(501, "5.0.0", "Authentication cancelled")
			return
		}
		if resp, err = decodeResponse(line); err != nil {
			c.fail(501, "5.5.2", "Cannot decode base64 response")
			return
		}
	}
	if c.login == nil {
		// A mechanism that finishes without checking credentials is a bug;
		// fail closed.
		c.authFailed(mech, fmt.Errorf("%w: mechanism ended without a check", errCredentials))
		return
	}
	c.log.Info("smtp: login", "mech", mech, "member", c.login.Member.Email, "tls", c.tls != nil)
	c.reply(235, "2.7.0", "Authentication successful")
}

// check returns the credential check the mechanisms call: the auth gateway,
// then Track so that a revoked credential closes this connection.
func (c *conn) check(mech string) func(user, pass string) error {
	return func(user, pass string) error {
		login, err := c.cfg.Auth.Authenticate(c.ctx, auth.Attempt{
			User: user, Secret: pass, Protocol: auth.SMTP, Mechanism: mech,
			RemoteIP: c.remoteIP, TLS: c.tls != nil,
		})
		if err != nil {
			return err
		}
		c.login = &login
		c.done = c.cfg.Auth.Track(login, auth.SMTP, c.revoke)
		return nil
	}
}

// authFailed answers a failed AUTH: 535 for every credential failure, 454
// when the gateway cannot decide now (RFC 4954 §6).
func (c *conn) authFailed(mech string, err error) {
	code := account.ErrorCode(err)
	switch {
	case code == account.EUNAUTHORIZED || errors.Is(err, errCredentials):
		// The username is not logged: users type passwords into it.
		c.log.Info("smtp: login failed", "mech", mech, "reason", failureReason(err))
		c.fail(authFailedCode, authFailedEnh, authFailedText)
	default:
		c.log.Warn("smtp: login unavailable", "mech", mech, "code", code, "err", err)
		c.fail(454, "4.7.0", "Temporary authentication failure")
	}
}

func failureReason(err error) string {
	if r := account.FailureReason(err); r != "" {
		return r
	}
	return err.Error() // errCredentials chains name the broken rule, never input
}

// decodeResponse decodes a SASL response line (RFC 4954 §4): strict base64,
// or "=" for an empty response. Anything else, including whitespace, line
// ends and non-canonical padding bits, is an error (501 5.5.2).
func decodeResponse(s string) ([]byte, error) {
	if s == "=" {
		return []byte{}, nil
	}
	if len(s)%4 != 0 {
		return nil, errors.New("base64: length is not a multiple of 4")
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		ok := 'A' <= ch && ch <= 'Z' || 'a' <= ch && ch <= 'z' || '0' <= ch && ch <= '9' ||
			ch == '+' || ch == '/' || ch == '=' && i >= len(s)-2
		if !ok {
			return nil, fmt.Errorf("base64: illegal octet at %d", i)
		}
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("base64: %w", err)
	}
	return b, nil
}

// plainServer is the server side of SASL PLAIN (RFC 4616) over the shared
// decoder, which already refuses an authzid other than the authcid.
type plainServer struct {
	check func(user, pass string) error
	done  bool
}

var _ gosasl.Server = (*plainServer)(nil)

func (p *plainServer) Next(resp []byte) ([]byte, bool, error) {
	if p.done {
		return nil, true, fmt.Errorf("%w: %w", errCredentials, gosasl.ErrUnexpectedClientResponse)
	}
	if resp == nil {
		// No initial response: an empty challenge asks for it (RFC 4954 §4).
		return []byte{}, false, nil
	}
	p.done = true
	_, authcid, passwd, err := sasl.DecodePlain(resp)
	if err != nil {
		return nil, true, fmt.Errorf("%w: %w", errCredentials, err)
	}
	return nil, true, p.check(authcid, passwd)
}
