package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// TestMXAliasesAndCatchAll: mail from outside to a distribution list
// reaches each of its members once (even when one is also named directly),
// a plus tag on the list works, an unknown address of a domain with a
// catch-all reaches the catch-all member, and without one it is refused.
func TestMXAliasesAndCatchAll(t *testing.T) {
	t.Parallel()
	in := NewSQLite(t)
	in.MustRun(t, "domain", "add", "example.com")
	in.MustRun(t, "domain", "add", "other.example")
	pw := map[string]string{}
	for _, name := range []string{"alice", "bob", "carol"} {
		m := addMember(t, in, name+"@example.com")
		pw[name] = createAppPass(t, in, m.Email, "Mail").Password
	}
	in.MustRun(t, "alias", "add", "sales@example.com", "alice@example.com", "bob@example.com")
	in.MustRun(t, "domain", "catchall", "other.example", "carol@example.com")
	srv := in.StartServer(t)
	mx := srv.Addr("smtp")

	send := func(to, subject string) (int, string) {
		return swaksMX(t, "--server", mx, "--to", to, "--header", "Subject: "+subject)
	}
	if code, out := send("sales@example.com,alice@example.com", "To the list"); code != 0 {
		t.Fatalf("to the list: %d\n%s", code, out)
	}
	if code, out := send("sales+leads@example.com", "Tagged list"); code != 0 {
		t.Fatalf("tagged list: %d\n%s", code, out)
	}
	if code, out := send("anything@other.example", "Caught"); code != 0 {
		t.Fatalf("catch-all: %d\n%s", code, out)
	}
	if code, out := send("anything@example.com", "Nobody"); code == 0 || !strings.Contains(out, "550 5.1.1") {
		t.Fatalf("unknown address without a catch-all: %d\n%s", code, out)
	}
	want := map[string]map[string]int{
		"alice": {"To the list": 1, "Tagged list": 1},
		"bob":   {"To the list": 1, "Tagged list": 1},
		"carol": {"Caught": 1},
	}
	for name, subjects := range want {
		msgs, _ := readInbox(t, srv, name+"@example.com", pw[name])
		got := map[string]int{}
		for _, m := range msgs {
			if !strings.HasPrefix(m.Subject, "A third-party app password") { // Postern's own notice
				got[m.Subject]++
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(subjects) {
			t.Errorf("%s's INBOX: %v, want %v", name, got, subjects)
		}
	}
}

// TestMXBadInput: on the real binary, hostile input to the MX listener gets
// clear replies and the server's memory stays flat: a 1 MiB command line,
// a NUL in the data, a bare LF (smuggling), a header of 100,000 fields and
// 10,000 pipelined recipients; the session goes on after each.
func TestMXBadInput(t *testing.T) {
	t.Parallel()
	in := NewSQLite(t)
	in.MustRun(t, "domain", "add", "example.com")
	addMember(t, in, "alice@example.com")
	srv := in.StartServer(t, "--smtp-rate-limit", "0")
	before := memKiB(t, srv.Pid(), "VmHWM")

	c := dial(t, srv.Addr("smtp"))
	c.until("220 ")
	c.cmd("EHLO mta.elsewhere.test", "250 ")
	if r := c.cmd("MAIL FROM:<a@elsewhere.test> "+strings.Repeat("X", 1<<20), ""); !strings.HasPrefix(r, "500 5.5.2") {
		t.Errorf("1 MiB command line: %q", r)
	}
	data := func(body string) string {
		c.cmd("MAIL FROM:<a@elsewhere.test>", "250 ")
		c.cmd("RCPT TO:<alice@example.com>", "250 ")
		c.cmd("DATA", "354 ")
		c.send(body)
		return c.until("")
	}
	if r := data("Subject: nul\r\n\r\nbad\x00byte\r\n.\r\n"); !strings.HasPrefix(r, "554 5.6.0") {
		t.Errorf("NUL: %q", r)
	}
	if r := data("Subject: smuggle\r\n\r\nhi\n.\nMAIL FROM:<x@y.test>\r\n.\r\n"); !strings.HasPrefix(r, "554 5.6.0") {
		t.Errorf("bare LF: %q", r)
	}
	var bomb strings.Builder
	for i := range 100_000 {
		fmt.Fprintf(&bomb, "X-F%d: v\r\n", i)
	}
	if r := data(bomb.String() + "\r\nbody\r\n.\r\n"); !strings.HasPrefix(r, "552 5.3.4") {
		t.Errorf("header bomb: %q", r)
	}
	c.cmd("MAIL FROM:<a@elsewhere.test>", "250 ")
	var rcpts strings.Builder
	for range 10_000 {
		rcpts.WriteString("RCPT TO:<alice@example.com>\r\n")
	}
	c.send(rcpts.String())
	codes := map[string]int{}
	for range 10_000 {
		codes[c.line()[:3]]++
	}
	if codes["250"] != 100 || codes["452"] != 9_900 {
		t.Errorf("10,000 pipelined RCPTs: %v, want 100 accepted and the rest 452", codes)
	}
	if r := c.cmd("RSET", "2"); !strings.HasPrefix(r, "250 ") {
		t.Errorf("after the bad input, RSET: %q", r)
	}
	if grew := memKiB(t, srv.Pid(), "VmHWM") - before; grew > 64<<10 {
		t.Errorf("peak RSS grew by %d KiB", grew)
	} else {
		t.Logf("peak RSS grew by %d KiB over the bad input", grew)
	}
}
