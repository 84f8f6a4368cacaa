package e2e

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/internal/acme/acmetest"
)

// Automatic certificates against Pebble, Let's Encrypt's test CA, run in
// this process: it resolves the test's names with its own DNS server to
// 127.0.0.1 and validates on two forwarders that stand for ports 80 and 443
// and lead to the server's web and HTTPS listeners.

// freeAddr returns a loopback address with a port free at the moment: the
// CA must know where to validate before the server starts ordering.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// startACME starts a server of in that gets its certificates from p, with
// the CA's validation sent to its listeners: to the web listener (HTTP-01)
// and, with alpn, to the HTTPS one (TLS-ALPN-01).
func startACME(t *testing.T, in *Instance, p *acmetest.Pebble, alpn bool, extra ...string) *Server {
	t.Helper()
	web, https := freeAddr(t), freeAddr(t)
	p.HTTP01.To(web)
	p.TLSALPN01.To("")
	if alpn {
		p.TLSALPN01.To(https)
	}
	args := append([]string{
		"--web-addr", web, "--https-addr", https,
		"--mail-host", "mail.example.com",
		"--acme-email", "postmaster@example.org",
		"--acme-directory", p.Directory,
		"--acme-ca-root", p.DirectoryRootFile,
	}, extra...)
	return in.StartServer(t, args...)
}

// pebbleLeaf waits until a handshake with addr naming name verifies against
// Pebble's root alone, and returns the certificate. Until the certificate
// is obtained the server presents its self-signed one, which fails.
func pebbleLeaf(t *testing.T, p *acmetest.Pebble, addr, name string) *x509.Certificate {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 30 * time.Second}, "tcp", addr, &tls.Config{ServerName: name, RootCAs: p.Roots})
		if err == nil {
			c.Close()
			return c.ConnectionState().PeerCertificates[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no certificate from Pebble for %s at %s: %v", name, addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestACME(t *testing.T) {
	t.Parallel()
	// Certificates of 30 s: renewed while the test runs, as a CA's
	// short-lived certificates are, with checks every second.
	p := acmetest.Start(t, acmetest.Options{Validity: 30})
	p.Host(t, "mail.example.com", "autoconfig.example.org", "mta-sts.example.org", "autoconfig.example.net", "mta-sts.example.net", "mta-sts.example.edu")
	in := NewSQLite(t)
	in.MustRun(t, "domain", "add", "example.org")
	alice := addMember(t, in, "alice@example.org")
	app := createAppPass(t, in, alice.Email, "Thunderbird")
	srv := startACME(t, in, p, true, "--acme-renew-check", "1s")

	t.Run("every TLS listener", func(t *testing.T) {
		for _, l := range []string{"imaps", "pop3s", "submissions", "https"} {
			leaf := pebbleLeaf(t, p, srv.Addr(l), "mail.example.com")
			if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "mail.example.com" {
				t.Errorf("%s: certificate for %q", l, leaf.DNSNames)
			}
		}
		// Each domain's autoconfig and mta-sts names, on HTTPS.
		for _, name := range []string{"autoconfig.example.org", "mta-sts.example.org"} {
			pebbleLeaf(t, p, srv.Addr("https"), name)
		}
		// Monitoring sees every name with its certificate.
		metrics := runTool(t, nil, "", "curl", "-sS", srv.MetricsURL())
		if !strings.Contains(metrics, "\npostern_acme_certificates_missing 0\n") || !strings.Contains(metrics, "\npostern_acme_certificate_expiry_timestamp_seconds 1.") {
			t.Errorf("ACME metrics:\n%s", grepLines(metrics, "postern_acme"))
		}
		// A real client: curl fetches the MTA-STS policy trusting Pebble's root only.
		host, port := splitAddr(srv.Addr("https"))
		out := runTool(t, nil, "", "curl", "-sS", "--cacert", p.RootPEMFile,
			"--resolve", "mta-sts.example.org:"+strconv.Itoa(port)+":"+host,
			"https://mta-sts.example.org:"+strconv.Itoa(port)+"/.well-known/mta-sts.txt")
		if !strings.Contains(out, "mx: mail.example.com") {
			t.Errorf("curl https://mta-sts.example.org/.well-known/mta-sts.txt:\n%s", out)
		}
		// STARTTLS too: IMAP on the plain port.
		c := dial(t, srv.Addr("imap"))
		c.line()
		if r := c.cmd("s1 STARTTLS", "s1 "); !strings.HasPrefix(lastReply(r), "s1 OK") {
			t.Fatalf("STARTTLS: %q", r)
		}
		tc := tls.Client(c.Conn, &tls.Config{ServerName: "mail.example.com", RootCAs: p.Roots})
		if err := tc.Handshake(); err != nil {
			t.Errorf("IMAP STARTTLS handshake against Pebble's root: %v", err)
		}
		tc.Close()
	})

	t.Run("a domain added while serving", func(t *testing.T) {
		in.MustRun(t, "domain", "add", "example.net")
		// The first handshakes naming it get the self-signed certificate
		// and make the server list the domains again: the certificate
		// comes well before the next 10-minute refresh.
		leaf := pebbleLeaf(t, p, srv.Addr("https"), "autoconfig.example.net")
		if err := leaf.VerifyHostname("autoconfig.example.net"); err != nil {
			t.Error(err)
		}
		// A name of a domain not served here gets no certificate from the CA.
		c, err := tls.Dial("tcp", srv.Addr("https"), &tls.Config{ServerName: "mta-sts.example.edu", RootCAs: p.Roots})
		if err == nil {
			c.Close()
			t.Error("a handshake for mta-sts.example.edu, not a domain here, verified against Pebble's root")
		}
	})

	t.Run("renewal while serving", func(t *testing.T) {
		first := pebbleLeaf(t, p, srv.Addr("imaps"), "mail.example.com").SerialNumber
		// An IMAP session opened before the renewal.
		c, err := tls.Dial("tcp", srv.Addr("imaps"), &tls.Config{ServerName: "mail.example.com", RootCAs: p.Roots})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		imap := &lineConn{t: t, Conn: c, r: bufio.NewReader(c)}
		imap.line()
		if r := imap.cmd("a1 LOGIN "+alice.Email+" "+app.Password, "a1 "); !strings.HasPrefix(lastReply(r), "a1 OK") {
			t.Fatalf("IMAPS LOGIN: %q", r)
		}
		opened := c.ConnectionState().PeerCertificates[0].SerialNumber
		var renewed *big.Int
		deadline := time.Now().Add(90 * time.Second)
		for {
			renewed = pebbleLeaf(t, p, srv.Addr("imaps"), "mail.example.com").SerialNumber
			if renewed.Cmp(first) != 0 && renewed.Cmp(opened) != 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no renewed certificate on IMAPS (still %x)\nstderr:\n%s", renewed, srv.Stderr())
			}
			time.Sleep(200 * time.Millisecond)
		}
		if r := imap.cmd("a2 SELECT INBOX", "a2 "); !strings.HasPrefix(lastReply(r), "a2 OK") {
			t.Errorf("the IMAP session opened before the renewal: %q", r)
		}
		if r := imap.cmd("a3 LOGOUT", "a3 "); !strings.HasPrefix(lastReply(r), "a3 OK") {
			t.Errorf("LOGOUT: %q", r)
		}
	})
}

// TestACMECluster: two nodes on one PostgreSQL database. The first obtains
// the certificate; the second serves the same one without ordering.
func TestACMECluster(t *testing.T) {
	t.Parallel()
	p := acmetest.Start(t, acmetest.Options{})
	p.Host(t, "mail.example.com", "autoconfig.example.org", "mta-sts.example.org")
	in := NewPostgres(t)
	in.MustRun(t, "domain", "add", "example.org")
	// Port 443 leads nowhere: the CA's check is HTTP-01, on the web
	// listener, whose /.well-known/acme-challenge/ stays on plain HTTP
	// while the rest redirects to HTTPS.
	a := startACME(t, in, p, false)
	first := pebbleLeaf(t, p, a.Addr("imaps"), "mail.example.com")
	// The CA's validation keeps going to the first node: the second needs none.
	b := in.StartServer(t, "--https-addr", "127.0.0.1:0", "--mail-host", "mail.example.com",
		"--acme-email", "postmaster@example.org", "--acme-directory", p.Directory, "--acme-ca-root", p.DirectoryRootFile)
	for _, l := range []string{"imaps", "https"} {
		if got := pebbleLeaf(t, p, b.Addr(l), "mail.example.com"); got.SerialNumber.Cmp(first.SerialNumber) != 0 {
			t.Errorf("the second node's %s serves %x, the first %x", l, got.SerialNumber, first.SerialNumber)
		}
	}
	pebbleLeaf(t, p, b.Addr("https"), "mta-sts.example.org")
	if strings.Contains(b.SettledStderr(), "certificate obtained successfully") {
		t.Errorf("the second node ordered a certificate of its own:\n%s", b.Stderr())
	}
	if !a.WaitStderr("certificate obtained successfully") {
		t.Errorf("the first node logged no certificate obtained:\n%s", a.Stderr())
	}
	if out := runTool(t, nil, "", "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", a.URL("/signin")); out != "301" {
		t.Errorf("the web listener does not redirect to HTTPS (GET /signin: %s): HTTP-01 was not checked through the redirect", out)
	}
}

// TestACMEFlags: mistakes in the ACME flags stop serve before it listens.
func TestACMEFlags(t *testing.T) {
	t.Parallel()
	in := NewSQLite(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	newTestCert(t).install(t, certFile, keyFile)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--tls-cert", certFile, "--tls-key", keyFile}, 2, "exclude each other"},
		{[]string{"--acme-renew-check", "often"}, 2, "--acme-renew-check must be a duration"},
		{[]string{"--acme-ca-root", filepath.Join(dir, "missing.pem")}, 1, "--acme-ca-root"},
		{[]string{"--acme-ca-root", keyFile}, 1, "holds no PEM certificate"},
	} {
		args := append([]string{"serve", "--web-addr", "127.0.0.1:0", "--acme-email", "postmaster@example.org"}, tc.args...)
		r := in.Run(t, args...)
		if r.Code != tc.code || !strings.Contains(r.Stderr, tc.want) {
			t.Errorf("serve %s: %s; want exit %d and %q", strings.Join(tc.args, " "), r, tc.code, tc.want)
		}
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
