package delivery

import (
	"crypto/tls"
	"strings"
	"testing"

	"github.com/postern/postern/internal/delivery/deliverytest"
)

// smarthostSetup runs a relay on its own address, named relay.test in DNS,
// with a certificate of ca, requiring AUTH as relay/s3cret.
func smarthostSetup(t *testing.T, dns *deliverytest.DNS, ca *deliverytest.CA, implicit bool) (*deliverytest.SMTP, string) {
	t.Helper()
	ip := newIP()
	dns.Add(t, "relay.test. A "+ip)
	srv := deliverytest.StartSMTP(t, deliverytest.SMTPOptions{IP: ip, Implicit: implicit,
		TLS:   &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, "relay.test")}},
		Users: map[string]string{"relay": "s3cret"}})
	return srv, ip
}

func smarthost(ca *deliverytest.CA, mode, user, pass string) func(*Config) {
	return func(c *Config) {
		c.RootCAs = ca.Pool
		c.Smarthost = &Smarthost{Addr: "relay.test:25", TLS: mode, Username: user, Password: pass}
	}
}

// STARTTLS, then AUTH PLAIN: the credentials arrive, and the recipient's
// domain is never looked up (it has no DNS at all here).
func TestSmarthostSTARTTLSAuth(t *testing.T) {
	dns := deliverytest.StartDNS(t)
	ca := deliverytest.NewCA(t, "Test CA")
	srv, _ := smarthostSetup(t, dns, ca, false)
	d, _ := newDeliverer(t, dns, smarthost(ca, "starttls", "relay", "s3cret"))
	res := deliver(t, d, msg("elsewhere.test", "bob@elsewhere.test"))
	wantDelivered(t, res)
	m := srv.Messages()
	if len(m) != 1 || m[0].User != "relay" || !m[0].TLS || res[0].RemoteMTA != "relay.test" {
		t.Fatalf("%+v, remote %q", m, res[0].RemoteMTA)
	}
	if dns.Queries("elsewhere.test") != 0 {
		t.Error("the recipient domain's MX was looked up")
	}
}

func TestSmarthostImplicitTLS(t *testing.T) {
	dns := deliverytest.StartDNS(t)
	ca := deliverytest.NewCA(t, "Test CA")
	srv, _ := smarthostSetup(t, dns, ca, true)
	d, _ := newDeliverer(t, dns, smarthost(ca, "implicit", "relay", "s3cret"))
	wantDelivered(t, deliver(t, d, msg("elsewhere.test", "bob@elsewhere.test")))
	if m := srv.Messages(); len(m) != 1 || m[0].User != "relay" || !m[0].TLS {
		t.Fatalf("%+v", m)
	}
}

// The smarthost's certificate is verified: an untrusted one defers, and the
// credentials are never sent.
func TestSmarthostUntrustedCertificate(t *testing.T) {
	dns := deliverytest.StartDNS(t)
	ca := deliverytest.NewCA(t, "Test CA")
	srv, _ := smarthostSetup(t, dns, ca, false)
	other := deliverytest.NewCA(t, "Other CA")
	d, _ := newDeliverer(t, dns, smarthost(other, "starttls", "relay", "s3cret"))
	res := deliver(t, d, msg("elsewhere.test", "bob@elsewhere.test"))
	wantFailed(t, res, false, "4.7.5")
	if len(srv.Messages()) != 0 || srv.Accepts() != 1 {
		t.Fatalf("%d messages, %d connections", len(srv.Messages()), srv.Accepts())
	}
}

// Mandatory STARTTLS that the relay does not offer: deferred, no AUTH in
// clear text.
func TestSmarthostSTARTTLSMissing(t *testing.T) {
	dns := deliverytest.StartDNS(t)
	ca := deliverytest.NewCA(t, "Test CA")
	ip := newIP()
	dns.Add(t, "relay.test. A "+ip)
	var authSeen bool
	rawServer(t, ip, func(c *rawConn) {
		c.send("220 relay")
		for {
			l := c.read()
			switch {
			case l == "":
				return
			case strings.HasPrefix(l, "EHLO"):
				c.send("250-relay", "250 AUTH PLAIN LOGIN")
			case strings.HasPrefix(l, "AUTH"):
				authSeen = true
				c.send("535 no")
			case l == "QUIT":
				c.send("221 bye")
				return
			default:
				c.send("502 no")
			}
		}
	})
	d, _ := newDeliverer(t, dns, smarthost(ca, "starttls", "relay", "s3cret"))
	res := deliver(t, d, msg("elsewhere.test", "bob@elsewhere.test"))
	wantFailed(t, res, false, "4.7.4")
	if authSeen {
		t.Fatal("credentials sent without TLS")
	}
}

// Refused credentials: temporary (our setting is wrong, not the
// recipient), and the password appears nowhere in the result.
func TestSmarthostAuthRefused(t *testing.T) {
	dns := deliverytest.StartDNS(t)
	ca := deliverytest.NewCA(t, "Test CA")
	srv, _ := smarthostSetup(t, dns, ca, false)
	d, _ := newDeliverer(t, dns, smarthost(ca, "starttls", "relay", "wrong-pass"))
	res := deliver(t, d, msg("elsewhere.test", "bob@elsewhere.test"))
	if r := res[0]; r.Delivered || r.Permanent || r.Code != 535 || strings.Contains(r.Text, "wrong-pass") ||
		strings.Contains(r.Text, b64("\x00relay\x00wrong-pass")) {
		t.Fatalf("%+v", r)
	}
	if len(srv.Messages()) != 0 {
		t.Fatal("delivered")
	}
}

// AUTH LOGIN when the relay offers nothing else; no TLS to a loopback relay
// is allowed and credentials may go there in clear.
func TestSmarthostLoginOnLoopback(t *testing.T) {
	dns := deliverytest.StartDNS(t)
	ip := newIP()
	got := make(chan []string, 1)
	rawServer(t, ip, func(c *rawConn) {
		c.send("220 relay")
		var seen []string
		defer func() { got <- seen }()
		for {
			l := c.read()
			seen = append(seen, l)
			switch {
			case l == "":
				return
			case strings.HasPrefix(l, "EHLO"):
				c.send("250-relay", "250 AUTH LOGIN")
			case l == "AUTH LOGIN":
				c.send("334 VXNlcm5hbWU6")
				seen = append(seen, c.read())
				c.send("334 UGFzc3dvcmQ6")
				seen = append(seen, c.read())
				c.send("235 2.7.0 ok")
			case l == "DATA":
				c.send("354 go")
				c.readData()
				c.send("250 2.0.0 queued")
			case l == "QUIT":
				c.send("221 bye")
				return
			default:
				c.send("250 ok")
			}
		}
	})
	d, _ := newDeliverer(t, dns, func(c *Config) {
		c.Smarthost = &Smarthost{Addr: ip + ":25", TLS: "none", Username: "relay", Password: "s3cret"}
	})
	wantDelivered(t, deliver(t, d, msg("elsewhere.test", "bob@elsewhere.test")))
	d.Close()
	seen := <-got
	joined := strings.Join(seen, "|")
	if !strings.Contains(joined, "AUTH LOGIN|"+b64("relay")+"|"+b64("s3cret")+"|MAIL FROM:<alice@sender.test>") {
		t.Fatalf("session %q", joined)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		sh *Smarthost
		ok bool
	}{
		{&Smarthost{Addr: "127.0.0.1:25", TLS: "none"}, true},
		{&Smarthost{Addr: "localhost:25", TLS: "none"}, true},
		{&Smarthost{Addr: "[::1]:25", TLS: "none"}, true},
		{&Smarthost{Addr: "192.0.2.1:25", TLS: "none"}, false},
		{&Smarthost{Addr: "relay.example:25", TLS: "none"}, false},
		{&Smarthost{Addr: "relay.example:587", TLS: "starttls"}, true},
		{&Smarthost{Addr: "relay.example:465", TLS: "implicit", Username: "u", Password: "p"}, true},
		{&Smarthost{Addr: "relay.example:465", TLS: "tls"}, false},
		{&Smarthost{Addr: "relay.example", TLS: "starttls"}, false},
		{&Smarthost{Addr: "relay.example:465", TLS: "implicit", Username: "u"}, false},
	} {
		err := Config{Smarthost: c.sh}.Validate()
		if (err == nil) != c.ok {
			t.Errorf("%+v: %v", c.sh, err)
		}
	}
	if err := (Config{Resolver: "dns.example:53"}).Validate(); err == nil {
		t.Error("a resolver by name was accepted")
	}
	// An invalid setting defers every recipient with the reason, and
	// connects nowhere.
	dns := deliverytest.StartDNS(t)
	d, _ := newDeliverer(t, dns, func(c *Config) { c.Smarthost = &Smarthost{Addr: "192.0.2.1:25", TLS: "none"} })
	res := deliver(t, d, msg("elsewhere.test", "bob@elsewhere.test"))
	wantFailed(t, res, false, "4.3.5")
	if !strings.Contains(res[0].Text, "loopback") {
		t.Errorf("%q", res[0].Text)
	}
}
