package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"net"
	"net/smtp"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestSubmissionSender drives the submission load against a scripted
// server that checks each login (AUTH PLAIN with the member's first app
// password) and that MAIL FROM is the address logged in: every connection
// logs in once, the members in turn across all senders, and a refused login
// is an error, not a message.
func TestSubmissionSender(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	var logins, problems []string
	problem := func(s string) { mu.Lock(); problems = append(problems, s); mu.Unlock() }
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r, w := bufio.NewReader(c), bufio.NewWriter(c)
				say := func(l string) { w.WriteString(l + "\r\n"); w.Flush() }
				say("220 scripted")
				who := ""
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						return
					}
					l = strings.TrimRight(l, "\r\n")
					verb, arg, _ := strings.Cut(l, " ")
					switch strings.ToUpper(verb) {
					case "EHLO":
						say("250-scripted")
						say("250 AUTH PLAIN")
					case "AUTH":
						mech, ir, _ := strings.Cut(arg, " ")
						b, err := base64.StdEncoding.DecodeString(ir)
						f := strings.Split(string(b), "\x00")
						if mech != "PLAIN" || err != nil || len(f) != 3 || f[0] != "" {
							problem("bad AUTH " + l)
							say("501 bad")
							continue
						}
						local, _, _ := strings.Cut(f[1], "@")
						i, err := strconv.Atoi(strings.TrimPrefix(local, "u"))
						if err != nil || f[2] != appPassword(i, 0) || i == 3 {
							say("535 5.7.8 no")
							continue
						}
						who = f[1]
						mu.Lock()
						logins = append(logins, who)
						mu.Unlock()
						say("235 ok")
					case "MAIL":
						if who == "" {
							say("530 5.7.0 log in first")
						} else if !strings.HasPrefix(arg, "FROM:<"+who+"> ") {
							problem("sender " + arg + " logged in as " + who)
							say("553 not yours")
						} else {
							say("250 ok")
						}
					case "RCPT":
						say("250 ok")
					case "DATA":
						say("354 go")
						for {
							d, err := r.ReadString('\n')
							if err != nil {
								return
							}
							if strings.HasPrefix(d, "From: ") && !strings.Contains(d, "<"+who+">") {
								problem("From: " + d)
							}
							if strings.HasPrefix(d, "Received:") {
								problem("a mail client's message with a Received field")
							}
							if d == ".\r\n" {
								break
							}
						}
						say("250 queued")
					case "QUIT":
						say("221 bye")
						return
					default:
						say("502 what")
					}
				}
			}()
		}
	}()
	m := sendMessage(3000, 5, []int{1})
	// Two senders, one message per connection, five messages each.
	ss := []*smtpSender{newSMTPSender(ln.Addr().String(), nil, m, 1, 0), newSMTPSender(ln.Addr().String(), nil, m, 1, 1)}
	var errs []error
	for seq := 0; seq < 5; seq++ {
		for _, s := range ss {
			errs = append(errs, s.send(seq))
		}
	}
	for _, s := range ss {
		s.quit()
	}
	failed := 0
	for _, err := range errs {
		if err != nil {
			failed++
			if !strings.Contains(err.Error(), "AUTH as u000003@bench.test") || !strings.Contains(err.Error(), "535") {
				t.Errorf("error %v", err)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Errorf("server saw: %v", problems)
	}
	// Ten connections took members 0..4 twice; member 3's login is refused.
	if failed != 2 || len(logins) != 8 {
		t.Errorf("%d failures, logins %v", failed, logins)
	}
	for i, l := range logins {
		if want := emailOf([]int{0, 1, 2, 4}[i%4]); l != want {
			t.Errorf("login %d: %s, want %s (in turn)", i, l, want)
		}
	}
}

// TestSinkWait starts the sink as the harness does and checks what the
// harness reads of it: the copies of a message to two, the time of the
// last; a wait for more copies than arrive fails, saying how many came.
func TestSinkWait(t *testing.T) {
	work := t.TempDir()
	sk, err := startSink(work, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sk.proc.stop()
	before, err := sk.read()
	if err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	if err := smtp.SendMail(sk.smtp, nil, "a@bench.test", []string{"r1@sink.test", "r2@sink.test"}, []byte("Subject: x\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	st, err := sk.wait(before, 2, 10*time.Second, 5*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Messages-before.Messages != 1 || st.Recipients-before.Recipients != 2 || st.LastAt().Before(sent) || st.LastAt().After(time.Now()) {
		t.Errorf("after one message to two: %+v (before %+v)", st, before)
	}
	_, err = sk.wait(before, 3, 10*time.Second, 200*time.Millisecond, func() string { return "queue status" })
	if err == nil || !strings.Contains(err.Error(), "2 of the 3 copies") || !strings.Contains(err.Error(), "queue status") {
		t.Errorf("waiting for a copy that never comes: %v", err)
	}
}

// TestSinkZone checks the DNS that Postern's delivery finds the sink by:
// sink.test's MX and its address; and that only port 25 of a loopback
// address is taken for the sink.
func TestSinkZone(t *testing.T) {
	zone, err := sinkZone("127.0.25.25:25")
	if err != nil {
		t.Fatal(err)
	}
	s, err := startDNS(zone)
	if err != nil {
		t.Fatal(err)
	}
	defer s.stop()
	c := &dns.Client{}
	m := new(dns.Msg)
	m.SetQuestion("sink.test.", dns.TypeMX)
	r, _, err := c.Exchange(m, s.Addr)
	if err != nil || len(r.Answer) != 1 || r.Answer[0].(*dns.MX).Mx != "mx.sink.test." {
		t.Fatalf("MX: %v %v", r, err)
	}
	m.SetQuestion("mx.sink.test.", dns.TypeA)
	r, _, err = c.Exchange(m, s.Addr)
	if err != nil || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "127.0.25.25" {
		t.Fatalf("A: %v %v", r, err)
	}
	m.SetQuestion("mx.sink.test.", dns.TypeAAAA)
	if r, _, err = c.Exchange(m, s.Addr); err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 {
		t.Fatalf("AAAA: %v %v", r, err)
	}
	for _, bad := range []string{"127.0.25.25:2525", "192.0.2.1:25", "localhost:25", "[::1]:25"} {
		if _, err := sinkZone(bad); err == nil {
			t.Errorf("sink %s taken", bad)
		}
	}
}

// TestSendQuickNull runs the sending benchmark against the null target for
// a moment, so that a broken harness shows in CI: the sink counts every
// copy, the figures are recorded, and the section is written between its
// markers, the rest of the file kept. No timing is asserted. (Postfix needs
// Dovecot's auth, and Postern's side a postern binary; bench/send.sh runs
// them.)
func TestSendQuickNull(t *testing.T) {
	work := t.TempDir()
	doc := filepath.Join(work, "benchmarks.md")
	if err := os.WriteFile(doc, []byte("# Benchmarks\n\nHand-written part.\n\n"+sendBegin+"\nold\n"+sendEnd+"\n\nAfter.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &sendConfig{loadConfig: loadConfig{quick: true, work: work, doc: doc, targets: map[string]bool{"null": true},
		members: 20, rounds: 2, dur: 200 * time.Millisecond, drainMax: 10 * time.Second,
		clients: 4, size: 10 << 10, perConn: 1, perMsg: []int{1, 3}}, sinkAddr: "127.0.0.1:0", stall: 5 * time.Second}
	if err := runSend(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"messages/s delivered", "messages/s (250)", "p99 ms", "server CPU µs/msg (load)"} {
		s := c.resultsForTest.get("send", "submission c=4", m, "null")
		if s == nil || len(s.Values) != 2 || s.Values[0] <= 0 {
			t.Errorf("%s: %+v", m, s)
		}
	}
	b, _ := os.ReadFile(doc)
	for _, want := range []string{"Hand-written part.", "After.", "| submission c=4 | messages/s delivered |", "Postfix was not measured"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("report lacks %q:\n%s", want, b)
		}
	}
	if strings.Contains(string(b), "\nold\n") || strings.Count(string(b), sendBegin) != 1 {
		t.Errorf("the old section was not replaced:\n%s", b)
	}
}

// TestSendMarkdown renders canned results: medians with their ranges, the
// ratios to Postern on SQLite, and the target judged on the delivered
// rates (Postern at least Postfix's), the 250 rates beside it.
func TestSendMarkdown(t *testing.T) {
	r := newResults()
	cas := "submission c=16"
	for _, v := range []struct {
		target          string
		delivered, r250 []float64
		p99             float64
	}{
		{"postern-sqlite", []float64{300, 280, 320}, []float64{310, 300, 330}, 40},
		{"postern-postgres", []float64{90, 80, 95}, []float64{150, 140, 160}, 90},
		{"postfix", []float64{100, 110, 105}, []float64{120, 125, 130}, 200},
		{"null", []float64{3000, 3100, 2900}, []float64{3000, 3100, 2900}, 8},
	} {
		for i := range v.delivered {
			r.add("send", cas, "messages/s delivered", v.target, v.delivered[i])
			r.add("send", cas, "messages/s (250)", v.target, v.r250[i])
			r.add("send", cas, "p99 ms", v.target, v.p99)
		}
	}
	c := &sendConfig{loadConfig: loadConfig{rounds: 3, dur: 10 * time.Second, clients: 16, size: 10 << 10, perConn: 1, perMsg: []int{1, 1, 1, 3},
		cmdline: "postern-bench send --postern X"}}
	md := sendMarkdown(c, r, []string{"postern-sqlite", "postern-postgres", "postfix", "null"}, "nproc 2\n", time.Minute)
	for _, want := range []string{
		"Mode: full; 3 round(s) of 10s per target, 16 submitters",
		"| submission c=16 | messages/s delivered | 300 (280–320) | 90.0 (80.0–95.0) | 105 (100–110) | 3000 (2900–3100) | 3.33 | 2.86 | 0.10 |",
		"| postern-sqlite | 300 | 2.86 | yes | 310 | 2.48 |",
		"| postern-postgres | 90 | 0.86 | **no** | 150 | 1.20 |",
		"postern-bench send --postern X",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}
