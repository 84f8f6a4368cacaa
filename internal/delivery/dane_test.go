package delivery

import (
	"crypto/tls"
	"strings"
	"testing"

	"github.com/postern/postern/internal/delivery/deliverytest"
)

// daneSetup: example.test's MX on its own address, the zone DNSSEC-signed
// (answers carry AD) when secure, and the given TLSA records for the MX host.
func daneSetup(t *testing.T, dns *deliverytest.DNS, secure bool, tlsa ...string) string {
	t.Helper()
	ip := newIP()
	dns.Add(t, "example.test. MX 10 mx.example.test.", "mx.example.test. A "+ip)
	for _, r := range tlsa {
		dns.Add(t, "_25._tcp.mx.example.test. TLSA "+r)
	}
	if secure {
		dns.Secure("example.test")
	}
	return ip
}

func tlsServer(t *testing.T, ip string, cert tls.Certificate) *deliverytest.SMTP {
	return deliverytest.StartSMTP(t, deliverytest.SMTPOptions{IP: ip, TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})
}

// DANE-EE: a self-signed certificate whose key the TLSA record names is
// accepted, whatever its name, with no CA involved.
func TestDANEEEMatch(t *testing.T) {
	for _, sel := range []struct {
		selector, matching uint8
	}{{1, 1}, {0, 1}, {1, 2}, {0, 0}} {
		dns := deliverytest.StartDNS(t)
		cert := deliverytest.SelfSigned(t, "anything.invalid")
		ip := daneSetup(t, dns, true, "3 "+string('0'+sel.selector)+" "+string('0'+sel.matching)+" "+
			deliverytest.TLSA(t, sel.selector, sel.matching, cert.Leaf))
		srv := tlsServer(t, ip, cert)
		d, _ := newDeliverer(t, dns)
		wantDelivered(t, deliver(t, d, msg("example.test", "bob@example.test")))
		if m := srv.Messages(); len(m) != 1 || !m[0].TLS {
			t.Fatalf("3 %d %d: %+v", sel.selector, sel.matching, m)
		}
	}
}

// DANE-EE that matches no certificate: deferred, nothing sent, even though
// the same server would get the message opportunistically.
func TestDANEEEMismatch(t *testing.T) {
	dns := deliverytest.StartDNS(t)
	other := deliverytest.SelfSigned(t, "mx.example.test")
	ip := daneSetup(t, dns, true, "3 1 1 "+deliverytest.TLSA(t, 1, 1, other.Leaf))
	srv := tlsServer(t, ip, deliverytest.SelfSigned(t, "mx.example.test"))
	d, _ := newDeliverer(t, dns)
	res := deliver(t, d, msg("example.test", "bob@example.test"))
	wantFailed(t, res, false, "4.7.5")
	if !strings.Contains(res[0].Text, "DANE") {
		t.Errorf("text %q", res[0].Text)
	}
	if len(srv.Messages()) != 0 {
		t.Fatal("delivered despite the TLSA mismatch")
	}
}

// Without the AD bit the TLSA records are not used: the same mismatch
// delivers opportunistically.
func TestDANEIgnoredWithoutDNSSEC(t *testing.T) {
	dns := deliverytest.StartDNS(t)
	other := deliverytest.SelfSigned(t, "mx.example.test")
	ip := daneSetup(t, dns, false, "3 1 1 "+deliverytest.TLSA(t, 1, 1, other.Leaf))
	srv := tlsServer(t, ip, deliverytest.SelfSigned(t, "mx.example.test"))
	d, _ := newDeliverer(t, dns)
	wantDelivered(t, deliver(t, d, msg("example.test", "bob@example.test")))
	if len(srv.Messages()) != 1 {
		t.Fatal("not delivered")
	}
}

// TLSA records whose answer lacks the AD bit are not used, though the MX
// and address answers had it.
func TestDANEIgnoredForInsecureTLSA(t *testing.T) {
	dns := deliverytest.StartDNS(t)
	other := deliverytest.SelfSigned(t, "mx.example.test")
	ip := daneSetup(t, dns, true, "3 1 1 "+deliverytest.TLSA(t, 1, 1, other.Leaf))
	dns.Insecure("_25._tcp.mx.example.test")
	srv := tlsServer(t, ip, deliverytest.SelfSigned(t, "mx.example.test"))
	d, _ := newDeliverer(t, dns)
	wantDelivered(t, deliver(t, d, msg("example.test", "bob@example.test")))
	if len(srv.Messages()) != 1 {
		t.Fatal("not delivered")
	}
}

// TLSA records in a signed zone are not used when the MX answer was not
// validated (RFC 7672 §2.2.1): an attacker could have chosen the host.
func TestDANEIgnoredForInsecureMX(t *testing.T) {
	dns := deliverytest.StartDNS(t)
	ip := newIP()
	other := deliverytest.SelfSigned(t, "mx.signed.test")
	dns.Add(t, "example.test. MX 10 mx.signed.test.", "mx.signed.test. A "+ip,
		"_25._tcp.mx.signed.test. TLSA 3 1 1 "+deliverytest.TLSA(t, 1, 1, other.Leaf))
	dns.Secure("signed.test")
	srv := tlsServer(t, ip, deliverytest.SelfSigned(t, "mx.signed.test"))
	d, _ := newDeliverer(t, dns)
	wantDelivered(t, deliver(t, d, msg("example.test", "bob@example.test")))
	if len(srv.Messages()) != 1 {
		t.Fatal("not delivered")
	}
}

// DANE-TA: the CA in the chain matches; the server's certificate must then
// be issued by it for the MX host name.
func TestDANETA(t *testing.T) {
	ca := deliverytest.NewCA(t, "Private CA")
	for _, c := range []struct {
		name string
		ok   bool
	}{{"mx.example.test", true}, {"*.example.test", true}, {"other.example.test", false}} {
		dns := deliverytest.StartDNS(t)
		ip := daneSetup(t, dns, true, "2 0 1 "+deliverytest.TLSA(t, 0, 1, ca.Cert))
		srv := tlsServer(t, ip, ca.Issue(t, c.name))
		d, _ := newDeliverer(t, dns)
		res := deliver(t, d, msg("example.test", "bob@example.test"))
		if c.ok {
			wantDelivered(t, res)
		} else {
			wantFailed(t, res, false, "4.7.5")
		}
		if got := len(srv.Messages()) == 1; got != c.ok {
			t.Errorf("certificate for %s: delivered %v", c.name, got)
		}
	}
}

// DANE makes STARTTLS mandatory.
func TestDANERequiresSTARTTLS(t *testing.T) {
	dns := deliverytest.StartDNS(t)
	cert := deliverytest.SelfSigned(t, "mx.example.test")
	ip := daneSetup(t, dns, true, "3 1 1 "+deliverytest.TLSA(t, 1, 1, cert.Leaf))
	srv := deliverytest.StartSMTP(t, deliverytest.SMTPOptions{IP: ip})
	d, _ := newDeliverer(t, dns)
	res := deliver(t, d, msg("example.test", "bob@example.test"))
	wantFailed(t, res, false, "4.7.4")
	if len(srv.Messages()) != 0 || !strings.Contains(res[0].Text, "DANE") {
		t.Fatalf("%d messages, %q", len(srv.Messages()), res[0].Text)
	}
}

// A TLSA lookup that fails in a signed zone makes the host unusable; the
// next MX host is tried.
func TestDANETLSALookupFailure(t *testing.T) {
	dns := deliverytest.StartDNS(t)
	ip1, ip2 := newIP(), newIP()
	dns.Add(t, "example.test. MX 10 mx1.example.test.", "example.test. MX 20 mx2.example.test.",
		"mx1.example.test. A "+ip1, "mx2.example.test. A "+ip2)
	dns.Secure("example.test")
	dns.ServFail("_25._tcp.mx1.example.test")
	srv1 := deliverytest.StartSMTP(t, deliverytest.SMTPOptions{IP: ip1})
	srv2 := deliverytest.StartSMTP(t, deliverytest.SMTPOptions{IP: ip2})
	d, _ := newDeliverer(t, dns)
	wantDelivered(t, deliver(t, d, msg("example.test", "bob@example.test")))
	if srv1.Accepts() != 0 || len(srv2.Messages()) != 1 {
		t.Fatalf("mx1 connections %d, mx2 messages %d", srv1.Accepts(), len(srv2.Messages()))
	}
}

// DANE takes precedence over MTA-STS (RFC 8461 §2): a host with TLSA
// records is used though the enforced policy does not list it, with a
// certificate no CA vouches for, because TLSA matches it. A host without
// TLSA records in the same signed zone still obeys the policy.
func TestDANEBeforeMTASTS(t *testing.T) {
	dns := deliverytest.StartDNS(t)
	ca := deliverytest.NewCA(t, "Test CA")
	cert := deliverytest.SelfSigned(t, "mx.example.test")
	mxIP, _ := stsSetup(t, dns, ca, strings.Replace(enforce, "mx: mx.example.test", "mx: listed.example.test", 1))
	rogueIP := newIP()
	dns.Add(t, "_25._tcp.mx.example.test. TLSA 3 1 1 "+deliverytest.TLSA(t, 1, 1, cert.Leaf),
		"example.test. MX 5 rogue.example.test.", "rogue.example.test. A "+rogueIP)
	dns.Secure("example.test")
	rogue := tlsServer(t, rogueIP, ca.Issue(t, "rogue.example.test"))
	srv := tlsServer(t, mxIP, cert)
	d, _ := newDeliverer(t, dns, withRoots(ca))
	wantDelivered(t, deliver(t, d, msg("example.test", "bob@example.test")))
	if len(srv.Messages()) != 1 || rogue.Accepts() != 0 {
		t.Fatalf("DANE host got %d messages; unlisted host without TLSA connected %d times", len(srv.Messages()), rogue.Accepts())
	}
}

// TLSA records that are all unusable (PKIX-EE): TLS is still required,
// the certificate not checked.
func TestDANEUnusableRecords(t *testing.T) {
	dns := deliverytest.StartDNS(t)
	cert := deliverytest.SelfSigned(t, "mx.example.test")
	ip := daneSetup(t, dns, true, "1 1 1 "+deliverytest.TLSA(t, 1, 1, cert.Leaf))
	srv := tlsServer(t, ip, deliverytest.SelfSigned(t, "other"))
	d, _ := newDeliverer(t, dns)
	wantDelivered(t, deliver(t, d, msg("example.test", "bob@example.test")))
	if m := srv.Messages(); len(m) != 1 || !m[0].TLS {
		t.Fatalf("%+v", m)
	}
	srv.Close()
	plain := deliverytest.StartSMTP(t, deliverytest.SMTPOptions{IP: ip})
	wantFailed(t, deliver(t, d, msg("example.test", "bob@example.test")), false, "4.7.4")
	if len(plain.Messages()) != 0 {
		t.Fatal("delivered without TLS")
	}
}
