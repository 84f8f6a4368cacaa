package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/internal/mailauth/mailauthtest"
)

// org is one organisation's Postern: its domain, a member with an app
// password, and the server with its MX listener on a loopback address of
// its own, port 25.
type org struct {
	in     *Instance
	domain string
	member member
	pass   appPass
	srv    *Server
}

// publish adds an organisation's DNS records to the loopback DNS server:
// MX, its host's address, SPF for loopback senders, DMARC p=reject, and
// the DKIM keys `postern domain dns` prints.
func publish(t *testing.T, dns *mailauthtest.Server, in *Instance, domain, ip string) {
	t.Helper()
	dns.Add(t,
		fmt.Sprintf("%s. MX 10 mx.%s.", domain, domain),
		fmt.Sprintf("mx.%s. A %s", domain, ip),
		fmt.Sprintf(`%s. TXT "v=spf1 ip4:127.0.0.0/8 -all"`, domain),
		fmt.Sprintf(`_dmarc.%s. TXT "v=DMARC1; p=reject"`, domain),
	)
	var recs []struct{ Name, Type, Value string }
	in.RunJSON(t, &recs, "domain", "dns", domain, "--mail-host", "mx."+domain, "--base-url", "https://mail."+domain)
	keys := 0
	for _, r := range recs {
		if r.Type == "TXT" && strings.Contains(r.Name, "._domainkey.") {
			dns.TXT(t, r.Name, r.Value)
			keys++
		}
	}
	if keys < 2 {
		t.Fatalf("domain dns printed %d DKIM keys for %s, want an Ed25519 and an RSA one: %+v", keys, domain, recs)
	}
}

func newOrg(t *testing.T, in *Instance, dns *mailauthtest.Server, domain, ip, user string, extra ...string) *org {
	t.Helper()
	in.MustRun(t, "domain", "add", domain)
	o := &org{in: in, domain: domain}
	o.member = addMember(t, in, user+"@"+domain)
	o.pass = createAppPass(t, in, o.member.Email, "Thunderbird")
	publish(t, dns, in, domain, ip)
	args := append([]string{"--smtp-addr", ip + ":25", "--dns-resolver", dns.Addr, "--queue-retry-first", "1s", "--queue-retry-max", "2s"}, extra...)
	o.srv = in.StartServer(t, args...)
	return o
}

// submit sends a message with smtplib over the submission port, with the
// header fields given.
func (o *org) submit(t *testing.T, to []string, fields map[string]string, body string) {
	t.Helper()
	host, port := splitAddr(o.srv.Addr("submission"))
	var out map[string]any
	runPythonScript(t, `
import json, smtplib, ssl, sys
a = json.load(sys.stdin)
s = smtplib.SMTP(a["host"], a["port"], timeout=30)
s.starttls(context=ssl._create_unverified_context())
s.login(a["user"], a["password"])
msg = "From: " + a["user"] + "\r\nTo: " + ", ".join(a["to"]) + "\r\n"
for k, v in a["fields"].items():
    msg += k + ": " + v + "\r\n"
msg += "\r\n" + a["body"]
refused = s.sendmail(a["user"], a["to"], msg)
s.quit()
print(json.dumps({"refused": list(refused)}))
`, map[string]any{"host": host, "port": port, "user": o.member.Email, "password": o.pass.Password, "to": to, "fields": fields, "body": body}, &out)
}

// waitMail waits until a message whose subject starts with subject is in
// the member's INBOX and returns its header.
func (o *org) waitMail(t *testing.T, subject string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		msgs, _ := readInbox(t, o.srv, o.member.Email, o.pass.Password)
		if m, ok := findSubject(msgs, subject); ok {
			res := imapSession(t, o.srv, o.member.Email, o.pass.Password,
				[]any{"select", "INBOX"},
				[]any{"uid", "FETCH", m.UID, "(BODY.PEEK[])"})
			return fmt.Sprint(res[1].Data)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's INBOX has no %q after 60 s: %v\nlog:\n%s", o.member.Email, subject, msgs, o.srv.Stderr())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// queueLen is how many messages wait in the organisation's queue.
func (o *org) queueLen(t *testing.T) int {
	var list []map[string]any
	o.in.RunJSON(t, &list, "queue", "list", "--json")
	return len(list)
}

// TestSendBetweenOrganisations: two organisations on two Postern servers
// (SQLite and PostgreSQL), each the MX of its domain on its own loopback
// address, port 25, with a DNS server on loopback: mail goes both ways,
// DKIM-signed (Ed25519 and RSA) and verified, SPF and DMARC pass, the reply
// threads on the original; an unknown user bounces into the sender's INBOX
// as an RFC 3464 report; the queues end empty.
func TestSendBetweenOrganisations(t *testing.T) {
	t.Parallel()
	dns := mailauthtest.Start(t)
	a := newOrg(t, NewSQLite(t), dns, "org-a.test", "127.0.0.2", "alice")
	b := newOrg(t, NewPostgres(t), dns, "org-b.test", "127.0.0.3", "bob")

	a.submit(t, []string{b.member.Email}, map[string]string{"Subject": "Budget 2027", "Message-ID": "<budget-2027@org-a.test>"}, "Bob, the figures.\r\n")
	got := b.waitMail(t, "Budget 2027")
	for _, want := range []string{"spf=pass", "dmarc=pass", "header.d=org-a.test", "a=ed25519-sha256", "a=rsa-sha256", "d=org-a.test"} {
		if !strings.Contains(got, want) {
			t.Errorf("bob's copy lacks %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "dkim=pass"); n != 2 {
		t.Errorf("%d DKIM signatures pass, want 2 (Ed25519 and RSA):\n%s", n, got)
	}

	b.submit(t, []string{a.member.Email}, map[string]string{"Subject": "Re: Budget 2027", "In-Reply-To": "<budget-2027@org-a.test>",
		"References": "<budget-2027@org-a.test>"}, "Thanks, Alice.\r\n")
	got = a.waitMail(t, "Re: Budget 2027")
	if !strings.Contains(got, "In-Reply-To: <budget-2027@org-a.test>") || !strings.Contains(got, "dmarc=pass") || strings.Count(got, "dkim=pass") != 2 {
		t.Errorf("alice's reply:\n%s", got)
	}

	// An unknown user: refused by org-b at RCPT, bounced by org-a.
	a.submit(t, []string{"nobody@org-b.test"}, map[string]string{"Subject": "To nobody"}, "Hello?\r\n")
	got = a.waitMail(t, "Undelivered mail returned to sender")
	for _, want := range []string{"Final-Recipient: rfc822; nobody@org-b.test", "Action: failed", "Status: 5.1.1",
		"Remote-MTA: dns; mx.org-b.test", "Diagnostic-Code: smtp; 550 5.1.1", "Subject: To nobody"} {
		if !strings.Contains(got, want) {
			t.Errorf("bounce lacks %q:\n%s", want, got)
		}
	}
	// Sending as somebody else, envelope or From:, is refused before
	// anything is queued.
	a.in.MustRun(t, "user", "add", "mallory@org-a.test")
	host, port := splitAddr(a.srv.Addr("submission"))
	var refused []string
	runPythonScript(t, `
import json, smtplib, ssl, sys
a = json.load(sys.stdin)
out = []
for env_from, hdr_from in [("mallory@org-a.test", a["user"]), (a["user"], "mallory@org-a.test")]:
    s = smtplib.SMTP(a["host"], a["port"], timeout=30)
    s.starttls(context=ssl._create_unverified_context())
    s.login(a["user"], a["password"])
    try:
        s.sendmail(env_from, ["bob@org-b.test"], "From: " + hdr_from + "\r\nSubject: forged\r\n\r\nx\r\n")
        out.append("250")
    except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as e:
        out.append("%d %s" % (e.smtp_code, e.smtp_error.decode()))
    s.quit()
print(json.dumps(out))
`, map[string]any{"host": host, "port": port, "user": a.member.Email, "password": a.pass.Password}, &refused)
	if len(refused) != 2 || !strings.HasPrefix(refused[0], "553 5.7.1 ") || !strings.HasPrefix(refused[1], "550 5.7.1 ") {
		t.Errorf("sending as another member: %q", refused)
	}
	for _, o := range []*org{a, b} {
		if n := o.queueLen(t); n != 0 {
			t.Errorf("%s's queue holds %d messages", o.domain, n)
		}
	}
}

// scriptedMX is an SMTP server on ip:25 that takes messages and records
// them. With greylist it refuses each recipient with 451 the first time it
// sees it and takes it the next time; with stall it reads the first
// message and never answers it, closing stalled when it has it.
type scriptedMX struct {
	greylist bool
	stalled  chan struct{} // non-nil: stall on the first message

	mu       sync.Mutex
	seen     map[string]int
	received []string // "rcpt: message"
	once     sync.Once
}

func startScriptedMX(t *testing.T, ip string) *scriptedMX {
	return startMX(t, ip, &scriptedMX{greylist: true})
}

func startMX(t *testing.T, ip string, m *scriptedMX) *scriptedMX {
	t.Helper()
	l, err := net.Listen("tcp", ip+":25")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	m.seen = map[string]int{}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go m.serve(c)
		}
	}()
	return m
}

func (m *scriptedMX) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	r := bufio.NewReader(c)
	say := func(s string) { io.WriteString(c, s+"\r\n") }
	say("220 scripted.test ESMTP")
	var rcpts []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
			say("250-scripted.test\r\n250 8BITMIME")
		case strings.HasPrefix(cmd, "MAIL"):
			rcpts = nil
			say("250 2.1.0 OK")
		case strings.HasPrefix(cmd, "RCPT"):
			addr := strings.Trim(strings.TrimPrefix(strings.TrimSpace(line)[8:], ":"), "<> \r\n")
			m.mu.Lock()
			m.seen[addr]++
			n := m.seen[addr]
			m.mu.Unlock()
			if m.greylist && n == 1 {
				say("451 4.3.0 Greylisted, try again")
				continue
			}
			rcpts = append(rcpts, addr)
			say("250 2.1.5 OK")
		case cmd == "DATA":
			say("354 go on")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				b.WriteString(l)
			}
			stall := false
			if m.stalled != nil {
				m.once.Do(func() { stall = true })
			}
			if stall {
				close(m.stalled)
				io.Copy(io.Discard, r) // the sender dies waiting for the reply
				return
			}
			m.mu.Lock()
			for _, rc := range rcpts {
				m.received = append(m.received, rc+": "+b.String())
			}
			m.mu.Unlock()
			say("250 2.0.0 Queued")
		case cmd == "RSET", cmd == "NOOP":
			say("250 2.0.0 OK")
		case cmd == "QUIT":
			say("221 2.0.0 Bye")
			return
		default:
			say("502 5.5.2 Not here")
		}
	}
}

func (m *scriptedMX) got() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.received...)
}

// TestSendRetryDelayGiveUp: a receiver answering 451 is tried again and
// takes the message; a domain whose MX does not answer gets, on a
// shortened schedule, a delay notice and then a bounce in the sender's
// INBOX; the attempts show in postern queue and the metrics.
func TestSendRetryDelayGiveUp(t *testing.T) {
	t.Parallel()
	dns := mailauthtest.Start(t)
	mx := startScriptedMX(t, "127.0.0.5")
	dns.Add(t,
		"retry.test. MX 10 mx.retry.test.", "mx.retry.test. A 127.0.0.5",
		"gone.test. MX 10 mx.gone.test.", "mx.gone.test. A 127.0.0.6", // nothing listens there
	)
	a := newOrg(t, NewSQLite(t), dns, "org-c.test", "127.0.0.4", "carol", "--queue-delay-notice", "3s", "--queue-give-up", "12s")

	a.submit(t, []string{"dana@retry.test"}, map[string]string{"Subject": "Greylisted once"}, "Hello.\r\n")
	deadline := time.Now().Add(60 * time.Second)
	for len(mx.got()) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("never delivered after the 451:\n%s", a.srv.Stderr())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := mx.got(); len(got) != 1 || !strings.HasPrefix(got[0], "dana@retry.test: ") || !strings.Contains(got[0], "Subject: Greylisted once") {
		t.Fatalf("received %q", got)
	}
	if mx.seen["dana@retry.test"] != 2 {
		t.Errorf("RCPT seen %d times, want 2", mx.seen["dana@retry.test"])
	}

	a.submit(t, []string{"erin@gone.test"}, map[string]string{"Subject": "Into the void"}, "Anyone?\r\n")
	got := a.waitMail(t, "Delayed mail (still being retried)")
	for _, want := range []string{"Action: delayed", "Final-Recipient: rfc822; erin@gone.test", "Will-Retry-Until:", "Subject: Into the void"} {
		if !strings.Contains(got, want) {
			t.Errorf("delay notice lacks %q:\n%s", want, got)
		}
	}
	var list []queueEntryJSON
	a.in.RunJSON(t, &list, "queue", "list")
	if len(list) != 1 || len(list[0].Recipients) != 1 || list[0].Recipients[0].Attempts < 2 || !list[0].Recipients[0].DelayNotice ||
		list[0].Recipients[0].LastError == "" {
		t.Errorf("queue while retrying: %+v", list)
	}
	got = a.waitMail(t, "Undelivered mail returned to sender")
	if !strings.Contains(got, "Action: failed") || !strings.Contains(got, "erin@gone.test") || !strings.Contains(got, "gave up") {
		t.Errorf("bounce after giving up:\n%s", got)
	}
	if n := a.queueLen(t); n != 0 {
		t.Errorf("queue holds %d messages after the bounce", n)
	}
	_, metrics := httpGet(t, a.srv.MetricsURL())
	for _, want := range []string{`postern_queue_deliveries_total{result="delivered"} 1`, `postern_queue_deliveries_total{result="bounced"} 1`,
		`postern_queue_recipients{state="queued"} 0`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if !a.srv.WaitStderr("queue: attempt") || !a.srv.WaitStderr("result=deferred") {
		t.Errorf("no per-attempt log lines:\n%s", a.srv.Stderr())
	}
}

type queueEntryJSON struct {
	ID         int64 `json:"id"`
	Recipients []struct {
		Address     string `json:"address"`
		Attempts    int    `json:"attempts"`
		LastError   string `json:"last_error"`
		DelayNotice bool   `json:"delay_notice_sent"`
	} `json:"recipients"`
}

// TestSendLimitStopsScript: a script on a leaked app password that sends
// message after message is stopped at the app password's hourly cap with
// 450 4.7.1; the member gets one message naming the app password, which
// was delivered only as often as the cap allowed.
func TestSendLimitStopsScript(t *testing.T) {
	t.Parallel()
	dns := mailauthtest.Start(t)
	mx := startScriptedMX(t, "127.0.0.8")
	dns.Add(t, "far.test. MX 10 mx.far.test.", "mx.far.test. A 127.0.0.8")
	a := newOrg(t, NewSQLite(t), dns, "org-d.test", "127.0.0.7", "dan", "--send-limit-app-password-messages", "3/h")
	host, port := splitAddr(a.srv.Addr("submission"))
	var out struct {
		Codes []int    `json:"codes"`
		Texts []string `json:"texts"`
	}
	runPythonScript(t, `
import json, smtplib, ssl, sys
a = json.load(sys.stdin)
codes, texts = [], []
for i in range(6):
    s = smtplib.SMTP(a["host"], a["port"], timeout=30)
    s.starttls(context=ssl._create_unverified_context())
    s.login(a["user"], a["password"])
    try:
        s.sendmail(a["user"], ["list%d@far.test" % i], "Subject: offer %d\r\n\r\nBuy now.\r\n" % i)
        codes.append(250); texts.append("")
    except smtplib.SMTPSenderRefused as e:
        codes.append(e.smtp_code); texts.append(e.smtp_error.decode())
    s.quit()
print(json.dumps({"codes": codes, "texts": texts}))
`, map[string]any{"host": host, "port": port, "user": a.member.Email, "password": a.pass.Password}, &out)
	if fmt.Sprint(out.Codes) != "[250 250 250 450 450 450]" || !strings.HasPrefix(out.Texts[3], "4.7.1 ") {
		t.Fatalf("replies %v %q", out.Codes, out.Texts)
	}
	got := a.waitMail(t, "Sending limit reached by the third-party app password: Thunderbird")
	if !strings.Contains(got, "Thunderbird") {
		t.Errorf("the message does not name the app password:\n%s", got)
	}
	msgs, _ := readInbox(t, a.srv, a.member.Email, a.pass.Password)
	n := 0
	for _, m := range msgs {
		if strings.HasPrefix(m.Subject, "Sending limit reached") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d limit messages, want 1: %v", n, msgs)
	}
	// The three accepted messages leave (each recipient is greylisted once).
	deadline := time.Now().Add(60 * time.Second)
	for len(mx.got()) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("delivered %d of 3", len(mx.got()))
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	if got := mx.got(); len(got) != 3 {
		t.Errorf("delivered %d messages, want the 3 accepted", len(got))
	}
}

// TestSendKilledMidTransfer: the delivering node is killed (SIGKILL) while
// the receiver has the message but has not answered; after a restart the
// message is still queued and is delivered — the one duplicate SMTP allows,
// nothing lost.
func TestSendKilledMidTransfer(t *testing.T) {
	t.Parallel()
	dns := mailauthtest.Start(t)
	mx := startMX(t, "127.0.0.11", &scriptedMX{stalled: make(chan struct{})})
	dns.Add(t, "slow.test. MX 10 mx.slow.test.", "mx.slow.test. A 127.0.0.11")
	args := []string{"--queue-lease", "3s"}
	a := newOrg(t, NewPostgres(t), dns, "org-e.test", "127.0.0.10", "eve", args...)
	a.submit(t, []string{"frank@slow.test"}, map[string]string{"Subject": "Survives a crash"}, "Hello.\r\n")
	select {
	case <-mx.stalled:
	case <-time.After(60 * time.Second):
		t.Fatalf("the message never reached the receiver:\n%s", a.srv.Stderr())
	}
	a.srv.cmd.Process.Kill()
	<-a.srv.done
	if n := a.queueLen(t); n != 1 {
		t.Fatalf("after the crash the queue holds %d messages, want the one in transfer", n)
	}
	a.srv = a.in.StartServer(t, append([]string{"--smtp-addr", "127.0.0.10:25", "--dns-resolver", dns.Addr, "--queue-retry-first", "1s", "--queue-retry-max", "2s"}, args...)...)
	deadline := time.Now().Add(60 * time.Second)
	for len(mx.got()) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("not delivered after the restart:\n%s", a.srv.Stderr())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := mx.got(); len(got) != 1 || !strings.Contains(got[0], "Subject: Survives a crash") {
		t.Fatalf("received %q", got)
	}
	for deadline := time.Now().Add(30 * time.Second); a.queueLen(t) != 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the queue is not empty after the delivery")
		}
	}
}
