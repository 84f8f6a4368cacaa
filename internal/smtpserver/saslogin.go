package smtpserver

import (
	"bytes"
	"errors"
	"fmt"
	"unicode/utf8"

	gosasl "github.com/emersion/go-sasl"
)

// The LOGIN mechanism (draft-murchison-sasl-login-00): the server asks for
// "Username:" and then "Password:", the client answers each in base64.
// go-sasl has only its client side, so the server side is here.
//
// Limits: the username is an address (at most 255 octets, like a PLAIN
// authcid); the password gets up to maxLoginPassword octets, the most the
// account service verifies, so that no password is ever truncated.
const (
	maxLoginUser     = 255
	maxLoginPassword = 1024
)

var (
	loginUserChallenge = []byte("Username:")
	loginPassChallenge = []byte("Password:")
)

// Errors of the LOGIN server. They name the rule and never carry input.
var (
	errLoginEmpty  = errors.New("sasl: LOGIN field is empty")
	errLoginLong   = errors.New("sasl: LOGIN field is too long")
	errLoginUTF8   = errors.New("sasl: LOGIN field is not valid UTF-8")
	errLoginNUL    = errors.New("sasl: LOGIN field contains NUL")
	errLoginExtra  = errors.New("sasl: LOGIN response after the exchange ended")
	errLoginPrompt = errors.New("sasl: LOGIN empty initial response")
)

type loginState int

const (
	loginStart loginState = iota
	loginWantUser
	loginWantPass
	loginDone
)

// loginServer implements gosasl.Server for LOGIN. check receives the decoded
// username and password exactly as sent.
type loginServer struct {
	check func(user, pass string) error
	state loginState
	user  string
}

var _ gosasl.Server = (*loginServer)(nil)

func newLoginServer(check func(user, pass string) error) *loginServer {
	return &loginServer{check: check}
}

// Next follows gosasl.Server: resp is nil only for a first call without an
// initial response. Some clients (Outlook, swaks with --auth-initial-response)
// send the username as initial response; that is accepted.
func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	switch l.state {
	case loginStart:
		if resp == nil {
			l.state = loginWantUser
			return loginUserChallenge, false, nil
		}
		if len(resp) == 0 {
			// "AUTH LOGIN =" has no username to offer: a credential failure.
			l.state = loginDone
			return nil, true, fmt.Errorf("%w: %w", errCredentials, errLoginPrompt)
		}
		fallthrough
	case loginWantUser:
		user, err := loginField(resp, maxLoginUser)
		if err != nil {
			l.state = loginDone
			return nil, true, err
		}
		l.user, l.state = user, loginWantPass
		return loginPassChallenge, false, nil
	case loginWantPass:
		l.state = loginDone
		pass, err := loginField(resp, maxLoginPassword)
		if err != nil {
			return nil, true, err
		}
		return nil, true, l.check(l.user, pass)
	}
	return nil, true, fmt.Errorf("%w: %w", errCredentials, errLoginExtra)
}

// loginField checks one decoded LOGIN response. A NUL is refused: it cannot
// be part of an address or of any password the account service accepts, and
// it would let one field smuggle a PLAIN-style separator.
func loginField(b []byte, limit int) (string, error) {
	var err error
	switch {
	case len(b) == 0:
		err = errLoginEmpty
	case len(b) > limit:
		err = errLoginLong
	case !utf8.Valid(b):
		err = errLoginUTF8
	case bytes.IndexByte(b, 0) >= 0:
		err = errLoginNUL
	default:
		return string(b), nil
	}
	return "", fmt.Errorf("%w: %w", errCredentials, err)
}
