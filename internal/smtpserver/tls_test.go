package smtpserver

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"

	gosasl "github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

// RFC 3207 §4.2 / CVE-2011-0411: a command pipelined after STARTTLS in the
// same write must never be answered, inside or outside TLS.
func TestSTARTTLSDiscardsPipelinedCommands(t *testing.T) {
	e := newEnv(t)
	c := dial(t, e.addr)
	c.wantCmd("EHLO client.test", "250")
	c.send("STARTTLS\r\nNOOP\r\n")
	if got := c.reply(); got != "220 2.0.0 Ready to start TLS\r\n" {
		t.Fatalf("got %q", got)
	}
	if n := c.r.Buffered(); n != 0 {
		t.Fatalf("%d more bytes after the 220 in plaintext", n)
	}
	c.startTLS(e.clientTLS)
	// The first thing said inside TLS answers EHLO, not the NOOP.
	r := c.wantCmd("EHLO client.test", "250-mx.example.test\r\n")
	if strings.Contains(r, "STARTTLS") {
		t.Fatalf("STARTTLS advertised inside TLS: %q", r)
	}
	c.wantCmd("NOOP", "250 2.0.0 OK\r\n")
}

func TestAfterSTARTTLS(t *testing.T) {
	e := newEnv(t)
	c := dial(t, e.addr)
	// Authenticated in the clear on loopback, then STARTTLS: RFC 3207 §4.2
	// forgets the login and the greeting.
	c.login(e.alice.Email, alicePass)
	c.wantCmd("STARTTLS", "220 ")
	c.startTLS(e.clientTLS)
	c.wantCmd("MAIL FROM:<alice@example.test>", "503 5.5.1 ")
	c.wantCmd("AUTH PLAIN "+plainIR("", e.alice.Email, alicePass), "503 5.5.1 ")
	c.wantCmd("STARTTLS", "503 5.5.1 ")
	c.wantCmd("EHLO client.test", "250")
	c.wantCmd("MAIL FROM:<alice@example.test>", "530 5.7.0 ")
	c.wantCmd("STARTTLS", "503 5.5.1 ")
	if _, _, dones := e.auth.snapshot(); dones != 1 {
		t.Fatalf("done called %d times after the pre-TLS login was dropped, want 1", dones)
	}
	c.login(e.alice.Email, alicePass)
	c.wantCmd("MAIL FROM:<alice@example.test>", "250 ")
	c.wantCmd("RCPT TO:<bob@other.test>", "250 ")
	c.wantCmd("DATA", "354 ")
	c.send("Subject: tls\r\n\r\nsecret stuff\r\n.\r\n")
	c.want("250 ")
	box := e.inbox(e.bob)
	if len(box) != 1 || !strings.Contains(box[0], "with ESMTPSA") || !strings.Contains(box[0], "(using TLS 1.3 with cipher ") {
		t.Fatalf("inbox %q", box)
	}
}

// Implicit TLS (port 465, RFC 8314) with go-smtp's client.
func TestImplicitTLSWithGoSMTPClient(t *testing.T) {
	e := newEnv(t)
	cl, err := gosmtp.DialTLS(e.tlsAddr, e.clientTLS)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer cl.Close()
	if err := cl.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := cl.Extension("STARTTLS"); ok {
		t.Fatal("STARTTLS offered on an implicit TLS port")
	}
	if err := cl.Auth(gosasl.NewPlainClient("", e.bob.Email, bobPass)); err != nil {
		t.Fatalf("auth: %v", err)
	}
	msg := "Subject: over 465\r\n\r\nbody\r\n"
	if err := cl.SendMail(e.bob.Email, []string{e.alice.Email}, strings.NewReader(msg)); err != nil {
		t.Fatalf("send: %v", err)
	}
	if err := cl.Quit(); err != nil {
		t.Fatal(err)
	}
	box := e.inbox(e.alice)
	if len(box) != 1 || !strings.HasSuffix(box[0], msg) || !strings.Contains(box[0], "Return-Path: <bob@other.test>") {
		t.Fatalf("inbox %q", box)
	}
	a, _, _ := e.auth.snapshot()
	if len(a) != 1 || !a[0].TLS || a[0].Mechanism != "PLAIN" {
		t.Fatalf("attempts %+v", a)
	}
}

func TestTLS11Refused(t *testing.T) {
	e := newEnv(t)
	cfg := e.clientTLS.Clone()
	cfg.MaxVersion = tls.VersionTLS11
	if cl, err := gosmtp.DialTLS(e.tlsAddr, cfg); err == nil {
		cl.Close()
		t.Fatal("TLS 1.1 handshake succeeded")
	}
}

// The close function given to Track ends a live session (credential
// revoked) with 421 4.7.0, also in the middle of a message and over TLS,
// and done is called exactly once when it ends.
func TestTrackCloseEndsSession(t *testing.T) {
	e := newEnv(t)
	c := dial(t, e.addr)
	c.login(e.alice.Email, alicePass)
	c.wantCmd("MAIL FROM:<alice@example.test>", "250 ")
	_, closers, _ := e.auth.snapshot()
	if len(closers) != 1 {
		t.Fatalf("%d tracked sessions, want 1", len(closers))
	}
	closers[0]()
	closers[0]() // at most once in effect
	c.want("421 4.7.0 mx.example.test Your login was revoked")
	c.waitClosed()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, _, dones := e.auth.snapshot(); dones == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("done was not called after the session closed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestQuitCallsDone(t *testing.T) {
	e := newEnv(t)
	c := dial(t, e.addr)
	c.login(e.alice.Email, alicePass)
	c.wantCmd("QUIT", "221 2.0.0 ")
	c.waitClosed()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, _, dones := e.auth.snapshot(); dones == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("done was not called")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestIdleTimeout(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.IdleTimeout = 200 * time.Millisecond })
	c := dial(t, e.addr)
	c.want("421 4.4.2 ")
	c.waitClosed()
}

func TestServerCloseEndsSessions(t *testing.T) {
	e := newEnv(t)
	c := dial(t, e.addr)
	c.login(e.alice.Email, alicePass)
	if err := e.srv.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	c.waitClosed()
	if _, _, dones := e.auth.snapshot(); dones != 1 {
		t.Fatalf("done called %d times, want 1", dones)
	}
}

// TestRevokedDuringData: a revocation while the client is sending a
// message ends it with 421 4.7.0; nothing of the message is delivered.
func TestRevokedDuringData(t *testing.T) {
	e := newEnv(t)
	c := dial(t, e.addr)
	c.wantCmd("EHLO client.test", "250")
	c.wantCmd("STARTTLS", "220 ")
	c.startTLS(e.clientTLS)
	c.login(e.alice.Email, alicePass)
	c.wantCmd("MAIL FROM:<alice@example.test>", "250 ")
	c.wantCmd("RCPT TO:<bob@other.test>", "250 ")
	c.wantCmd("DATA", "354 ")
	c.send("Subject: half\r\n\r\nthe first half")
	_, closers, _ := e.auth.snapshot()
	closers[0]()
	c.want("421 4.7.0 ")
	c.waitClosed()
	if got := e.inbox(e.bob); len(got) != 0 {
		t.Fatalf("a message cut by a revocation was delivered: %q", got)
	}
}
