package imapserver

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Literal sizes are checked before anything is allocated or read
// (docs/security.md; GreenMail PR #1038, go-imap #93).
func TestLiteralLimits(t *testing.T) {
	e := newEnv(t, envOptions{noTailer: true})
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	cases := []struct {
		cmd, want string
		closes    bool
	}{
		{"a1 LOGIN {4294967295}\r\n", "a1 BAD [TOOBIG]", false},
		{"a1 LOGIN {2147483647}\r\n", "a1 BAD [TOOBIG]", false},
		{"a1 LOGIN {99999999999}\r\n", "a1 BAD [TOOBIG]", false},
		{"a1 LOGIN {99999999999999999999999999}\r\n", "a1 BAD [TOOBIG]", false},
		{"a1 LOGIN {-1}\r\n", "a1 BAD", false},
		{"a1 LOGIN {}\r\n", "a1 BAD", false},
		{"a1 APPEND INBOX {30000000}\r\n", "a1 BAD [TOOBIG]", false},
		// Between go-imap's 4 KiB buffered-literal cap and ours: go-imap
		// refuses it silently and the guard turns that into a BAD.
		{"a1 LOGIN {6000}\r\n", "a1 BAD", false},
		{"a1 LOGIN {5000+}\r\n", "a1 BAD [TOOBIG]", true},
	}
	for _, tc := range cases {
		c := dial(t, e.addr)
		c.send(tc.cmd)
		if got := c.line(); !strings.HasPrefix(got, tc.want) {
			t.Fatalf("%q: got %q, want %q", tc.cmd, got, tc.want)
		}
		if tc.closes {
			if !c.closed(10 * time.Second) {
				t.Fatalf("%q: connection left open", tc.cmd)
			}
			continue
		}
		// The connection is still in step: a login works.
		c.login()
	}

	// After login the cap is the message size: a big APPEND gets NO [TOOBIG].
	c := dial(t, e.addr)
	c.login()
	c.send("b1 APPEND INBOX {4294967295}\r\n")
	if got := c.line(); !strings.HasPrefix(got, "b1 NO [TOOBIG]") {
		t.Fatalf("big append: %q", got)
	}
	c.send("b2 APPEND INBOX {40000000}\r\n")
	if got := c.line(); !strings.HasPrefix(got, "b2 NO [TOOBIG]") {
		t.Fatalf("big append: %q", got)
	}
	c.ok("b3", "NOOP")

	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 256<<20 {
		t.Fatalf("the server allocated %d MiB for refused literals", grew>>20)
	}
}

// A line without CRLF is cut off after maxLine octets: BYE and close, not
// a megabyte buffered.
func TestLongLine(t *testing.T) {
	e := newEnv(t, envOptions{noTailer: true})
	for _, prefix := range []string{"", "a1 LOGIN ", "a1 NOOP "} {
		c := dial(t, e.addr)
		done := make(chan struct{})
		go func() {
			defer close(done)
			c.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			c.c.Write(append([]byte(prefix), bytes.Repeat([]byte("x"), 1<<20)...)) // fails once the server hangs up
		}()
		if !c.closed(10 * time.Second) {
			t.Fatalf("%q + 1 MiB: connection left open", prefix)
		}
		<-done
	}
	// Lines of 8 KiB are fine (RFC 7162 §4).
	c := dial(t, e.addr)
	c.login()
	out := c.cmd("a2", "SEARCH SUBJECT "+strings.Repeat("y", 8<<10))
	if !strings.HasPrefix(out[len(out)-1], "a2 BAD") && !strings.HasPrefix(out[len(out)-1], "a2 OK") {
		t.Fatalf("8 KiB line: %q", out[len(out)-1])
	}
}

// NUL and bare CR never reach the parser (CVE-2019-11500).
func TestBadBytes(t *testing.T) {
	e := newEnv(t, envOptions{noTailer: true})
	for _, cmd := range []string{
		"a1 LOGIN \"" + testUser + "\x00\" x\r\n",
		"a1 LOGIN " + testUser + "\rX " + testSecret + "\r\n",
	} {
		c := dial(t, e.addr)
		c.send(cmd)
		if got := c.line(); !strings.HasPrefix(got, "a1 BAD") {
			t.Fatalf("%q: %q", cmd, got)
		}
		c.login()
	}
	// Input fed one octet at a time still parses.
	c := dial(t, e.addr)
	for _, b := range []byte("a1 LOGIN " + testUser + " " + testSecret + "\r\n") {
		c.send(string(b))
	}
	if out := c.until("a1"); !strings.HasPrefix(out[len(out)-1], "a1 OK") {
		t.Fatalf("byte at a time: %q", out)
	}
}

// Plaintext sent with STARTTLS is discarded, not run after the handshake
// (CVE-2011-0411, CVE-2021-33515).
func TestStartTLSInjection(t *testing.T) {
	e := newEnv(t, envOptions{noTailer: true})
	c := dial(t, e.addr)
	c.send("S STARTTLS\r\nX NOOP\r\n")
	if got := c.line(); !strings.HasPrefix(got, "S OK") {
		t.Fatalf("starttls: %q", got)
	}
	if c.r.Buffered() > 0 {
		t.Fatalf("plaintext after the STARTTLS reply: %d octets", c.r.Buffered())
	}
	tc := c.startTLSAfterOK(e)
	// The first reply on the TLS connection is to our command, not to X.
	out := tc.cmd("Y", "NOOP")
	if contains(out, "X ") {
		t.Fatalf("injected command answered: %q", out)
	}
	if len(out) != 1 || !strings.HasPrefix(out[0], "Y OK") {
		t.Fatalf("noop: %q", out)
	}
}

// An unknown command before login ends the connection: go-imap's defence
// against cross-protocol attacks (HTTP sent to the IMAP port).
func TestUnknownCommandBeforeLoginCloses(t *testing.T) {
	e := newEnv(t, envOptions{noTailer: true})
	c := dial(t, e.addr)
	c.send("a1 FOO\r\n")
	if got := c.line(); !strings.HasPrefix(got, "a1 BAD") && !strings.HasPrefix(got, "* BYE") {
		t.Fatalf("unknown command: %q", got)
	}
	if !c.closed(10 * time.Second) {
		t.Fatal("connection left open after an unknown command before login")
	}
}

// A client that does not log in is logged out with a BYE (RFC 9051 §7.1.5)
// once the login window is over, NOOPs or not.
func TestLoginWindow(t *testing.T) {
	e := newEnv(t, envOptions{noTailer: true, loginWindow: 300 * time.Millisecond})
	c := dial(t, e.addr)
	c.ok("a1", "NOOP")
	c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	l, err := c.r.ReadString('\n')
	if err != nil || !strings.HasPrefix(l, "* BYE") {
		t.Fatalf("after the login window: %q %v", l, err)
	}
	if !c.closed(10 * time.Second) {
		t.Fatal("connection left open")
	}
}
