package imapserver

import (
	"strings"
	"testing"
	"time"
)

// TestLiteralPlus: LITERAL+ (RFC 7888) is advertised in every state instead
// of LITERAL-, and APPEND takes non-synchronizing literals above 4 KiB. One
// over the message size is already on its way: BAD [TOOBIG] with the
// command's tag, then BYE and close, also when it is a later message of a
// MULTIAPPEND; a synchronizing one there gets NO [TOOBIG] instead of "+".
func TestLiteralPlus(t *testing.T) {
	e := newEnv(t, envOptions{noTailer: true})
	c := dial(t, e.addr)
	out := c.ok("a0", "CAPABILITY")
	if !hasCap(out, "LITERAL+") || hasCap(out, "LITERAL-") {
		t.Errorf("capabilities before login: %q", out)
	}
	c.login()
	msg := "Subject: big\r\n\r\n" + strings.Repeat("x", 10000)
	c.send("a1 APPEND INBOX {" + itoa(uint32(len(msg))) + "+}\r\n" + msg + "\r\n")
	if out := c.until("a1"); !strings.HasPrefix(out[0], "a1 OK [APPENDUID ") {
		t.Fatalf("append: %q", out)
	}
	c.send("a2 APPEND INBOX {3}\r\n")
	c.line()
	c.send("one {40000000}\r\n")
	wantReply(t, c.until("a2"), "a2 NO [TOOBIG] Literals are limited to 33554432 bytes for this command")
	c.ok("a3", "NOOP")

	for _, cmd := range []string{"b1 APPEND INBOX {40000000+}\r\n", "b1 APPEND INBOX {3+}\r\none {40000000+}\r\n"} {
		c := dial(t, e.addr)
		c.login()
		c.send(cmd)
		if got := c.line(); got != "b1 BAD [TOOBIG] Non-synchronizing literal too big" {
			t.Errorf("%q: %q", cmd, got)
		}
		if !c.closed(10 * time.Second) {
			t.Errorf("%q: connection left open", cmd)
		}
	}
}
