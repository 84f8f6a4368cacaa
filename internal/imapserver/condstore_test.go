package imapserver

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/postern/postern/internal/mailstore"
)

// wantLines fails unless got (the untagged responses and the tagged one)
// is exactly want.
func wantLines(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s:\n got %q\nwant %q", what, got, want)
	}
}

// selectedSession is another session, logged in, with INBOX selected.
func selectedSession(t *testing.T, e *env) *client {
	t.Helper()
	b := dial(t, e.addr)
	b.login()
	b.ok("b1", "SELECT INBOX")
	return b
}

// idle starts IDLE and waits for its continuation request.
func (c *client) idle(tag string) {
	c.t.Helper()
	c.send(tag + " IDLE\r\n")
	if l := c.line(); !strings.HasPrefix(l, "+") {
		c.t.Fatalf("idle: %q", l)
	}
}

// condStoreEnv is a server with three messages in INBOX, appended by
// IMAP: their MODSEQs are 2, 3 and 4 (a new mailbox starts at 1).
func condStoreEnv(t *testing.T, o envOptions) (*env, uint32) {
	t.Helper()
	e := newEnv(t, o)
	c := dial(t, e.addr)
	c.login()
	for i := 1; i <= 3; i++ {
		appendCmd(c, fmt.Sprintf("p%d", i), "INBOX", "", testMessage)
	}
	c.ok("z", "LOGOUT")
	return e, e.inbox(t).UIDValidity
}

func TestCondStoreCapabilityAndEnable(t *testing.T) {
	e := newEnv(t, envOptions{noTailer: true})
	c := dial(t, e.addr)
	c.login()
	if caps := c.ok("a1", "CAPABILITY"); !strings.Contains(caps[0], " CONDSTORE QRESYNC") {
		t.Errorf("capabilities: %q", caps)
	}
	wantLines(t, "enable condstore", c.cmd("a2", "ENABLE CONDSTORE"), "* ENABLED CONDSTORE", "a2 OK ENABLE completed")
	wantLines(t, "enable qresync", c.cmd("a3", "ENABLE QRESYNC"), "* ENABLED QRESYNC", "a3 OK ENABLE completed")
	wantLines(t, "enable again", c.cmd("a4", "ENABLE QRESYNC CONDSTORE QRESYNC"), "* ENABLED QRESYNC CONDSTORE", "a4 OK ENABLE completed")
}

func TestCondStoreCommands(t *testing.T) {
	e, v := condStoreEnv(t, envOptions{noTailer: true})
	c := dial(t, e.addr)
	c.login()
	wantLines(t, "status", c.cmd("a1", "STATUS INBOX (MESSAGES HIGHESTMODSEQ)"),
		"* STATUS INBOX (MESSAGES 3 HIGHESTMODSEQ 4)", "a1 OK STATUS completed")
	wantLines(t, "select", c.cmd("a2", "SELECT INBOX (CONDSTORE)"),
		"* 3 EXISTS", "* 0 RECENT", "* OK [UNSEEN 1] First unseen message",
		fmt.Sprintf("* OK [UIDVALIDITY %d] UIDs valid", v), "* OK [UIDNEXT 4] Predicted next UID",
		`* FLAGS (\Answered \Deleted \Draft \Flagged \Seen)`,
		`* OK [PERMANENTFLAGS (\Answered \Deleted \Draft \Flagged \Seen \*)] Permanent flags`,
		"* OK [HIGHESTMODSEQ 4] Highest",
		"a2 OK [READ-WRITE] SELECT completed")
	wantLines(t, "fetch modseq", c.cmd("a3", "FETCH 1:* (FLAGS MODSEQ)"),
		"* 1 FETCH (UID 1 FLAGS () MODSEQ (2))", "* 2 FETCH (UID 2 FLAGS () MODSEQ (3))", "* 3 FETCH (UID 3 FLAGS () MODSEQ (4))",
		"a3 OK FETCH completed")
	// Once CONDSTORE is on, every FETCH a flag change causes has MODSEQ.
	wantLines(t, "store", c.cmd("a4", `STORE 2 +FLAGS (\Seen)`),
		`* 2 FETCH (UID 2 FLAGS (\Seen) MODSEQ (5))`, "a4 OK STORE completed")
	// UNCHANGEDSINCE: 2 changed at 5, after 4: left alone, named in MODIFIED.
	wantLines(t, "store unchangedsince", c.cmd("a5", `STORE 1:3 (UNCHANGEDSINCE 4) +FLAGS.SILENT (\Flagged)`),
		"* 1 FETCH (UID 1 MODSEQ (6))", "* 3 FETCH (UID 3 MODSEQ (6))",
		"a5 OK [MODIFIED 2] Conditional STORE failed")
	wantLines(t, "uid store unchangedsince", c.cmd("a6", `UID STORE 1,2 (UNCHANGEDSINCE 5) FLAGS (\Answered)`),
		`* 2 FETCH (UID 2 FLAGS (\Answered) MODSEQ (7))`,
		"a6 OK [MODIFIED 1] Conditional STORE failed")
	wantLines(t, "unchangedsince 0", c.cmd("a7", `UID STORE 1:* (UNCHANGEDSINCE 0) +FLAGS (\Seen)`),
		"a7 OK [MODIFIED 1:3] Conditional STORE failed")
	wantLines(t, "unchangedsince, nothing fails", c.cmd("a8", `STORE 3 (UNCHANGEDSINCE 7) -FLAGS (\Flagged)`),
		"* 3 FETCH (UID 3 FLAGS () MODSEQ (8))", "a8 OK STORE completed")
	// imapflow's order: the modifiers after the flag list.
	wantLines(t, "modifier after the flags", c.cmd("a8b", `UID STORE 3 +FLAGS ($X) (UNCHANGEDSINCE 7)`),
		"a8b OK [MODIFIED 3] Conditional STORE failed")
	wantLines(t, "changedsince", c.cmd("a9", "FETCH 1:* (FLAGS) (CHANGEDSINCE 6)"),
		`* 2 FETCH (UID 2 FLAGS (\Answered) MODSEQ (7))`, "* 3 FETCH (UID 3 FLAGS () MODSEQ (8))",
		"a9 OK FETCH completed")
	wantLines(t, "uid changedsince", c.cmd("a10", "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 7)"),
		"* 3 FETCH (UID 3 FLAGS () MODSEQ (8))", "a10 OK UID FETCH completed")
	wantLines(t, "search modseq", c.cmd("a11", "SEARCH MODSEQ 6"), "* SEARCH 1 2 3 (MODSEQ 8)", "a11 OK SEARCH completed")
	wantLines(t, "uid search modseq", c.cmd("a12", `UID SEARCH MODSEQ "/flags/\\seen" all 7 NOT DELETED`),
		"* SEARCH 2 3 (MODSEQ 8)", "a12 OK UID SEARCH completed")
	wantLines(t, "search modseq, none", c.cmd("a13", "SEARCH MODSEQ 9"), "* SEARCH", "a13 OK SEARCH completed")
	wantLines(t, "esearch modseq min", c.cmd("a14", "SEARCH RETURN (MIN) MODSEQ 6"),
		`* ESEARCH (TAG "a14") MIN 1 MODSEQ 6`, "a14 OK SEARCH completed")
	wantLines(t, "esearch modseq all", c.cmd("a15", "SEARCH RETURN (ALL) MODSEQ 6"),
		`* ESEARCH (TAG "a15") ALL 1:3 MODSEQ 8`, "a15 OK SEARCH completed")
	// A flag change is one mod-sequence for every message it changes; a
	// STORE that changes nothing takes none.
	wantLines(t, "store two", c.cmd("a16", `STORE 1:2 +FLAGS.SILENT (\Draft)`),
		"* 1 FETCH (UID 1 MODSEQ (9))", "* 2 FETCH (UID 2 MODSEQ (9))", "a16 OK STORE completed")
	wantLines(t, "store nothing", c.cmd("a17", `STORE 1:2 +FLAGS.SILENT (\Draft)`), "a17 OK STORE completed")
	wantLines(t, "status after", c.cmd("a18", "STATUS INBOX (HIGHESTMODSEQ)"),
		"* STATUS INBOX (HIGHESTMODSEQ 9)", "a18 OK STATUS completed")
}

// A client that never sent ENABLE turns CONDSTORE on with its first
// CONDSTORE command, and is then told HIGHESTMODSEQ (RFC 7162 §3.1).
func TestCondStoreEnablingCommand(t *testing.T) {
	e, _ := condStoreEnv(t, envOptions{noTailer: true})
	c := dial(t, e.addr)
	c.login()
	if out := c.ok("a1", "SELECT INBOX"); contains(out, "HIGHESTMODSEQ") {
		t.Fatalf("HIGHESTMODSEQ before CONDSTORE: %q", out)
	}
	wantLines(t, "plain store", c.cmd("a2", `STORE 1 +FLAGS (\Seen)`), `* 1 FETCH (UID 1 FLAGS (\Seen))`, "a2 OK STORE completed")
	// HIGHESTMODSEQ is what the view is known complete up to: this
	// session's STORE at 5 does not tell that nothing else happened below.
	wantLines(t, "fetch modseq", c.cmd("a3", "FETCH 3 (MODSEQ)"),
		"* OK [HIGHESTMODSEQ 4] Highest", "* 3 FETCH (UID 3 MODSEQ (4))", "a3 OK FETCH completed")
	wantLines(t, "store after", c.cmd("a4", `STORE 1 -FLAGS (\Seen)`), "* 1 FETCH (UID 1 FLAGS () MODSEQ (6))", "a4 OK STORE completed")
	wantLines(t, "fetch modseq again", c.cmd("a5", "FETCH 3 (MODSEQ)"), "* 3 FETCH (UID 3 MODSEQ (4))", "a5 OK FETCH completed")
	// Reading a body without PEEK sets \Seen: the new MODSEQ goes with it.
	out := c.cmd("a6", "FETCH 2 (BODY[HEADER.FIELDS (SUBJECT)])")
	if !strings.HasPrefix(out[0], `* 2 FETCH (UID 2 FLAGS (\Seen) MODSEQ (7) BODY[HEADER.FIELDS ("SUBJECT")]`) {
		t.Fatalf("fetch body: %q", out)
	}
}

func TestCondStoreBadSyntax(t *testing.T) {
	e, _ := condStoreEnv(t, envOptions{noTailer: true})
	c := dial(t, e.addr)
	c.login()
	bad := func(tag, cmd, text string) {
		t.Helper()
		out := c.cmd(tag, cmd)
		if want := tag + " BAD [CLIENTBUG] " + text; out[len(out)-1] != want {
			t.Errorf("%s:\n got %q\nwant %q", cmd, out, want)
		}
	}
	bad("b1", "SELECT INBOX (QRESYNC (1 1))", "SELECT (QRESYNC) needs ENABLE QRESYNC first")
	bad("b2", "SELECT INBOX (FOO)", "Unknown SELECT parameter")
	c.ok("b3", "ENABLE QRESYNC")
	bad("b4", "SELECT INBOX (QRESYNC (1))", "QRESYNC needs a UIDVALIDITY and a mod-sequence")
	bad("b5", "SELECT INBOX (QRESYNC (0 1))", "QRESYNC: UIDVALIDITY must not be 0")
	bad("b6", "SELECT INBOX (QRESYNC (1 1 1:5 (1:2 1:2) 7))", "QRESYNC: too many parameters")
	c.ok("b7", "SELECT INBOX")
	bad("b8", "FETCH 1 (FLAGS) (CHANGEDSINCE 1 VANISHED)", "VANISHED is for UID FETCH only")
	bad("b9", "UID FETCH 1 (FLAGS) (VANISHED)", "VANISHED needs CHANGEDSINCE")
	bad("b10", "FETCH 1 (FLAGS) (SOMETHING)", "Unknown FETCH modifier")
	bad("b11", `STORE 1 (FOO 1) +FLAGS (\Seen)`, "Unknown STORE modifier")
	bad("b12", `STORE 1 (UNCHANGEDSINCE 1 UNCHANGEDSINCE 2) +FLAGS (\Seen)`, "Unknown STORE modifier")
	bad("b12b", `STORE 1 (UNCHANGEDSINCE 1) +FLAGS (\Seen) (UNCHANGEDSINCE 2)`, `Syntax error: expected CRLF, got "("`)
	bad("b12c", `STORE 1 +FLAGS (\Seen) (FOO 2)`, "Unknown STORE modifier")
	bad("b13", `SEARCH MODSEQ "/flags/\\seen" everybody 1`, "SEARCH MODSEQ: the entry type is priv, shared or all")
	out := c.cmd("b14", "FETCH 1 (FLAGS) (CHANGEDSINCE x)")
	if !strings.HasPrefix(out[len(out)-1], "b14 BAD [CLIENTBUG] Syntax error") {
		t.Errorf("changedsince x: %q", out)
	}
}

// A client that enabled QRESYNC is told of expunges with VANISHED, by
// EXPUNGE, MOVE and in IDLE, and resynchronises with SELECT (QRESYNC ...)
// and UID FETCH (CHANGEDSINCE ... VANISHED): exactly the flags changed and
// the UIDs expunged since its HIGHESTMODSEQ.
func TestQResync(t *testing.T) {
	e, v := condStoreEnv(t, envOptions{})
	a := dial(t, e.addr)
	a.login()
	a.ok("a1", "ENABLE QRESYNC")
	if out := a.ok("a2", "SELECT INBOX"); !contains(out, "* OK [HIGHESTMODSEQ 4] Highest") {
		t.Fatalf("select: %q", out)
	}
	// Changes by another session, seen in IDLE.
	b := selectedSession(t, e)
	a.idle("a3")
	b.ok("b2", `STORE 2 +FLAGS (\Seen)`)
	if l := a.line(); l != `* 2 FETCH (UID 2 FLAGS (\Seen) MODSEQ (5))` {
		t.Fatalf("in IDLE: %q", l)
	}
	b.ok("b3", `STORE 3 +FLAGS (\Deleted)`)
	b.ok("b4", "EXPUNGE")
	for {
		l := a.line()
		if l == "* VANISHED 3" {
			break
		}
		if l != `* 3 FETCH (UID 3 FLAGS (\Deleted) MODSEQ (6))` {
			t.Fatalf("in IDLE: %q", l)
		}
	}
	a.send("DONE\r\n")
	a.until("a3")

	// A new session resynchronises from HIGHESTMODSEQ 4: message 2's new
	// flags and the expunge of 3; message 1 did not change.
	c := dial(t, e.addr)
	c.login()
	c.ok("c1", "ENABLE QRESYNC")
	out := c.ok("c2", fmt.Sprintf("SELECT INBOX (QRESYNC (%d 4))", v))
	tail := out[len(out)-3:]
	wantLines(t, "qresync select", tail, "* VANISHED (EARLIER) 3", `* 2 FETCH (UID 2 FLAGS (\Seen) MODSEQ (5))`, "c2 OK [READ-WRITE] SELECT completed")
	if !contains(out, "* OK [HIGHESTMODSEQ 7] Highest") || !contains(out, "* 2 EXISTS") {
		t.Fatalf("select: %q", out)
	}
	// With known UIDs: only those are reported.
	out = c.ok("c3", fmt.Sprintf("EXAMINE INBOX (QRESYNC (%d 4 1:2))", v))
	if out[0] != "* OK [CLOSED] Previous mailbox is now closed" || contains(out, "VANISHED") {
		t.Fatalf("examine with known UIDs: %q", out)
	}
	// Another UIDVALIDITY: nothing but the usual responses.
	if out := c.ok("c4", "EXAMINE INBOX (QRESYNC (1 4))"); contains(out, "VANISHED") || contains(out, "FETCH") {
		t.Fatalf("other uidvalidity: %q", out)
	}
	wantLines(t, "uid fetch vanished", c.cmd("c5", "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 4 VANISHED)"),
		"* VANISHED (EARLIER) 3", `* 2 FETCH (UID 2 FLAGS (\Seen) MODSEQ (5))`, "c5 OK UID FETCH completed")
	wantLines(t, "uid fetch vanished, up to date", c.cmd("c6", "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 7 VANISHED)"),
		"c6 OK UID FETCH completed")

	// EXPUNGE and MOVE of a QRESYNC client answer VANISHED.
	c.ok("c7", "SELECT INBOX")
	appendCmd(c, "c8", "INBOX", `\Deleted`, testMessage)
	appendCmd(c, "c9", "INBOX", `\Deleted`, testMessage)
	c.ok("c10", "NOOP")
	wantLines(t, "expunge", c.cmd("c11", "EXPUNGE"), "* VANISHED 4:5", "c11 OK EXPUNGE completed")
	wantLines(t, "move", c.cmd("c12", "UID MOVE 1 Trash"),
		fmt.Sprintf("* OK [COPYUID %d 1 1] COPY completed", e.trash(t).UIDValidity), "* VANISHED 1", "c12 OK UID MOVE completed")
}

// When the tombstones of old expunges are gone, a client resynchronising
// from before them is told every UID it may know that is not present.
func TestQResyncPrunedTombstones(t *testing.T) {
	e, v := condStoreEnv(t, envOptions{noTailer: true, wrapMail: func(m mailstore.Store) mailstore.Store { return forgetful{m} }})
	c := dial(t, e.addr)
	c.login()
	c.ok("a1", "ENABLE QRESYNC")
	c.ok("a2", "SELECT INBOX")
	c.ok("a3", `STORE 2 +FLAGS.SILENT (\Deleted)`)
	c.ok("a4", "EXPUNGE")
	appendCmd(c, "a5", "INBOX", "", testMessage) // UID 4, the third message
	wantLines(t, "uid fetch vanished", c.cmd("a6", "UID FETCH 1:* (UID) (CHANGEDSINCE 4 VANISHED)"),
		"* VANISHED (EARLIER) 2", "* 3 FETCH (UID 4 MODSEQ (7))", "a6 OK UID FETCH completed")
	out := c.ok("a7", fmt.Sprintf("SELECT INBOX (QRESYNC (%d 4 1:10))", v))
	if !contains(out, "* VANISHED (EARLIER) 2") {
		t.Fatalf("select: %q", out)
	}
}

// forgetful is a store whose tombstones are never complete.
type forgetful struct{ mailstore.Store }

func (f forgetful) Vanished(ctx context.Context, mailboxID int64, since uint64) ([]uint32, bool, error) {
	return nil, false, nil
}

// The HIGHESTMODSEQ told when a command enables CONDSTORE follows the
// changes the session has reported, those of other sessions included.
func TestCondStoreHighestFollowsUpdates(t *testing.T) {
	e, _ := condStoreEnv(t, envOptions{})
	a := dial(t, e.addr)
	a.login()
	a.ok("a1", "SELECT INBOX")
	b := selectedSession(t, e)
	a.idle("a2")
	b.ok("b2", `STORE 1 +FLAGS (\Seen)`)
	if l := a.line(); l != `* 1 FETCH (UID 1 FLAGS (\Seen))` {
		t.Fatalf("in IDLE: %q", l)
	}
	a.send("DONE\r\n")
	a.until("a2")
	wantLines(t, "fetch modseq", a.cmd("a3", "FETCH 1 (MODSEQ)"),
		"* OK [HIGHESTMODSEQ 5] Highest", "* 1 FETCH (UID 1 MODSEQ (5))", "a3 OK FETCH completed")
}

// VANISHED (EARLIER) names no UID the session still shows: one expunged
// elsewhere but not yet reported to it is reported as it leaves the view.
func TestQResyncVanishedEarlierSkipsTheView(t *testing.T) {
	e, _ := condStoreEnv(t, envOptions{noTailer: true}) // no events: a never re-reads
	a := dial(t, e.addr)
	a.login()
	a.ok("a1", "ENABLE QRESYNC")
	a.ok("a2", "SELECT INBOX")
	b := dial(t, e.addr)
	b.login()
	b.ok("b0", "ENABLE QRESYNC")
	b.ok("b1", "SELECT INBOX")
	b.ok("b2", `STORE 1 +FLAGS.SILENT (\Deleted)`)
	wantLines(t, "expunge in b", b.cmd("b3", "EXPUNGE"), "* VANISHED 1", "b3 OK EXPUNGE completed")
	wantLines(t, "uid fetch vanished", a.cmd("a3", "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 4 VANISHED)"), "a3 OK UID FETCH completed")
	wantLines(t, "uid fetch vanished in b", b.cmd("b5", "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 4 VANISHED)"),
		"* VANISHED (EARLIER) 1", "b5 OK UID FETCH completed")
}
