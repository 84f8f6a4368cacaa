package pop3server

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/internal/auth"
	"github.com/postern/postern/internal/tlsconf"
)

const (
	msg1 = "From: bob@example.com\r\nTo: ann@example.com\r\nSubject: one\r\n\r\nHello.\r\n.hidden dot\r\n.\r\nbye\r\n"
	msg2 = "From: eve@example.com\nSubject: two\n\nbody line 1\nbody line 2\nbody line 3\n"
)

func plain(authzid, user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(authzid + "\x00" + user + "\x00" + pass))
}

func TestCapa(t *testing.T) {
	e := newEnv(t, nil)
	c := dial(t, e.addr)
	if r := c.cmd("CAPA"); r != "+OK Capability list follows." {
		t.Fatalf("CAPA: %q", r)
	}
	got := strings.Join(c.multi(), ",")
	want := "TOP,UIDL,USER,SASL PLAIN,STLS,RESP-CODES,AUTH-RESP-CODE,PIPELINING,IMPLEMENTATION Postern"
	if got != want {
		t.Fatalf("CAPA = %s, want %s", got, want)
	}
	c.login()
	c.cmd("CAPA")
	if got := strings.Join(c.multi(), ","); got != "TOP,UIDL,RESP-CODES,AUTH-RESP-CODE,PIPELINING,IMPLEMENTATION Postern" {
		t.Fatalf("CAPA after login = %s", got)
	}
}

func TestTransaction(t *testing.T) {
	e := newEnv(t, []string{msg1, msg2})
	c := dial(t, e.addr)
	if r := c.cmd("STAT"); r != replyBadState {
		t.Fatalf("STAT before login: %q", r)
	}
	c.login()
	a := e.auth.lastAttempt()
	if a.Protocol != auth.POP3 || a.Mechanism != "USER" || a.RemoteIP != netip.MustParseAddr("127.0.0.1") || a.TLS || a.User != testUser {
		t.Fatalf("attempt %+v", a)
	}
	size1, size2 := len(msg1), len(msg2)
	if r := c.cmd("STAT"); r != "+OK 2 "+itoa(size1+size2) {
		t.Fatalf("STAT: %q", r)
	}
	c.cmd("LIST")
	if got := strings.Join(c.multi(), ","); got != "1 "+itoa(size1)+",2 "+itoa(size2) {
		t.Fatalf("LIST: %s", got)
	}
	if r := c.cmd("LIST 2"); r != "+OK 2 "+itoa(size2) {
		t.Fatalf("LIST 2: %q", r)
	}
	for _, bad := range []string{"LIST 3", "RETR 0", "RETR x", "TOP 1", "TOP 1 -1", "DELE", "LIST 1 2", "FOO"} {
		if r := c.cmd(bad); !strings.HasPrefix(r, "-ERR ") {
			t.Fatalf("%s: %q", bad, r)
		}
	}
	// RETR byte-stuffs and ends every line in CRLF.
	if r := c.cmd("RETR 1"); r != "+OK "+itoa(size1)+" octets" {
		t.Fatalf("RETR: %q", r)
	}
	if got, want := strings.Join(c.multi(), "\n"), "From: bob@example.com\nTo: ann@example.com\nSubject: one\n\nHello.\n..hidden dot\n..\nbye"; got != want {
		t.Fatalf("RETR 1 =\n%s\nwant\n%s", got, want)
	}
	c.cmd("TOP 2 1")
	if got := strings.Join(c.multi(), "\n"); got != "From: eve@example.com\nSubject: two\n\nbody line 1" {
		t.Fatalf("TOP 2 1 = %q", got)
	}
	c.cmd("UIDL")
	uidl := c.multi()
	if len(uidl) != 2 || !strings.HasPrefix(uidl[0], "1 ") || !strings.HasPrefix(uidl[1], "2 ") || uidl[0][2:] == uidl[1][2:] {
		t.Fatalf("UIDL: %q", uidl)
	}
	if r := c.cmd("UIDL 2"); r != "+OK "+uidl[1] {
		t.Fatalf("UIDL 2: %q", r)
	}
	if r := c.cmd("DELE 1"); r != "+OK Message 1 deleted." {
		t.Fatalf("DELE: %q", r)
	}
	for _, cmd := range []string{"RETR 1", "TOP 1 0", "LIST 1", "UIDL 1", "DELE 1"} {
		if r := c.cmd(cmd); r != "-ERR Message 1 already deleted." {
			t.Fatalf("%s after DELE: %q", cmd, r)
		}
	}
	if r := c.cmd("STAT"); r != "+OK 1 "+itoa(size2) {
		t.Fatalf("STAT after DELE: %q", r)
	}
	c.cmd("RSET")
	if r := c.cmd("STAT"); r != "+OK 2 "+itoa(size1+size2) {
		t.Fatalf("STAT after RSET: %q", r)
	}
	c.cmd("DELE 2")
	if r := c.cmd("NOOP"); r != "+OK" {
		t.Fatalf("NOOP: %q", r)
	}
	if r := c.cmd("USER x"); r != replyBadState {
		t.Fatalf("USER in transaction: %q", r)
	}
	if r := c.cmd("QUIT"); r != "+OK Bye, 1 messages deleted." {
		t.Fatalf("QUIT: %q", r)
	}
	c.expectClosed()

	// The next session sees message 1 only, with the same unique-id.
	c = dial(t, e.addr)
	c.login()
	c.cmd("UIDL")
	if got := c.multi(); len(got) != 1 || got[0] != uidl[0] {
		t.Fatalf("UIDL after QUIT: %q, want [%s]", got, uidl[0])
	}
	waitFor(t, "done called for both sessions", func() bool { _, d := e.auth.counts(); return d >= 1 })
}

func TestDroppedConnectionDeletesNothing(t *testing.T) {
	e := newEnv(t, []string{msg1, msg2})
	c := dial(t, e.addr)
	c.login()
	c.cmd("DELE 1")
	c.cmd("DELE 2")
	c.conn.Close()
	waitFor(t, "session end", func() bool { _, d := e.auth.counts(); return d == 1 })
	msgs := e.messages(t)
	if len(msgs) != 2 {
		t.Fatalf("%d messages left, want 2", len(msgs))
	}
}

func TestAuthFailuresAreIdentical(t *testing.T) {
	e := newEnv(t, nil)
	c := dial(t, e.addr)
	var replies []string
	// Unknown user, wrong password, over USER/PASS and AUTH PLAIN (with an
	// initial response and as a continuation), and a malformed PLAIN message.
	c.cmd("USER nobody@example.com")
	replies = append(replies, c.cmd("PASS "+testPass))
	c.cmd("USER " + testUser)
	replies = append(replies, c.cmd("PASS wrong"))
	c.cmd("USER " + testUser)
	replies = append(replies, c.cmd("PASS "+testPass+"x"))
	replies = append(replies, c.cmd("AUTH PLAIN "+plain("", "nobody@example.com", testPass)))
	replies = append(replies, c.cmd("AUTH PLAIN "+plain("", testUser, "wrong")))
	if r := c.cmd("AUTH PLAIN"); r != "+ " {
		t.Fatalf("AUTH PLAIN: %q", r)
	}
	replies = append(replies, c.cmd(plain("", testUser, "wrong")))
	replies = append(replies, c.cmd("AUTH PLAIN "+plain("admin@example.com", testUser, testPass)))
	replies = append(replies, c.cmd("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("no nuls"))))
	for i, r := range replies {
		if r != "-ERR [AUTH] Authentication failed." {
			t.Errorf("failure %d: %q", i, r)
		}
	}
	// A temporary failure is told apart: the client should retry, not ask
	// the user for a new password (RFC 3206 SYS/TEMP).
	c.cmd("USER " + tempUser)
	if r := c.cmd("PASS x"); !strings.HasPrefix(r, "-ERR [SYS/TEMP] ") {
		t.Fatalf("temporary failure: %q", r)
	}
	// PASS without USER, and USER forgotten after a PASS.
	if r := c.cmd("PASS " + testPass); r != "-ERR USER first." {
		t.Fatalf("PASS first: %q", r)
	}
	// Still usable: a correct login works on the same connection.
	c.login()
}

func TestTooManyFailuresClose(t *testing.T) {
	e := newEnv(t, nil)
	c := dial(t, e.addr)
	for i := 0; i < maxAuthFailures; i++ {
		if r := c.cmd("AUTH PLAIN " + plain("", testUser, "wrong")); r != replyAuthFailed {
			t.Fatalf("attempt %d: %q", i, r)
		}
	}
	c.expectClosed()
}

func TestAuthPlain(t *testing.T) {
	e := newEnv(t, []string{msg1})
	c := dial(t, e.addr)
	if r := c.cmd("AUTH"); r != "+OK Mechanisms follow." {
		t.Fatalf("AUTH: %q", r)
	}
	if got := c.multi(); len(got) != 1 || got[0] != "PLAIN" {
		t.Fatalf("AUTH list: %q", got)
	}
	if r := c.cmd("AUTH CRAM-MD5"); r != "-ERR Unsupported authentication mechanism." {
		t.Fatalf("AUTH CRAM-MD5: %q", r)
	}
	// "*" cancels, with or without the continuation (RFC 5034 §4).
	c.cmd("AUTH PLAIN")
	if r := c.cmd("*"); r != "-ERR Authentication cancelled." {
		t.Fatalf("cancel: %q", r)
	}
	if r := c.cmd("AUTH PLAIN *"); r != "-ERR Authentication cancelled." {
		t.Fatalf("cancel IR: %q", r)
	}
	for _, bad := range []string{"=AAA", "AAA=BBB", "AGFubgBwdw", "!!!!", "="} {
		var r string
		if bad == "=" {
			r = c.cmd("AUTH PLAIN =") // the empty response: no PLAIN message at all
			if r != replyAuthFailed {
				t.Fatalf("empty response: %q", r)
			}
			continue
		}
		if r = c.cmd("AUTH PLAIN " + bad); r != "-ERR Invalid base64 data." {
			t.Fatalf("AUTH PLAIN %s: %q", bad, r)
		}
		c.cmd("AUTH PLAIN")
		if r = c.cmd(bad); r != "-ERR Invalid base64 data." {
			t.Fatalf("continuation %s: %q", bad, r)
		}
	}
	// Same authzid as authcid, user name in another case: accepted.
	if r := c.cmd("AUTH plain " + plain("ANN@example.com", "Ann@Example.com", testPass)); r != "+OK Logged in, 1 messages ("+itoa(len(msg1))+" octets)." {
		t.Fatalf("AUTH PLAIN: %q", r)
	}
	if a := e.auth.lastAttempt(); a.Mechanism != "PLAIN" || a.Protocol != auth.POP3 || a.User != "Ann@Example.com" {
		t.Fatalf("attempt %+v", a)
	}
	if r := c.cmd("AUTH PLAIN " + plain("", testUser, testPass)); r != replyBadState {
		t.Fatalf("AUTH after login: %q", r)
	}
}

func TestLineLimits(t *testing.T) {
	e := newEnv(t, nil)
	c := dial(t, e.addr)
	// 255 octets with the CRLF is the longest command (RFC 2449 §4).
	if r := c.cmd("USER " + strings.Repeat("u", 255-len("USER \r\n"))); r != "+OK Send your password." {
		t.Fatalf("255-octet USER: %q", r)
	}
	if r := c.cmd("USER " + strings.Repeat("u", 256-len("USER \r\n"))); r != replyTooLong {
		t.Fatalf("256-octet USER: %q", r)
	}
	// Longer than the read buffer: discarded, answered, and the session goes on.
	if r := c.cmd("USER " + strings.Repeat("u", 20000)); r != replyTooLong {
		t.Fatalf("20000-octet USER: %q", r)
	}
	// An AUTH line may be longer than 255 octets (PLAIN initial response).
	long := strings.Repeat("p", 250)
	if r := c.cmd("AUTH PLAIN " + plain(testUser, testUser, long)); r != replyAuthFailed {
		t.Fatalf("long AUTH: %q", r)
	}
	c.cmd("AUTH PLAIN")
	if r := c.cmd(strings.Repeat("A", 5000)); r != replyTooLong {
		t.Fatalf("long continuation: %q", r)
	}
	if r := c.cmd("NOT A COMMAND\x00"); r != replySyntax {
		t.Fatalf("NUL: %q", r)
	}
	c.login()

	// A line with no end is not buffered: the server gives up and closes.
	c = dial(t, e.addr)
	chunk := strings.Repeat("x", 8192)
	go func() {
		for i := 0; i < 2*maxDiscard/len(chunk)+2; i++ {
			if _, err := c.conn.Write([]byte(chunk)); err != nil {
				return
			}
		}
	}()
	if r := c.line(); r != replyTooLong {
		t.Fatalf("flood: %q", r)
	}
	c.expectClosed()
}

func TestSTLS(t *testing.T) {
	e := newEnv(t, []string{msg1}, withPlaintext(tlsconf.PlaintextNever))
	c := dial(t, e.addr)
	c.cmd("CAPA")
	if got := strings.Join(c.multi(), ","); strings.Contains(got, "USER") || strings.Contains(got, "SASL") || !strings.Contains(got, "STLS") {
		t.Fatalf("CAPA before TLS: %s", got)
	}
	// Plaintext refused before TLS, without looking at credentials.
	want := "-ERR [AUTH] Plaintext authentication disallowed without TLS, use STLS first."
	for _, cmd := range []string{"USER " + testUser, "PASS " + testPass, "AUTH PLAIN " + plain("", testUser, testPass)} {
		if r := c.cmd(cmd); r != want {
			t.Fatalf("%s before TLS: %q", strings.Fields(cmd)[0], r)
		}
	}
	if r := c.cmd("AUTH PLAIN"); r != want {
		t.Fatalf("AUTH PLAIN before TLS: %q", r)
	}
	e.auth.mu.Lock()
	n := len(e.auth.attempts)
	e.auth.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d attempts reached the authenticator", n)
	}

	// STLS with a pipelined NOOP in the same write: the NOOP must be lost
	// with the cleartext buffer, not answered inside TLS (CVE-2011-0411).
	c.send("STLS\r\nNOOP\r\n")
	if r := c.line(); r != "+OK Begin TLS negotiation." {
		t.Fatalf("STLS: %q", r)
	}
	tc := tls.Client(c.conn, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c.conn, c.r = tc, newReader(tc)
	// The first reply inside TLS answers CAPA, not the injected NOOP.
	if r := c.cmd("CAPA"); r != "+OK Capability list follows." {
		t.Fatalf("first reply after STLS: %q", r)
	}
	if got := strings.Join(c.multi(), ","); !strings.Contains(got, "USER") || strings.Contains(got, "STLS") {
		t.Fatalf("CAPA after TLS: %s", got)
	}
	if r := c.cmd("STLS"); r != "-ERR Already using TLS." {
		t.Fatalf("second STLS: %q", r)
	}
	c.login()
	if a := e.auth.lastAttempt(); !a.TLS {
		t.Fatalf("attempt without TLS flag: %+v", a)
	}
	if r := c.cmd("STAT"); !strings.HasPrefix(r, "+OK 1 ") {
		t.Fatalf("STAT: %q", r)
	}
}

func TestImplicitTLS(t *testing.T) {
	e := newEnv(t, []string{msg1}, withPlaintext(tlsconf.PlaintextNever))
	addr := e.serveImplicit(t)
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	c := &client{t: t, conn: conn, r: newReader(conn)}
	if g := c.line(); g != "+OK pop.example.com POP3 server ready." {
		t.Fatalf("greeting %q", g)
	}
	c.cmd("CAPA")
	if got := strings.Join(c.multi(), ","); strings.Contains(got, "STLS") || !strings.Contains(got, "USER") {
		t.Fatalf("CAPA on implicit TLS: %s", got)
	}
	c.login()
}

func TestNoTLSConfigured(t *testing.T) {
	e := newEnv(t, nil, func(c *Config) { c.TLS = nil; c.Plaintext = tlsconf.PlaintextNever })
	c := dial(t, e.addr)
	c.cmd("CAPA")
	if got := strings.Join(c.multi(), ","); strings.Contains(got, "STLS") {
		t.Fatalf("CAPA: %s", got)
	}
	if r := c.cmd("STLS"); r != "-ERR STLS not available." {
		t.Fatalf("STLS: %q", r)
	}
	if r := c.cmd("USER x"); r != "-ERR [AUTH] Plaintext authentication disallowed without TLS." {
		t.Fatalf("USER: %q", r)
	}
	if err := e.srv.Serve(nil, true); err == nil {
		t.Fatal("implicit TLS without a config accepted")
	}
}

func TestTrackCloseEndsSession(t *testing.T) {
	e := newEnv(t, []string{msg1})
	c := dial(t, e.addr)
	c.login()
	c.cmd("DELE 1")
	e.auth.mu.Lock()
	closers := e.auth.closers
	e.auth.mu.Unlock()
	if len(closers) != 1 {
		t.Fatalf("%d sessions tracked", len(closers))
	}
	closers[0]() // the credential was revoked
	if line, err := c.r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "-ERR [AUTH] Your login was revoked") {
		t.Fatalf("last reply %q, %v", line, err)
	}
	c.expectClosed()
	waitFor(t, "done", func() bool { _, d := e.auth.counts(); return d == 1 })
	if n := len(e.messages(t)); n != 1 {
		t.Fatalf("revoked session deleted mail: %d left", n)
	}
}

func TestServerClose(t *testing.T) {
	e := newEnv(t, nil)
	c := dial(t, e.addr)
	if err := e.srv.Close(); err != nil {
		t.Fatal(err)
	}
	c.expectClosed()
}

func TestPipelining(t *testing.T) {
	e := newEnv(t, []string{msg1, msg2})
	c := dial(t, e.addr)
	c.send("USER " + testUser + "\r\nPASS " + testPass + "\r\nSTAT\r\nLIST 1\r\nNOOP\r\n")
	for _, want := range []string{"+OK Send your password.", "+OK Logged in", "+OK 2 ", "+OK 1 ", "+OK"} {
		if r := c.line(); !strings.HasPrefix(r, want) {
			t.Fatalf("got %q, want %q...", r, want)
		}
	}
}

func (e *testEnv) messages(t testing.TB) []string {
	t.Helper()
	ctx := context.Background()
	mb, err := e.db.Mail().Mailbox(ctx, e.inbox, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := e.db.Mail().Messages(ctx, mb.ID)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range msgs {
		b, err := e.db.Mail().Body(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func itoa(n int) string { return strconv.Itoa(n) }

func newReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }

func TestTooManyBadCommandsClose(t *testing.T) {
	e := newEnv(t, nil)
	c := dial(t, e.addr)
	for i := 0; i < maxBadCommands-1; i++ {
		if r := c.cmd("XYZZY"); r != replyUnknown {
			t.Fatalf("command %d: %q", i, r)
		}
	}
	if r := c.cmd("\x01"); r != replySyntax {
		t.Fatalf("last: %q", r)
	}
	if r := c.line(); r != "-ERR Too many invalid commands, closing." {
		t.Fatalf("close reply: %q", r)
	}
	c.expectClosed()
}

// Two sessions of one member (two devices) work on their own snapshots; a
// message deleted by one is gone for the other's RETR, and deleting it twice
// is no error (no maildrop lock, so [IN-USE] is never sent).
func TestConcurrentSessions(t *testing.T) {
	e := newEnv(t, []string{msg1, msg2})
	a, b := dial(t, e.addr), dial(t, e.addr)
	a.login()
	b.login()
	a.cmd("DELE 1")
	b.cmd("DELE 1")
	if r := a.cmd("QUIT"); r != "+OK Bye, 1 messages deleted." {
		t.Fatalf("first QUIT: %q", r)
	}
	if r := b.cmd("RETR 1"); r != "-ERR Message 1 already deleted." {
		t.Fatalf("RETR of own DELE: %q", r)
	}
	b.cmd("RSET")
	if r := b.cmd("RETR 1"); r != "-ERR Message 1 no longer exists." {
		t.Fatalf("RETR of a message removed by the other session: %q", r)
	}
	b.cmd("DELE 1")
	if r := b.cmd("QUIT"); r != "+OK Bye, 1 messages deleted." {
		t.Fatalf("second QUIT: %q", r)
	}
	if got := e.messages(t); len(got) != 1 || got[0] != msg2 {
		t.Fatalf("INBOX %q", got)
	}
}
