package smtpserver

import (
	"strings"
	"testing"
)

func TestDeliveryToInbox(t *testing.T) {
	e := newEnv(t)
	c := dial(t, e.addr)
	c.login("Alice@Example.test", alicePass)
	c.wantCmd("MAIL FROM:<ALICE@example.test> SIZE=100 BODY=8BITMIME", "250 2.1.0 ")
	c.wantCmd("RCPT TO:<bob@other.test>", "250 2.1.5 ")
	c.wantCmd("RCPT TO:<Alice@EXAMPLE.test>", "250 2.1.5 ")
	c.wantCmd("RCPT TO:<bob@OTHER.test>", "250 2.1.5 ") // duplicate: one copy
	c.wantCmd("DATA", "354 ")
	msg := "From: alice@example.test\r\nTo: bob@other.test\r\nSubject: hi\r\n\r\nHello Bob.\r\n..leading dot\r\n.\r\n"
	c.send(msg)
	c.want("250 2.0.0 ")
	c.wantCmd("QUIT", "221 ")

	want := "From: alice@example.test\r\nTo: bob@other.test\r\nSubject: hi\r\n\r\nHello Bob.\r\n.leading dot\r\n"
	msgIDs := map[string]bool{}
	for _, m := range []struct {
		email string
		box   []string
	}{{"bob@other.test", e.inbox(e.bob)}, {"alice@example.test", e.inbox(e.alice)}} {
		if len(m.box) != 1 {
			t.Fatalf("%s has %d messages, want 1", m.email, len(m.box))
		}
		got := m.box[0]
		if !strings.HasSuffix(got, want) {
			t.Fatalf("%s got %q, want suffix %q", m.email, got, want)
		}
		trace := strings.TrimSuffix(got, want)
		for _, part := range []string{
			"Return-Path: <alice@example.test>\r\n",
			"Received: from client.test ([127.0.0.1])\r\n",
			"\tby mx.example.test (Postern) with ESMTPA id ",
			"Delivered-To: " + m.email + "\r\n",
			"\tfor <" + m.email + ">; ",
		} {
			if !strings.Contains(trace, part) {
				t.Errorf("%s trace %q lacks %q", m.email, trace, part)
			}
		}
		if strings.Contains(got, alicePass) {
			t.Fatalf("the password is in the stored message")
		}
		// The message had neither: the submission server adds them (RFC 6409 §8).
		if !strings.Contains(trace, "\r\nDate: ") {
			t.Errorf("%s: no Date added in %q", m.email, trace)
		}
		_, id, ok := strings.Cut(trace, "\r\nMessage-ID: <")
		id, _, _ = strings.Cut(id, ">\r\n")
		if !ok || !strings.HasSuffix(id, "@mx.example.test") || len(id) < 20 {
			t.Errorf("%s: Message-ID %q in %q", m.email, id, trace)
		}
		msgIDs[id] = true
	}
	if len(msgIDs) != 1 {
		t.Errorf("the copies have different Message-IDs: %v", msgIDs)
	}
}

func TestEnvelopeRules(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxRecipients = 2; c.MaxMessageBytes = 1000 })
	cases := []struct {
		name  string
		setup []string // after EHLO and AUTH as alice
		line  string
		want  string
	}{
		{"sender mismatch", nil, "MAIL FROM:<bob@other.test>", "553 5.7.1 "},
		{"null sender", nil, "MAIL FROM:<>", "553 5.7.1 "},
		{"sender with other local part", nil, "MAIL FROM:<alicex@example.test>", "553 5.7.1 "},
		{"sender with a plus tag", nil, "MAIL FROM:<alice+x@example.test>", "250 2.1.0 "},
		{"sender with an empty plus tag", nil, "MAIL FROM:<alice+@example.test>", "553 5.7.1 "},
		{"bad MAIL syntax", nil, "MAIL FROM:alice@example.test", "501 5.5.4 "},
		{"unknown MAIL parameter", nil, "MAIL FROM:<alice@example.test> FOO=1", "555 5.5.4 "},
		{"declared size too big", nil, "MAIL FROM:<alice@example.test> SIZE=1001", "552 5.3.4 "},
		{"nested MAIL", []string{"MAIL FROM:<alice@example.test>"}, "MAIL FROM:<alice@example.test>", "503 5.5.1 "},
		{"RCPT before MAIL", nil, "RCPT TO:<bob@other.test>", "503 5.5.1 "},
		{"DATA before RCPT", []string{"MAIL FROM:<alice@example.test>"}, "DATA", "503 5.5.1 "},
		{"remote recipient", []string{"MAIL FROM:<alice@example.test>"}, "RCPT TO:<someone@gmail.com>", "550 5.7.1 Relaying is not configured"},
		{"unknown local recipient", []string{"MAIL FROM:<alice@example.test>"}, "RCPT TO:<nobody@example.test>", "550 5.1.1 "},
		{"source route is ignored", []string{"MAIL FROM:<alice@example.test>"}, "RCPT TO:<@relay.test:bob@other.test>", "250 2.1.5 "},
		{"RCPT parameter", []string{"MAIL FROM:<alice@example.test>"}, "RCPT TO:<bob@other.test> NOTIFY=NEVER", "555 5.5.4 "},
		{"recipient cap", []string{"MAIL FROM:<alice@example.test>", "RCPT TO:<bob@other.test>", "RCPT TO:<alice@example.test>"}, "RCPT TO:<bob@other.test>", "452 4.5.3 "},
		{"RSET ends the transaction", []string{"MAIL FROM:<alice@example.test>", "RSET"}, "RCPT TO:<bob@other.test>", "503 5.5.1 "},
		{"EHLO ends the transaction", []string{"MAIL FROM:<alice@example.test>", "EHLO again.test"}, "RCPT TO:<bob@other.test>", "503 5.5.1 "},
		{"command line too long", nil, "NOOP " + strings.Repeat("x", maxCommandLine), "500 5.5.2 "},
		{"unknown command", nil, "XYZZY 10 LAST", "500 5.5.2 "},
		{"VRFY", nil, "VRFY bob", "252 "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, e.addr)
			c.login(e.alice.Email, alicePass)
			for _, l := range tc.setup {
				c.wantCmd(l, "2")
			}
			if got := c.cmd(tc.line); !strings.HasPrefix(got, tc.want) {
				t.Fatalf("got %q, want prefix %q", got, tc.want)
			}
			c.wantCmd("NOOP", "250 ")
		})
	}
}

func TestMailNeedsAuthAndEHLO(t *testing.T) {
	e := newEnv(t)
	c := dial(t, e.addr)
	c.wantCmd("MAIL FROM:<alice@example.test>", "503 5.5.1 ")
	c.wantCmd("EHLO client.test", "250")
	if got := c.cmd("MAIL FROM:<alice@example.test>"); got != "530 5.7.0 Authentication required\r\n" {
		t.Fatalf("got %q", got)
	}
	c.wantCmd("RCPT TO:<bob@other.test>", "503 5.5.1 ")
	c.wantCmd("DATA", "503 5.5.1 ")
}

func TestMessageTooBig(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxMessageBytes = 1000 })
	c := dial(t, e.addr)
	c.login(e.alice.Email, alicePass)
	c.wantCmd("MAIL FROM:<alice@example.test>", "250 ")
	c.wantCmd("RCPT TO:<bob@other.test>", "250 ")
	c.wantCmd("DATA", "354 ")
	c.send("Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("x", 98)+"\r\n", 11) + ".\r\n")
	c.want("552 5.3.4 ")
	// The session is in step again: a small message goes through.
	c.wantCmd("MAIL FROM:<alice@example.test>", "250 ")
	c.wantCmd("RCPT TO:<bob@other.test>", "250 ")
	c.wantCmd("DATA", "354 ")
	c.send("Subject: small\r\n\r\nok\r\n.\r\n")
	c.want("250 ")
	if box := e.inbox(e.bob); len(box) != 1 || !strings.Contains(box[0], "Subject: small") {
		t.Fatalf("inbox %q", box)
	}
}

func TestDataLineTooLong(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxDataLine = 100 })
	c := dial(t, e.addr)
	c.login(e.alice.Email, alicePass)
	c.wantCmd("MAIL FROM:<alice@example.test>", "250 ")
	c.wantCmd("RCPT TO:<bob@other.test>", "250 ")
	c.wantCmd("DATA", "354 ")
	c.send("Subject: long\r\n\r\n" + strings.Repeat("y", 40000) + "\r\n.\r\n")
	c.want("554 5.6.0 ")
	c.wantCmd("NOOP", "250 ")
	if box := e.inbox(e.bob); len(box) != 0 {
		t.Fatalf("delivered %d", len(box))
	}
}

// 250 only after every delivery committed; a failure is 451 4.3.0.
func TestDeliveryFailureIs451(t *testing.T) {
	var e *env
	e = newEnv(t, func(c *Config) { c.Mail = failingMail{Mail: c.Mail, failFor: 2} })
	if e.bob.ID != 2 {
		t.Fatalf("bob's id is %d; the test assumes 2", e.bob.ID)
	}
	c := dial(t, e.addr)
	c.login(e.alice.Email, alicePass)
	c.wantCmd("MAIL FROM:<alice@example.test>", "250 ")
	c.wantCmd("RCPT TO:<alice@example.test>", "250 ")
	c.wantCmd("RCPT TO:<bob@other.test>", "250 ")
	c.wantCmd("DATA", "354 ")
	c.send("Subject: x\r\n\r\nx\r\n.\r\n")
	if got := c.reply(); got != "451 4.3.0 Delivery failed temporarily, try again later\r\n" {
		t.Fatalf("got %q", got)
	}
	// All or nothing: alice's copy was not kept, so a retry duplicates nothing.
	if got := e.inbox(e.alice); len(got) != 0 {
		t.Fatalf("alice's INBOX after a failed delivery: %q", got)
	}
}
