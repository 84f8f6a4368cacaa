package imapserver

import (
	"bufio"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/auth"
	"github.com/postern/postern/internal/events"
	"github.com/postern/postern/internal/mailstore"
	"github.com/postern/postern/internal/netserver"
	"github.com/postern/postern/internal/store/sqlstore"
	"github.com/postern/postern/internal/store/storetest"
	"github.com/postern/postern/internal/tlsconf"
)

const (
	testUser   = "alice@example.com"
	testSecret = "abcdefghijkmnpqrstuv"
)

// fakeAuth accepts one user and secret and records Track calls, so that a
// test can revoke a session as the real gateway would.
type fakeAuth struct {
	member account.Member

	mu          sync.Mutex
	attempts    []auth.Attempt // Secret blanked
	tracked     []*trackedSession
	unavailable bool
}

type trackedSession struct {
	close func()
	mu    sync.Mutex
	ended bool
}

func (s *trackedSession) isEnded() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.ended }

func (f *fakeAuth) Authenticate(_ context.Context, a auth.Attempt) (auth.Login, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ok := subtle.ConstantTimeCompare([]byte(a.Secret), []byte(testSecret)) == 1
	a.Secret = ""
	f.attempts = append(f.attempts, a)
	if f.unavailable {
		return auth.Login{}, &account.Error{Code: account.EUNAVAILABLE, Message: "Temporary failure, try again later."}
	}
	if !strings.EqualFold(a.User, f.member.Email) || !ok {
		return auth.Login{}, account.ErrAuthFailed
	}
	return auth.Login{Member: f.member}, nil
}

func (f *fakeAuth) Track(_ auth.Login, protocol string, close func()) func() {
	s := &trackedSession{close: close}
	f.mu.Lock()
	f.tracked = append(f.tracked, s)
	f.mu.Unlock()
	return func() { s.mu.Lock(); s.ended = true; s.mu.Unlock() }
}

func (f *fakeAuth) sessions() []*trackedSession {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*trackedSession(nil), f.tracked...)
}

func (f *fakeAuth) lastAttempt() auth.Attempt {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.attempts[len(f.attempts)-1]
}

// env is a server over a real SQLite store, on loopback ports.
type env struct {
	db        *sqlstore.DB
	mail      mailstore.Store
	bus       *events.Bus
	auth      *fakeAuth
	srv       *Server
	addr      string // STARTTLS port
	tlsAddr   string // implicit TLS port
	member    account.Member
	clientTLS *tls.Config
}

type envOptions struct {
	dir       string // reuse a data folder (restart); default t.TempDir()
	plaintext tlsconf.Plaintext
	noTailer  bool
	log       *slog.Logger
	// loginWindow shortens the server's.
	loginWindow time.Duration
	limits      netserver.Limits
	learner     JunkLearner
	quota       int64 // Config.Quota
	noCompress  bool  // Config.NoCompress
	// wrapMail, when set, wraps the store the server uses.
	wrapMail func(mailstore.Store) mailstore.Store
	// postgres stores in a fresh PostgreSQL schema instead of SQLite.
	postgres bool
}

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	// POSTERN_TEST_IMAP_ENGINE=postgres runs the server of every test that
	// does not restart on a data folder on PostgreSQL (a schema of its own).
	pg := o.dir == "" && os.Getenv("POSTERN_TEST_IMAP_ENGINE") == "postgres"
	if o.dir == "" {
		o.dir = t.TempDir()
	}
	if o.plaintext == "" {
		o.plaintext = tlsconf.PlaintextLoopback
	}
	ctx, cancel := context.WithCancel(context.Background())
	var db *sqlstore.DB
	var err error
	if o.postgres || pg {
		db = storetest.OpenPostgres(t)
	} else if db, err = sqlstore.Open(ctx, filepath.Join(o.dir, "postern.db")); err != nil {
		t.Fatalf("open store: %v", err)
	}
	e := &env{db: db, mail: db.Mail(), bus: events.NewBus(), clientTLS: &tls.Config{InsecureSkipVerify: true}}
	e.member, err = db.MemberByEmail(ctx, testUser)
	if account.ErrorCode(err) == account.ENOTFOUND {
		d := account.Domain{Name: "example.com"}
		if err := db.CreateDomain(ctx, &d); err != nil {
			t.Fatalf("create domain: %v", err)
		}
		e.member = account.Member{DomainID: d.ID, Email: testUser, Name: "Alice", PasswordHash: "unused"}
		err = db.CreateMember(ctx, &e.member)
	}
	if err != nil {
		t.Fatalf("member: %v", err)
	}
	e.auth = &fakeAuth{member: e.member}
	tlsCfg, err := tlsconf.Load("", "", o.dir, nil)
	if err != nil {
		t.Fatalf("tls: %v", err)
	}
	var tailerDone chan struct{}
	if !o.noTailer {
		tl := &events.Tailer{Store: db, Bus: e.bus, Interval: 20 * time.Millisecond, Retention: -1}
		tailerDone = make(chan struct{})
		go func() { defer close(tailerDone); tl.Run(ctx) }()
		<-tl.Ready()
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(&testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if o.log != nil {
		log = o.log
	}
	mail := e.mail
	if o.wrapMail != nil {
		mail = o.wrapMail(mail)
	}
	if o.loginWindow == 0 {
		o.loginWindow = defaultLoginWindow
	}
	e.srv = newServer(Config{Auth: e.auth, Mail: mail, Bus: e.bus, TLS: tlsCfg, Plaintext: o.plaintext, Log: log, Limits: o.limits, JunkLearner: o.learner, Quota: o.quota, NoCompress: o.noCompress}, o.loginWindow)
	l1, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr, e.tlsAddr = l1.Addr().String(), l2.Addr().String()
	served := make(chan struct{}, 2)
	go func() { e.srv.Serve(l1, false); served <- struct{}{} }()
	go func() { e.srv.Serve(l2, true); served <- struct{}{} }()
	t.Cleanup(func() {
		e.srv.Close()
		<-served
		<-served
		cancel()
		if tailerDone != nil {
			<-tailerDone
		}
		db.SQL.Close()
	})
	return e
}

// inbox returns the member's INBOX.
func (e *env) inbox(t testing.TB) mailstore.Mailbox {
	t.Helper()
	mb, err := e.mail.Mailbox(context.Background(), e.member.ID, "INBOX")
	if err != nil {
		t.Fatalf("inbox: %v", err)
	}
	return mb
}

// trash returns the member's Trash.
func (e *env) trash(t testing.TB) mailstore.Mailbox {
	t.Helper()
	mb, err := e.mail.Mailbox(context.Background(), e.member.ID, "Trash")
	if err != nil {
		t.Fatalf("trash: %v", err)
	}
	return mb
}

type testWriter struct{ t testing.TB }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// client is a raw IMAP client: the tests see the exact bytes.
type client struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	cl := &client{t: t, c: c, r: bufio.NewReader(c)}
	if g := cl.line(); !strings.HasPrefix(g, "* OK ") {
		t.Fatalf("greeting: %q", g)
	}
	return cl
}

func dialTLS(t testing.TB, e *env) *client {
	t.Helper()
	c, err := tls.Dial("tcp", e.tlsAddr, e.clientTLS)
	if err != nil {
		t.Fatalf("dial tls: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	cl := &client{t: t, c: c, r: bufio.NewReader(c)}
	if g := cl.line(); !strings.HasPrefix(g, "* OK ") {
		t.Fatalf("greeting: %q", g)
	}
	return cl
}

func (c *client) send(s string) {
	c.t.Helper()
	c.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c.c, s); err != nil {
		c.t.Fatalf("write %q: %v", s, err)
	}
}

// line reads one response line, literals included, without the CRLF.
func (c *client) line() string {
	c.t.Helper()
	s, err := c.readLine()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return s
}

func (c *client) readLine() (string, error) {
	c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	for {
		l, err := c.r.ReadString('\n')
		b.WriteString(l)
		if err != nil {
			return b.String(), err
		}
		// A literal: read its octets, then the rest of the line.
		trimmed := strings.TrimSuffix(l, "\r\n")
		if i := strings.LastIndexByte(trimmed, '{'); i >= 0 && strings.HasSuffix(trimmed, "}") {
			if n, err := strconv.Atoi(trimmed[i+1 : len(trimmed)-1]); err == nil {
				buf := make([]byte, n)
				if _, err := io.ReadFull(c.r, buf); err != nil {
					return b.String(), err
				}
				b.Write(buf)
				continue
			}
		}
		return strings.TrimSuffix(b.String(), "\r\n"), nil
	}
}

// cmd sends "tag command" and returns the responses up to the tagged one,
// which is last.
func (c *client) cmd(tag, command string) []string {
	c.t.Helper()
	c.send(tag + " " + command + "\r\n")
	return c.until(tag)
}

func (c *client) until(tag string) []string {
	c.t.Helper()
	var out []string
	for {
		l := c.line()
		out = append(out, l)
		if strings.HasPrefix(l, tag+" ") {
			return out
		}
	}
}

// ok runs a command and fails unless it gets a tagged OK.
func (c *client) ok(tag, command string) []string {
	c.t.Helper()
	out := c.cmd(tag, command)
	if last := out[len(out)-1]; !strings.HasPrefix(last, tag+" OK") {
		c.t.Fatalf("%s: %q", command, out)
	}
	return out
}

func (c *client) login() {
	c.t.Helper()
	c.ok("L", fmt.Sprintf("LOGIN %s %s", testUser, testSecret))
}

// closed reports whether the server closed the connection (after a BYE or
// not) within a generous deadline; it fails on any other data.
func (c *client) closed(d time.Duration) bool {
	c.c.SetReadDeadline(time.Now().Add(d))
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			var ne net.Error
			return !(asNetErr(err, &ne) && ne.Timeout())
		}
		if !strings.HasPrefix(l, "* BYE") && !strings.HasPrefix(l, "* ") {
			c.t.Errorf("unexpected data before close: %q", l)
		}
	}
}

func asNetErr(err error, ne *net.Error) bool {
	e, ok := err.(net.Error)
	if ok {
		*ne = e
	}
	return ok
}

func contains(lines []string, sub string) bool {
	for _, l := range lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

// startTLS runs STARTTLS and returns the client on the TLS connection.
func (c *client) startTLS(e *env) *client {
	c.t.Helper()
	c.ok("S", "STARTTLS")
	return c.startTLSAfterOK(e)
}

// startTLSAfterOK runs the handshake once STARTTLS was answered.
func (c *client) startTLSAfterOK(e *env) *client {
	c.t.Helper()
	tc := tls.Client(c.c, e.clientTLS)
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("handshake: %v", err)
	}
	tc.SetDeadline(time.Time{})
	return &client{t: c.t, c: tc, r: bufio.NewReader(tc)}
}
