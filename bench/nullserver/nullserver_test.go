package nullserver

import (
	"net"
	"net/smtp"
	"strings"
	"testing"
	"time"
)

// TestSMTPCounts sends the null MX messages as a submission client would
// (AUTH PLAIN, then LOGIN) and checks what it counts: a message once its
// DATA is answered, its accepted recipients (a refused one not), its size,
// and the time of the last.
func TestSMTPCounts(t *testing.T) {
	s := New()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.ServeSMTP(ln)
	defer s.Close()
	addr := ln.Addr().String()

	before := time.Now().UnixNano()
	body := "Subject: one\r\n\r\nHello.\r\n"
	if err := smtp.SendMail(addr, smtp.PlainAuth("", "u1@bench.test", "anything", "127.0.0.1"), "u1@bench.test",
		[]string{"a@sink.test", "b@sink.test", "c@sink.test"}, []byte(body)); err != nil {
		t.Fatal(err)
	}
	if m, r, b := s.Messages.Load(), s.Recipients.Load(), s.Bytes.Load(); m != 1 || r != 3 || b != int64(len(body)) {
		t.Fatalf("after one message to three: %d messages, %d recipients, %d bytes", m, r, b)
	}
	if l := s.Last.Load(); l < before || l > time.Now().UnixNano() {
		t.Errorf("Last %d outside the send", l)
	}

	if n := s.Signed.Load(); n != 0 {
		t.Errorf("%d signed messages, want 0", n)
	}

	// AUTH LOGIN, and an unknown recipient among two: one copy counts; a
	// DKIM-Signature field (of any case) in the header makes it signed.
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	if ok, mechs := c.Extension("AUTH"); !ok || !strings.Contains(mechs, "LOGIN") {
		t.Fatalf("AUTH not offered: %q", mechs)
	}
	if err := c.Auth(loginAuth{}); err != nil {
		t.Fatalf("AUTH LOGIN: %v", err)
	}
	if err := c.Mail("u1@bench.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt(UnknownUser + "@sink.test"); err == nil {
		t.Fatal("unknown recipient accepted")
	}
	if err := c.Rcpt("d@sink.test"); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("From: u1@bench.test\r\ndkim-signature: v=1; a=ed25519-sha256;\r\n b=AAAA\r\nSubject: signed\r\n\r\nHello.\r\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// A transaction abandoned before DATA counts nothing.
	if err := c.Mail("u1@bench.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("e@sink.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Reset(); err != nil {
		t.Fatal(err)
	}
	c.Quit()
	if m, r, sg := s.Messages.Load(), s.Recipients.Load(), s.Signed.Load(); m != 2 || r != 4 || sg != 1 {
		t.Fatalf("after the second message: %d messages, %d recipients, %d signed; want 2, 4, 1", m, r, sg)
	}
	// The field in the body is not a signature.
	if err := smtp.SendMail(addr, nil, "u1@bench.test", []string{"f@sink.test"},
		[]byte("Subject: quoting\r\n\r\nDKIM-Signature: in the body\r\n")); err != nil {
		t.Fatal(err)
	}
	if sg := s.Signed.Load(); sg != 1 {
		t.Errorf("a body line counted as a signature: %d signed", sg)
	}
}

// loginAuth is AUTH LOGIN: net/smtp has PLAIN and CRAM-MD5 only.
type loginAuth struct{}

func (loginAuth) Start(*smtp.ServerInfo) (string, []byte, error) { return "LOGIN", nil, nil }

func (loginAuth) Next(_ []byte, more bool) ([]byte, error) {
	if !more {
		return nil, nil
	}
	return []byte("someone"), nil
}
