package rspamd_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/internal/rspamd"
	"github.com/postern/postern/internal/rspamd/rspamdtest"
)

var quiet = slog.New(slog.DiscardHandler)

func newClient(t *testing.T, s *rspamdtest.Server, onErr rspamd.OnError) *rspamd.Client {
	t.Helper()
	c, err := rspamd.New(rspamd.Config{
		URL: s.CheckURL, ControllerURL: s.ControllerURL, Password: rspamdtest.Password,
		Timeout: time.Minute, OnError: onErr, Log: quiet, // a loaded test machine
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// message is a plain message with body text; nonce makes it unique, so that
// rspamd's Bayes has never seen it.
func message(subject, text string) []byte {
	return fmt.Appendf(nil, "From: Alice Sender <alice@example.org>\r\n"+
		"To: Bob <bob@example.com>\r\n"+
		"Subject: %s\r\n"+
		"Date: Wed, 02 Dec 2026 08:00:00 +0000\r\n"+
		"Message-ID: <%s@example.org>\r\n"+
		"MIME-Version: 1.0\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\n"+
		"X-Spam-Status: No, score=-100 (forged by the sender)\r\n"+
		"\r\n%s\r\n", subject, rand.Text(), text)
}

func envelope(body []byte) rspamd.Message {
	return rspamd.Message{
		IP: netip.MustParseAddr("192.0.2.10"), Helo: "mail.example.org",
		// Given, so that rspamd looks up no PTR record: its DNS points
		// nowhere here, and the lookup would wait for its timeout.
		Hostname: "mail.example.org",
		From:     "alice@example.org", Rcpts: []string{"bob@example.com"},
		QueueID: "Q1", Body: body,
	}
}

// TestActions asks a real rspamd about GTUBE, rspamd's add-header and
// rewrite-subject test patterns, and a plain message, and checks the
// Decision and the message as delivered.
func TestActions(t *testing.T) {
	s := rspamdtest.Start(t)
	c := newClient(t, s, rspamd.OnErrorTempFail)
	ctx := context.Background()
	cases := []struct {
		name, text string
		action     string
		outcome    rspamd.Outcome
		status     string // X-Spam-Status's first word
		subject    string
	}{
		{"gtube", "Here it comes:\r\n" + rspamdtest.GTUBE, "reject", rspamd.Refuse, "", ""},
		{"add header", "Here it comes:\r\n" + rspamdtest.AddHeader, "add header", rspamd.Junk, "Yes", "Cheap offer"},
		{"rewrite subject", "Here it comes:\r\n" + rspamdtest.RewriteSubject, "rewrite subject", rspamd.Junk, "Yes", "*** SPAM *** Cheap offer"},
		{"clean", "Shall we have lunch tomorrow at noon? The usual place.", "no action", rspamd.Inbox, "No", "Cheap offer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := message("Cheap offer", tc.text)
			v, err := c.Check(ctx, envelope(body))
			if err != nil {
				t.Fatalf("Check: %v\n%s", err, s.Log())
			}
			if v.Action != tc.action {
				t.Fatalf("action %q (score %v, symbols %v), want %q", v.Action, v.Score, v.Symbols, tc.action)
			}
			if len(v.Symbols) == 0 || !slices.IsSorted(v.Symbols) {
				t.Errorf("symbols %v: want some, sorted", v.Symbols)
			}
			d := v.Decision()
			if d.Outcome != tc.outcome {
				t.Fatalf("outcome %v, want %v", d.Outcome, tc.outcome)
			}
			if tc.outcome == rspamd.Refuse {
				if d.Code != 550 || d.Enhanced != "5.7.1" || !strings.Contains(d.Text, "Gtube pattern") {
					t.Errorf("reply %d %s %q", d.Code, d.Enhanced, d.Text)
				}
				return
			}
			out := string(d.Apply(body))
			head, rest, _ := strings.Cut(out, "\r\n\r\n")
			if !strings.HasPrefix(head, "X-Spam-Status: "+tc.status+", score=") {
				t.Errorf("header does not start with X-Spam-Status: %s:\n%s", tc.status, head)
			}
			if n := strings.Count(head, "X-Spam-Status:"); n != 1 {
				t.Errorf("%d X-Spam-Status fields (the sender's must go):\n%s", n, head)
			}
			if !strings.Contains(head, "\r\nSubject: "+tc.subject+"\r\n") {
				t.Errorf("want Subject %q:\n%s", tc.subject, head)
			}
			if want := strings.TrimSuffix(string(body[bytes.Index(body, []byte("\r\n\r\n"))+4:]), ""); rest != want {
				t.Errorf("body changed: %q, want %q", rest, want)
			}
			if (tc.outcome == rspamd.Junk) != strings.Contains(head, "X-Spam-Flag: YES") {
				t.Errorf("X-Spam-Flag for %v:\n%s", tc.outcome, head)
			}
		})
	}
}

// TestUnavailable: with rspamd stopped, the default answers 451 4.7.1 and
// OnErrorAccept delivers to INBOX saying the filter was not reached.
func TestUnavailable(t *testing.T) {
	s := rspamdtest.Start(t)
	tempfail := newClient(t, s, rspamd.OnErrorTempFail)
	accept := newClient(t, s, rspamd.OnErrorAccept)
	body := message("Hello", "Are you there?")
	if d := tempfail.Decide(context.Background(), envelope(body)); d.Outcome != rspamd.Inbox {
		t.Fatalf("before the stop: %v %s\n%s", d.Outcome, d.Text, s.Log())
	}
	s.Stop()
	d := tempfail.Decide(context.Background(), envelope(body))
	if d.Outcome != rspamd.TempFail || d.Code != 451 || d.Enhanced != "4.7.1" {
		t.Errorf("tempfail: %v %d %s %q", d.Outcome, d.Code, d.Enhanced, d.Text)
	}
	d = accept.Decide(context.Background(), envelope(body))
	if d.Outcome != rspamd.Inbox {
		t.Fatalf("accept: %v", d.Outcome)
	}
	out := string(d.Apply(body))
	if !strings.HasPrefix(out, "X-Spam-Status: Unknown (filter unavailable)\r\nFrom: ") {
		t.Errorf("accept: delivered as\n%s", out)
	}
	if strings.Contains(out, "score=-100") {
		t.Errorf("the sender's X-Spam-Status survived:\n%s", out)
	}
}

// TestLearn teaches the real rspamd's Bayes (on Redis) a message as spam
// and another as ham; the same message again is no error (rspamd's 208).
// A wrong password is refused.
func TestLearn(t *testing.T) {
	s := rspamdtest.Start(t)
	c := newClient(t, s, rspamd.OnErrorTempFail)
	ctx := context.Background()
	words := "Buy cheap watches replica pills casino bonus offer today only click here now limited discount winner prize"
	spam := message("Cheap watches", words)
	spam0, ham0 := s.Learns(t)
	if err := c.Learn(ctx, true, spam); err != nil {
		t.Fatalf("learnspam: %v\n%s", err, s.Log())
	}
	if err := c.Learn(ctx, true, spam); err != nil {
		t.Errorf("learnspam again: %v", err)
	}
	ham := message("Minutes", "The minutes of Tuesday's meeting are attached; the budget review moves to next Thursday afternoon in room four.")
	if err := c.Learn(ctx, false, ham); err != nil {
		t.Fatalf("learnham: %v\n%s", err, s.Log())
	}
	// The counts are Redis's, which rspamd may write after its reply.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		spam1, ham1 := s.Learns(t)
		if spam1 == spam0+1 && ham1 == ham0+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("learns: spam %d → %d, ham %d → %d; want one more of each", spam0, spam1, ham0, ham1)
		}
	}
	wrong, err := rspamd.New(rspamd.Config{URL: s.CheckURL, ControllerURL: s.ControllerURL, Password: "wrong", Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	err = wrong.Learn(ctx, true, message("Cheap watches", words))
	var se *rspamd.StatusError
	if !errors.As(err, &se) || se.Code != 401 {
		t.Errorf("wrong password: %v, want HTTP 401", err)
	}
}

// BenchmarkCheck measures a check of a 10 KiB message on loopback, with
// rspamd's stock rules less those that need the network.
func BenchmarkCheck(b *testing.B) {
	s := rspamdtest.Start(b)
	c, err := rspamd.New(rspamd.Config{URL: s.CheckURL, Log: quiet})
	if err != nil {
		b.Fatal(err)
	}
	text := strings.Repeat("The quarterly report is attached; please read it before Monday's meeting.\r\n", 140)
	m := envelope(message("Report", text))
	b.SetBytes(int64(len(m.Body)))
	for b.Loop() {
		if _, err := c.Check(context.Background(), m); err != nil {
			b.Fatal(err)
		}
	}
}
