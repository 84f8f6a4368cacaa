package e2e

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testCert is a certificate for 127.0.0.1 and localhost, in PEM, with its
// serial number.
type testCert struct {
	cert, key []byte
	serial    *big.Int
}

func newTestCert(t *testing.T) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(key)
	return testCert{
		cert:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		key:    pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}),
		serial: serial,
	}
}

// install writes the pair as renewal tools do: new files renamed over the old.
func (c testCert) install(t *testing.T, certFile, keyFile string) {
	t.Helper()
	for path, data := range map[string][]byte{keyFile: c.key, certFile: c.cert} {
		tmp := path + ".new"
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
}

// serialAt is the serial number of the certificate a new handshake on addr presents.
func serialAt(t *testing.T, addr string, alpn ...string) (*big.Int, string) {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 30 * time.Second}, "tcp", addr,
		&tls.Config{InsecureSkipVerify: true, NextProtos: alpn}) // the test compares serials itself
	if err != nil {
		t.Fatalf("TLS handshake with %s: %v", addr, err)
	}
	defer c.Close()
	st := c.ConnectionState()
	return st.PeerCertificates[0].SerialNumber, st.NegotiatedProtocol
}

// TestHTTPS: with --https-addr the web listener's routes are served over
// HTTPS with HTTP/2 and HSTS (curl), the plain web listener redirects there
// except for what clients fetch over plain HTTP, and certificate files
// replaced on disk are served after SIGHUP to new handshakes while a
// connection made before goes on.
func TestHTTPS(t *testing.T) {
	t.Parallel()
	in := NewSQLite(t)
	in.MustRun(t, "domain", "add", "example.com")
	alice := addMember(t, in, "alice@example.com")
	app := createAppPass(t, in, alice.Email, "Thunderbird")

	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first, second := newTestCert(t), newTestCert(t)
	first.install(t, certFile, keyFile)
	caFile := filepath.Join(dir, "ca.pem")
	os.WriteFile(caFile, first.cert, 0o600)

	srv := in.StartServer(t, "--tls-cert", certFile, "--tls-key", keyFile, "--https-addr", "127.0.0.1:0")
	https := "https://" + srv.Addr("https")
	_, httpsPort := splitAddr(srv.Addr("https"))

	t.Run("HTTP/2 and HSTS", func(t *testing.T) {
		// -k left out: curl checks the configured certificate for 127.0.0.1.
		out := runTool(t, nil, "", "curl", "--http2", "-sS", "--cacert", caFile, "-o", "/dev/null", "-w", "%{http_version}", https+"/healthz")
		if out != "2" {
			t.Errorf("curl --http2: HTTP version %q, want 2", out)
		}
		out = runTool(t, nil, "", "curl", "--http2", "-sk", "-o", "/dev/null", "-w", "%{http_version}", https+"/signin")
		if out != "2" {
			t.Errorf("curl --http2 -k /signin: HTTP version %q, want 2", out)
		}
		// HSTS on every route, not only the web UI's pages.
		for _, path := range []string{"/signin", "/healthz", "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=alice@example.com"} {
			headers := strings.ToLower(runTool(t, nil, "", "curl", "--http2", "-sk", "-D", "-", "-o", "/dev/null", https+path))
			if !strings.Contains(headers, "\nstrict-transport-security: max-age=31536000\r\n") {
				t.Errorf("HTTPS response to %s without HSTS max-age=31536000 (and nothing else):\n%s", path, headers)
			}
		}
		headers := strings.ToLower(runTool(t, nil, "", "curl", "--http2", "-sk", "-D", "-", "-o", "/dev/null", https+"/signin"))
		if !strings.Contains(headers, "set-cookie: __host-postern_pre=") || !strings.Contains(headers, "; secure") {
			t.Errorf("the sign-in form's cookie over HTTPS is not a Secure __Host- cookie:\n%s", headers)
		}
		// DAV, on the same routes.
		out = runTool(t, nil, "", "curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", "-u", alice.Email+":"+app.Password,
			"-X", "PROPFIND", "-H", "Depth: 0", https+"/dav/")
		if out != "207" {
			t.Errorf("PROPFIND /dav/ over HTTPS: %s, want 207", out)
		}
		// No HSTS on plain HTTP, where it means nothing (RFC 6797 §8.1).
		plain := strings.ToLower(runTool(t, nil, "", "curl", "-sS", "-D", "-", "-o", "/dev/null", srv.URL("/healthz")))
		if strings.Contains(plain, "strict-transport-security") {
			t.Errorf("plain HTTP response with HSTS:\n%s", plain)
		}
	})

	t.Run("plain HTTP redirects", func(t *testing.T) {
		want := "https://127.0.0.1:" + strconv.Itoa(httpsPort)
		for _, tc := range []struct {
			method, path, want string
		}{
			{"GET", "/security?tab=1", "301 " + want + "/security?tab=1"},
			{"HEAD", "/", "301 " + want + "/"},
			{"POST", "/api/v1/session", "308 " + want + "/api/v1/session"},
			{"PROPFIND", "/dav/", "308 " + want + "/dav/"},
			{"GET", "/.well-known/mta-sts.txt", "301 " + want + "/.well-known/mta-sts.txt"},
			// Fetched over plain HTTP by clients: served there.
			{"GET", "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=alice@example.com", "200 "},
			{"GET", "/mail/config-v1.1.xml?emailaddress=alice@example.com", "200 "},
			{"GET", "/healthz", "200 "},
			// ACME HTTP-01 stays on plain HTTP: nothing is mounted there yet.
			{"GET", "/.well-known/acme-challenge/token", "404 "},
		} {
			args := []string{"-sS", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "-X", tc.method, srv.URL(tc.path)}
			if tc.method == "HEAD" {
				args = []string{"-sS", "-I", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", srv.URL(tc.path)}
			}
			if got := runTool(t, nil, "", "curl", args...); got != tc.want {
				t.Errorf("%s %s over plain HTTP: %q, want %q", tc.method, tc.path, got, tc.want)
			}
		}
		// Autoconfig, over plain HTTP, sends CalDAV/CardDAV clients to HTTPS.
		xml := runTool(t, nil, "", "curl", "-sS", srv.URL("/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=alice@example.com"))
		if !strings.Contains(xml, "<serverURL>"+want+"/dav/</serverURL>") {
			t.Errorf("autoconfig does not name the HTTPS DAV URL %s/dav/:\n%s", want, xml)
		}
		// curl following the redirect lands on the page over HTTPS.
		out := runTool(t, nil, "", "curl", "-sSLk", "-o", "/dev/null", "-w", "%{http_code} %{url_effective}", srv.URL("/signin"))
		if out != "200 "+want+"/signin" {
			t.Errorf("curl -L %s: %q", srv.URL("/signin"), out)
		}
	})

	t.Run("SIGHUP reloads the certificate", func(t *testing.T) {
		if got, _ := serialAt(t, srv.Addr("imaps")); got.Cmp(first.serial) != 0 {
			t.Fatalf("IMAPS serial %x, want the configured %x", got, first.serial)
		}
		// An IMAP session opened before the swap.
		c, err := tls.Dial("tcp", srv.Addr("imaps"), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		imap := &lineConn{t: t, Conn: c, r: bufio.NewReader(c)}
		imap.line()
		if r := imap.cmd("a1 LOGIN "+alice.Email+" "+app.Password, "a1 "); !strings.HasPrefix(lastReply(r), "a1 OK") {
			t.Fatalf("IMAPS LOGIN: %q", r)
		}

		second.install(t, certFile, keyFile)
		if err := srv.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		// The reload is done when a new handshake says so.
		deadline := time.Now().Add(30 * time.Second)
		for {
			got, _ := serialAt(t, srv.Addr("imaps"))
			if got.Cmp(second.serial) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after SIGHUP IMAPS still presents %x, want %x\nstderr:\n%s", got, second.serial, srv.Stderr())
			}
			time.Sleep(50 * time.Millisecond)
		}
		if got, proto := serialAt(t, srv.Addr("https"), "h2", "http/1.1"); got.Cmp(second.serial) != 0 || proto != "h2" {
			t.Errorf("HTTPS after SIGHUP: serial %x protocol %q, want %x over h2", got, proto, second.serial)
		}
		if r := imap.cmd("a2 SELECT INBOX", "a2 "); !strings.HasPrefix(lastReply(r), "a2 OK") {
			t.Errorf("the IMAP session opened before the reload: %q", r)
		}
		if got := c.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(first.serial) != 0 {
			t.Errorf("the open session's certificate changed to %x", got)
		}

		// A broken file keeps the certificate in use, and says so in the log.
		if err := os.WriteFile(certFile, []byte("-----BEGIN CERTIFICATE-----\nbroken\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		srv.cmd.Process.Signal(syscall.SIGHUP)
		deadline = time.Now().Add(30 * time.Second)
		for !strings.Contains(srv.Stderr(), "TLS certificate not reloaded") {
			if time.Now().After(deadline) {
				t.Fatalf("no error logged for a broken certificate file\nstderr:\n%s", srv.Stderr())
			}
			time.Sleep(50 * time.Millisecond)
		}
		if got, _ := serialAt(t, srv.Addr("imaps")); got.Cmp(second.serial) != 0 {
			t.Errorf("after a broken reload IMAPS presents %x, want the previous %x", got, second.serial)
		}
		if strings.Contains(srv.SettledStderr(), "PRIVATE KEY") {
			t.Errorf("the log shows key material:\n%s", srv.Stderr())
		}
		if r := imap.cmd("a3 LOGOUT", "a3 "); !strings.HasPrefix(lastReply(r), "a3 OK") {
			t.Errorf("LOGOUT: %q", r)
		}
	})
}
