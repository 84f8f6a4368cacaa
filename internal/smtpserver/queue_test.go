package smtpserver

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/postern/postern/internal/mailstore"
)

// capture is a Submitter that records submissions, storing the local
// copies in the real store so the test can see them.
type capture struct {
	mu   sync.Mutex
	subs []mailstore.Submission
	mail Mail
	fail bool
}

func (c *capture) Submit(ctx context.Context, s mailstore.Submission) error {
	if c.fail {
		return errors.New("database down")
	}
	c.mu.Lock()
	c.subs = append(c.subs, s)
	c.mu.Unlock()
	if len(s.Local) > 0 {
		return c.mail.DeliverAll(ctx, s.Local)
	}
	return nil
}

type fakeSigner struct{ domains []string }

func (f *fakeSigner) Sign(ctx context.Context, domain string, msg []byte) ([]byte, error) {
	f.domains = append(f.domains, domain)
	if !bytes.Contains(msg, []byte("Received: by mx.example.test (Postern) with ESMTPA id ")) {
		return nil, errors.New("signed before the trace field was added")
	}
	return []byte("DKIM-Signature: v=1; d=" + domain + "; fake\r\n"), nil
}

// TestSubmitQueuesOtherDomains: with a queue, a member's message to an
// outside address is accepted into it — signed, with a Received field that
// does not carry the member's address — together with the local copies,
// in one submission that names the app password.
func TestSubmitQueuesOtherDomains(t *testing.T) {
	sub := &capture{}
	sig := &fakeSigner{}
	e := newEnv(t, func(c *Config) { c.Submit, c.Relay, c.Signer = sub, true, sig })
	sub.mail = e.mail
	c := dial(t, e.addr)
	c.login(e.alice.Email, alicePass)
	c.wantCmd("MAIL FROM:<alice@example.test>", "250 ")
	c.wantCmd("RCPT TO:<Someone@Far.Example>", "250 2.1.5 ")
	c.wantCmd("RCPT TO:<bob@other.test>", "250 2.1.5 ")
	c.wantCmd("RCPT TO:<bad@no_dots>", "501 5.1.3 ")
	c.wantCmd("RCPT TO:<a@-bad-.example>", "501 5.1.3 ")
	c.wantCmd("DATA", "354 ")
	c.send("From: Alice <alice@example.test>\r\nSubject: plans\r\n\r\nHello.\r\n.\r\n")
	c.want("250 2.0.0 Message accepted for delivery, id ")

	if len(sub.subs) != 1 {
		t.Fatalf("%d submissions", len(sub.subs))
	}
	s := sub.subs[0]
	if s.MemberID != e.alice.ID || s.AppPasswordID != "ap1" || len(s.Local) != 1 || s.Local[0].MemberID != e.bob.ID || s.Recipients != 2 {
		t.Fatalf("submission %+v", s)
	}
	out := s.Outbound
	if out == nil || out.From != "alice@example.test" || strings.Join(out.Rcpts, ",") != "Someone@Far.Example" || out.SMTPUTF8 || out.EightBit {
		t.Fatalf("outbound %+v", out)
	}
	body := string(out.Body)
	if !strings.HasPrefix(body, "DKIM-Signature: v=1; d=example.test; fake\r\nReceived: by mx.example.test (Postern) with ESMTPA id ") {
		t.Errorf("outbound copy starts %.200q", body)
	}
	for _, want := range []string{"\r\nDate: ", "\r\nMessage-ID: <", "From: Alice <alice@example.test>\r\nSubject: plans\r\n\r\nHello.\r\n"} {
		if !strings.Contains(body, want) {
			t.Errorf("outbound copy lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "127.0.0.1") || strings.Contains(body, "Delivered-To") || strings.Contains(body, "Return-Path") {
		t.Errorf("outbound copy tells the member's address or local trace fields:\n%s", body)
	}
	if got := e.inbox(e.bob); len(got) != 1 || !strings.Contains(got[0], "Hello.") {
		t.Errorf("bob's copy %q", got)
	}

	// Only local recipients: nothing queued, delivered as before.
	c.wantCmd("MAIL FROM:<alice@example.test>", "250 ")
	c.wantCmd("RCPT TO:<bob@other.test>", "250 ")
	c.wantCmd("DATA", "354 ")
	c.send("Subject: local\r\n\r\nx\r\n.\r\n")
	c.want("250 2.0.0 Message accepted and delivered")
	if s := sub.subs[1]; s.Outbound != nil || len(s.Local) != 1 {
		t.Errorf("local-only submission %+v", s)
	}

	// The store fails: 451, as for local mail.
	sub.fail = true
	c.wantCmd("MAIL FROM:<alice@example.test>", "250 ")
	c.wantCmd("RCPT TO:<x@far.example>", "250 ")
	c.wantCmd("DATA", "354 ")
	c.send("Subject: x\r\n\r\nx\r\n.\r\n")
	c.want("451 4.3.0 ")
}

// TestSubmitWithoutQueueRefusesRelay: no relaying unless asked for, as
// before.
func TestSubmitWithoutQueueRefusesRelay(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Submit = &capture{} })
	c := dial(t, e.addr)
	c.login(e.alice.Email, alicePass)
	c.wantCmd("MAIL FROM:<alice@example.test>", "250 ")
	c.wantCmd("RCPT TO:<someone@far.example>", "550 5.7.1 Relaying is not configured")
}

// TestMXNeverRelays: the MX listener refuses outside recipients even when
// a queue exists.
func TestMXNeverRelays(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Mode, c.Submit, c.Relay = MX, &capture{}, true })
	c := dial(t, e.addr)
	c.wantCmd("EHLO client.example", "250")
	c.wantCmd("MAIL FROM:<x@far.example>", "250 ")
	c.wantCmd("RCPT TO:<someone@far.example>", "550 5.7.1 Relaying denied")
}
