package e2e

import (
	"bufio"
	"crypto/tls"
	"strings"
	"testing"
)

// TestMailTLS: the implicit-TLS ports (RFC 8314) and STARTTLS work with
// Python's ssl against the self-signed certificate, TLS 1.1 is refused
// (RFC 8996), and with --plaintext-auth never nothing authenticates before
// TLS, not even on loopback (RFC 9051 §6.2.3 LOGINDISABLED, RFC 4954 §4 538,
// RFC 2595 §4 for POP3).
func TestMailTLS(t *testing.T) {
	t.Parallel()
	in := NewSQLite(t)
	in.MustRun(t, "domain", "add", "example.com")
	alice := addMember(t, in, "alice@example.com")
	app := createAppPass(t, in, alice.Email, "Thunderbird")

	srv := in.StartServer(t)
	t.Run("python ssl", func(t *testing.T) {
		var attempts []pyAttempt
		for _, a := range []struct{ client, listener, mode string }{
			{"imap-login", "imaps", "implicit"}, {"imap-plain", "imaps", "implicit"}, {"imap-login", "imap", "starttls"},
			{"pop3-user", "pop3s", "implicit"}, {"pop3-user", "pop3", "starttls"},
			{"smtp", "submissions", "implicit"}, {"smtp-login", "submissions", "implicit"}, {"smtp", "submission", "starttls"},
		} {
			attempts = append(attempts,
				newAttempt(a.client, srv.Addr(a.listener), alice.Email, app.Password, a.mode),
				newAttempt(a.client, srv.Addr(a.listener), alice.Email, alice.Main, a.mode))
		}
		for i, r := range pyLogins(t, attempts) {
			a := attempts[i]
			if want := a.Password == app.Password; r.OK != want {
				t.Errorf("%s over %s (port %d), %s password: ok=%v, want %v: %s",
					a.Client, a.TLS, a.Port, map[bool]string{true: "app", false: "main"}[want], r.OK, want, r.Error)
			}
		}
	})
	t.Run("TLS 1.1 refused", func(t *testing.T) {
		for _, name := range []string{"imaps", "pop3s", "submissions"} {
			host, port := splitAddr(srv.Addr(name))
			var r struct {
				OK      bool   `json:"ok"`
				Error   string `json:"error"`
				Version string `json:"version"`
			}
			runPython(t, "tls11", map[string]any{"host": host, "port": port}, &r)
			// The alert comes from the server: the client offered TLS 1.1.
			if r.OK || !strings.Contains(r.Error, "ALERT_PROTOCOL_VERSION") {
				t.Errorf("%s: TLS 1.1 handshake: ok=%v version=%q error=%q, want a protocol_version alert", name, r.OK, r.Version, r.Error)
			}
		}
		// And after STARTTLS, with Go's client offering only TLS 1.0-1.1.
		for _, tc := range startTLSCases {
			c := dial(t, srv.Addr(tc.listener))
			tc.hello(c)
			c.send(strings.SplitAfter(tc.inject, "\r\n")[0])
			if r := c.line(); !strings.HasPrefix(r, tc.ok) {
				t.Fatalf("%s STARTTLS: %q", tc.listener, r)
			}
			old := tls.Client(c.Conn, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
			if err := old.Handshake(); err == nil || !strings.Contains(err.Error(), "protocol version") {
				t.Errorf("%s STARTTLS with TLS 1.1: %v, want a protocol version alert", tc.listener, err)
			}
		}
	})
	cert := peerCert(t, srv.Addr("imaps"))
	srv.Stop(t)

	srv = in.StartServer(t, "--plaintext-auth", "never")
	// The self-signed certificate is kept in the data folder: clients that
	// accepted it once are not asked again after a restart.
	if again := peerCert(t, srv.Addr("imaps")); again != cert {
		t.Error("a restart made a new self-signed certificate")
	}
	t.Run("plaintext never", func(t *testing.T) {
		imap := dial(t, srv.Addr("imap"))
		greeting := imap.line()
		caps := imap.cmd("a0 CAPABILITY", "a0 ")
		if !strings.Contains(caps, " LOGINDISABLED") || strings.Contains(caps, "AUTH=PLAIN") {
			t.Errorf("IMAP capabilities before TLS: %q, want LOGINDISABLED and no AUTH=PLAIN", caps)
		}
		if strings.Contains(greeting, "[CAPABILITY") && !strings.Contains(greeting, "LOGINDISABLED") {
			t.Errorf("IMAP greeting: %q", greeting)
		}
		if r := imap.cmd("a1 LOGIN "+alice.Email+" "+app.Password, "a1 "); !strings.HasPrefix(lastReply(r), "a1 NO") {
			t.Errorf("IMAP LOGIN before TLS: %q, want NO", r)
		}
		if r := imap.cmd("a2 AUTHENTICATE PLAIN "+saslPlain("", alice.Email, app.Password), "a2 "); strings.HasPrefix(lastReply(r), "a2 OK") {
			t.Errorf("IMAP AUTHENTICATE before TLS: %q", r)
		}

		smtp := dial(t, srv.Addr("submission"))
		smtp.until("220 ")
		ehlo := smtp.cmd("EHLO client.example", "250 ")
		if r := smtp.cmd("AUTH PLAIN "+saslPlain("", alice.Email, app.Password), ""); !strings.HasPrefix(r, "538 5.7.11") {
			t.Errorf("SMTP AUTH before TLS: %q, want 538 5.7.11 (EHLO said %q)", r, ehlo)
		}
		if r := smtp.cmd("AUTH LOGIN", ""); !strings.HasPrefix(r, "538 5.7.11") {
			t.Errorf("SMTP AUTH LOGIN before TLS: %q, want 538 5.7.11", r)
		}

		pop := dial(t, srv.Addr("pop3"))
		pop.line()
		if r := pop.cmd("USER "+alice.Email, ""); !strings.HasPrefix(r, "-ERR") {
			t.Errorf("POP3 USER before TLS: %q, want -ERR", r)
		}
		if r := pop.cmd("AUTH PLAIN "+saslPlain("", alice.Email, app.Password), ""); !strings.HasPrefix(r, "-ERR") {
			t.Errorf("POP3 AUTH PLAIN before TLS: %q, want -ERR", r)
		}
		capa := pop.cmd("CAPA", ".\r\n")
		if strings.Contains(capa, "\r\nUSER\r\n") {
			t.Errorf("POP3 CAPA before TLS offers USER: %q", capa)
		}

		// After STARTTLS / STLS, the same clients log in.
		var attempts []pyAttempt
		for _, a := range []struct{ client, listener string }{
			{"imap-login", "imap"}, {"imap-plain", "imap"}, {"pop3-user", "pop3"}, {"smtp", "submission"}, {"smtp-login", "submission"},
		} {
			attempts = append(attempts, newAttempt(a.client, srv.Addr(a.listener), alice.Email, app.Password, "starttls"))
		}
		// And a client that does not upgrade: poplib over plaintext fails.
		attempts = append(attempts, newAttempt("pop3-user", srv.Addr("pop3"), alice.Email, app.Password, "none"))
		res := pyLogins(t, attempts)
		for i, r := range res[:len(res)-1] {
			if !r.OK {
				t.Errorf("%s after STARTTLS: %s", attempts[i].Client, r.Error)
			}
		}
		if last := res[len(res)-1]; last.OK {
			t.Error("poplib logged in without TLS under --plaintext-auth never")
		}

		// The implicit-TLS ports are unaffected.
		c, err := tls.Dial("tcp", srv.Addr("imaps"), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ic := &lineConn{t: t, Conn: c, r: bufio.NewReader(c)}
		ic.line()
		if r := ic.cmd("a1 LOGIN "+alice.Email+" "+app.Password, "a1 "); !strings.HasPrefix(lastReply(r), "a1 OK") {
			t.Errorf("IMAPS LOGIN under --plaintext-auth never: %q", r)
		}
	})
}

// lastReply is the last line of a reply.
func lastReply(s string) string {
	s = strings.TrimSuffix(s, "\r\n")
	return s[strings.LastIndex(s, "\n")+1:]
}

// peerCert returns the server's leaf certificate (DER, as a string).
func peerCert(t *testing.T, addr string) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return string(c.ConnectionState().PeerCertificates[0].Raw)
}
