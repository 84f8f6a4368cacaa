package imapserver

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	gosasl "github.com/emersion/go-sasl"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/auth"
	"github.com/postern/postern/internal/mailstore"
	"github.com/postern/postern/internal/sasl"
)

// session is one go-imap session: a connection's state from login to logout.
// go-imap calls its methods from one goroutine, except Idle, which runs
// beside the reading of DONE; the fields the Bus callback and the revocation
// touch are atomic.
type session struct {
	srv   *Server
	conn  *imapserver.Conn
	st    *connState
	email string // the member's, once logged in: for logs

	ctx    context.Context
	cancel context.CancelFunc

	memberID int64
	// client is what the client said it is with ID (RFC 2971) before
	// logging in: "Thunderbird 128.5.0". The login record and the live
	// session show it; an ID after the login is answered, not recorded.
	client string
	done   func() // from Authenticator.Track
	unsub  func() // Bus subscription

	sel        *selected    // the selected mailbox, nil when none
	selectedID atomic.Int64 // sel's mailbox ID, for the Bus callback
	dirty      atomic.Bool  // the selected mailbox must be read again, all it holds now
	// heard is the store's Heard when the latest event about the selected
	// mailbox came (0: none since the last re-read): the re-read needs
	// those changes only (mailstore.Store.StateHeard).
	heard     atomic.Uint64
	changed   chan struct{}
	closeOnce sync.Once

	// fitted is what AppendFits last found for a literal, which the APPEND
	// then reading that literal need not ask the store again.
	fitted appendCheck
	// known is what the session learned of its last APPEND's mailbox, nil
	// when nothing is known.
	known *knownTarget
}

var (
	_ imapserver.Session            = (*session)(nil)
	_ imapserver.SessionNamespace   = (*session)(nil)
	_ imapserver.SessionMove        = (*session)(nil)
	_ imapserver.SessionSASL        = (*session)(nil)
	_ imapserver.SessionAppendLimit = (*session)(nil)
	_ imapserver.SessionNoop        = (*session)(nil)
	_ imapserver.SessionCondStore   = (*session)(nil)
	_ imapserver.SessionMultiAppend = (*session)(nil)
	_ imapserver.SessionIMAP4rev2   = (*session)(nil)
	_ imapserver.SessionClientID    = (*session)(nil)
)

func (s *Server) newSession(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
	st := connOf(c)
	if st == nil {
		return nil, nil, &imap.Error{Type: imap.StatusResponseTypeBye, Text: "Internal error."}
	}
	ctx, cancel := context.WithCancel(context.Background())
	sess := &session{
		srv: s, conn: c, st: st,
		ctx: ctx, cancel: cancel,
		changed: make(chan struct{}, 1),
	}
	st.served(c)
	return sess, nil, nil
}

// logger is the connection's logger with the member, once logged in.
func (s *session) logger() *slog.Logger {
	if s.email == "" {
		return s.st.logger()
	}
	return s.st.logger().With("member", s.email)
}

// The one reply to every failed login, whatever the reason (SPEC §5,
// docs/security.md): wrong user, wrong password, policy, malformed
// PLAIN message all give these same bytes.
var errAuthFailed = &imap.Error{
	Type: imap.StatusResponseTypeNo,
	Code: imap.ResponseCodeAuthenticationFailed,
	Text: "Authentication failed.",
}

var errAuthUnavailable = &imap.Error{
	Type: imap.StatusResponseTypeNo,
	Code: imap.ResponseCodeUnavailable,
	Text: "Temporary failure, try again later.",
}

// Login is LOGIN (RFC 9051 §6.2.3). go-imap has already refused it when
// the connection may not send a password (LOGINDISABLED).
func (s *session) Login(username, password string) error {
	return s.authenticate(username, password, "LOGIN")
}

func (s *session) authenticate(user, secret, mech string) error {
	login, err := s.srv.cfg.Auth.Authenticate(s.ctx, auth.Attempt{
		User: user, Secret: secret, Protocol: auth.IMAP, Mechanism: mech,
		RemoteIP: s.st.remoteIP, TLS: s.isTLS(), Client: s.client,
	})
	if err != nil {
		if account.ErrorCode(err) == account.EUNAVAILABLE {
			s.logger().Warn("imap login unavailable", "err", err)
			return errAuthUnavailable
		}
		return errAuthFailed
	}
	s.memberID = login.Member.ID
	s.email = login.Member.Email
	if bus := s.srv.cfg.Bus; bus != nil {
		s.unsub = bus.Subscribe(login.Member.ID, s.onEvent)
	}
	s.done = s.srv.cfg.Auth.Track(login, auth.IMAP, s.revoke)
	return nil
}

// ClientID implements imapserver.SessionClientID.
func (s *session) ClientID(id *imap.IDData) {
	if s.memberID != 0 {
		return
	}
	name := strings.TrimSpace(id.Name)
	if v := strings.TrimSpace(id.Version); name != "" && v != "" {
		name += " " + v
	}
	s.client = name
}

// revoke ends the session because its credential was revoked.
func (s *session) revoke() { s.end("Session ended: the credential was revoked") }

// end says BYE with text and closes the connection (connState.end). It may
// run on any goroutine and returns at once.
func (s *session) end(text string) { s.st.end(text) }

// isTLS: the connection runs TLS, implicit or after STARTTLS.
func (s *session) isTLS() bool {
	_, ok := s.conn.NetConn().(*tls.Conn)
	return ok
}

// onEvent runs on the publisher's goroutine: it only flags and signals.
func (s *session) onEvent(e account.Event) {
	if e.Kind != account.EventMailboxChanged || e.MailboxID == 0 || e.MailboxID != s.selectedID.Load() {
		return
	}
	// The store's count has grown past e's before e is handed on, and
	// only grows: the latest value stands for every event so far. An
	// event the store did not read (0) asks for everything.
	if h := s.srv.cfg.Mail.Heard(); h != 0 {
		s.heard.Store(h)
	} else {
		s.dirty.Store(true)
	}
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// Close ends the session (LOGOUT, or the connection went away).
func (s *session) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		if s.unsub != nil {
			s.unsub()
		}
		if s.done != nil {
			s.done()
		}
	})
	return nil
}

// AuthenticateMechanisms lists the SASL mechanisms: PLAIN only (SPEC §5),
// one slice for every call (go-imap asks for the greeting and for every
// LOGIN reply, and only reads it).
func (s *session) AuthenticateMechanisms() []string { return plainOnly }

var plainOnly = []string{"PLAIN"}

// Authenticate is AUTHENTICATE (RFC 9051 §6.2.2), with or without an initial
// response (SASL-IR, RFC 4959).
func (s *session) Authenticate(mech string) (gosasl.Server, error) {
	if mech != "PLAIN" {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: "Unsupported authentication mechanism."}
	}
	return &plainServer{s: s}, nil
}

// plainServer is the server side of SASL PLAIN. go-sasl's would answer a
// foreign authzid with AUTHORIZATIONFAILED; here every failure is the one
// generic reply.
type plainServer struct {
	s       *session
	started bool
}

func (p *plainServer) Next(resp []byte) ([]byte, bool, error) {
	if resp == nil && !p.started {
		// No initial response: ask for it with an empty challenge, "+ "
		// (go-imap would spell an empty, non-nil one "=").
		p.started = true
		return nil, false, nil
	}
	_, user, pass, err := sasl.DecodePlain(resp)
	if err != nil {
		return nil, true, errAuthFailed
	}
	return nil, true, p.s.authenticate(user, pass, "PLAIN")
}

// AppendLimit is advertised as APPENDLIMIT (RFC 7889).
func (s *session) AppendLimit() uint32 { return mailstore.MaxMessageSize }

// Namespace: one personal namespace, "/" separated (RFC 2342).
func (s *session) Namespace() (*imap.NamespaceData, error) {
	return &imap.NamespaceData{Personal: []imap.NamespaceDescriptor{{Prefix: "", Delim: delim}}}, nil
}

// storeErr turns a store error into a client reply; the cause is logged.
func (s *session) storeErr(op string, err error) error {
	no := func(code imap.ResponseCode, text string) error {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: code, Text: text}
	}
	switch account.ErrorCode(err) {
	case account.ENOTFOUND:
		return no(imap.ResponseCodeNonExistent, "No such mailbox.")
	case account.ECONFLICT:
		if errors.Is(err, mailstore.ErrHasChildren) {
			return no(imap.ResponseCodeHasChildren, account.ErrorMessage(err))
		}
		return no(imap.ResponseCodeAlreadyExists, account.ErrorMessage(err))
	case account.EINVALID, account.EFORBIDDEN, account.ELIMIT:
		return no(imap.ResponseCodeCannot, account.ErrorMessage(err))
	case account.EUNAVAILABLE:
		return errAuthUnavailableMsg
	}
	s.logger().Error("imap "+op+" failed", "err", err)
	return no(imap.ResponseCodeServerBug, "Internal error.")
}

var errAuthUnavailableMsg = &imap.Error{
	Type: imap.StatusResponseTypeNo,
	Code: imap.ResponseCodeUnavailable,
	Text: "Temporarily unavailable, try again later.",
}
