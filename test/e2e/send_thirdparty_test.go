package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/miekg/dns"

	"github.com/postern/postern/internal/delivery/deliverytest"
	"github.com/postern/postern/internal/mailauth/mailauthtest"
	"github.com/postern/postern/test/postfix"
)

// Sending to software that is not Postern: Debian's Postfix as the MX of a
// third domain and as the provider's smarthost, and an MX host whose
// certificate an enforced MTA-STS policy refuses.

// writePEM writes the certificate chain of c to dir/name.pem and, when c
// has a key, the key to dir/name.key; it returns both paths.
func writePEM(t *testing.T, dir, name string, c tls.Certificate) (certFile, keyFile string) {
	t.Helper()
	var b bytes.Buffer
	for _, der := range c.Certificate {
		pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	certFile = filepath.Join(dir, name+".pem")
	if err := os.WriteFile(certFile, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if c.PrivateKey == nil {
		return certFile, ""
	}
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	keyFile = filepath.Join(dir, name+".key")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// writeCA writes the test CA's certificate as a PEM file, for
// SSL_CERT_FILE: Go's crypto/x509 takes the system roots from it on Linux.
func writeCA(t *testing.T, ca *deliverytest.CA) string {
	t.Helper()
	f, _ := writePEM(t, t.TempDir(), "ca", tls.Certificate{Certificate: [][]byte{ca.Cert.Raw}})
	return f
}

// postfixIDs returns the postfix user's uid and gid, for files its
// delivery agents write.
func postfixIDs(t *testing.T) (uid, gid int) {
	t.Helper()
	u, err := user.Lookup("postfix")
	if err != nil {
		t.Fatalf("no postfix user (scripts/test-deps.sh installs postfix): %v", err)
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid
}

// startPostfixAt starts a private Postfix whose smtpd listens on addr,
// stopped when the test ends.
func startPostfixAt(t *testing.T, hostname, addr string, main, master []string) *postfix.Instance {
	t.Helper()
	pf, err := postfix.Start(postfix.Config{Dir: filepath.Join(postfix.OpenTempDir(t), "postfix"), SMTPAddr: addr, Hostname: hostname,
		Main: main, Master: master})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pf.Stop() })
	return pf
}

// mailboxes is a Postfix that is the MX of domains, delivering each
// address given into a maildir of its own with virtual(8).
type mailboxes struct {
	pf   *postfix.Instance
	base string
}

func startMailboxes(t *testing.T, hostname, addr string, addrs ...string) *mailboxes {
	t.Helper()
	uid, gid := postfixIDs(t)
	dir := postfix.OpenTempDir(t)
	base := filepath.Join(dir, "vmail")
	if err := os.Mkdir(base, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(base, uid, gid); err != nil {
		t.Fatal(err)
	}
	var maps strings.Builder
	domains := map[string]bool{}
	var doms []string
	for _, a := range addrs {
		fmt.Fprintf(&maps, "%s %s/\n", a, a) // a trailing slash: a maildir
		d := a[strings.IndexByte(a, '@')+1:]
		if !domains[d] {
			domains[d] = true
			doms = append(doms, d)
		}
	}
	mapFile := filepath.Join(dir, "vmailbox")
	if err := os.WriteFile(mapFile, []byte(maps.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	pf := startPostfixAt(t, hostname, addr, []string{
		"virtual_mailbox_domains = " + strings.Join(doms, " "),
		"virtual_mailbox_base = " + base,
		"virtual_mailbox_maps = texthash:" + mapFile,
		fmt.Sprintf("virtual_uid_maps = static:%d", uid),
		fmt.Sprintf("virtual_gid_maps = static:%d", gid),
		"virtual_transport = virtual",
	}, []string{"virtual   unix  -       n       n       -       -       virtual"})
	return &mailboxes{pf: pf, base: base}
}

// wait waits for the one message in addr's maildir and returns it.
func (m *mailboxes) wait(t *testing.T, addr string, srv *Server) string {
	t.Helper()
	dir := filepath.Join(m.base, addr, "new")
	deadline := time.Now().Add(60 * time.Second)
	for {
		files, _ := filepath.Glob(filepath.Join(dir, "*"))
		if len(files) > 1 {
			t.Fatalf("%d messages in %s, want 1", len(files), dir)
		}
		if len(files) == 1 {
			b, err := os.ReadFile(files[0])
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing in %s's mailbox after 60 s\n--- postfix log ---\n%s\n--- postern log ---\n%s", addr, m.pf.Log(), srv.Stderr())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// verifyDKIM verifies the DKIM signatures of msg with the keys on the
// loopback DNS server and fails the test unless there are two (Ed25519
// and RSA), both valid, both of domain.
func verifyDKIM(t *testing.T, dnsSrv *mailauthtest.Server, msg, domain string) {
	t.Helper()
	lookup := func(name string) ([]string, error) {
		q := new(dns.Msg)
		q.SetQuestion(dns.Fqdn(name), dns.TypeTXT)
		r, err := dns.Exchange(q, dnsSrv.Addr)
		if err != nil {
			return nil, err
		}
		var out []string
		for _, rr := range r.Answer {
			if txt, ok := rr.(*dns.TXT); ok {
				out = append(out, strings.Join(txt.Txt, ""))
			}
		}
		return out, nil
	}
	vs, err := dkim.VerifyWithOptions(strings.NewReader(strings.ReplaceAll(strings.ReplaceAll(msg, "\r\n", "\n"), "\n", "\r\n")),
		&dkim.VerifyOptions{LookupTXT: lookup})
	if err != nil {
		t.Fatalf("DKIM verification: %v", err)
	}
	if len(vs) != 2 {
		t.Fatalf("%d DKIM signatures, want 2 (Ed25519 and RSA):\n%s", len(vs), msg)
	}
	for _, v := range vs {
		if v.Err != nil || v.Domain != domain {
			t.Errorf("DKIM signature of %s: %v (want a valid one of %s)", v.Domain, v.Err, domain)
		}
	}
	for _, a := range []string{"a=ed25519-sha256", "a=rsa-sha256"} {
		if !strings.Contains(msg, a) {
			t.Errorf("no %s signature:\n%s", a, msg)
		}
	}
}

// TestSendThroughPostfix: Debian's Postfix receives what Postern sends.
// As the MX of a third domain it takes a member's message into a maildir
// with both of Postern's DKIM signatures intact (verified against the
// published keys after Postfix added its Received line). As the
// provider's smarthost, reached with STARTTLS on a certificate of a CA the
// Postern process trusts through SSL_CERT_FILE, it relays a second
// organisation's message to that MX, which files it signed and intact, with
// the smarthost's Received line naming Postern's EHLO and TLS.
//
// AUTH at the smarthost is left to internal/delivery's tests: Postfix would
// need Dovecot or Cyrus SASL for it.
func TestSendThroughPostfix(t *testing.T) {
	t.Parallel()
	dnsSrv := mailauthtest.Start(t)
	mx := startMailboxes(t, "mx.third.test", "127.0.0.21:25", "someone@third.test", "faraway@far.test")
	dnsSrv.Add(t,
		"third.test. MX 10 mx.third.test.", "mx.third.test. A 127.0.0.21",
		"far.test. MX 10 mx.third.test.",
	)

	// (a) Directly to the third domain's MX.
	x := newOrg(t, NewSQLite(t), dnsSrv, "org-x.test", "127.0.0.20", "xavier", "--mail-host", "mx.org-x.test")
	x.submit(t, []string{"someone@third.test"}, map[string]string{"Subject": "To a Postfix mailbox"}, "Hello, Postfix.\r\n")
	got := mx.wait(t, "someone@third.test", x.srv)
	if !strings.Contains(got, "Subject: To a Postfix mailbox") || !strings.Contains(got, "by mx.third.test (Postfix)") ||
		!strings.Contains(got, "from mx.org-x.test") {
		t.Errorf("the message in Postfix's mailbox:\n%s", got)
	}
	verifyDKIM(t, dnsSrv, got, "org-x.test")

	// (b) Through Postfix as the smarthost, which relays to the MX above.
	ca := deliverytest.NewCA(t, "Smarthost Test CA")
	tlsDir := postfix.OpenTempDir(t)
	cert, key := writePEM(t, tlsDir, "smarthost", ca.Issue(t, "127.0.0.23", "smarthost.test"))
	relay := startPostfixAt(t, "smarthost.test", "127.0.0.23:25", []string{
		"relayhost = [127.0.0.21]:25",
		"smtpd_tls_security_level = may",
		"smtpd_tls_cert_file = " + cert,
		"smtpd_tls_key_file = " + key,
		"smtpd_tls_received_header = yes",
		"smtpd_tls_loglevel = 1",
	}, []string{"tlsmgr    unix  -       -       n       1000?   1       tlsmgr"})
	yIn := NewSQLite(t)
	yIn.Env = append(yIn.Env, "SSL_CERT_FILE="+writeCA(t, ca))
	y := newOrg(t, yIn, dnsSrv, "org-y.test", "127.0.0.22", "yvonne", "--mail-host", "mx.org-y.test",
		"--smarthost", "127.0.0.23:25", "--smarthost-tls", "starttls")
	y.submit(t, []string{"faraway@far.test"}, map[string]string{"Subject": "Through the smarthost"}, "Hello, relay.\r\n")
	got = mx.wait(t, "faraway@far.test", y.srv)
	if !strings.Contains(got, "Subject: Through the smarthost") {
		t.Errorf("the relayed message:\n%s", got)
	}
	// The smarthost's Received line: Postern's EHLO, over TLS.
	var smarthostRcvd string
	for _, f := range strings.Split(strings.ReplaceAll(got, "\n\t", " "), "\n") {
		if strings.HasPrefix(f, "Received:") && strings.Contains(f, "by smarthost.test (Postfix)") {
			smarthostRcvd = f
		}
	}
	if !strings.Contains(smarthostRcvd, "from mx.org-y.test") || !strings.Contains(smarthostRcvd, "with ESMTPS") ||
		!strings.Contains(smarthostRcvd, "(using TLS") {
		t.Errorf("the smarthost's Received line %q: want Postern's EHLO and TLS\n%s", smarthostRcvd, got)
	}
	verifyDKIM(t, dnsSrv, got, "org-y.test")
	// The smarthost's log, followed by the message's queue id: received
	// from Postern over TLS, relayed to the MX.
	msgID := regexp.MustCompile(`(?mi)^Message-ID: <([^>]+)>`).FindStringSubmatch(got)
	if msgID == nil {
		t.Fatalf("no Message-ID:\n%s", got)
	}
	waitPostfixLog(t, relay, `(?s)Anonymous TLS connection established from localhost\[127\.0\.0\.1\].*: (\w+): message-id=<`+regexp.QuoteMeta(msgID[1])+`>`)
	qid := regexp.MustCompile(`(\w+): message-id=<` + regexp.QuoteMeta(msgID[1]) + `>`).FindStringSubmatch(relay.Log())[1]
	waitPostfixLog(t, relay, qid+`: client=localhost\[127\.0\.0\.1\]`)
	waitPostfixLog(t, relay, qid+`: from=<yvonne@org-y\.test>`)
	waitPostfixLog(t, relay, qid+`: to=<faraway@far\.test>, relay=127\.0\.0\.21\[127\.0\.0\.21\]:25, .*status=sent \(250`)
	for _, o := range []*org{x, y} {
		if n := o.queueLen(t); n != 0 {
			t.Errorf("%s's queue holds %d messages", o.domain, n)
		}
	}
}

// TestSendMTASTSEnforce: sts.test publishes an MTA-STS policy in mode
// enforce (fetched over HTTPS with a certificate of a test CA that the
// Postern process trusts through SSL_CERT_FILE). Its MX host offers
// STARTTLS with a certificate of that same CA but for another name: Postern
// connects, refuses to send, and keeps the message queued with an error
// naming TLS and the policy, attempt after attempt. Once the domain adds an
// MX host the policy lists, with a certificate for its name, the message
// goes there over TLS, and never to the first.
func TestSendMTASTSEnforce(t *testing.T) {
	t.Parallel()
	dnsSrv := mailauthtest.Start(t)
	ca := deliverytest.NewCA(t, "MTA-STS Test CA")
	policy := deliverytest.StartMTASTS(t, "127.0.0.26", ca.Issue(t, "mta-sts.sts.test"),
		"version: STSv1\r\nmode: enforce\r\nmx: mx.sts.test\r\nmx: mx2.sts.test\r\nmax_age: 86400\r\n")
	bad := deliverytest.StartSMTP(t, deliverytest.SMTPOptions{IP: "127.0.0.25",
		TLS: &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, "mx.elsewhere.test")}}})
	dnsSrv.Add(t,
		"sts.test. MX 10 mx.sts.test.", "mx.sts.test. A 127.0.0.25",
		"mta-sts.sts.test. A 127.0.0.26",
		`_mta-sts.sts.test. TXT "v=STSv1; id=1"`,
	)
	in := NewSQLite(t)
	in.Env = append(in.Env, "SSL_CERT_FILE="+writeCA(t, ca))
	s := newOrg(t, in, dnsSrv, "org-s.test", "127.0.0.24", "sam")
	s.submit(t, []string{"pat@sts.test"}, map[string]string{"Subject": "Under an enforced policy"}, "Hello.\r\n")

	// Two attempts refused for the certificate: the policy stays in force.
	var list []queueEntryJSON
	deadline := time.Now().Add(60 * time.Second)
	for {
		list = nil
		s.in.RunJSON(t, &list, "queue", "list")
		if n := len(bad.Messages()); n != 0 {
			t.Fatalf("the MX with the wrong certificate got %d messages", n)
		}
		if len(list) == 1 && len(list[0].Recipients) == 1 && list[0].Recipients[0].Attempts >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not two attempts after 60 s: %+v\n%s", list, s.srv.Stderr())
		}
		time.Sleep(200 * time.Millisecond)
	}
	lastErr := list[0].Recipients[0].LastError
	for _, want := range []string{"mx.sts.test", "TLS", "certificate", "MTA-STS policy of sts.test (enforce)"} {
		if !strings.Contains(lastErr, want) {
			t.Errorf("last_error %q lacks %q", lastErr, want)
		}
	}
	// Postern did reach that MX host and fetch the policy: what kept the
	// message back was the certificate.
	if bad.Accepts() < 2 || policy.Fetches() < 1 {
		t.Errorf("MX connections %d, policy fetches %d", bad.Accepts(), policy.Fetches())
	}
	if !s.srv.WaitStderr("MTA-STS policy") || !s.srv.WaitStderr("mode=enforce") {
		t.Errorf("no log line of the policy in force:\n%s", s.srv.Stderr())
	}

	// An MX host the policy lists, with a certificate for its name.
	good := deliverytest.StartSMTP(t, deliverytest.SMTPOptions{IP: "127.0.0.27",
		TLS: &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, "mx2.sts.test")}}})
	dnsSrv.Add(t, "sts.test. MX 20 mx2.sts.test.", "mx2.sts.test. A 127.0.0.27")
	deadline = time.Now().Add(60 * time.Second)
	for len(good.Messages()) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("not delivered to mx2.sts.test after 60 s:\n%s", s.srv.Stderr())
		}
		time.Sleep(100 * time.Millisecond)
	}
	m := good.Messages()[0]
	if !m.TLS || len(m.Rcpts) != 1 || m.Rcpts[0] != "pat@sts.test" || !strings.Contains(string(m.Data), "Subject: Under an enforced policy") {
		t.Errorf("mx2.sts.test got TLS=%v rcpts=%v:\n%s", m.TLS, m.Rcpts, m.Data)
	}
	if n := len(bad.Messages()); n != 0 {
		t.Errorf("the MX with the wrong certificate got %d messages", n)
	}
	deadline = time.Now().Add(30 * time.Second)
	for s.queueLen(t) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the queue is not empty after delivery")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
