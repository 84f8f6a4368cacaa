package imapserver

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

const testMessage = "From: Bob <bob@example.org>\r\n" +
	"To: alice@example.com\r\n" +
	"Subject: Lunch on Friday\r\n" +
	"Date: Mon, 02 Jan 2026 10:00:00 +0000\r\n" +
	"Message-ID: <1@example.org>\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"\r\n" +
	"Shall we meet at noon?\r\n"

func appendCmd(c *client, tag, mailbox, flags, msg string) []string {
	c.t.Helper()
	c.send(fmt.Sprintf("%s APPEND %s (%s) {%d}\r\n", tag, mailbox, flags, len(msg)))
	if l := c.line(); !strings.HasPrefix(l, "+") {
		c.t.Fatalf("append continuation: %q", l)
	}
	c.send(msg + "\r\n")
	out := c.until(tag)
	if !strings.HasPrefix(out[len(out)-1], tag+" OK") {
		c.t.Fatalf("append: %q", out)
	}
	return out
}

func TestMailboxCommands(t *testing.T) {
	e := newEnv(t, envOptions{noTailer: true})
	c := dial(t, e.addr)
	c.login()

	caps := c.ok("a0", "CAPABILITY")
	for _, cp := range []string{"IDLE", "UIDPLUS", "MOVE", "SPECIAL-USE", "NAMESPACE", "APPENDLIMIT=", "UNSELECT"} {
		if !contains(caps, cp) {
			t.Errorf("capability %s missing: %q", cp, caps)
		}
	}
	if out := c.ok("a1", "NAMESPACE"); !contains(out, `* NAMESPACE (("" "/")) NIL NIL`) {
		t.Errorf("namespace: %q", out)
	}
	c.ok("a2", "CREATE Work/Projects")
	out := c.ok("a3", `LIST "" "*"`)
	for _, want := range []string{
		`* LIST (\HasNoChildren) "/" INBOX`,
		`* LIST (\HasNoChildren \Sent) "/" "Sent"`,
		`* LIST (\HasNoChildren \Trash) "/" "Trash"`,
		`* LIST (\HasChildren) "/" "Work"`,
		`* LIST (\HasNoChildren) "/" "Work/Projects"`,
	} {
		if !contains(out, want) {
			t.Errorf("LIST lacks %q: %q", want, out)
		}
	}
	if out := c.ok("a4", `LIST "" ""`); !contains(out, `* LIST (\Noselect) "/" ""`) {
		t.Errorf("delimiter query: %q", out)
	}
	c.ok("a5", "SUBSCRIBE Work/Projects")
	if out := c.ok("a6", `LSUB "" "*"`); contains(out, `"/" "Work"`) || !contains(out, `* LSUB () "/" "Work/Projects"`) {
		t.Errorf("lsub: %q", out)
	}
	// A "%" that stops at an unsubscribed superior of a subscribed mailbox
	// lists it \Noselect (RFC 3501 §6.3.9); LSUB has no LIST attributes.
	wantLines(t, "LSUB %", c.ok("a6b", `LSUB "" "%"`), `* LSUB () "/" INBOX`, `* LSUB () "/" "Drafts"`, `* LSUB () "/" "Junk"`,
		`* LSUB () "/" "Sent"`, `* LSUB () "/" "Trash"`, `* LSUB (\Noselect) "/" "Work"`, "a6b OK LSUB completed")
	wantLines(t, "LSUB Work/%", c.ok("a6c", `LSUB "" "Work/%"`), `* LSUB () "/" "Work/Projects"`, "a6c OK LSUB completed")
	c.ok("a6d", "UNSUBSCRIBE Work/Projects")
	wantLines(t, "LSUB % after UNSUBSCRIBE", c.ok("a6e", `LSUB "" "W%"`), "a6e OK LSUB completed")
	c.ok("a7", "SUBSCRIBE Work")
	c.ok("a8", "RENAME Work/Projects Work/Old")
	if out := c.cmd("a9", "CREATE Work/Old"); !strings.Contains(out[len(out)-1], "NO [ALREADYEXISTS]") {
		t.Errorf("create existing: %q", out)
	}
	// RFC 9051 §6.3.5: a mailbox with inferiors is refused with HASCHILDREN.
	if out := c.cmd("a9b", "DELETE Work"); !strings.HasPrefix(out[len(out)-1], "a9b NO [HASCHILDREN] ") {
		t.Errorf("delete a parent: %q", out)
	}
	c.ok("a10", "DELETE Work/Old")
	if out := c.cmd("a11", "SELECT Nowhere"); !strings.HasPrefix(out[len(out)-1], "a11 NO") {
		t.Errorf("select missing: %q", out)
	}

	out = appendCmd(c, "b1", "INBOX", `\Seen`, testMessage)
	if !strings.Contains(out[len(out)-1], "[APPENDUID ") {
		t.Errorf("no APPENDUID: %q", out)
	}
	appendCmd(c, "b2", "INBOX", "", strings.Replace(testMessage, "Lunch on Friday", "Invoice", 1))
	c.send("b3 APPEND Nowhere {3}\r\n")
	if l := c.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("append continuation: %q", l)
	}
	c.send("abc\r\n")
	if out := c.until("b3"); !strings.Contains(out[len(out)-1], "[TRYCREATE]") {
		t.Errorf("append to a missing mailbox: %q", out)
	}
	if out := c.ok("b4", "STATUS INBOX (MESSAGES UNSEEN UIDNEXT UIDVALIDITY SIZE)"); !contains(out, "MESSAGES 2") || !contains(out, "UNSEEN 1") {
		t.Errorf("status: %q", out)
	}

	out = c.ok("c1", "SELECT INBOX")
	if !contains(out, "* 2 EXISTS") || !contains(out, "[UIDVALIDITY ") || !contains(out, "[READ-WRITE]") {
		t.Errorf("select: %q", out)
	}
	out = c.ok("c2", "FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE)")
	if !contains(out, `"Lunch on Friday"`) || !contains(out, `("Bob" NIL "bob" "example.org")`) || !contains(out, `"text" "plain"`) {
		t.Errorf("fetch: %q", out)
	}
	out = c.ok("c3", "UID FETCH 2 (BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[TEXT])")
	if !contains(out, "Subject: Invoice") || !contains(out, "Shall we meet at noon?") {
		t.Errorf("uid fetch: %q", out)
	}
	// BODY[] without PEEK sets \Seen and reports it.
	if out := c.ok("c4", "FETCH 2 BODY[]"); !contains(out, `\Seen`) {
		t.Errorf("fetch body[]: %q", out)
	}
	if out := c.ok("c5", `STORE 1 +FLAGS (\Flagged $Work)`); !contains(out, `\Flagged`) || !contains(out, "$Work") {
		t.Errorf("store: %q", out)
	}
	c.ok("c6", `STORE 1 +FLAGS.SILENT (\Answered)`)

	searches := map[string]string{
		"SEARCH FLAGGED":                            "* SEARCH 1",
		"SEARCH SUBJECT invoice":                    "* SEARCH 2",
		"SEARCH FROM bob":                           "* SEARCH 1 2",
		"SEARCH BODY noon":                          "* SEARCH 1 2",
		"SEARCH TEXT Invoice":                       "* SEARCH 2",
		"SEARCH NOT FLAGGED":                        "* SEARCH 2",
		"SEARCH OR FLAGGED SUBJECT invoice":         "* SEARCH 1 2",
		"SEARCH LARGER 10 SMALLER 100000":           "* SEARCH 1 2",
		"SEARCH SINCE 1-Jan-2000 BEFORE 1-Jan-2100": "* SEARCH 1 2",
		"SEARCH SENTON 2-Jan-2026":                  "* SEARCH 1 2",
		"SEARCH KEYWORD $Work":                      "* SEARCH 1",
		"SEARCH 2:*":                                "* SEARCH 2",
		"UID SEARCH UID 1:*":                        "* SEARCH 1 2",
		"SEARCH HEADER Message-ID example.org":      "* SEARCH 1 2",
		"SEARCH UNSEEN":                             "* SEARCH",
	}
	i := 0
	for q, want := range searches {
		i++
		out := c.ok(fmt.Sprintf("s%d", i), q)
		found := false
		for _, l := range out {
			if strings.TrimRight(l, " ") == want {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: %q, want %q", q, out, want)
		}
	}

	if out := c.ok("d1", "COPY 1 Trash"); !strings.Contains(out[len(out)-1], "[COPYUID ") {
		t.Errorf("copy: %q", out)
	}
	if out := c.cmd("d2", "COPY 1 Nowhere"); !strings.Contains(out[len(out)-1], "[TRYCREATE]") {
		t.Errorf("copy to a missing mailbox: %q", out)
	}
	out = c.ok("d3", "UID MOVE 2 Junk")
	if !contains(out, "* OK [COPYUID ") || !contains(out, "* 2 EXPUNGE") {
		t.Errorf("move: %q", out)
	}
	appendCmd(c, "d4", "INBOX", `\Deleted`, testMessage)
	appendCmd(c, "d5", "INBOX", `\Deleted`, testMessage)
	c.ok("d6", "NOOP")
	// UID EXPUNGE removes only the named one.
	out = c.ok("d7", "UID EXPUNGE 4")
	if !contains(out, "* 3 EXPUNGE") || len(out) != 2 {
		t.Errorf("uid expunge: %q", out)
	}
	if out := c.ok("d8", "EXPUNGE"); !contains(out, "* 2 EXPUNGE") {
		t.Errorf("expunge: %q", out)
	}
	c.ok("d9", "UNSELECT")

	out = c.ok("e1", "EXAMINE Trash")
	if !contains(out, "[READ-ONLY]") {
		t.Errorf("examine: %q", out)
	}
	if out := c.cmd("e2", `STORE 1 +FLAGS (\Deleted)`); !strings.HasPrefix(out[len(out)-1], "e2 NO") {
		t.Errorf("store in read-only: %q", out)
	}
	c.ok("e3", "FETCH 1 BODY[]")
	c.ok("e4", "CLOSE")
	c.ok("e5", "LOGOUT")
}

// Two sessions on one mailbox: each sees the other's flags, expunges and
// new messages, with the events carried by the Bus.
func TestSessionsSeeEachOther(t *testing.T) {
	e := newEnv(t, envOptions{})
	a, b := dial(t, e.addr), dial(t, e.addr)
	a.login()
	b.login()
	appendCmd(a, "a1", "INBOX", "", testMessage)
	appendCmd(a, "a2", "INBOX", "", testMessage)
	a.ok("a3", "SELECT INBOX")
	b.ok("b1", "SELECT INBOX")

	a.ok("a4", `STORE 1 +FLAGS (\Flagged)`)
	waitFor(t, b, "* 1 FETCH (UID 1 FLAGS (\\Flagged))")

	a.ok("a5", `STORE 2 +FLAGS.SILENT (\Deleted)`)
	a.ok("a6", "EXPUNGE")
	waitFor(t, b, "* 2 EXPUNGE")

	appendCmd(a, "a7", "INBOX", "", testMessage)
	waitFor(t, b, "* 2 EXISTS")
	out := b.ok("b9", "UID FETCH 1:* FLAGS")
	if !contains(out, "UID 3") || contains(out, "UID 2 ") {
		t.Errorf("b's view: %q", out)
	}
}

// waitFor sends NOOPs until a reply contains want.
func waitFor(t *testing.T, c *client, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		if out := c.ok(fmt.Sprintf("w%d", i), "NOOP"); contains(out, want) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %q", want)
}

// IDLE sees mail appended through the store (as SMTP delivery does), by way
// of the outbox event, the Tailer and the Bus.
func TestIdleSeesNewMail(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := dial(t, e.addr)
	c.login()
	c.ok("a1", "SELECT INBOX")
	c.send("a2 IDLE\r\n")
	if l := c.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("idle: %q", l)
	}
	if err := e.mail.Deliver(context.Background(), e.member.ID, []byte(testMessage)); err != nil {
		t.Fatal(err)
	}
	if l := c.line(); l != "* 1 EXISTS" {
		t.Fatalf("in IDLE: %q", l)
	}
	c.send("DONE\r\n")
	if out := c.until("a2"); !strings.HasPrefix(out[len(out)-1], "a2 OK") {
		t.Fatalf("done: %q", out)
	}
}

// Flags and expunges are in the database: a restarted server shows them.
func TestStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	sub := func(name string, f func(t *testing.T, e *env)) {
		t.Run(name, func(t *testing.T) {
			f(t, newEnv(t, envOptions{dir: dir, noTailer: true}))
		})
	}
	sub("write", func(t *testing.T, e *env) {
		c := dial(t, e.addr)
		c.login()
		for i := 0; i < 3; i++ {
			appendCmd(c, fmt.Sprintf("a%d", i), "INBOX", "", testMessage)
		}
		c.ok("b1", "SELECT INBOX")
		c.ok("b2", `STORE 1 +FLAGS (\Flagged \Seen)`)
		c.ok("b3", `STORE 2 +FLAGS (\Deleted)`)
		c.ok("b4", "EXPUNGE")
		c.ok("b5", "LOGOUT")
	})
	sub("read", func(t *testing.T, e *env) {
		c := dial(t, e.addr)
		c.login()
		out := c.ok("a1", "SELECT INBOX")
		if !contains(out, "* 2 EXISTS") {
			t.Fatalf("select after restart: %q", out)
		}
		out = c.ok("a2", "FETCH 1:* (UID FLAGS)")
		if !contains(out, `* 1 FETCH (UID 1 FLAGS (\Flagged \Seen))`) || !contains(out, "* 2 FETCH (UID 3 FLAGS ())") {
			t.Fatalf("fetch after restart: %q", out)
		}
	})
}
