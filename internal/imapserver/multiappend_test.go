package imapserver

import (
	"context"
	"strconv"
	"strings"
	"testing"
)

// TestMultiAppend: several messages in one APPEND (RFC 3502), with
// synchronizing and non-synchronizing literals, get one APPENDUID with
// their UID set; a failure stores none of them and ends the command
// without asking for the next synchronizing literal.
func TestMultiAppend(t *testing.T) {
	e, c := loggedIn(t, "MULTIAPPEND")
	v := e.inbox(t).UIDValidity
	c.send("a1 APPEND INBOX (\\Seen) {5+}\r\nhello {5+}\r\nworld\r\n")
	wantReply(t, c.until("a1"), "a1 OK [APPENDUID "+itoa(v)+" 1:2] APPEND completed")

	c.send("a2 APPEND INBOX {3}\r\n")
	wantReply(t, []string{c.line()}, "+ Ready for literal data")
	c.send("one {3}\r\n")
	wantReply(t, []string{c.line()}, "+ Ready for literal data")
	c.send("two\r\n")
	wantReply(t, c.until("a2"), "a2 OK [APPENDUID "+itoa(v)+" 3:4] APPEND completed")

	// A bad flag in the second message: neither is stored.
	c.send("a3 APPEND INBOX {3+}\r\nxxx (\\Bogus) {3+}\r\nyyy\r\n")
	if out := c.until("a3"); !strings.HasPrefix(out[len(out)-1], "a3 NO [CANNOT] ") {
		t.Errorf("bad flag: %q", out)
	}
	// A missing mailbox is found after the first literal; the second,
	// synchronizing, is not asked for.
	c.send("a4 APPEND Nowhere {3}\r\n")
	c.line()
	c.send("aaa {3}\r\n")
	wantReply(t, c.until("a4"), "a4 NO [TRYCREATE] No such mailbox.")
	c.ok("a5", "NOOP")

	msgs, err := e.mail.Messages(context.Background(), e.inbox(t).ID)
	if err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for _, m := range msgs {
		b, _ := e.mail.Body(context.Background(), m.ID)
		bodies = append(bodies, string(b)+" "+strings.Join(m.Flags, ","))
	}
	if strings.Join(bodies, "|") != `hello \Seen|world |one |two ` {
		t.Errorf("stored %q", bodies)
	}
}

// loggedIn starts a server, logs a client in and checks that the server
// advertises capability.
func loggedIn(t *testing.T, capability string) (*env, *client) {
	t.Helper()
	e := newEnv(t, envOptions{noTailer: true})
	c := dial(t, e.addr)
	c.login()
	if out := c.ok("a0", "CAPABILITY"); !hasCap(out, capability) {
		t.Fatalf("%s not advertised: %q", capability, out)
	}
	return e, c
}

// wantReply fails unless got is exactly want, line by line.
func wantReply(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func itoa(v uint32) string { return strconv.FormatUint(uint64(v), 10) }
