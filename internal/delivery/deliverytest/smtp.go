package deliverytest

import (
	"crypto/tls"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Received is one message a test SMTP server accepted.
type Received struct {
	From  string
	Rcpts []string
	Data  []byte
	// Mail holds the MAIL FROM parameters (SIZE, BODY, SMTPUTF8).
	Mail smtp.MailOptions
	TLS  bool
	// User is the name that authenticated, "" for none.
	User string
}

// SMTPOptions shape a test SMTP server.
type SMTPOptions struct {
	// IP to listen on (port 25 unless Port), e.g. "127.15.0.1".
	IP   string
	Port int
	// TLS, when set, is offered with STARTTLS, or on connect with Implicit.
	TLS      *tls.Config
	Implicit bool
	SMTPUTF8 bool
	// Users enables AUTH PLAIN with these user names and passwords.
	Users map[string]string
	// AllowInsecureAuth offers AUTH without TLS.
	AllowInsecureAuth bool
	MaxMessageBytes   int64
	// MaxRecipients, when set, is offered as LIMITS RCPTMAX and enforced.
	MaxRecipients int
	// Rcpt, Data decide the replies; nil accepts. Return Reply(...) for an
	// SMTP error reply.
	Rcpt func(rcpt string) error
	Data func(from string, rcpts []string, data []byte) error
}

// Reply is an SMTP error reply for Rcpt and Data hooks, e.g.
// Reply(550, "5.1.1", "No such user").
func Reply(code int, enhanced, text string) error {
	e := &smtp.SMTPError{Code: code, Message: text, EnhancedCode: smtp.NoEnhancedCode}
	if parts := strings.Split(enhanced, "."); len(parts) == 3 {
		for i, p := range parts {
			e.EnhancedCode[i], _ = strconv.Atoi(p)
		}
	}
	return e
}

// SMTP is a running test server.
type SMTP struct {
	Addr string
	opts SMTPOptions

	srv *smtp.Server

	mu       sync.Mutex
	messages []Received
	accepts  int
	open     int
	maxOpen  int
}

// StartSMTP runs a go-smtp server until the test ends.
func StartSMTP(t testing.TB, opts SMTPOptions) *SMTP {
	t.Helper()
	port := opts.Port
	if port == 0 {
		port = 25
	}
	addr := net.JoinHostPort(opts.IP, strconv.Itoa(port))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("test SMTP server on %s: %v", addr, err)
	}
	s := &SMTP{Addr: addr, opts: opts}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		_, isTLS := c.TLSConnectionState()
		return &session{srv: s, tls: isTLS, conn: c}, nil
	}))
	srv.Domain = "mx.test"
	srv.EnableSMTPUTF8 = opts.SMTPUTF8
	srv.AllowInsecureAuth = opts.AllowInsecureAuth
	srv.MaxMessageBytes = opts.MaxMessageBytes
	srv.MaxRecipients = opts.MaxRecipients
	srv.ErrorLog = discard{}
	var ln net.Listener = &countingListener{Listener: l, s: s}
	if opts.TLS != nil {
		if opts.Implicit {
			ln = tls.NewListener(ln, opts.TLS)
		} else {
			srv.TLSConfig = opts.TLS
		}
	}
	s.srv = srv
	go srv.Serve(ln)
	t.Cleanup(s.Close)
	return s
}

// Close stops the server and closes its connections.
func (s *SMTP) Close() { s.srv.Close() }

type discard struct{}

func (discard) Printf(string, ...interface{}) {}
func (discard) Println(...interface{})        {}

// Messages returns the messages accepted so far.
func (s *SMTP) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.messages...)
}

// Accepts returns how many TCP connections the server accepted.
func (s *SMTP) Accepts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepts
}

// Open returns the connections open now and the most open at once.
func (s *SMTP) Open() (now, max int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.open, s.maxOpen
}

type countingListener struct {
	net.Listener
	s *SMTP
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.s.mu.Lock()
	l.s.accepts++
	l.s.open++
	l.s.maxOpen = max(l.s.maxOpen, l.s.open)
	l.s.mu.Unlock()
	return &countedConn{Conn: c, s: l.s}, nil
}

type countedConn struct {
	net.Conn
	s    *SMTP
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() {
		c.s.mu.Lock()
		c.s.open--
		c.s.mu.Unlock()
	})
	return c.Conn.Close()
}

type session struct {
	srv   *SMTP
	conn  *smtp.Conn
	tls   bool
	user  string
	from  string
	mail  smtp.MailOptions
	rcpts []string
}

func (s *session) AuthMechanisms() []string {
	if s.srv.opts.Users == nil {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if want, ok := s.srv.opts.Users[user]; !ok || want != pass || (identity != "" && identity != user) {
			return smtp.ErrAuthFailed
		}
		s.user = user
		return nil
	}), nil
}

func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	if s.srv.opts.Users != nil && s.user == "" {
		return smtp.ErrAuthRequired
	}
	s.from = from
	if opts != nil {
		s.mail = *opts
	}
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if f := s.srv.opts.Rcpt; f != nil {
		if err := f(to); err != nil {
			return err
		}
	}
	s.rcpts = append(s.rcpts, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if f := s.srv.opts.Data; f != nil {
		if err := f(s.from, s.rcpts, data); err != nil {
			return err
		}
	}
	_, isTLS := s.conn.TLSConnectionState()
	s.srv.mu.Lock()
	s.srv.messages = append(s.srv.messages, Received{From: s.from, Rcpts: append([]string(nil), s.rcpts...),
		Data: data, Mail: s.mail, TLS: isTLS || s.tls, User: s.user})
	s.srv.mu.Unlock()
	return nil
}

func (s *session) Reset() {
	s.from, s.rcpts, s.mail = "", nil, smtp.MailOptions{}
}

func (s *session) Logout() error { return nil }
