package delivery

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/internal/delivery/deliverytest"
)

// stsSetup publishes an MTA-STS policy for example.test, served with a
// certificate of ca, and an MX host on its own address. It returns the MX
// host's address and the policy server.
func stsSetup(t *testing.T, dns *deliverytest.DNS, ca *deliverytest.CA, policy string) (string, *deliverytest.MTASTS) {
	t.Helper()
	mxIP, webIP := newIP(), newIP()
	dns.Add(t,
		"example.test. MX 10 mx.example.test.",
		"mx.example.test. A "+mxIP,
		`_mta-sts.example.test. TXT "v=STSv1; id=20260101T000000"`,
		"mta-sts.example.test. A "+webIP,
	)
	p := deliverytest.StartMTASTS(t, webIP, ca.Issue(t, "mta-sts.example.test"), policy)
	return mxIP, p
}

const enforce = "version: STSv1\r\nmode: enforce\r\nmx: mx.example.test\r\nmax_age: 86400\r\n"

func withRoots(ca *deliverytest.CA) func(*Config) {
	return func(c *Config) { c.RootCAs = ca.Pool }
}

// Enforce with a certificate the roots do not trust: deferred, never
// downgraded, nothing sent.
func TestMTASTSEnforceBadCertificate(t *testing.T) {
	dns := deliverytest.StartDNS(t)
	ca := deliverytest.NewCA(t, "Test CA")
	mxIP, _ := stsSetup(t, dns, ca, enforce)
	srv := deliverytest.StartSMTP(t, deliverytest.SMTPOptions{IP: mxIP,
		TLS: &tls.Config{Certificates: []tls.Certificate{deliverytest.SelfSigned(t, "mx.example.test")}}})
	d, _ := newDeliverer(t, dns, withRoots(ca))
	res := deliver(t, d, msg("example.test", "bob@example.test"))
	wantFailed(t, res, false, "4.7.5")
	if !strings.Contains(res[0].Text, "MTA-STS") || !strings.Contains(res[0].Text, "certificate") {
		t.Errorf("text %q", res[0].Text)
	}
	if len(srv.Messages()) != 0 || srv.Accepts() != 1 {
		t.Fatalf("%d messages, %d connections: want none, one", len(srv.Messages()), srv.Accepts())
	}
	// A certificate of the trusted CA but for another name fails too.
	srv.Close()
	srv = deliverytest.StartSMTP(t, deliverytest.SMTPOptions{IP: mxIP,
		TLS: &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, "other.example.test")}}})
	wantFailed(t, deliver(t, d, msg("example.test", "bob@example.test")), false, "4.7.5")
	if len(srv.Messages()) != 0 {
		t.Fatal("delivered to a host whose certificate names another")
	}
}

// Enforce with a valid certificate: delivered over TLS; the policy is
// fetched once and then served from the cache while the id stays.
func TestMTASTSEnforceGoodCertificate(t *testing.T) {
	dns := deliverytest.StartDNS(t)
	ca := deliverytest.NewCA(t, "Test CA")
	mxIP, policy := stsSetup(t, dns, ca, enforce)
	srv := deliverytest.StartSMTP(t, deliverytest.SMTPOptions{IP: mxIP,
		TLS: &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, "mx.example.test")}}})
	d, _ := newDeliverer(t, dns, withRoots(ca))
	wantDelivered(t, deliver(t, d, msg("example.test", "bob@example.test")))
	wantDelivered(t, deliver(t, d, msg("example.test", "bob@example.test")))
	m := srv.Messages()
	if len(m) != 2 || !m[0].TLS || !m[1].TLS {
		t.Fatalf("%+v", m)
	}
	if n := policy.Fetches(); n != 1 {
		t.Errorf("policy fetched %d times", n)
	}
}

// Enforce with no STARTTLS offered: deferred.
func TestMTASTSEnforceNoSTARTTLS(t *testing.T) {
	dns := deliverytest.StartDNS(t)
	ca := deliverytest.NewCA(t, "Test CA")
	mxIP, _ := stsSetup(t, dns, ca, enforce)
	srv := deliverytest.StartSMTP(t, deliverytest.SMTPOptions{IP: mxIP})
	d, _ := newDeliverer(t, dns, withRoots(ca))
	res := deliver(t, d, msg("example.test", "bob@example.test"))
	wantFailed(t, res, false, "4.7.4")
	if len(srv.Messages()) != 0 || !strings.Contains(res[0].Text, "MTA-STS") {
		t.Fatalf("%d messages, %q", len(srv.Messages()), res[0].Text)
	}
}

// An MX host the enforced policy does not list is never connected to.
func TestMTASTSEnforceMXMismatch(t *testing.T) {
	dns := deliverytest.StartDNS(t)
	ca := deliverytest.NewCA(t, "Test CA")
	mxIP, _ := stsSetup(t, dns, ca, strings.Replace(enforce, "mx: mx.example.test", "mx: mail.example.test\nmx: *.mail.example.test", 1))
	srv := deliverytest.StartSMTP(t, deliverytest.SMTPOptions{IP: mxIP,
		TLS: &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, "mx.example.test")}}})
	d, _ := newDeliverer(t, dns, withRoots(ca))
	res := deliver(t, d, msg("example.test", "bob@example.test"))
	wantFailed(t, res, false, "4.7.5")
	if !strings.Contains(res[0].Text, "MTA-STS") {
		t.Errorf("text %q", res[0].Text)
	}
	if srv.Accepts() != 0 {
		t.Fatal("connected to an MX host outside the policy")
	}
}

// Under enforce, a more preferred MX host outside the policy is skipped.
func TestMTASTSEnforceSkipsUnlistedMX(t *testing.T) {
	dns := deliverytest.StartDNS(t)
	ca := deliverytest.NewCA(t, "Test CA")
	mxIP, _ := stsSetup(t, dns, ca, enforce)
	rogueIP := newIP()
	dns.Add(t, "example.test. MX 5 rogue.example.test.", "rogue.example.test. A "+rogueIP)
	rogue := deliverytest.StartSMTP(t, deliverytest.SMTPOptions{IP: rogueIP,
		TLS: &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, "rogue.example.test")}}})
	srv := deliverytest.StartSMTP(t, deliverytest.SMTPOptions{IP: mxIP,
		TLS: &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, "mx.example.test")}}})
	d, _ := newDeliverer(t, dns, withRoots(ca))
	wantDelivered(t, deliver(t, d, msg("example.test", "bob@example.test")))
	if rogue.Accepts() != 0 || len(srv.Messages()) != 1 {
		t.Fatalf("unlisted host connected %d times; listed host got %d messages", rogue.Accepts(), len(srv.Messages()))
	}
}

// A wildcard pattern covers one label.
func TestMTASTSWildcard(t *testing.T) {
	dns := deliverytest.StartDNS(t)
	ca := deliverytest.NewCA(t, "Test CA")
	mxIP, _ := stsSetup(t, dns, ca, strings.Replace(enforce, "mx: mx.example.test", "mx: *.example.test", 1))
	srv := deliverytest.StartSMTP(t, deliverytest.SMTPOptions{IP: mxIP,
		TLS: &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, "mx.example.test")}}})
	d, _ := newDeliverer(t, dns, withRoots(ca))
	wantDelivered(t, deliver(t, d, msg("example.test", "bob@example.test")))
	if len(srv.Messages()) != 1 {
		t.Fatal("not delivered")
	}
}

// Mode testing: delivered as without a policy, the violation logged.
func TestMTASTSTesting(t *testing.T) {
	dns := deliverytest.StartDNS(t)
	ca := deliverytest.NewCA(t, "Test CA")
	mxIP, _ := stsSetup(t, dns, ca, strings.Replace(enforce, "enforce", "testing", 1))
	srv := deliverytest.StartSMTP(t, deliverytest.SMTPOptions{IP: mxIP,
		TLS: &tls.Config{Certificates: []tls.Certificate{deliverytest.SelfSigned(t, "mx.example.test")}}})
	d, log := newDeliverer(t, dns, withRoots(ca))
	wantDelivered(t, deliver(t, d, msg("example.test", "bob@example.test")))
	if m := srv.Messages(); len(m) != 1 || !m[0].TLS {
		t.Fatalf("%+v", m)
	}
	if !strings.Contains(log.String(), "MTA-STS (testing): the certificate would fail") {
		t.Error("the violation was not logged")
	}
}

// A policy that cannot be fetched (here: served with a certificate the
// roots do not trust) counts as none (RFC 8461 §5.1); a policy in the
// cache stays in force when a later fetch fails.
func TestMTASTSFetchFailure(t *testing.T) {
	dns := deliverytest.StartDNS(t)
	ca := deliverytest.NewCA(t, "Test CA")
	other := deliverytest.NewCA(t, "Other CA")
	mxIP, policy := stsSetup(t, dns, ca, enforce)
	srv := deliverytest.StartSMTP(t, deliverytest.SMTPOptions{IP: mxIP,
		TLS: &tls.Config{Certificates: []tls.Certificate{deliverytest.SelfSigned(t, "mx.example.test")}}})
	d, _ := newDeliverer(t, dns, withRoots(other))
	wantDelivered(t, deliver(t, d, msg("example.test", "bob@example.test")))
	if policy.Fetches() != 0 || len(srv.Messages()) != 1 {
		t.Fatalf("fetches %d, messages %d", policy.Fetches(), len(srv.Messages()))
	}

	d2, _ := newDeliverer(t, dns, withRoots(ca))
	wantFailed(t, deliver(t, d2, msg("example.test", "bob@example.test")), false, "4.7.5")
	// A new id whose policy is malformed: the cached enforce policy stays.
	policy.Set("version: STSv1\nmode: bogus\n")
	dns.Set(t, `_mta-sts.example.test. TXT "v=STSv1; id=2"`)
	wantFailed(t, deliver(t, d2, msg("example.test", "bob@example.test")), false, "4.7.5")
	if policy.Fetches() != 2 {
		t.Errorf("the new id was fetched %d times, want once", policy.Fetches()-1)
	}
	// Two TXT records: RFC 8461 §3.1 says there is none; the cache holds,
	// and nothing is fetched (the policy served now would lift it).
	policy.Set("version: STSv1\nmode: none\nmax_age: 60\n")
	dns.Add(t, `_mta-sts.example.test. TXT "v=STSv1; id=3"`)
	wantFailed(t, deliver(t, d2, msg("example.test", "bob@example.test")), false, "4.7.5")
	if len(srv.Messages()) != 1 || policy.Fetches() != 2 {
		t.Fatalf("delivered against the cached enforce policy, or fetched (%d)", policy.Fetches())
	}
}

// A new id fetches the new policy: mode none lifts enforcement.
func TestMTASTSPolicyUpdate(t *testing.T) {
	dns := deliverytest.StartDNS(t)
	ca := deliverytest.NewCA(t, "Test CA")
	mxIP, policy := stsSetup(t, dns, ca, enforce)
	srv := deliverytest.StartSMTP(t, deliverytest.SMTPOptions{IP: mxIP})
	d, _ := newDeliverer(t, dns, withRoots(ca))
	wantFailed(t, deliver(t, d, msg("example.test", "bob@example.test")), false, "4.7.4")

	policy.Set("version: STSv1\nmode: none\nmax_age: 60\n")
	dns.Set(t, `_mta-sts.example.test. TXT "v=STSv1; id=2"`)
	wantDelivered(t, deliver(t, d, msg("example.test", "bob@example.test")))
	if len(srv.Messages()) != 1 {
		t.Fatal("not delivered")
	}
}

func TestParsePolicy(t *testing.T) {
	p, err := parsePolicy("version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 999999999\r\n")
	if err != nil {
		t.Fatal(err)
	}
	if p.mode != "enforce" || len(p.mx) != 2 || time.Until(p.expires) > maxPolicyAge*time.Second+time.Minute {
		t.Fatalf("%+v", p)
	}
	for host, want := range map[string]bool{
		"mail.example.com":   true,
		"MAIL.example.com.":  true,
		"mx1.example.net":    true,
		"a.b.example.net":    false,
		"example.net":        false,
		"mail.example.com.x": false,
		"xmail.example.com":  false,
	} {
		if got := p.matches(host); got != want {
			t.Errorf("matches(%q) = %v", host, got)
		}
	}
	for _, bad := range []string{
		"mode: enforce\nmx: a\nmax_age: 1\n",                   // no version
		"version: STSv1\nmode: enforce\nmax_age: 1\n",          // no mx
		"version: STSv1\nmode: strict\nmx: a\nmax_age: 1\n",    // bad mode
		"version: STSv1\nmode: enforce\nmx: a\n",               // no max_age
		"version: STSv1\nmode: enforce\nmx: a\nmax_age: -1\n",  // negative
		"version: STSv1\nmode: enforce\nmx: a\nmax_age: 1e3\n", // not digits
	} {
		if _, err := parsePolicy(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}
