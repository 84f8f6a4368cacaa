package smtpserver

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/mailstore"
)

// mx and lmtp are newEnv options for the two receiving modes.
func mx(c *Config)   { c.Mode, c.Auth = MX, nil }
func lmtp(c *Config) { c.Mode, c.Auth = LMTP, nil }

var sizeLine = fmt.Sprintf("250-SIZE %d\r\n", mailstore.MaxMessageSize-traceReserve)

func TestMXGreeting(t *testing.T) {
	e := newEnv(t, mx)
	nc := dialNoGreeting(t, e.addr)
	if got := nc.reply(); got != "220 mx.example.test ESMTP Postern ready\r\n" {
		t.Fatalf("greeting %q", got)
	}
	want := "250-mx.example.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-CHUNKING\r\n" +
		"250-ENHANCEDSTATUSCODES\r\n" + sizeLine + "250-LIMITS RCPTMAX=100\r\n250 STARTTLS\r\n"
	if got := nc.cmd("EHLO client.test"); got != want {
		t.Fatalf("EHLO:\n%q\nwant\n%q", got, want)
	}
	if got := nc.cmd("AUTH PLAIN " + plainIR("", e.alice.Email, alicePass)); got != "502 5.5.1 AUTH not available on this port\r\n" {
		t.Fatalf("AUTH: %q", got)
	}
	if got := nc.cmd("LHLO client.test"); got != "500 5.5.1 Command not recognized: this server greets with EHLO\r\n" {
		t.Fatalf("LHLO on MX: %q", got)
	}
	// After STARTTLS the EHLO reply no longer offers it.
	nc.wantCmd("STARTTLS", "220 2.0.0 ")
	nc.startTLS(e.clientTLS)
	wantTLS := strings.Replace(want, "250-LIMITS RCPTMAX=100\r\n250 STARTTLS\r\n", "250 LIMITS RCPTMAX=100\r\n", 1)
	if got := nc.cmd("EHLO client.test"); got != wantTLS {
		t.Fatalf("EHLO under TLS: %q", got)
	}
}

func TestLMTPGreeting(t *testing.T) {
	e := newEnv(t, lmtp)
	nc := dialNoGreeting(t, e.addr)
	if got := nc.reply(); got != "220 mx.example.test LMTP Postern ready\r\n" {
		t.Fatalf("greeting %q", got)
	}
	if got := nc.cmd("EHLO client.test"); got != "500 5.5.1 Command not recognized: this server greets with LHLO\r\n" {
		t.Fatalf("EHLO on LMTP: %q", got)
	}
	if got := nc.cmd("HELO client.test"); got != "500 5.5.1 Command not recognized: this server greets with LHLO\r\n" {
		t.Fatalf("HELO on LMTP: %q", got)
	}
	if got := nc.cmd("MAIL FROM:<>"); got != "503 5.5.1 Send LHLO first\r\n" {
		t.Fatalf("MAIL before LHLO: %q", got)
	}
	want := "250-mx.example.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-CHUNKING\r\n" +
		"250-ENHANCEDSTATUSCODES\r\n" + sizeLine + "250-LIMITS RCPTMAX=100\r\n250 STARTTLS\r\n"
	if got := nc.cmd("LHLO client.test"); got != want {
		t.Fatalf("LHLO:\n%q\nwant\n%q", got, want)
	}
}

// failingRecipients answers EUNAVAILABLE for one address, and resolves
// lists of its own; every other address goes to the real service.
type failingRecipients struct {
	Recipients
	down  string
	lists map[string][]account.Member
}

func (f failingRecipients) ResolveRecipient(ctx context.Context, address string) (account.Recipient, error) {
	if strings.EqualFold(address, f.down) {
		return account.Recipient{}, account.Errorf(account.EUNAVAILABLE, "The store does not answer.")
	}
	if ms, ok := f.lists[strings.ToLower(address)]; ok {
		return account.Recipient{Address: strings.ToLower(address), Members: ms}, nil
	}
	return f.Recipients.ResolveRecipient(ctx, address)
}

func TestMXRcptReplies(t *testing.T) {
	e := newEnv(t, mx, func(c *Config) {
		c.Recipients = failingRecipients{Recipients: c.Recipients, down: "down@example.test"}
	})
	cases := []struct {
		from, to, want string
	}{
		{"<>", "<alice@example.test>", "250 2.1.5 Recipient OK\r\n"},
		{"<x@sender.test>", "<ALICE+news@Example.Test>", "250 2.1.5 Recipient OK\r\n"},
		{"<x@sender.test>", "<nobody@example.test>", "550 5.1.1 No such user here\r\n"},
		{"<x@sender.test>", "<someone@gmail.com>", "550 5.7.1 Relaying denied: this server accepts mail only for its own domains\r\n"},
		{"<x@sender.test>", "<alice@exa_mple.test>", "501 5.1.3 Bad recipient address syntax\r\n"},
		{"<x@sender.test>", "<down@example.test>", "451 4.3.0 Temporary failure looking up the recipient, try again later\r\n"},
		{"<x@sender.test> SMTPUTF8", "<jörg@example.test>", "550 5.1.1 No such user here\r\n"},
		{"<jörg@sender.test> SMTPUTF8", "<alice@example.test>", "250 2.1.5 Recipient OK\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.to, func(t *testing.T) {
			c := dial(t, e.addr)
			c.wantCmd("EHLO client.test", "250")
			c.wantCmd("MAIL FROM:"+tc.from, "250 2.1.0 ")
			if got := c.cmd("RCPT TO:" + tc.to); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
	c := dial(t, e.addr)
	c.wantCmd("EHLO client.test", "250")
	if got := c.cmd("MAIL FROM:<jörg@sender.test>"); got != "553 5.6.7 Non-ASCII sender address needs the SMTPUTF8 parameter\r\n" {
		t.Fatalf("UTF-8 sender without SMTPUTF8: %q", got)
	}
	if got := c.cmd("MAIL FROM:<x@sender.test> SMTPUTF8=yes"); got != "501 5.5.4 SMTPUTF8 takes no value\r\n" {
		t.Fatalf("SMTPUTF8=yes: %q", got)
	}
	if got := c.cmd("MAIL FROM:<\xff@sender.test> SMTPUTF8"); !strings.HasPrefix(got, "501 5.5.4 ") {
		t.Fatalf("invalid UTF-8: %q", got)
	}
}

// TestMXPipelinedDelivery sends a whole transaction in one write (RFC 2920)
// and checks each reply, in order, byte for byte; then the stored copy's
// trace fields.
func TestMXPipelinedDelivery(t *testing.T) {
	now := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	e := newEnv(t, mx, func(c *Config) { c.Now = func() time.Time { return now } })
	c := dial(t, e.addr)
	c.wantCmd("EHLO client.test", "250")
	msg := "Authentication-Results: mx.example.test; spf=pass (forged)\r\nFrom: x@sender.test\r\nSubject: hi\r\n\r\nbody\r\n..dot\r\n"
	c.send("MAIL FROM:<x@sender.test> BODY=8BITMIME SIZE=100\r\nRCPT TO:<alice+news@example.test>\r\nRCPT TO:<nobody@example.test>\r\n" +
		"RCPT TO:<bob@other.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
	for _, want := range []string{"250 2.1.0 Sender OK\r\n", "250 2.1.5 Recipient OK\r\n", "550 5.1.1 No such user here\r\n",
		"250 2.1.5 Recipient OK\r\n", "250 2.1.5 Recipient OK\r\n", "354 End data with <CR><LF>.<CR><LF>\r\n"} {
		if got := c.reply(); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	c.send(msg + ".\r\nQUIT\r\n")
	c.want("250 2.0.0 Message accepted and delivered\r\n")
	c.want("221 ")
	// alice is reached twice (with and without the tag) and gets one copy.
	box := e.inbox(e.alice)
	if len(box) != 1 {
		t.Fatalf("alice has %d messages, want 1", len(box))
	}
	got := box[0]
	wantPrefix := "Return-Path: <x@sender.test>\r\nDelivered-To: alice+news@example.test\r\nReceived: from client.test ([127.0.0.1])\r\n\tby mx.example.test (Postern) with ESMTP id "
	if !strings.HasPrefix(got, wantPrefix) {
		t.Fatalf("copy %q, want prefix %q", got, wantPrefix)
	}
	if want := "\r\n\tfor <alice+news@example.test>; Wed, 02 Dec 2026 09:00:00 +0000\r\nFrom: x@sender.test\r\nSubject: hi\r\n\r\nbody\r\n.dot\r\n"; !strings.HasSuffix(got, want) {
		t.Fatalf("copy %q, want suffix %q (Authentication-Results from outside stripped)", got, want)
	}
	if b := e.inbox(e.bob); len(b) != 1 || !strings.Contains(b[0], "Delivered-To: bob@other.test\r\n") {
		t.Fatalf("bob's INBOX %q", b)
	}
}

// TestLMTPRepliesPerRecipient: after DATA, one reply per accepted RCPT in
// order; one recipient is over quota and gets 452 4.2.2 while the others'
// copies are delivered.
func TestLMTPRepliesPerRecipient(t *testing.T) {
	e := newEnv(t, lmtp, func(c *Config) { c.Quota = 1000 })
	ctx := context.Background()
	// alice has 990 octets: a RCPT without SIZE fits, the message does not.
	if err := e.mail.DeliverAll(ctx, []mailstore.Delivery{{MemberID: e.alice.ID, Body: []byte(strings.Repeat("x", 988) + "\r\n")}}); err != nil {
		t.Fatal(err)
	}
	c := dial(t, e.addr)
	c.wantCmd("LHLO client.test", "250")
	if got := c.cmd("MAIL FROM:<x@sender.test> SIZE=200"); got != "250 2.1.0 Sender OK\r\n" {
		t.Fatal(got)
	}
	if got := c.cmd("RCPT TO:<alice@example.test>"); got != "452 4.2.2 Mailbox full: <alice@example.test> is over its quota\r\n" {
		t.Fatalf("RCPT with SIZE over quota: %q", got)
	}
	c.wantCmd("RSET", "250")
	c.send("MAIL FROM:<>\r\nRCPT TO:<bob@other.test>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<nobody@example.test>\r\nRCPT TO:<alice+x@example.test>\r\nDATA\r\n")
	for _, want := range []string{"250 2.1.0 Sender OK\r\n", "250 2.1.5 Recipient OK\r\n", "250 2.1.5 Recipient OK\r\n",
		"550 5.1.1 No such user here\r\n", "250 2.1.5 Recipient OK\r\n", "354 End data with <CR><LF>.<CR><LF>\r\n"} {
		if got := c.reply(); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	c.send("Subject: hi\r\n\r\nhello\r\n.\r\n")
	for _, want := range []string{
		"250 2.0.0 <bob@other.test> delivered\r\n",
		"452 4.2.2 Mailbox full: <alice@example.test> is over its quota\r\n",
		"452 4.2.2 Mailbox full: <alice+x@example.test> is over its quota\r\n",
	} {
		if got := c.reply(); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	if b := e.inbox(e.bob); len(b) != 1 || !strings.Contains(b[0], "with LMTP id ") || !strings.HasPrefix(b[0], "Return-Path: <>\r\n") {
		t.Fatalf("bob's INBOX %q", b)
	}
	if a := e.inbox(e.alice); len(a) != 1 {
		t.Fatalf("alice over quota got a copy: %d messages", len(a))
	}
	// A refused message gets a reply per recipient too.
	c.send("MAIL FROM:<>\r\nRCPT TO:<bob@other.test>\r\nRCPT TO:<bob+y@other.test>\r\nDATA\r\n")
	for range 3 {
		c.want("250 ")
	}
	c.want("354 ")
	c.send("bare\nLF\r\n.\r\n")
	for range 2 {
		c.want("554 5.6.0 Message refused: bare LF or CR; lines must end with CRLF\r\n")
	}
	c.wantCmd("NOOP", "250 ")
}

// TestMXQuotaAtData: on MX one reply covers every recipient, so a mailbox
// that filled up between RCPT and DATA refuses the whole message (the retry
// then refuses that recipient at RCPT); a RCPT already over quota gets 452.
func TestMXQuotaAtData(t *testing.T) {
	e := newEnv(t, mx, func(c *Config) { c.Quota = 1000 })
	ctx := context.Background()
	c := dial(t, e.addr)
	c.wantCmd("EHLO client.test", "250")
	c.wantCmd("MAIL FROM:<x@sender.test>", "250")
	c.wantCmd("RCPT TO:<alice@example.test>", "250 2.1.5")
	c.wantCmd("RCPT TO:<bob@other.test>", "250 2.1.5")
	if err := e.mail.DeliverAll(ctx, []mailstore.Delivery{{MemberID: e.alice.ID, Body: []byte(strings.Repeat("x", 1100))}}); err != nil {
		t.Fatal(err)
	}
	c.wantCmd("DATA", "354")
	if got := c.cmd("Subject: hi\r\n\r\nhello\r\n."); got != "452 4.2.2 Mailbox full: <alice@example.test> is over its quota\r\n" {
		t.Fatalf("got %q", got)
	}
	if b := e.inbox(e.bob); len(b) != 0 {
		t.Fatalf("bob got %d messages of a refused transaction", len(b))
	}
	c.wantCmd("MAIL FROM:<x@sender.test>", "250")
	c.wantCmd("RCPT TO:<alice@example.test>", "452 4.2.2 Mailbox full: <alice@example.test> is over its quota\r\n")
}

// TestBDAT: chunks cut anywhere, a CRLF split across two chunks, pipelined;
// BDAT's content rules are DATA's; a chunk inside a refused transaction is
// read and answered 503, keeping the session in step; an end of data hidden
// in a chunk is just data.
func TestBDAT(t *testing.T) {
	e := newEnv(t, mx)
	c := dial(t, e.addr)
	c.wantCmd("EHLO client.test", "250")
	smuggled := "\nbody\r\n.\r\nMAIL FROM:<evil@x>\r\nQUIT\r\n"
	c.send(fmt.Sprintf("MAIL FROM:<x@sender.test>\r\nRCPT TO:<alice@example.test>\r\nBDAT 13\r\nSubject: a\r\n\rBDAT %d LAST\r\n%sQUIT\r\n", len(smuggled), smuggled))
	for _, want := range []string{"250 2.1.0 Sender OK\r\n", "250 2.1.5 Recipient OK\r\n", "250 2.0.0 13 octets received\r\n",
		"250 2.0.0 Message accepted and delivered\r\n", "221 2.0.0 mx.example.test closing connection\r\n"} {
		if got := c.reply(); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	box := e.inbox(e.alice)
	if len(box) != 1 || !strings.HasSuffix(box[0], "\r\nSubject: a\r\n\r\nbody\r\n.\r\nMAIL FROM:<evil@x>\r\nQUIT\r\n") {
		t.Fatalf("alice's INBOX %q", box)
	}

	c = dial(t, e.addr)
	c.wantCmd("EHLO client.test", "250")
	// No transaction: the chunk is read, refused, and the next command works.
	c.send("BDAT 8 LAST\r\nRSET\r\nxy")
	c.want("503 5.5.1 Send MAIL and RCPT first: no valid recipients\r\n")
	c.wantCmd("MAIL FROM:<x@sender.test>", "250")
	c.wantCmd("RCPT TO:<alice@example.test>", "250")
	c.send("BDAT 8\r\na\nb\r\nc\r\n")
	c.want("250 2.0.0 8 octets received\r\n")
	c.wantCmd("DATA", "503 5.5.1 DATA after BDAT: send the rest of the message with BDAT\r\n")
	c.send("BDAT 3 LAST\r\nd\x00\n")
	c.want("554 5.6.0 Message refused: bare LF or CR; lines must end with CRLF\r\n")
	c.wantCmd("MAIL FROM:<x@sender.test>", "250")
	c.wantCmd("RCPT TO:<alice@example.test>", "250")
	c.send("BDAT 4 LAST\r\na\x00\r\n")
	c.want("554 5.6.0 Message refused: NUL octets are not allowed\r\n")
	c.wantCmd("MAIL FROM:<x@sender.test>", "250")
	c.wantCmd("RCPT TO:<alice@example.test>", "250")
	c.send("BDAT 2 LAST\r\na\r")
	c.want("554 5.6.0 Message refused: bare LF or CR; lines must end with CRLF\r\n")
	if n := len(e.inbox(e.alice)); n != 1 {
		t.Fatalf("alice has %d messages, want 1", n)
	}
	if got := c.cmd("BDAT 99999999999"); got != fmt.Sprintf("552 5.3.4 Message too big: the limit is %d octets; closing connection\r\n", mailstore.MaxMessageSize-traceReserve) {
		t.Fatalf("huge chunk: %q", got)
	}
	c.waitClosed()
	c = dial(t, e.addr)
	c.wantCmd("EHLO client.test", "250")
	if got := c.cmd("BDAT -1"); got != "501 5.5.4 Syntax: BDAT size [LAST]; closing connection\r\n" {
		t.Fatalf("bad size: %q", got)
	}
	c.waitClosed()
}

func TestLMTPBDAT(t *testing.T) {
	e := newEnv(t, lmtp)
	c := dial(t, e.addr)
	c.wantCmd("LHLO client.test", "250")
	c.send("MAIL FROM:<>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<bob@other.test>\r\nBDAT 6\r\nX: y\r\nBDAT 9 LAST\r\n\r\nhello\r\n")
	for _, want := range []string{"250 2.1.0 Sender OK\r\n", "250 2.1.5 Recipient OK\r\n", "250 2.1.5 Recipient OK\r\n",
		"250 2.0.0 6 octets received\r\n", "250 2.0.0 <alice@example.test> delivered\r\n", "250 2.0.0 <bob@other.test> delivered\r\n"} {
		if got := c.reply(); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

// TestMXBadInput: a 1 MiB command line, a 1 MiB message line, a header bomb
// (100,000 fields): each gets a clear reply, the session goes on, and the
// server's memory does not grow with the input.
func TestMXBadInput(t *testing.T) {
	e := newEnv(t, mx)
	c := dial(t, e.addr)
	c.wantCmd("EHLO client.test", "250")
	if got := c.cmd("NOOP " + strings.Repeat("x", 1<<20-10)); got != "500 5.5.2 Line too long\r\n" {
		t.Fatalf("1 MiB command: %q", got)
	}
	c.wantCmd("MAIL FROM:<x@sender.test>", "250")
	c.wantCmd("RCPT TO:<alice@example.test>", "250")
	c.wantCmd("DATA", "354")
	if got := c.cmd("Subject: x\r\n\r\n" + strings.Repeat("y", 1<<20) + "\r\n."); got != "554 5.6.0 Message refused: a line is longer than 8192 octets\r\n" {
		t.Fatalf("1 MiB line: %q", got)
	}
	before := heap()
	c.wantCmd("MAIL FROM:<x@sender.test>", "250")
	c.wantCmd("RCPT TO:<alice@example.test>", "250")
	c.wantCmd("DATA", "354")
	bomb := strings.Repeat("X-Bomb: b\r\n", 100000)
	want := fmt.Sprintf("552 5.3.4 Message header too big: at most %d octets and %d fields\r\n", DefaultMaxHeaderBytes, DefaultMaxHeaderFields)
	if got := c.cmd(bomb + "\r\nbody\r\n."); got != want {
		t.Fatalf("header bomb: %q", got)
	}
	// The same with BDAT, and with many fields in few octets.
	c.wantCmd("MAIL FROM:<x@sender.test>", "250")
	c.wantCmd("RCPT TO:<alice@example.test>", "250")
	small := strings.Repeat("a:\r\n", DefaultMaxHeaderFields+1) + "\r\n"
	c.send(fmt.Sprintf("BDAT %d LAST\r\n%s", len(small), small))
	if got := c.reply(); got != want {
		t.Fatalf("field bomb over BDAT: %q", got)
	}
	if grew := heap() - before; grew > 8<<20 {
		t.Errorf("heap grew by %d octets over a header bomb", grew)
	}
	if n := len(e.inbox(e.alice)); n != 0 {
		t.Fatalf("%d messages delivered", n)
	}
}

// TestMXManyRecipients: 10,000 RCPTs in one write get 100 × 250 and then
// 452 4.5.3 each, and the server's memory stays flat.
func TestMXManyRecipients(t *testing.T) {
	e := newEnv(t, mx)
	c := dial(t, e.addr)
	c.wantCmd("EHLO client.test", "250")
	c.wantCmd("MAIL FROM:<x@sender.test>", "250")
	before := heap()
	go func() {
		var b strings.Builder
		for i := range 10000 {
			fmt.Fprintf(&b, "RCPT TO:<alice+%d@example.test>\r\n", i)
		}
		c.nc.Write([]byte(b.String()))
	}()
	for i := range 10000 {
		got := c.reply()
		want := "250 2.1.5 Recipient OK\r\n"
		if i >= DefaultMaxRecipients {
			want = "452 4.5.3 Too many recipients: at most 100 per message\r\n"
		}
		if got != want {
			t.Fatalf("RCPT %d: %q, want %q", i, got, want)
		}
	}
	if grew := heap() - before; grew > 4<<20 {
		t.Errorf("heap grew by %d octets over 10,000 RCPTs", grew)
	}
	c.wantCmd("DATA", "354")
	c.wantCmd("Subject: many\r\n\r\nx\r\n.", "250 2.0.0 ")
	if n := len(e.inbox(e.alice)); n != 1 {
		t.Fatalf("alice has %d messages, want 1 (one per member)", n)
	}
}

func heap() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// fakeInspector records what it saw and answers what it is told.
type fakeInspector struct {
	mu   sync.Mutex
	env  []Envelope
	msgs []string
	ins  Inspection
	err  error
}

func (f *fakeInspector) Inspect(_ context.Context, e Envelope, msg []byte) (Inspection, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.env = append(f.env, e)
	f.msgs = append(f.msgs, string(msg))
	return f.ins, f.err
}

func TestMXInspector(t *testing.T) {
	fi := &fakeInspector{}
	lists := map[string][]account.Member{}
	e := newEnv(t, mx, func(c *Config) {
		c.Inspector = fi
		c.Recipients = failingRecipients{Recipients: c.Recipients, lists: lists}
	})
	lists["team@example.test"] = []account.Member{e.alice, e.bob}
	send := func(msg string, rcpts ...string) string {
		c := dial(t, e.addr)
		c.wantCmd("EHLO client.test", "250")
		c.wantCmd("MAIL FROM:<x@sender.test>", "250")
		for _, r := range rcpts {
			c.wantCmd("RCPT TO:<"+r+">", "250")
		}
		c.wantCmd("DATA", "354")
		return c.cmd(msg + ".")
	}
	const msg = "Authentication-Results: evil.test; dkim=pass\r\nauthentication-results :\r\n folded; spf=pass\r\nFrom: x@sender.test\r\n\r\nAuthentication-Results: in the body stays\r\n"
	fi.ins = Inspection{Prepend: []byte("Authentication-Results: mx.example.test; spf=fail\r\nX-Spam: yes\r\n"), Junk: true}
	if got := send(msg, "team@example.test", "alice@example.test"); got != "250 2.0.0 Message accepted and delivered\r\n" {
		t.Fatalf("junk: %q", got)
	}
	if len(fi.msgs) != 1 || fi.msgs[0] != msg {
		t.Fatalf("the inspector saw %q, want the original %q", fi.msgs, msg)
	}
	want := Envelope{RemoteIP: fi.env[0].RemoteIP, Helo: "client.test", MailFrom: "x@sender.test", Rcpts: []string{"team@example.test", "alice@example.test"}}
	if fmt.Sprint(fi.env[0]) != fmt.Sprint(want) || fi.env[0].RemoteIP.String() != "127.0.0.1" {
		t.Fatalf("envelope %+v, want %+v", fi.env[0], want)
	}
	for _, m := range []account.Member{e.alice, e.bob} {
		if n := len(e.inbox(m)); n != 0 {
			t.Fatalf("%s: %d messages in INBOX, want them in Junk", m.Email, n)
		}
		junk := e.box(m, "Junk")
		if len(junk) != 1 {
			t.Fatalf("%s: %d messages in Junk, want 1 (one copy per member)", m.Email, len(junk))
		}
		got := junk[0]
		wantPrefix := "Return-Path: <x@sender.test>\r\nDelivered-To: team@example.test\r\nAuthentication-Results: mx.example.test; spf=fail\r\nX-Spam: yes\r\nReceived: from client.test"
		if !strings.HasPrefix(got, wantPrefix) || !strings.HasSuffix(got, "\r\nFrom: x@sender.test\r\n\r\nAuthentication-Results: in the body stays\r\n") {
			t.Fatalf("%s: %q", m.Email, got)
		}
		if strings.Count(got, "Authentication-Results:") != 2 || strings.Contains(got, "evil.test") || strings.Contains(got, "folded") {
			t.Fatalf("outside Authentication-Results kept: %q", got)
		}
	}
	fi.ins = Inspection{Reject: &Reply{550, "5.7.1", "Rejected by DMARC policy of sender.test"}}
	if got := send("Subject: x\r\n\r\n", "alice@example.test"); got != "550 5.7.1 Rejected by DMARC policy of sender.test\r\n" {
		t.Fatalf("reject: %q", got)
	}
	fi.ins, fi.err = Inspection{}, errors.New("resolver down")
	if got := send("Subject: x\r\n\r\n", "alice@example.test"); got != "451 4.3.0 Message could not be checked, try again later\r\n" {
		t.Fatalf("inspector error: %q", got)
	}
	if n := len(e.box(e.alice, "Junk")) + len(e.inbox(e.alice)); n != 1 {
		t.Fatalf("alice has %d messages, want 1", n)
	}
}

// TestLMTPInspectorReject: a refusal is one reply per recipient in LMTP.
func TestLMTPInspectorReject(t *testing.T) {
	fi := &fakeInspector{ins: Inspection{Reject: &Reply{451, "4.7.1", "Try again later"}}}
	e := newEnv(t, lmtp, func(c *Config) { c.Inspector = fi })
	c := dial(t, e.addr)
	c.wantCmd("LHLO client.test", "250")
	c.wantCmd("MAIL FROM:<>", "250")
	c.wantCmd("RCPT TO:<alice@example.test>", "250")
	c.wantCmd("RCPT TO:<bob@other.test>", "250")
	c.wantCmd("DATA", "354")
	c.send("Subject: x\r\n\r\nx\r\n.\r\n")
	c.want("451 4.7.1 Try again later\r\n")
	c.want("451 4.7.1 Try again later\r\n")
	c.wantCmd("NOOP", "250 ")
}

// TestMXRateLimit: RCPTs past the per-address rate get 451 4.7.1; the
// bucket refills with time.
func TestMXRateLimit(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	e := newEnv(t, mx, func(c *Config) { c.RateLimit, c.Now = 3, clock })
	c := dial(t, e.addr)
	c.wantCmd("EHLO client.test", "250")
	c.wantCmd("MAIL FROM:<x@sender.test>", "250")
	c.wantCmd("RCPT TO:<alice@example.test>", "250")
	c.wantCmd("RCPT TO:<nobody@example.test>", "550") // unknown users count too: harvesting
	c.wantCmd("RCPT TO:<bob@other.test>", "250")
	if got := c.cmd("RCPT TO:<bob@other.test>"); got != "451 4.7.1 Too many recipients from your address: at most 3 a minute, try again later\r\n" {
		t.Fatalf("over the rate: %q", got)
	}
	mu.Lock()
	now = now.Add(20 * time.Second) // one token back
	mu.Unlock()
	c.wantCmd("RCPT TO:<bob@other.test>", "250")
	c.wantCmd("RCPT TO:<bob@other.test>", "451 4.7.1 ")
}

// box returns the bodies of one of the member's mailboxes in UID order,
// nil when it does not exist (nothing delivered yet).
func (e *env) box(m account.Member, name string) []string {
	e.t.Helper()
	ctx := context.Background()
	mb, err := e.mail.Mailbox(ctx, m.ID, name)
	if err != nil {
		return nil
	}
	infos, err := e.mail.Messages(ctx, mb.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, in := range infos {
		b, err := e.mail.Body(ctx, in.ID)
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

// TestRateLimiterBounded: the limiter forgets full buckets and never holds
// more than maxBuckets addresses.
func TestRateLimiterBounded(t *testing.T) {
	now := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	l := newRateLimiter(2, time.Minute, func() time.Time { return now })
	ip := netip.MustParseAddr("10.0.0.0")
	for range maxBuckets + 10 {
		l.allow(ip)
		ip = ip.Next()
	}
	if n := len(l.buckets); n > maxBuckets {
		t.Fatalf("%d buckets", n)
	}
	first := netip.MustParseAddr("10.0.0.0")
	if !l.allow(first) || l.allow(first) {
		t.Fatal("the first address lost its bucket or got a third token")
	}
	now = now.Add(2 * time.Minute) // every bucket full again: all forgotten
	l.allow(first)
	if n := len(l.buckets); n != 1 {
		t.Fatalf("%d buckets after a quiet period, want 1", n)
	}
}
