package pop3server

import (
	"bufio"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/auth"
	"github.com/postern/postern/internal/store/sqlstore"
	"github.com/postern/postern/internal/tlsconf"
)

const (
	testUser = "ann@example.com"
	testPass = "abcdefghijkmnpqrstuv"
	// tempUser's logins fail as if the database were down.
	tempUser = "temp@example.com"
)

// fakeAuth is an auth.Authenticator that knows one member. Its failures are
// different errors (unknown user, bad password) carrying the same generic
// message, as the real gateway's are, so tests can check the replies agree.
type fakeAuth struct {
	member account.Member

	mu       sync.Mutex
	attempts []auth.Attempt
	closers  []func()
	done     int
}

func (f *fakeAuth) Authenticate(ctx context.Context, a auth.Attempt) (auth.Login, error) {
	secret := a.Secret
	a.Secret = "" // keep no secret around, even in a test
	f.mu.Lock()
	f.attempts = append(f.attempts, a)
	f.mu.Unlock()
	switch strings.ToLower(a.User) {
	case tempUser:
		return auth.Login{}, &account.Error{Code: account.EUNAVAILABLE, Message: "Try again later.", Err: errors.New("database down")}
	case testUser:
		if subtle.ConstantTimeCompare([]byte(secret), []byte(testPass)) == 1 {
			return auth.Login{Member: f.member}, nil
		}
		return auth.Login{}, loginFailure("bad-password")
	}
	return auth.Login{}, loginFailure("unknown-user")
}

func loginFailure(reason string) error {
	return &account.Error{Code: account.EUNAUTHORIZED, Message: account.ErrAuthFailed.Message, Err: errors.New(reason)}
}

func (f *fakeAuth) Track(l auth.Login, protocol string, close func()) func() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closers = append(f.closers, close)
	return func() {
		f.mu.Lock()
		f.done++
		f.mu.Unlock()
	}
}

func (f *fakeAuth) lastAttempt() auth.Attempt {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.attempts[len(f.attempts)-1]
}

func (f *fakeAuth) counts() (tracked, done int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.closers), f.done
}

// testEnv is a running server over a real SQLite store.
type testEnv struct {
	srv   *Server
	db    *sqlstore.DB
	auth  *fakeAuth
	addr  string // host:port of the cleartext (STLS) listener
	tls   *tls.Config
	inbox int64 // the member's ID
}

type envOption func(*Config)

func withPlaintext(p tlsconf.Plaintext) envOption { return func(c *Config) { c.Plaintext = p } }

// newEnv starts a server with a member holding the given messages in INBOX.
func newEnv(t testing.TB, msgs []string, opts ...envOption) *testEnv {
	t.Helper()
	ctx := context.Background()
	// sqlstore directly, not storetest: a real SQLite file in t.TempDir().
	db, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "postern.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	d := account.Domain{Name: "example.com"}
	if err := db.CreateDomain(ctx, &d); err != nil {
		t.Fatal(err)
	}
	m := account.Member{DomainID: d.ID, Email: testUser, Name: "Ann"}
	if err := db.CreateMember(ctx, &m); err != nil {
		t.Fatal(err)
	}
	for _, body := range msgs {
		if err := db.Mail().Deliver(ctx, m.ID, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	tlsCfg, err := tlsconf.Load("", "", t.TempDir(), []string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	fa := &fakeAuth{member: m}
	cfg := Config{
		Auth: fa, Mail: db.Mail(), TLS: tlsCfg, Plaintext: tlsconf.PlaintextLoopback,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Hostname: "pop.example.com",
	}
	for _, o := range opts {
		o(&cfg)
	}
	srv := New(cfg)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l, false)
	t.Cleanup(func() { srv.Close() })
	return &testEnv{srv: srv, db: db, auth: fa, addr: l.Addr().String(), tls: tlsCfg, inbox: m.ID}
}

// serveImplicit adds an implicit-TLS listener and returns its address.
func (e *testEnv) serveImplicit(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go e.srv.Serve(l, true)
	return l.Addr().String()
}

// client is a raw POP3 client for byte-exact tests.
type client struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	c := &client{t: t, conn: conn, r: bufio.NewReader(conn)}
	if g := c.line(); !strings.HasPrefix(g, "+OK ") {
		t.Fatalf("greeting %q", g)
	}
	return c
}

// line reads one response line without its CRLF, failing on a bare LF.
func (c *client) line() string {
	c.t.Helper()
	s, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (got %q)", err, s)
	}
	if !strings.HasSuffix(s, "\r\n") {
		c.t.Fatalf("line %q does not end in CRLF", s)
	}
	return strings.TrimSuffix(s, "\r\n")
}

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// cmd sends one command line and returns the first response line.
func (c *client) cmd(line string) string {
	c.t.Helper()
	c.send(line + "\r\n")
	return c.line()
}

// multi reads the lines of a multi-line response up to the ".".
func (c *client) multi() []string {
	c.t.Helper()
	var out []string
	for {
		l := c.line()
		if l == "." {
			return out
		}
		out = append(out, l)
	}
}

// expectClosed checks that the server closes the connection.
func (c *client) expectClosed() {
	c.t.Helper()
	s, err := c.r.ReadString('\n')
	if err == nil {
		c.t.Fatalf("got %q, want the connection closed", s)
	}
}

func (c *client) login() {
	c.t.Helper()
	if r := c.cmd("USER " + testUser); r != "+OK Send your password." {
		c.t.Fatalf("USER: %q", r)
	}
	if r := c.cmd("PASS " + testPass); !strings.HasPrefix(r, "+OK ") {
		c.t.Fatalf("PASS: %q", r)
	}
}
