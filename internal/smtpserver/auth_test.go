package smtpserver

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/postern/postern/internal/auth"
	"github.com/postern/postern/internal/tlsconf"
)

const authFailedReply = "535 5.7.8 Authentication credentials invalid\r\n"

func TestEHLOAdvertisesAuthOnLoopback(t *testing.T) {
	e := newEnv(t)
	c := dial(t, e.addr)
	r := c.wantCmd("EHLO client.test", "250-mx.example.test\r\n")
	for _, want := range []string{"AUTH PLAIN LOGIN\r\n", "250-STARTTLS\r\n", "250-SIZE ", "250-PIPELINING\r\n", "ENHANCEDSTATUSCODES", "250-LIMITS RCPTMAX=100\r\n"} {
		if !strings.Contains(r, want) {
			t.Errorf("EHLO reply %q lacks %q", r, want)
		}
	}
}

// RFC 4954 §4, SPEC §5: where plaintext auth is not allowed, AUTH is not
// advertised before TLS and answered with 538 5.7.11, before the mechanism
// or the (malformed) initial response is even looked at.
func TestAuthNeedsTLSWhenPlaintextRefused(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Plaintext = tlsconf.PlaintextNever })
	c := dial(t, e.addr)
	r := c.wantCmd("EHLO client.test", "250-")
	if strings.Contains(r, "AUTH") {
		t.Fatalf("AUTH advertised before TLS: %q", r)
	}
	const want = "538 5.7.11 Encryption required for requested authentication mechanism\r\n"
	for _, line := range []string{"AUTH PLAIN " + plainIR("", e.alice.Email, alicePass), "AUTH LOGIN", "AUTH PLAIN =AAA", "AUTH XOAUTH2"} {
		if got := c.cmd(line); got != want {
			t.Errorf("%q: got %q, want %q", line, got, want)
		}
	}
	if a, _, _ := e.auth.snapshot(); len(a) != 0 {
		t.Fatalf("the gateway saw %d attempts before TLS", len(a))
	}
	// After STARTTLS the same login works.
	c.wantCmd("STARTTLS", "220 2.0.0 ")
	c.startTLS(e.clientTLS)
	r = c.wantCmd("EHLO client.test", "250-")
	if !strings.Contains(r, "AUTH PLAIN LOGIN") || strings.Contains(r, "STARTTLS") {
		t.Fatalf("EHLO after TLS: %q", r)
	}
	c.wantCmd("AUTH PLAIN "+plainIR("", e.alice.Email, alicePass), "235 ")
	a, _, _ := e.auth.snapshot()
	if len(a) != 1 || !a[0].TLS {
		t.Fatalf("attempts %+v, want one over TLS", a)
	}
}

func TestAuthMechanisms(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name string
		run  func(c *client)
		mech string
	}{
		{"PLAIN initial response", func(c *client) {
			c.wantCmd("AUTH PLAIN "+plainIR("", e.alice.Email, alicePass), "235 2.7.0 ")
		}, "PLAIN"},
		{"PLAIN authzid equal to authcid, upper-case user", func(c *client) {
			c.wantCmd("AUTH plain "+plainIR("ALICE@example.test", "ALICE@example.test", alicePass), "235 ")
		}, "PLAIN"},
		{"PLAIN after empty challenge", func(c *client) {
			if r := c.cmd("AUTH PLAIN"); r != "334 \r\n" {
				t.Fatalf("got %q, want an empty 334", r)
			}
			c.wantCmd(plainIR("", e.alice.Email, alicePass), "235 ")
		}, "PLAIN"},
		{"LOGIN", func(c *client) {
			if r := c.cmd("AUTH LOGIN"); r != "334 "+b64("Username:")+"\r\n" {
				t.Fatalf("got %q", r)
			}
			if r := c.cmd(b64(e.alice.Email)); r != "334 "+b64("Password:")+"\r\n" {
				t.Fatalf("got %q", r)
			}
			c.wantCmd(b64(alicePass), "235 ")
		}, "LOGIN"},
		{"LOGIN with the username as initial response", func(c *client) {
			c.wantCmd("AUTH LOGIN "+b64(e.alice.Email), "334 "+b64("Password:"))
			c.wantCmd(b64(alicePass), "235 ")
		}, "LOGIN"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, _, _ := e.auth.snapshot()
			c := dial(t, e.addr)
			c.wantCmd("EHLO client.test", "250")
			tc.run(c)
			c.wantCmd("MAIL FROM:<alice@example.test>", "250 ")
			c.wantCmd("QUIT", "221 ")
			after, _, _ := e.auth.snapshot()
			if len(after) != len(before)+1 {
				t.Fatalf("%d attempts, want 1", len(after)-len(before))
			}
			a := after[len(after)-1]
			want := auth.Attempt{User: a.User, Protocol: auth.SMTP, Mechanism: tc.mech, RemoteIP: netip.MustParseAddr("127.0.0.1")}
			if a != want || !strings.EqualFold(a.User, e.alice.Email) {
				t.Fatalf("attempt %+v, want %+v", a, want)
			}
		})
	}
}

// Every credential failure gets the same bytes (docs/security.md).
func TestAuthFailuresAreByteIdentical(t *testing.T) {
	e := newEnv(t)
	cases := map[string][]string{
		"wrong password":            {"AUTH PLAIN " + plainIR("", e.alice.Email, alicePass+"x")},
		"password prefix":           {"AUTH PLAIN " + plainIR("", e.alice.Email, alicePass[:19])},
		"unknown user":              {"AUTH PLAIN " + plainIR("", "nobody@example.test", alicePass)},
		"other member's password":   {"AUTH PLAIN " + plainIR("", e.alice.Email, bobPass)},
		"authzid differs":           {"AUTH PLAIN " + plainIR(e.bob.Email, e.alice.Email, alicePass)},
		"one NUL":                   {"AUTH PLAIN " + b64(e.alice.Email+"\x00"+alicePass)},
		"empty password":            {"AUTH PLAIN " + plainIR("", e.alice.Email, "")},
		"PLAIN bad UTF-8":           {"AUTH PLAIN " + plainIR("", e.alice.Email, "\xff\xfe")},
		"PLAIN empty response":      {"AUTH PLAIN ="},
		"LOGIN wrong password":      {"AUTH LOGIN", b64(e.alice.Email), b64("nope")},
		"LOGIN NUL in password":     {"AUTH LOGIN", b64(e.alice.Email), b64(alicePass + "\x00")},
		"LOGIN bad UTF-8 user":      {"AUTH LOGIN " + b64("\xc3\x28")},
		"LOGIN empty user":          {"AUTH LOGIN", ""},
		"LOGIN empty initial":       {"AUTH LOGIN ="},
		"LOGIN over-long password":  {"AUTH LOGIN", b64(e.alice.Email), b64(strings.Repeat("p", maxLoginPassword+1))},
		"CRLF-free control in user": {"AUTH PLAIN " + plainIR("", "alice@example.test\x01", alicePass)},
	}
	for name, lines := range cases {
		t.Run(name, func(t *testing.T) {
			c := dial(t, e.addr)
			c.wantCmd("EHLO client.test", "250")
			var got string
			for _, l := range lines {
				got = c.cmd(l)
			}
			if got != authFailedReply {
				t.Fatalf("got %q, want %q", got, authFailedReply)
			}
			c.wantCmd("MAIL FROM:<alice@example.test>", "530 5.7.0 ")
		})
	}
}

func TestAuthUnavailable(t *testing.T) {
	e := newEnv(t)
	c := dial(t, e.addr)
	c.wantCmd("EHLO client.test", "250")
	if got := c.cmd("AUTH PLAIN " + plainIR("", unavailableUser, "x")); got != "454 4.7.0 Temporary authentication failure\r\n" {
		t.Fatalf("got %q", got)
	}
}

// RFC 4954 §4 replies, where go-smtp's server differs (docs/security.md).
func TestAuthProtocolReplies(t *testing.T) {
	e := newEnv(t)
	long := "AUTH PLAIN " + strings.Repeat("QUFB", 3100) // 12,411 octets
	fits := "AUTH PLAIN " + strings.Repeat("QUFB", 3068) // 12,283 octets
	cases := []struct {
		name  string
		setup []string // after EHLO, each must not fail
		line  string
		want  string
	}{
		{"cancel", []string{"AUTH PLAIN"}, "*", "501 5.0.0 "},
		{"cancel LOGIN at password", []string{"AUTH LOGIN", b64("alice@example.test")}, "*", "501 5.0.0 "},
		{"IR =AAA", nil, "AUTH PLAIN =AAA", "501 5.5.2 "},
		{"IR AAA=BBB", nil, "AUTH PLAIN AAA=BBB", "501 5.5.2 "},
		{"IR not a multiple of 4", nil, "AUTH PLAIN QUFBQ", "501 5.5.2 "},
		{"IR non-canonical padding", nil, "AUTH PLAIN QUJ=", "501 5.5.2 "},
		{"response =AAA", []string{"AUTH PLAIN"}, "=AAA", "501 5.5.2 "},
		{"response AAA=BBB", []string{"AUTH LOGIN"}, "AAA=BBB", "501 5.5.2 "},
		{"response with a space", []string{"AUTH LOGIN"}, "QUFB QUFB", "501 5.5.2 "},
		{"AUTH line over 12288 octets", nil, long, "500 5.5.6 Authentication Exchange line is too long\r\n"},
		{"AUTH line under 12288 octets is read", nil, fits, authFailedReply},
		{"response line over 12288 octets", []string{"AUTH PLAIN"}, strings.Repeat("QUFB", 3100), "500 5.5.6 "},
		{"unknown mechanism", nil, "AUTH CRAM-MD5", "504 5.5.4 "},
		{"no mechanism", nil, "AUTH", "501 5.5.4 "},
		{"after success", []string{"AUTH PLAIN " + plainIR("", "alice@example.test", alicePass)}, "AUTH PLAIN " + plainIR("", "alice@example.test", alicePass), "503 5.5.1 "},
		{"inside a transaction", []string{"AUTH PLAIN " + plainIR("", "alice@example.test", alicePass), "MAIL FROM:<alice@example.test>"}, "AUTH LOGIN", "503 5.5.1 "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, e.addr)
			c.wantCmd("EHLO client.test", "250")
			for _, l := range tc.setup {
				if r := c.cmd(l); r[0] != '2' && r[0] != '3' {
					t.Fatalf("setup %q: %q", l, r)
				}
			}
			if got := c.cmd(tc.line); !strings.HasPrefix(got, tc.want) {
				t.Fatalf("got %q, want prefix %q", got, tc.want)
			}
			// The session goes on.
			c.wantCmd("NOOP", "250 2.0.0 ")
		})
	}
}

func TestAuthBeforeEHLO(t *testing.T) {
	e := newEnv(t)
	c := dial(t, e.addr)
	c.wantCmd("AUTH PLAIN "+plainIR("", e.alice.Email, alicePass), "503 5.5.1 ")
	c.wantCmd("HELO client.test", "250 ")
	c.wantCmd("AUTH PLAIN "+plainIR("", e.alice.Email, alicePass), "503 5.5.1 ") // AUTH is an ESMTP extension
}

func TestTooManyErrorsCloses(t *testing.T) {
	e := newEnv(t)
	c := dial(t, e.addr)
	c.wantCmd("EHLO client.test", "250")
	for i := 0; i < maxErrors-1; i++ {
		if got := c.cmd("AUTH PLAIN " + plainIR("", e.alice.Email, "wrong")); got != authFailedReply {
			t.Fatalf("attempt %d: %q", i, got)
		}
	}
	c.send("AUTH PLAIN " + plainIR("", e.alice.Email, "wrong") + "\r\n")
	if got := c.reply(); got != authFailedReply {
		t.Fatalf("got %q", got)
	}
	c.want("421 4.7.0 ")
	c.waitClosed()
}
