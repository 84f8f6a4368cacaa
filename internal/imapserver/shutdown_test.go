package imapserver

import (
	"strings"
	"testing"
	"time"
)

// TestShutdownSaysBye: closing the server tells a logged-in client, even
// one in IDLE, that the server is going away (RFC 9051 §7.1.5) before the
// connection ends.
func TestShutdownSaysBye(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := dial(t, e.addr)
	c.login()
	c.ok("S", "SELECT INBOX")
	c.send("I IDLE\r\n")
	if l := c.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("IDLE: %q", l)
	}
	go e.srv.Close()
	c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		l, err := c.readLine()
		if err != nil {
			t.Fatalf("connection ended without BYE: %v", err)
		}
		if strings.HasPrefix(l, "* BYE") {
			if !strings.Contains(l, "shutting down") {
				t.Errorf("BYE %q", l)
			}
			break
		}
	}
	if !c.closed(10 * time.Second) {
		t.Fatal("the connection stayed open after BYE")
	}
}
