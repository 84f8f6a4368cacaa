package main

import (
	"bufio"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/bench/nullserver"
)

// TestSMTPLoadNull runs the MX load against the null MX: every message
// counted is one the server took (250 after DATA), of about the size asked
// for; a recipient refused at RCPT is counted while the message still goes
// to the others; a message whose every recipient is refused does not count.
func TestSMTPLoadNull(t *testing.T) {
	s := nullserver.New()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.ServeSMTP(ln)
	defer s.Close()

	msg := benchMessage(10<<10, 20, []int{1, 1, 1, 3})
	for _, perConn := range []int{1, 0} {
		before := s.Messages.Load()
		r := runSMTP(smtpOpts{addr: ln.Addr().String(), senders: 4, dur: 200 * time.Millisecond, perConn: perConn, msg: msg})
		got := s.Messages.Load() - before
		if r.Errors != 0 || r.Count == 0 || int64(r.Count) != got || r.P99 <= 0 {
			t.Fatalf("per-conn %d: %+v; the server took %d", perConn, r, got)
		}
	}
	if avg := s.Bytes.Load() / s.Messages.Load(); avg < 10<<10-200 || avg > 10<<10+400 {
		t.Errorf("average message %d bytes, want about 10 KiB", avg)
	}

	// One recipient of two unknown: the message goes to the other.
	part := &smtpMessage{From: "a@example.org", Size: 2000, PerMsg: []int{2},
		Rcpts: []string{"u1@bench.test", nullserver.UnknownUser + "@bench.test"}}
	r := runSMTP(smtpOpts{addr: ln.Addr().String(), senders: 2, dur: 100 * time.Millisecond, perConn: 1, msg: part})
	if r.Count == 0 || r.Errors != 0 || r.RcptRefused != r.Count || r.Copies != r.Count || !strings.Contains(r.FirstErr, "550 5.1.1") {
		t.Errorf("half-refused envelopes: %+v", r)
	}
	// Every recipient unknown: DATA refused, nothing counts.
	none := &smtpMessage{From: "a@example.org", Size: 2000, PerMsg: []int{1},
		Rcpts: []string{nullserver.UnknownUser + "@bench.test"}}
	r = runSMTP(smtpOpts{addr: ln.Addr().String(), senders: 2, dur: 100 * time.Millisecond, perConn: 1, msg: none})
	if r.Count != 0 || r.Errors == 0 || r.RcptRefused != r.Errors {
		t.Errorf("refused envelopes: %+v", r)
	}
}

// TestSMTPSenderLockstep drives a sender against a scripted server that
// offers no PIPELINING, answers multi-line replies, and refuses one message
// after DATA: without PIPELINING the sender waits for each reply before the
// next command (RFC 2920 is opt-in), the dot-stuffed end of data arrives,
// and a 451 after DATA is an error, not a message.
func TestSMTPSenderLockstep(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	var problems []string
	problem := func(s string) { mu.Lock(); problems = append(problems, s); mu.Unlock() }
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r, w := bufio.NewReader(c), bufio.NewWriter(c)
		say := func(lines ...string) {
			for _, l := range lines {
				w.WriteString(l + "\r\n")
			}
			w.Flush()
		}
		say("220-scripted", "220 ready")
		msgs := 0
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return
			}
			// Nothing may follow a command before its reply.
			if r.Buffered() > 0 {
				problem("pipelined after " + strings.TrimSpace(l))
			}
			switch verb := strings.ToUpper(strings.Fields(l)[0]); verb {
			case "EHLO":
				say("250-scripted", "250-SIZE 1000000", "250 8BITMIME")
			case "MAIL", "RCPT":
				say("250 OK")
			case "DATA":
				say("354 go on")
				var last string
				for {
					d, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if d == ".\r\n" {
						break
					}
					last = d
				}
				if !strings.HasSuffix(last, "\r\n") {
					problem("data not CRLF-terminated")
				}
				msgs++
				if msgs == 2 {
					say("451 4.3.0 try again later")
				} else {
					say("250 queued")
				}
			case "QUIT":
				say("221 bye")
				return
			default:
				problem("unexpected " + l)
				say("500 what")
			}
		}
	}()
	m := &smtpMessage{From: "a@example.org", Size: 3000, PerMsg: []int{2}, Rcpts: []string{"u1@bench.test", "u2@bench.test"}}
	s := newSMTPSender(ln.Addr().String(), nil, m, 0, 1)
	if err := s.send(0); err != nil {
		t.Fatalf("first message: %v", err)
	}
	if s.pipe {
		t.Error("PIPELINING assumed though not offered")
	}
	if err := s.send(1); err == nil || !strings.Contains(err.Error(), "451 4.3.0") {
		t.Errorf("second message (451 after DATA): %v", err)
	}
	s.quit()
	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Errorf("server saw: %v", problems)
	}
}

// TestMessageBody checks the generated body: lines within 78 characters,
// CRLF everywhere, the size asked for, and the end of data.
func TestMessageBody(t *testing.T) {
	b := string(messageBody(5000))
	if !strings.HasSuffix(b, "\r\n.\r\n") || len(b) < 5000 || len(b) > 5100 {
		t.Fatalf("body of %d bytes ending %q", len(b), b[len(b)-10:])
	}
	for _, l := range strings.Split(strings.TrimSuffix(b, "\r\n.\r\n"), "\r\n") {
		if len(l) > 78 || strings.ContainsAny(l, "\r\n") || strings.HasPrefix(l, ".") {
			t.Fatalf("line %q", l)
		}
	}
}
