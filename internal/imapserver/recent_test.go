package imapserver

import (
	"context"
	"strings"
	"testing"
	"time"
)

// idleUntil enters IDLE, reads the untagged responses up to and including
// the line last, then leaves IDLE; it returns what came before DONE.
func idleUntil(t *testing.T, c *client, tag, last string) []string {
	t.Helper()
	c.send(tag + " IDLE\r\n")
	if l := c.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("idle: %q", l)
	}
	var out []string
	for {
		l := c.line()
		out = append(out, l)
		if l == last {
			break
		}
	}
	c.send("DONE\r\n")
	if done := c.until(tag); !strings.HasPrefix(done[len(done)-1], tag+" OK") {
		t.Fatalf("done: %q", done)
	}
	return out
}

// \Recent (RFC 3501 §2.3.2): a message is recent in one session only, the
// first to SELECT its mailbox after it arrived, or the first selected one to
// see it arrive; EXAMINE shows it without taking it; STATUS counts the
// messages no session took; SEARCH RECENT, NEW and OLD follow, and no STORE
// sets or clears it.
func TestRecent(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	inbox := e.inbox(t)
	for range 2 {
		if _, err := e.mail.Append(ctx, inbox.ID, nil, time.Time{}, []byte(testMessage)); err != nil {
			t.Fatal(err)
		}
	}
	a, b := dial(t, e.addr), dial(t, e.addr)
	a.login()
	b.login()

	if out := a.ok("a1", "EXAMINE INBOX"); !contains(out, "* 2 RECENT") {
		t.Errorf("EXAMINE: %q", out)
	}
	wantLines(t, "FETCH after EXAMINE", a.ok("a2", "FETCH 1:2 FLAGS")[:2],
		`* 1 FETCH (UID 1 FLAGS (\Recent))`, `* 2 FETCH (UID 2 FLAGS (\Recent))`)
	wantLines(t, "STATUS after EXAMINE", b.ok("b1", "STATUS INBOX (RECENT MESSAGES)")[:1], `* STATUS INBOX (MESSAGES 2 RECENT 2)`)
	if out := b.ok("b2", "SELECT INBOX"); !contains(out, "* 2 RECENT") {
		t.Errorf("SELECT after EXAMINE: %q", out)
	}
	wantLines(t, "STATUS after SELECT", a.ok("a3", "STATUS INBOX (RECENT)")[:1], `* STATUS INBOX (RECENT 0)`)
	a.ok("a4", "CLOSE")
	if out := a.ok("a5", "SELECT INBOX"); !contains(out, "* 0 RECENT") {
		t.Errorf("second SELECT: %q", out)
	}
	wantLines(t, "SEARCH RECENT elsewhere", a.ok("a6", "SEARCH RECENT")[:1], "* SEARCH")
	wantLines(t, "SEARCH OLD elsewhere", a.ok("a7", "SEARCH OLD")[:1], "* SEARCH 1 2")

	wantLines(t, "SEARCH NEW", b.ok("b3", "SEARCH NEW")[:1], "* SEARCH 1 2")
	wantLines(t, "STORE +FLAGS", b.ok("b4", `STORE 1 +FLAGS (\Seen)`)[:1], `* 1 FETCH (UID 1 FLAGS (\Seen \Recent))`)
	wantLines(t, "SEARCH NEW after \\Seen", b.ok("b5", "SEARCH NEW")[:1], "* SEARCH 2")
	wantLines(t, "STORE FLAGS (\\Recent)", b.ok("b6", `STORE 1 FLAGS (\Recent)`)[:1], `* 1 FETCH (UID 1 FLAGS (\Recent))`)
	wantLines(t, "STORE -FLAGS (\\Recent)", b.ok("b7", `STORE 2 -FLAGS (\Recent)`)[:1], `* 2 FETCH (UID 2 FLAGS (\Recent))`)
	wantLines(t, "SEARCH OLD", b.ok("b8", "SEARCH OLD")[:1], "* SEARCH")

	// New mail: the first selected session to see it takes it.
	a.send("a8 IDLE\r\n")
	if l := a.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("idle: %q", l)
	}
	if _, err := e.mail.Append(ctx, inbox.ID, nil, time.Time{}, []byte(testMessage)); err != nil {
		t.Fatal(err)
	}
	wantLines(t, "IDLE sees new mail", []string{a.line(), a.line()}, "* 3 EXISTS", "* 1 RECENT")
	a.send("DONE\r\n")
	a.until("a8")
	wantLines(t, "the other session", idleUntil(t, b, "b9", "* 2 RECENT"), "* 3 EXISTS", "* 2 RECENT")
	wantLines(t, "FETCH in the other session", b.ok("b10", "FETCH 3 FLAGS")[:1], `* 3 FETCH (UID 3 FLAGS ())`)

	// A session's own COPY into its mailbox is recent in it.
	wantLines(t, "COPY into the selected mailbox", a.ok("a9", "COPY 1:2 INBOX")[:2], "* 5 EXISTS", "* 3 RECENT")
	wantLines(t, "SEARCH RECENT", a.ok("a10", "SEARCH RECENT")[:1], "* SEARCH 3 4 5")
}

// A keyword is announced in FLAGS (and PERMANENTFLAGS) before any FETCH
// shows it, in the session that stores it and in the others (RFC 3501
// §7.2.6; imaptest: "Keyword used without being in FLAGS"); SELECT's FLAGS
// lists the keywords in use. NIL is an atom, so a keyword like any other.
func TestKeywordsAnnounced(t *testing.T) {
	e := newEnv(t, envOptions{})
	if _, err := e.mail.Append(context.Background(), e.inbox(t).ID, []string{"$Old"}, time.Time{}, []byte(testMessage)); err != nil {
		t.Fatal(err)
	}
	a, b := dial(t, e.addr), dial(t, e.addr)
	a.login()
	b.login()
	const sys = `\Answered \Deleted \Draft \Flagged \Seen`
	out := a.ok("a1", "SELECT INBOX")
	for _, want := range []string{`* FLAGS (` + sys + ` $Old)`, `* OK [PERMANENTFLAGS (` + sys + ` $Old \*)] Permanent flags`} {
		if !contains(out, want) {
			t.Errorf("SELECT lacks %q: %q", want, out)
		}
	}
	if out := b.ok("b1", "EXAMINE INBOX"); !contains(out, `* OK [PERMANENTFLAGS ()] Permanent flags`) {
		t.Errorf("EXAMINE: %q", out)
	}
	wantLines(t, "STORE of a new keyword", a.ok("a2", `STORE 1 +FLAGS ($Hello NIL)`),
		`* FLAGS (`+sys+` $Hello $Old NIL)`,
		`* OK [PERMANENTFLAGS (`+sys+` $Hello $Old NIL \*)] Permanent flags`,
		`* 1 FETCH (UID 1 FLAGS ($Hello $Old NIL \Recent))`,
		"a2 OK STORE completed")
	wantLines(t, "STORE of a known keyword", a.ok("a3", `STORE 1 -FLAGS ($hello)`),
		`* 1 FETCH (UID 1 FLAGS ($Old NIL \Recent))`, "a3 OK STORE completed")
	wantLines(t, "STORE .SILENT of a new keyword", a.ok("a4", `STORE 1 +FLAGS.SILENT ($Quiet)`),
		`* FLAGS (`+sys+` $Hello $Old $Quiet NIL)`,
		`* OK [PERMANENTFLAGS (`+sys+` $Hello $Old $Quiet NIL \*)] Permanent flags`,
		"a4 OK STORE completed")
	wantLines(t, "the other session", idleUntil(t, b, "b2", `* 1 FETCH (UID 1 FLAGS ($Old $Quiet NIL))`),
		`* FLAGS (`+sys+` $Old $Quiet NIL)`,
		`* OK [PERMANENTFLAGS ()] Permanent flags`,
		`* 1 FETCH (UID 1 FLAGS ($Old $Quiet NIL))`)
}

// twoSelected is a server without events (no tailer) with one message
// of flags in INBOX, and two sessions that have INBOX selected, a first.
func twoSelected(t *testing.T, flags ...string) (a, b *client) {
	t.Helper()
	return twoOn(t, envOptions{noTailer: true}, 1, flags)
}

// twoOn is a server of opts with n messages of flags in INBOX, and two
// sessions that have INBOX selected, a first.
func twoOn(t *testing.T, opts envOptions, n int, flags []string) (a, b *client) {
	t.Helper()
	e := newEnv(t, opts)
	for range n {
		if _, err := e.mail.Append(context.Background(), e.inbox(t).ID, flags, time.Time{}, []byte(testMessage)); err != nil {
			t.Fatal(err)
		}
	}
	a, b = dial(t, e.addr), dial(t, e.addr)
	a.login()
	b.login()
	a.ok("a1", "SELECT INBOX")
	b.ok("b1", "SELECT INBOX")
	return a, b
}

// NOOP and CHECK re-read the selected mailbox: what another session changed
// before them shows in their answer even when no event arrives, as clients
// and imaptest poll with them.
func TestNoopRereads(t *testing.T) {
	a, b := twoSelected(t)
	b.ok("b2", `STORE 1 +FLAGS.SILENT (\Flagged)`)
	wantLines(t, "NOOP", a.ok("a2", "NOOP"), `* 1 FETCH (UID 1 FLAGS (\Flagged \Recent))`, "a2 OK NOOP completed")
	b.ok("b3", "COPY 1 INBOX")
	wantLines(t, "CHECK", a.ok("a3", "CHECK"), "* 2 EXISTS", "* 1 RECENT", "a3 OK CHECK completed") // b took the copy: its own COPY polled first
}

// EXPUNGE reports the messages another session expunged before it, though
// their event has not come.
func TestExpungeRereads(t *testing.T) {
	a, b := twoSelected(t, `\Deleted`)
	wantLines(t, "first EXPUNGE", a.ok("a2", "EXPUNGE"), "* 1 EXPUNGE", "a2 OK EXPUNGE completed")
	wantLines(t, "second EXPUNGE", b.ok("b2", "EXPUNGE"), "* 1 EXPUNGE", "b2 OK EXPUNGE completed")
}
