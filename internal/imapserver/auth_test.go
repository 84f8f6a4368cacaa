package imapserver

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/internal/auth"
	"github.com/postern/postern/internal/tlsconf"
)

const authFailed = "NO [AUTHENTICATIONFAILED] Authentication failed."

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// Every failed login gets the same bytes, whatever went wrong
// (docs/security.md).
func TestAuthFailuresAreIdentical(t *testing.T) {
	e := newEnv(t, envOptions{noTailer: true})
	cases := []struct{ name, cmd string }{
		{"wrong user", "LOGIN bob@example.com " + testSecret},
		{"wrong password", "LOGIN " + testUser + " wrongpassword"},
		{"password plus one", "LOGIN " + testUser + " " + testSecret + "x"},
		{"plain wrong password", "AUTHENTICATE PLAIN " + b64("\x00"+testUser+"\x00nope")},
		{"plain foreign authzid", "AUTHENTICATE PLAIN " + b64("bob@example.com\x00"+testUser+"\x00"+testSecret)},
		{"plain one NUL", "AUTHENTICATE PLAIN " + b64(testUser+"\x00"+testSecret)},
		{"plain three NULs", "AUTHENTICATE PLAIN " + b64("\x00"+testUser+"\x00"+testSecret+"\x00")},
		{"plain long field", "AUTHENTICATE PLAIN " + b64("\x00"+testUser+"\x00"+strings.Repeat("x", 256))},
		{"plain empty", "AUTHENTICATE PLAIN ="},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, e.addr)
			out := c.cmd("a1", tc.cmd)
			if got := out[len(out)-1]; got != "a1 "+authFailed {
				t.Fatalf("reply %q, want %q", got, "a1 "+authFailed)
			}
			// The session stays usable: a correct login follows.
			c.login()
		})
	}
}

func TestLoginAndPlain(t *testing.T) {
	e := newEnv(t, envOptions{noTailer: true})

	c := dial(t, e.addr)
	caps := c.ok("a0", "CAPABILITY")
	if !contains(caps, "AUTH=PLAIN") || !contains(caps, "SASL-IR") || !contains(caps, "STARTTLS") || contains(caps, "LOGINDISABLED") {
		t.Fatalf("loopback capabilities: %q", caps)
	}
	c.ok("a1", "LOGIN "+strings.ToUpper(testUser)+" "+testSecret)
	a := e.auth.lastAttempt()
	if a.Protocol != auth.IMAP || a.Mechanism != "LOGIN" || !a.RemoteIP.IsLoopback() || a.TLS {
		t.Fatalf("attempt %+v", a)
	}
	c.ok("a2", "LOGOUT")

	// SASL-IR (RFC 4959), authzid equal to authcid.
	c = dial(t, e.addr)
	c.ok("b1", "AUTHENTICATE PLAIN "+b64(testUser+"\x00"+testUser+"\x00"+testSecret))
	if a := e.auth.lastAttempt(); a.Mechanism != "PLAIN" || a.User != testUser {
		t.Fatalf("attempt %+v", a)
	}

	// Without an initial response: an empty challenge first.
	c = dial(t, e.addr)
	c.send("c1 AUTHENTICATE PLAIN\r\n")
	if l := c.line(); l != "+ " && l != "+" {
		t.Fatalf("challenge %q", l)
	}
	c.send(b64("\x00"+testUser+"\x00"+testSecret) + "\r\n")
	if out := c.until("c1"); !strings.HasPrefix(out[len(out)-1], "c1 OK") {
		t.Fatalf("authenticate: %q", out)
	}

	// Implicit TLS: the attempt says so.
	c = dialTLS(t, e)
	c.login()
	if a := e.auth.lastAttempt(); !a.TLS {
		t.Fatalf("attempt over TLS %+v", a)
	}
	if n := len(e.auth.sessions()); n != 4 {
		t.Fatalf("%d tracked sessions, want 4", n)
	}
}

func TestMalformedInitialResponse(t *testing.T) {
	e := newEnv(t, envOptions{noTailer: true})
	c := dial(t, e.addr)
	out := c.cmd("a1", "AUTHENTICATE PLAIN !!!notbase64")
	if got := out[len(out)-1]; !strings.HasPrefix(got, "a1 BAD") {
		t.Fatalf("reply %q", got)
	}
	c.login()
}

func TestUnavailable(t *testing.T) {
	e := newEnv(t, envOptions{noTailer: true})
	e.auth.unavailable = true
	c := dial(t, e.addr)
	out := c.cmd("a1", "LOGIN "+testUser+" "+testSecret)
	if got := out[len(out)-1]; !strings.HasPrefix(got, "a1 NO [UNAVAILABLE]") {
		t.Fatalf("reply %q", got)
	}
}

// Before TLS, a client that may not send passwords sees LOGINDISABLED and
// is refused; after STARTTLS it logs in (RFC 9051 §6.2.3, docs/security.md).
func TestLoginDisabledUntilTLS(t *testing.T) {
	e := newEnv(t, envOptions{plaintext: tlsconf.PlaintextNever, noTailer: true})
	c := dial(t, e.addr)
	caps := c.ok("a0", "CAPABILITY")
	if !contains(caps, "LOGINDISABLED") || !contains(caps, "STARTTLS") || contains(caps, "AUTH=PLAIN") {
		t.Fatalf("capabilities: %q", caps)
	}
	for _, cmd := range []string{"LOGIN " + testUser + " " + testSecret, "AUTHENTICATE PLAIN " + b64("\x00"+testUser+"\x00"+testSecret)} {
		out := c.cmd("a1", cmd)
		if got := out[len(out)-1]; !strings.HasPrefix(got, "a1 NO") {
			t.Fatalf("%s before TLS: %q", cmd, got)
		}
	}
	if len(e.auth.sessions()) != 0 || len(e.auth.attempts) != 0 {
		t.Fatal("a password reached the authenticator before TLS")
	}
	tc := c.startTLS(e)
	caps = tc.ok("b0", "CAPABILITY")
	if contains(caps, "LOGINDISABLED") || contains(caps, "STARTTLS") || !contains(caps, "AUTH=PLAIN") {
		t.Fatalf("capabilities after STARTTLS: %q", caps)
	}
	out := tc.cmd("b1", "STARTTLS")
	if got := out[len(out)-1]; !strings.HasPrefix(got, "b1 NO") && !strings.HasPrefix(got, "b1 BAD") {
		t.Fatalf("second STARTTLS: %q", got)
	}
	tc.login()
	if a := e.auth.lastAttempt(); !a.TLS {
		t.Fatalf("attempt after STARTTLS: %+v", a)
	}
}

// The close func given to Track ends the session, also in IDLE, and the
// done func is called.
func TestRevocationClosesIdle(t *testing.T) {
	e := newEnv(t, envOptions{noTailer: true})
	c := dial(t, e.addr)
	c.login()
	c.ok("a1", "SELECT INBOX")
	c.send("a2 IDLE\r\n")
	if l := c.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("idle: %q", l)
	}
	ts := e.auth.sessions()
	if len(ts) != 1 {
		t.Fatalf("%d tracked sessions", len(ts))
	}
	ts[0].close()
	c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if l, err := c.r.ReadString('\n'); l != "* BYE Session ended: the credential was revoked\r\n" {
		t.Fatalf("after revocation: %q %v", l, err)
	}
	if !c.closed(10 * time.Second) {
		t.Fatal("connection still open after revocation")
	}
	deadline := time.Now().Add(10 * time.Second)
	for !ts[0].isEnded() {
		if time.Now().After(deadline) {
			t.Fatal("done was not called")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
