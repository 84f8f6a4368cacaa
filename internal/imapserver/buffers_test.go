package imapserver

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// These tests cover what third_party/go-imap changes (POSTERN.md there): a
// connection's read and write buffers come from pools and go back while it
// waits for input or has nothing to send. Large literals in both directions,
// long lines, pipelined commands and IDLE must work as before, and pooled
// buffers must never carry one connection's data to another.

// bigMessage returns a message of at least size octets whose every line
// says which message and line it is.
func bigMessage(id string, size int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "From: Bob <bob@example.org>\r\nTo: alice@example.com\r\nSubject: %s\r\n\r\n", id)
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "%s line %07d: the quick brown fox jumps over the lazy dog\r\n", id, i)
	}
	return b.String()
}

var (
	appendUID   = regexp.MustCompile(`\[APPENDUID \d+ (\d+)\]`)
	bodyLiteral = regexp.MustCompile(`BODY\[\] \{(\d+)\}\r\n`)
)

// appendUIDOf appends msg to INBOX and returns its UID.
func appendUIDOf(c *client, tag, msg string) string {
	c.t.Helper()
	out := appendCmd(c, tag, "INBOX", "", msg)
	m := appendUID.FindStringSubmatch(out[len(out)-1])
	if m == nil {
		c.t.Fatalf("no APPENDUID: %q", out)
	}
	return m[1]
}

// fetchBody returns the BODY[] literal of the message with that UID.
func fetchBody(c *client, tag, uid string) string {
	c.t.Helper()
	out := c.ok(tag, "UID FETCH "+uid+" BODY.PEEK[]")
	for _, l := range out {
		m := bodyLiteral.FindStringSubmatchIndex(l)
		if m == nil || !strings.HasPrefix(l, "* ") {
			continue
		}
		n, err := strconv.Atoi(l[m[2]:m[3]])
		if err != nil || m[1]+n > len(l) {
			c.t.Fatalf("bad BODY[] literal in %.200q", l)
		}
		return l[m[1] : m[1]+n]
	}
	c.t.Fatalf("no BODY[] in %.200q", out)
	return ""
}

// idleCycle enters IDLE and leaves it.
func idleCycle(c *client, tag string) {
	c.t.Helper()
	c.send(tag + " IDLE\r\n")
	for {
		l := c.line()
		if strings.HasPrefix(l, "+") {
			break
		}
		if !strings.HasPrefix(l, "* ") {
			c.t.Fatalf("idle: %q", l)
		}
	}
	c.send("DONE\r\n")
	if out := c.until(tag); !strings.HasPrefix(out[len(out)-1], tag+" OK") {
		c.t.Fatalf("done: %q", out)
	}
}

func TestLargeLiteralsLongLinesAndIdle(t *testing.T) {
	e := newEnv(t, envOptions{noTailer: true})
	c := dial(t, e.addr)
	c.login()

	// A 3 MiB APPEND and FETCH: far larger than a 4 KiB buffer both ways.
	msg := bigMessage("big", 3<<20)
	uid := appendUIDOf(c, "a1", msg)
	c.ok("a2", "SELECT INBOX")
	if got := fetchBody(c, "a3", uid); got != msg {
		t.Fatalf("BODY[] differs: %d octets back for %d", len(got), len(msg))
	}

	// A 40 KiB command line, read through several fills of the buffer.
	var set strings.Builder
	set.WriteString(uid)
	for i := 1_000_000; set.Len() < 40<<10; i++ {
		fmt.Fprintf(&set, ",%d", i)
	}
	if out := c.ok("a4", "UID SEARCH UID "+set.String()); !contains(out, "* SEARCH "+uid) {
		t.Fatalf("long search: %q", out)
	}

	// IDLE again and again, with commands between.
	for i := 0; i < 3; i++ {
		idleCycle(c, fmt.Sprintf("b%d", i))
		c.ok(fmt.Sprintf("n%d", i), "NOOP")
	}

	// Pipelined: several commands in one write, then DONE and a command in
	// one write.
	c.send("p1 NOOP\r\np2 CHECK\r\np3 IDLE\r\n")
	c.until("p1")
	c.until("p2")
	if l := c.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("pipelined idle: %q", l)
	}
	c.send("DONE\r\np4 NOOP\r\n")
	if out := c.until("p3"); !strings.HasPrefix(out[len(out)-1], "p3 OK") {
		t.Fatalf("pipelined done: %q", out)
	}
	if out := c.until("p4"); !strings.HasPrefix(out[len(out)-1], "p4 OK") {
		t.Fatalf("after pipelined done: %q", out)
	}

	// The message is unchanged after all that, and the connection ends as
	// it should.
	if got := fetchBody(c, "a5", uid); got != msg {
		t.Fatalf("BODY[] differs at the end: %d octets back for %d", len(got), len(msg))
	}
	if out := c.cmd("z", "LOGOUT"); !contains(out, "* BYE") || !strings.HasPrefix(out[len(out)-1], "z OK") {
		t.Fatalf("logout: %q", out)
	}
}

// Connections that run at once, and so share the pools, each get back
// exactly their own message, while the others' deliveries reach them in
// IDLE.
func TestConnectionsKeepTheirOwnData(t *testing.T) {
	e := newEnv(t, envOptions{})
	t.Run("group", func(t *testing.T) {
		for i := 0; i < 12; i++ {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				c := dial(t, e.addr)
				c.login()
				c.ok("s", "SELECT INBOX")
				id := fmt.Sprintf("conn%02d", i)
				msg := bigMessage(id, 200<<10+i*4099)
				for round := 0; round < 3; round++ {
					uid := appendUIDOf(c, fmt.Sprintf("a%d", round), msg)
					idleCycle(c, fmt.Sprintf("i%d", round))
					if got := fetchBody(c, fmt.Sprintf("f%d", round), uid); got != msg {
						t.Fatalf("round %d: BODY[] of %s differs: %d octets back for %d", round, id, len(got), len(msg))
					}
				}
			})
		}
	})
}
