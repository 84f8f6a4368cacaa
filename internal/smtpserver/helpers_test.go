package smtpserver

import (
	"bufio"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/auth"
	"github.com/postern/postern/internal/mailstore"
	"github.com/postern/postern/internal/store/sqlstore"
	"github.com/postern/postern/internal/store/storetest"
	"github.com/postern/postern/internal/tlsconf"
)

// Passwords of the fake gateway; they only have to be distinct.
const (
	alicePass = "alicEapppass2345abcd"
	bobPass   = "bobbyApppass2345abcd"
	// unavailableUser makes the fake gateway answer EUNAVAILABLE.
	unavailableUser = "down@example.test"
)

// fakeAuth stands in for the auth gateway (another package's job): a fixed
// password per member, EUNAVAILABLE for one user, and a record of attempts
// and tracked sessions.
type fakeAuth struct {
	mu       sync.Mutex
	users    map[string]account.Member
	pass     map[string]string
	attempts []auth.Attempt
	closers  []func()
	dones    int
}

func (f *fakeAuth) Authenticate(ctx context.Context, a auth.Attempt) (auth.Login, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rec := a
	rec.Secret = "" // tests assert on the rest
	f.attempts = append(f.attempts, rec)
	if strings.EqualFold(a.User, unavailableUser) {
		return auth.Login{}, &account.Error{Code: account.EUNAVAILABLE, Message: "Temporary failure.", Err: errors.New("db down")}
	}
	key := strings.ToLower(a.User)
	m, ok := f.users[key]
	if !ok || subtle.ConstantTimeCompare([]byte(f.pass[key]), []byte(a.Secret)) != 1 {
		return auth.Login{}, account.ErrAuthFailed
	}
	return auth.Login{Member: m, Credential: account.Credential{AppPasswordID: "ap1", AppName: "test"}}, nil
}

func (f *fakeAuth) Track(l auth.Login, protocol string, close func()) func() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closers = append(f.closers, close)
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			f.dones++
			f.mu.Unlock()
		})
	}
}

func (f *fakeAuth) snapshot() (attempts []auth.Attempt, closers []func(), dones int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]auth.Attempt(nil), f.attempts...), append([]func(){}, f.closers...), f.dones
}

// env is a server on real loopback sockets over a real SQLite store.
type env struct {
	t          *testing.T
	db         *sqlstore.DB
	se         *storetest.Env
	mail       *sqlstore.Mail
	auth       *fakeAuth
	srv        *Server
	addr       string // STARTTLS listener (587-like)
	tlsAddr    string // implicit TLS listener (465-like)
	certFile   string
	clientTLS  *tls.Config
	alice, bob account.Member
}

func newEnv(t *testing.T, opts ...func(*Config)) *env {
	t.Helper()
	db := storetest.OpenSQLite(t)
	se := storetest.NewEnv(t, db)
	se.Domain(t, "example.test", storetest.OptionalDate)
	se.Domain(t, "other.test", storetest.OptionalDate)
	e := &env{t: t, db: db, mail: db.Mail(), se: se}
	e.alice = se.Member(t, "alice@example.test")
	e.bob = se.Member(t, "bob@other.test")
	e.auth = &fakeAuth{
		users: map[string]account.Member{e.alice.Email: e.alice, e.bob.Email: e.bob},
		pass:  map[string]string{e.alice.Email: alicePass, e.bob.Email: bobPass},
	}
	dir := t.TempDir()
	tlsCfg, err := tlsconf.Load("", "", dir, nil)
	if err != nil {
		t.Fatalf("tls: %v", err)
	}
	e.certFile = filepath.Join(dir, "tls", "cert.pem")
	pem, err := os.ReadFile(e.certFile)
	if err != nil {
		t.Fatalf("read cert: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	e.clientTLS = &tls.Config{RootCAs: pool, ServerName: "localhost"}

	cfg := Config{
		Auth: e.auth, Recipients: se.Svc, Mail: e.mail, Sending: se.Svc, TLS: tlsCfg,
		Plaintext: tlsconf.PlaintextLoopback, Hostname: "mx.example.test",
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, o := range opts {
		o(&cfg)
	}
	e.srv = New(cfg)
	e.addr = e.listen(false)
	e.tlsAddr = e.listen(true)
	t.Cleanup(func() { e.srv.Close() })
	return e
}

func (e *env) listen(implicit bool) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatalf("listen: %v", err)
	}
	go e.srv.Serve(l, implicit)
	return l.Addr().String()
}

// inbox returns the bodies of the member's INBOX messages in UID order.
func (e *env) inbox(m account.Member) []string { return e.box(m, "INBOX") }

// client is a raw SMTP client on a socket: it sends exact bytes and reads
// exact replies.
type client struct {
	t  *testing.T
	nc net.Conn
	r  *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c := dialNoGreeting(t, addr)
	c.want("220 ")
	return c
}

// dialNoGreeting connects and leaves the greeting to be read.
func dialNoGreeting(t *testing.T, addr string) *client {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { nc.Close() })
	return &client{t: t, nc: nc, r: bufio.NewReader(nc)}
}

// send writes raw bytes.
func (c *client) send(s string) {
	c.t.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c.nc, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// reply reads one whole reply, multi-line ones included, as raw text.
func (c *client) reply() string {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	for {
		line, err := c.r.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			c.t.Fatalf("read reply (so far %q): %v", b.String(), err)
		}
		if len(line) < 4 || line[3] != '-' {
			return b.String()
		}
	}
}

// cmd sends line with CRLF and returns the reply.
func (c *client) cmd(line string) string {
	c.t.Helper()
	c.send(line + "\r\n")
	return c.reply()
}

// want reads a reply and checks that it starts with prefix.
func (c *client) want(prefix string) string {
	c.t.Helper()
	r := c.reply()
	if !strings.HasPrefix(r, prefix) {
		c.t.Fatalf("reply %q, want prefix %q", r, prefix)
	}
	return r
}

func (c *client) wantCmd(line, prefix string) string {
	c.t.Helper()
	r := c.cmd(line)
	if !strings.HasPrefix(r, prefix) {
		c.t.Fatalf("%.60q: reply %q, want prefix %q", line, r, prefix)
	}
	return r
}

// login greets and logs in with AUTH PLAIN.
func (c *client) login(user, pass string) {
	c.t.Helper()
	c.wantCmd("EHLO client.test", "250")
	c.wantCmd("AUTH PLAIN "+plainIR("", user, pass), "235 2.7.0 ")
}

// startTLS upgrades the raw client.
func (c *client) startTLS(cfg *tls.Config) {
	c.t.Helper()
	tc := tls.Client(c.nc, cfg)
	c.nc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("client handshake: %v", err)
	}
	c.nc, c.r = tc, bufio.NewReader(tc)
}

// waitClosed reads until the server closes the connection.
func (c *client) waitClosed() {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, c.r); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.t.Fatalf("connection still open")
		}
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func plainIR(authz, user, pass string) string { return b64(authz + "\x00" + user + "\x00" + pass) }

// failingMail is the real store whose Deliver fails for one member.
type failingMail struct {
	Mail
	failFor int64
}

func (f failingMail) DeliverAll(ctx context.Context, ds []mailstore.Delivery) error {
	for _, d := range ds {
		if d.MemberID == f.failFor {
			return errors.New("disk on fire")
		}
	}
	return f.Mail.DeliverAll(ctx, ds)
}
