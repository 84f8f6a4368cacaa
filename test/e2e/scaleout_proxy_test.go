package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/internal/proxyproto"
	"github.com/postern/postern/internal/store/sqlstore"
)

// The node under test trusts 127.0.0.1 alone as its load balancer; every
// other loopback address (nextSrc) is an ordinary, untrusted client.
const trustedLB = "127.0.0.1"

// proxyDial connects from the trusted balancer's address and sends a PROXY
// header for src (v1 or v2); with implicitTLS it then starts TLS, as a
// TCP-mode balancer passing TLS through does.
func proxyDial(t *testing.T, addr string, version int, src string, implicitTLS bool) *lineConn {
	t.Helper()
	raw := dialFrom(t, addr, trustedLB)
	s := netip.MustParseAddrPort(src)
	dst := netip.AddrPortFrom(netip.IPv4Unspecified(), 993)
	if s.Addr().Is6() {
		dst = netip.AddrPortFrom(netip.IPv6Unspecified(), 993)
	}
	h := proxyproto.Header{Source: s, Destination: dst}
	if version == 1 {
		raw.send(string(h.AppendV1(nil)))
	} else {
		raw.send(string(h.AppendV2(nil)))
	}
	if !implicitTLS {
		return raw
	}
	tc := tls.Client(raw.Conn, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"}) // the node's self-signed certificate
	tc.SetDeadline(time.Now().Add(30 * time.Second))
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS after the PROXY header: %v", err)
	}
	tc.SetDeadline(time.Time{})
	return &lineConn{t: t, Conn: tc, r: bufio.NewReader(tc)}
}

// closedWithout reads until the server closes c and fails when it answered
// anything before (beyond an optional greeting already read).
func closedWithout(t *testing.T, c *lineConn, what string) {
	t.Helper()
	got, err := c.drain(15 * time.Second)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("%s: connection still open", what)
	} else if got != "" {
		t.Errorf("%s: the server answered %q", what, got)
	} else if err != nil && !errors.Is(err, io.EOF) && !isReset(err) {
		t.Errorf("%s: %v", what, err)
	}
}

// loginIPs returns the IPs of the login records, waiting until want are all there.
func loginIPs(t *testing.T, in *Instance, want ...string) map[string]bool {
	t.Helper()
	var ips map[string]bool
	waitFor(t, "login records", 30*time.Second, func() string {
		ips = map[string]bool{}
		withStore(t, in, func(ctx context.Context, db *sqlstore.DB) {
			recs, err := db.LoginRecords(ctx, 0, true, 1000)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				ips[r.IP] = true
			}
		})
		for _, w := range want {
			if !ips[w] {
				return "no login record from " + w
			}
		}
		return ""
	})
	return ips
}

// TestProxyProtocol: behind --trusted-proxies, the PROXY header (v1 and v2,
// IPv4 and IPv6, before implicit TLS) gives the client address that login
// records, "last used" and the plaintext policy see, and X-Forwarded-For
// does the same on the web listener (DAV); a header from any other address
// is refused, and so is a balancer's connection without one.
func TestProxyProtocol(t *testing.T) {
	t.Parallel()
	in := NewSQLite(t)
	in.MustRun(t, "domain", "add", "example.com")
	alice := addMember(t, in, "alice@example.com")
	ap := createAppPass(t, in, alice.Email, "Thunderbird")
	srv := in.StartServer(t, "--trusted-proxies", trustedLB+"/32", "--auth-max-delay", "0")

	c := proxyDial(t, srv.Addr("imaps"), 2, "203.0.113.77:50123", true)
	c.line()
	if r := c.cmd("a1 LOGIN "+imapQuote(alice.Email)+" "+imapQuote(ap.Password), "a1 "); !strings.Contains(r, "a1 OK") {
		t.Fatalf("IMAPS through the balancer: %q", r)
	}
	c.Close()
	c = proxyDial(t, srv.Addr("pop3s"), 1, "198.51.100.23:40000", true)
	c.line()
	c.cmd("USER "+alice.Email, "+OK")
	if r := c.cmd("PASS "+ap.Password, ""); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("POP3S through the balancer: %q", r)
	}
	c.Close()
	c = proxyDial(t, srv.Addr("submissions"), 2, "[2001:db8::23]:40000", true)
	c.until("220 ")
	c.cmd("EHLO client.example", "250 ")
	if r := c.cmd("AUTH PLAIN "+saslPlain("", alice.Email, ap.Password), ""); !strings.HasPrefix(r, "235 ") {
		t.Fatalf("SMTPS through the balancer: %q", r)
	}
	c.Close()

	// The plaintext policy (loopback only) judges the real client, not the
	// balancer on loopback: no password before STARTTLS.
	c = proxyDial(t, srv.Addr("imap"), 1, "203.0.113.78:1234", false)
	c.line()
	if r := c.cmd("a0 CAPABILITY", "a0 "); !strings.Contains(r, "LOGINDISABLED") {
		t.Errorf("plain IMAP for a remote client through the balancer: %q, want LOGINDISABLED", r)
	}
	c.Close()

	var list []struct {
		LastUsedIP string `json:"last_used_ip"`
	}
	waitFor(t, "last used IP", 30*time.Second, func() string {
		in.RunJSON(t, &list, "apppass", "list", alice.Email)
		if len(list) != 1 || list[0].LastUsedIP != "203.0.113.77" {
			return "last_used_ip " + list[0].LastUsedIP
		}
		return ""
	})

	// A header from an address that is not a balancer: the greeting goes
	// out (the server speaks first), the header closes the connection.
	for _, name := range []string{"imap", "pop3", "submission"} {
		for _, version := range []int{1, 2} {
			u := dial(t, srv.Addr(name))
			u.line()
			h := proxyproto.Header{Source: netip.MustParseAddrPort("192.0.2.66:1"), Destination: netip.MustParseAddrPort("192.0.2.1:2")}
			if version == 1 {
				u.send(string(h.AppendV1(nil)) + "NOOP\r\n")
			} else {
				u.send(string(h.AppendV2(nil)) + "NOOP\r\n")
			}
			closedWithout(t, u, name+": PROXY header from an untrusted address")
		}
		// The balancer without a header: closed before any greeting.
		b := dialFrom(t, srv.Addr(name), trustedLB)
		b.send("a1 CAPABILITY\r\n")
		closedWithout(t, b, name+": the balancer's connection without a header")
	}

	// X-Forwarded-For on the web listener: the rightmost address the
	// balancer did not add itself; ignored from anyone else.
	untrusted := nextSrc()
	for _, req := range []struct{ src, xff string }{
		{trustedLB, "192.0.2.200, 198.51.100.50"},
		{untrusted, "198.51.100.51"},
	} {
		hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(req.src)}}).DialContext}}
		r, _ := http.NewRequest("PROPFIND", srv.URL("/dav/"), strings.NewReader(""))
		r.SetBasicAuth(alice.Email, ap.Password)
		r.Header.Set("Depth", "0")
		r.Header.Set("X-Forwarded-For", req.xff)
		// The balancer ended TLS: without saying so, --plaintext-auth
		// (loopback) would refuse the remote client's password.
		r.Header.Set("X-Forwarded-Proto", "https")
		resp, err := hc.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusMultiStatus {
			t.Errorf("PROPFIND /dav/ from %s: %d", req.src, resp.StatusCode)
		}
	}

	ips := loginIPs(t, in, "203.0.113.77", "198.51.100.23", "2001:db8::23", "198.51.100.50", untrusted)
	for _, bad := range []string{trustedLB, "192.0.2.66", "192.0.2.200", "198.51.100.51"} {
		if ips[bad] {
			t.Errorf("a login was recorded from %s: %v", bad, ips)
		}
	}
}
