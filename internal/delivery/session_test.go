package delivery

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/postern/postern/internal/delivery/deliverytest"
)

// oneMX points example.test at one host on ip.
func oneMX(t *testing.T, dns *deliverytest.DNS, ip string) {
	t.Helper()
	dns.Add(t, "example.test. MX 10 mx.example.test.", "mx.example.test. A "+ip)
}

// Each recipient gets the server's own reply: 250 delivered, 450
// temporary, 550 permanent; the message reaches the accepted one only.
func TestPerRecipientResults(t *testing.T) {
	dns := deliverytest.StartDNS(t)
	ip := newIP()
	srv := deliverytest.StartSMTP(t, deliverytest.SMTPOptions{IP: ip, Rcpt: func(rcpt string) error {
		switch {
		case strings.HasPrefix(rcpt, "full@"):
			return deliverytest.Reply(450, "4.2.2", "Mailbox full")
		case strings.HasPrefix(rcpt, "gone@"):
			return deliverytest.Reply(550, "5.1.1", "No such user")
		case strings.HasPrefix(rcpt, "plain@"):
			return &smtp.SMTPError{Code: 553, Message: "Not here", EnhancedCode: smtp.NoEnhancedCode}
		}
		return nil
	}})
	oneMX(t, dns, ip)
	d, _ := newDeliverer(t, dns)
	res := deliver(t, d, msg("example.test", "bob@example.test", "full@example.test", "gone@example.test", "plain@example.test"))
	wantDelivered(t, res[:1])
	if r := res[1]; r.Delivered || r.Permanent || r.Code != 450 || r.Enhanced != "4.2.2" || r.Text != "Mailbox full" || r.RemoteMTA != "mx.example.test" {
		t.Errorf("450: %+v", r)
	}
	if r := res[2]; r.Delivered || !r.Permanent || r.Code != 550 || r.Enhanced != "5.1.1" || r.Text != "No such user" {
		t.Errorf("550: %+v", r)
	}
	// No enhanced code in the reply: the class's generic one.
	if r := res[3]; !r.Permanent || r.Code != 553 || r.Enhanced != "5.0.0" {
		t.Errorf("553: %+v", r)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 || len(msgs[0].Rcpts) != 1 || msgs[0].Rcpts[0] != "bob@example.test" {
		t.Fatalf("received %+v", msgs)
	}
}

// A temporary refusal at DATA defers every accepted recipient; a
// recipient refused at RCPT keeps its own reply.
func TestDataTemporaryFailure(t *testing.T) {
	dns := deliverytest.StartDNS(t)
	ip := newIP()
	srv := deliverytest.StartSMTP(t, deliverytest.SMTPOptions{IP: ip,
		Rcpt: func(rcpt string) error {
			if strings.HasPrefix(rcpt, "gone@") {
				return deliverytest.Reply(550, "5.1.1", "No such user")
			}
			return nil
		},
		Data: func(string, []string, []byte) error {
			return deliverytest.Reply(451, "4.3.0", "Try again later")
		}})
	oneMX(t, dns, ip)
	d, _ := newDeliverer(t, dns)
	res := deliver(t, d, msg("example.test", "bob@example.test", "carol@example.test", "gone@example.test"))
	wantFailed(t, res[:2], false, "4.3.0")
	if res[0].Code != 451 || res[0].Text != "Try again later" {
		t.Errorf("%+v", res[0])
	}
	if !res[2].Permanent || res[2].Code != 550 {
		t.Errorf("%+v", res[2])
	}
	if len(srv.Messages()) != 0 {
		t.Fatal("message stored")
	}
	// A permanent refusal at DATA bounces the accepted recipients.
	srv2IP := newIP()
	deliverytest.StartSMTP(t, deliverytest.SMTPOptions{IP: srv2IP, Data: func(string, []string, []byte) error {
		return deliverytest.Reply(554, "5.7.1", "Spam")
	}})
	dns.Add(t, "other.test. MX 10 mx.other.test.", "mx.other.test. A "+srv2IP)
	wantFailed(t, deliver(t, d, msg("other.test", "bob@other.test")), true, "5.7.1")
}

// Recipients a host deferred are offered to the next MX host, which may
// take them (a backup MX); the ones it refused for good are not.
func TestDeferredRecipientsTryNextMX(t *testing.T) {
	dns := deliverytest.StartDNS(t)
	ip1, ip2 := newIP(), newIP()
	primary := deliverytest.StartSMTP(t, deliverytest.SMTPOptions{IP: ip1, Rcpt: func(rcpt string) error {
		switch {
		case strings.HasPrefix(rcpt, "grey@"):
			return deliverytest.Reply(450, "4.7.1", "Greylisted")
		case strings.HasPrefix(rcpt, "gone@"):
			return deliverytest.Reply(550, "5.1.1", "No such user")
		}
		return nil
	}})
	backup := deliverytest.StartSMTP(t, deliverytest.SMTPOptions{IP: ip2})
	dns.Add(t, "example.test. MX 10 mx1.example.test.", "example.test. MX 20 mx2.example.test.",
		"mx1.example.test. A "+ip1, "mx2.example.test. A "+ip2)
	d, _ := newDeliverer(t, dns)
	res := deliver(t, d, msg("example.test", "bob@example.test", "grey@example.test", "gone@example.test"))
	wantDelivered(t, res[:2])
	if res[0].RemoteMTA != "mx1.example.test" || res[1].RemoteMTA != "mx2.example.test" {
		t.Errorf("remote MTAs %q %q", res[0].RemoteMTA, res[1].RemoteMTA)
	}
	if !res[2].Permanent {
		t.Errorf("%+v", res[2])
	}
	if m := backup.Messages(); len(m) != 1 || len(m[0].Rcpts) != 1 || m[0].Rcpts[0] != "grey@example.test" {
		t.Errorf("backup got %+v", m)
	}
	if len(primary.Messages()) != 1 {
		t.Errorf("primary got %d messages", len(primary.Messages()))
	}
}

// STARTTLS is used whenever offered, whatever the certificate: an
// opportunistic client accepts a self-signed one.
func TestOpportunisticSTARTTLS(t *testing.T) {
	dns := deliverytest.StartDNS(t)
	ip := newIP()
	cert := deliverytest.SelfSigned(t, "whatever.invalid")
	srv := deliverytest.StartSMTP(t, deliverytest.SMTPOptions{IP: ip, TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})
	oneMX(t, dns, ip)
	d, _ := newDeliverer(t, dns)
	wantDelivered(t, deliver(t, d, msg("example.test", "bob@example.test")))
	m := srv.Messages()
	if len(m) != 1 || !m[0].TLS {
		t.Fatalf("want one message over TLS, got %+v", m)
	}
}

// A TLS handshake that fails on an opportunistic host: the host is tried
// again without TLS, as other MTAs do.
func TestOpportunisticTLSFailureFallsBackToClearText(t *testing.T) {
	dns := deliverytest.StartDNS(t)
	ip := newIP()
	cert := deliverytest.SelfSigned(t, "mx.example.test")
	// Demanding a client certificate makes every handshake of ours fail.
	srv := deliverytest.StartSMTP(t, deliverytest.SMTPOptions{IP: ip,
		TLS: &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAnyClientCert}})
	oneMX(t, dns, ip)
	d, _ := newDeliverer(t, dns)
	wantDelivered(t, deliver(t, d, msg("example.test", "bob@example.test")))
	m := srv.Messages()
	if len(m) != 1 || m[0].TLS {
		t.Fatalf("want one message in clear text, got %+v", m)
	}
	if srv.Accepts() != 2 {
		t.Errorf("%d connections, want 2 (TLS, then without)", srv.Accepts())
	}
}

// Two messages in a row share one connection; RSET checks it first.
func TestConnectionReuse(t *testing.T) {
	dns := deliverytest.StartDNS(t)
	ip := newIP()
	cert := deliverytest.SelfSigned(t, "mx.example.test")
	srv := deliverytest.StartSMTP(t, deliverytest.SMTPOptions{IP: ip, TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})
	oneMX(t, dns, ip)
	d, _ := newDeliverer(t, dns)
	for i := 0; i < 3; i++ {
		wantDelivered(t, deliver(t, d, msg("example.test", "bob@example.test")))
	}
	if n := len(srv.Messages()); n != 3 {
		t.Fatalf("%d messages", n)
	}
	if n := srv.Accepts(); n != 1 {
		t.Fatalf("%d connections for 3 messages, want 1", n)
	}
	for _, m := range srv.Messages() {
		if !m.TLS {
			t.Error("a reused connection lost TLS")
		}
	}
	// Close sends QUIT on the idle connection.
	d.Close()
	waitFor(t, func() bool { n, _ := srv.Open(); return n == 0 })
}

// A pooled connection the server has dropped is discarded and a new one
// made.
func TestDeadPooledConnection(t *testing.T) {
	dns := deliverytest.StartDNS(t)
	ip := newIP()
	srv := deliverytest.StartSMTP(t, deliverytest.SMTPOptions{IP: ip})
	oneMX(t, dns, ip)
	d, _ := newDeliverer(t, dns)
	wantDelivered(t, deliver(t, d, msg("example.test", "bob@example.test")))
	srv.Close()
	srv2 := deliverytest.StartSMTP(t, deliverytest.SMTPOptions{IP: ip})
	wantDelivered(t, deliver(t, d, msg("example.test", "bob@example.test")))
	if len(srv2.Messages()) != 1 || srv2.Accepts() != 1 {
		t.Fatalf("new server: %d messages, %d connections", len(srv2.Messages()), srv2.Accepts())
	}
}

// An idle pooled connection is closed after Timeouts.Idle.
func TestIdleConnectionExpires(t *testing.T) {
	dns := deliverytest.StartDNS(t)
	ip := newIP()
	srv := deliverytest.StartSMTP(t, deliverytest.SMTPOptions{IP: ip})
	oneMX(t, dns, ip)
	d, _ := newDeliverer(t, dns, func(c *Config) { c.Timeouts.Idle = 50 * time.Millisecond })
	wantDelivered(t, deliver(t, d, msg("example.test", "bob@example.test")))
	waitFor(t, func() bool { n, _ := srv.Open(); return n == 0 })
	wantDelivered(t, deliver(t, d, msg("example.test", "bob@example.test")))
	if srv.Accepts() != 2 {
		t.Fatalf("%d connections, want 2", srv.Accepts())
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 20 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// At most MaxConnsPerDomain deliveries to one domain run at once; the
// others wait for a slot.
func TestMaxConnsPerDomain(t *testing.T) {
	dns := deliverytest.StartDNS(t)
	ip := newIP()
	release := make(chan struct{})
	var inData atomic.Int32
	srv := deliverytest.StartSMTP(t, deliverytest.SMTPOptions{IP: ip, Data: func(string, []string, []byte) error {
		inData.Add(1)
		<-release
		return nil
	}})
	oneMX(t, dns, ip)
	d, _ := newDeliverer(t, dns, func(c *Config) { c.MaxConnsPerDomain = 2 })
	var wg sync.WaitGroup
	results := make([][]Result, 6)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = d.Deliver(context.Background(), msg("example.test", "bob@example.test"))
		}()
	}
	waitFor(t, func() bool { return inData.Load() == 2 })
	// The other four had every chance to connect meanwhile; they must be
	// waiting for a slot, not at the server.
	time.Sleep(300 * time.Millisecond)
	if _, max := srv.Open(); max != 2 {
		t.Errorf("%d connections open at once, want 2", max)
	}
	close(release)
	wg.Wait()
	for _, r := range results {
		wantDelivered(t, r)
	}
	if _, max := srv.Open(); max != 2 {
		t.Errorf("%d connections open at once, want 2", max)
	}
	if n := len(srv.Messages()); n != 6 {
		t.Errorf("%d messages", n)
	}
	// A delivery waiting for a slot gives up with its context.
	d2, _ := newDeliverer(t, dns, func(c *Config) { c.MaxConnsPerDomain = 1 })
	block := make(chan struct{})
	inData.Store(0)
	srvIP := newIP()
	deliverytest.StartSMTP(t, deliverytest.SMTPOptions{IP: srvIP, Data: func(string, []string, []byte) error {
		inData.Add(1)
		<-block
		return nil
	}})
	dns.Add(t, "slow.test. A "+srvIP)
	done := make(chan []Result)
	go func() { done <- d2.Deliver(context.Background(), msg("slow.test", "bob@slow.test")) }()
	waitFor(t, func() bool { return inData.Load() == 1 })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	wantFailed(t, d2.Deliver(ctx, msg("slow.test", "carol@slow.test")), false, "4.4.0")
	close(block)
	wantDelivered(t, <-done)
}

// A message that needs SMTPUTF8 bounces at a server without it, and says
// SMTPUTF8 where it is offered.
func TestSMTPUTF8(t *testing.T) {
	dns := deliverytest.StartDNS(t)
	ipNo, ipYes := newIP(), newIP()
	no := deliverytest.StartSMTP(t, deliverytest.SMTPOptions{IP: ipNo})
	yes := deliverytest.StartSMTP(t, deliverytest.SMTPOptions{IP: ipYes, SMTPUTF8: true})
	dns.Add(t, "old.test. MX 10 mx.old.test.", "mx.old.test. A "+ipNo,
		"new.test. MX 10 mx.new.test.", "mx.new.test. A "+ipYes)
	d, _ := newDeliverer(t, dns)
	m := msg("old.test", "bøb@old.test", "carol@old.test")
	m.From = "ålice@sender.test"
	m.SMTPUTF8 = true
	res := deliver(t, d, m)
	wantFailed(t, res, true, "5.6.7")
	if len(no.Messages()) != 0 || res[0].RemoteMTA != "mx.old.test" {
		t.Fatalf("delivered without SMTPUTF8, or RemoteMTA %q", res[0].RemoteMTA)
	}
	m.Domain, m.Rcpts = "new.test", []string{"bøb@new.test"}
	wantDelivered(t, deliver(t, d, m))
	got := yes.Messages()
	if len(got) != 1 || !got[0].Mail.UTF8 || got[0].From != "ålice@sender.test" || got[0].Rcpts[0] != "bøb@new.test" {
		t.Fatalf("received %+v", got)
	}
}

// BODY=8BITMIME and SIZE are sent when offered.
func TestMailParameters(t *testing.T) {
	dns := deliverytest.StartDNS(t)
	ip := newIP()
	srv := deliverytest.StartSMTP(t, deliverytest.SMTPOptions{IP: ip, MaxMessageBytes: 1 << 20})
	oneMX(t, dns, ip)
	d, _ := newDeliverer(t, dns)
	m := msg("example.test", "bob@example.test")
	m.EightBit = true
	m.From = ""
	wantDelivered(t, deliver(t, d, m))
	got := srv.Messages()
	if len(got) != 1 || got[0].Mail.Body != smtp.Body8BitMIME || got[0].Mail.Size != int64(len(testBody)) || got[0].From != "" {
		t.Fatalf("received %+v", got)
	}
	// Larger than the server's SIZE: bounced without sending.
	m.Body = []byte(strings.Repeat("x", 1<<20) + "\r\n")
	wantFailed(t, deliver(t, d, m), true, "5.3.4")
	if len(srv.Messages()) != 1 {
		t.Fatal("the oversized message was sent")
	}
}

// More recipients than the server takes in one transaction (LIMITS
// RCPTMAX) go in several transactions on the same connection.
func TestRecipientsInSeveralTransactions(t *testing.T) {
	dns := deliverytest.StartDNS(t)
	ip := newIP()
	srv := deliverytest.StartSMTP(t, deliverytest.SMTPOptions{IP: ip})
	oneMX(t, dns, ip)
	d, _ := newDeliverer(t, dns)
	var rcpts []string
	for i := 0; i < 250; i++ {
		rcpts = append(rcpts, "u"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+"@example.test")
	}
	wantDelivered(t, deliver(t, d, msg("example.test", rcpts...)))
	m := srv.Messages()
	if len(m) != 3 || len(m[0].Rcpts) != 100 || len(m[2].Rcpts) != 50 || srv.Accepts() != 1 {
		t.Fatalf("%d transactions, %d connections", len(m), srv.Accepts())
	}

	ip2 := newIP()
	limited := deliverytest.StartSMTP(t, deliverytest.SMTPOptions{IP: ip2, MaxRecipients: 7})
	dns.Add(t, "limited.test. A "+ip2)
	wantDelivered(t, deliver(t, d, msg("limited.test", rcpts[:20]...)))
	if m := limited.Messages(); len(m) != 3 || len(m[0].Rcpts) != 7 || len(m[2].Rcpts) != 6 {
		t.Fatalf("%d transactions under LIMITS RCPTMAX=7", len(m))
	}
}

// A server refusing EHLO with 5xx is greeted with HELO; multi-line
// replies are joined, their enhanced codes taken apart.
func TestHELOFallbackAndReplies(t *testing.T) {
	dns := deliverytest.StartDNS(t)
	ip := newIP()
	var data string
	var mu sync.Mutex
	rawServer(t, ip, func(c *rawConn) {
		c.send("220-old.example.test ESMTP", "220 welcome")
		if l := c.read(); !strings.HasPrefix(l, "EHLO sender.test") {
			t.Errorf("first command %q", l)
			return
		}
		c.send("502 5.5.1 What is EHLO?")
		if l := c.read(); l != "HELO sender.test" {
			t.Errorf("after 502 to EHLO: %q", l)
			return
		}
		c.send("250 hi")
		if l := c.read(); l != "MAIL FROM:<alice@sender.test>" {
			t.Errorf("MAIL without extensions: %q", l)
		}
		c.send("250 ok")
		c.read()
		c.send("550-5.1.1 The mailbox does not exist,", "550-5.1.1 really not,", "550 5.1.1 go away")
		c.read()
		c.send("250 2.1.5 ok")
		if l := c.read(); l != "RCPT TO:<carol@example.test>" {
			t.Errorf("%q", l)
		}
		c.send("250 2.1.5 ok")
		c.read()
		c.send("354 go")
		mu.Lock()
		data = c.readData()
		mu.Unlock()
		c.send("250-2.0.0 Queued as", "250 2.0.0 ABC123")
		if l := c.read(); l != "RSET" && l != "QUIT" {
			t.Errorf("after the message: %q", l)
		}
		c.send("221 bye")
	})
	oneMX(t, dns, ip)
	d, _ := newDeliverer(t, dns)
	res := deliver(t, d, msg("example.test", "bob@example.test", "dave@example.test", "carol@example.test"))
	if r := res[0]; !r.Permanent || r.Enhanced != "5.1.1" || r.Text != "The mailbox does not exist, really not, go away" {
		t.Errorf("%+v", r)
	}
	wantDelivered(t, res[1:])
	if res[1].Text != "Queued as ABC123" || res[1].Enhanced != "2.0.0" {
		t.Errorf("%+v", res[1])
	}
	mu.Lock()
	defer mu.Unlock()
	// Dot-stuffing: every line starting with a dot got one more.
	want := strings.ReplaceAll(testBody, "\r\n.", "\r\n..")
	if data != want {
		t.Errorf("DATA\n%q\nwant\n%q", data, want)
	}
}

// A 5xx greeting is a refusal of this host only: temporary, with the
// reply, and the next MX host is tried.
func TestGreetingRefused(t *testing.T) {
	dns := deliverytest.StartDNS(t)
	ip1, ip2 := newIP(), newIP()
	rawServer(t, ip1, func(c *rawConn) {
		c.send("554 5.7.1 No SMTP service here")
		c.read()
		c.send("221 bye")
	})
	dns.Add(t, "example.test. MX 10 mx1.example.test.", "mx1.example.test. A "+ip1)
	d, _ := newDeliverer(t, dns)
	res := deliver(t, d, msg("example.test", "bob@example.test"))
	if r := res[0]; r.Delivered || r.Permanent || r.Code != 554 || r.Enhanced != "4.7.1" ||
		!strings.Contains(r.Text, "No SMTP service here") || r.RemoteMTA != "mx1.example.test" {
		t.Fatalf("%+v", r)
	}
	srv := deliverytest.StartSMTP(t, deliverytest.SMTPOptions{IP: ip2})
	dns.Add(t, "example.test. MX 20 mx2.example.test.", "mx2.example.test. A "+ip2)
	wantDelivered(t, deliver(t, d, msg("example.test", "bob@example.test")))
	if len(srv.Messages()) != 1 {
		t.Fatal("not delivered to the second MX")
	}
}

// No reply to the final dot: temporary, and the text says the message may
// have arrived. A canceled context ends a delivery under way: the client
// hangs up at once, long before the server would.
func TestLostAfterDataAndCancel(t *testing.T) {
	dns := deliverytest.StartDNS(t)
	ip := newIP()
	gotData := make(chan struct{}, 2)
	ended := make(chan string, 2)
	rawServer(t, ip, func(c *rawConn) {
		c.send("220 hi")
		for {
			l := c.read()
			switch {
			case l == "":
				return
			case strings.HasPrefix(l, "EHLO"):
				c.send("250-hi", "250 PIPELINING")
			case l == "DATA":
				c.send("354 go")
				c.readData()
				gotData <- struct{}{}
				// No reply: wait for the client to hang up, or for
				// rawServer's 30 s deadline.
				_, err := c.r.ReadString('\n')
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					ended <- "server timed out"
				} else {
					ended <- "client hung up"
				}
				return
			default:
				c.send("250 ok")
			}
		}
	})
	oneMX(t, dns, ip)
	d, _ := newDeliverer(t, dns, func(c *Config) { c.Timeouts.DataEnd = 200 * time.Millisecond })
	res := deliver(t, d, msg("example.test", "bob@example.test"))
	wantFailed(t, res, false, "4.4.2")
	if !strings.Contains(res[0].Text, "after the message was sent") {
		t.Errorf("%q", res[0].Text)
	}
	if e := <-ended; e != "client hung up" {
		t.Errorf("first session: %s", e)
	}
	<-gotData

	d2, _ := newDeliverer(t, dns)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-gotData
		cancel()
	}()
	out := d2.Deliver(ctx, msg("example.test", "bob@example.test"))
	if out[0].Delivered || out[0].Permanent || !strings.Contains(out[0].Text, "canceled") {
		t.Errorf("%+v", out[0])
	}
	if e := <-ended; e != "client hung up" {
		t.Errorf("canceled session: %s", e)
	}
}

func TestParseReplyEnhanced(t *testing.T) {
	for _, c := range []struct {
		text string
		code int
		want string
		ok   bool
	}{
		{"5.1.1 No", 550, "5.1.1", true},
		{"2.0.0", 250, "2.0.0", true},
		{"4.7.1 x", 550, "", false}, // class differs from the code's
		{"5.1 x", 550, "", false},
		{"5.1.1234 x", 550, "", false},
		{"5.a.1 x", 550, "", false},
		{"3.0.0 x", 354, "", false},
		{"No code", 550, "", false},
	} {
		got, ok := parseEnhanced(c.text, c.code)
		if got != c.want || ok != c.ok {
			t.Errorf("parseEnhanced(%q, %d) = %q %v", c.text, c.code, got, ok)
		}
	}
}

// An address that would smuggle a command into the session fails alone,
// and nothing of it reaches the server.
func TestUnsafeAddresses(t *testing.T) {
	dns := deliverytest.StartDNS(t)
	ip := newIP()
	srv := deliverytest.StartSMTP(t, deliverytest.SMTPOptions{IP: ip})
	oneMX(t, dns, ip)
	d, _ := newDeliverer(t, dns)
	res := deliver(t, d, msg("example.test", "bob@example.test", "x@example.test>\r\nRCPT TO:<evil@example.test", ""))
	wantDelivered(t, res[:1])
	wantFailed(t, res[1:], true, "5.1.3")
	if m := srv.Messages(); len(m) != 1 || len(m[0].Rcpts) != 1 || m[0].Rcpts[0] != "bob@example.test" {
		t.Fatalf("%+v", m)
	}
	m := msg("example.test", "bob@example.test")
	m.From = "a@b\r\nDATA"
	wantFailed(t, deliver(t, d, m), true, "5.1.7")
}
