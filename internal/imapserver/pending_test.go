package imapserver

import (
	"context"
	"testing"
	"time"

	"github.com/postern/postern/internal/mailstore"
)

// A message expunged elsewhere keeps its sequence number through FETCH,
// STORE and SEARCH (RFC 9051 §7.5.1), which go on working on the others,
// until a command that allows EXPUNGE reports it.
func TestGoneKeepsItsNumberUntilExpungeAllowed(t *testing.T) {
	a, b := twoWithEvents(t, 3)
	a.ok("a2", `STORE 1 +FLAGS.SILENT (\Deleted)`)
	wantLines(t, "a's EXPUNGE", a.ok("a3", "EXPUNGE"), "* 1 EXPUNGE", "a3 OK EXPUNGE completed")
	time.Sleep(300 * time.Millisecond) // the event reaches b's session
	wantLines(t, "FETCH", b.ok("b2", "FETCH 2 (UID)"), "* 2 FETCH (UID 2)", "b2 OK FETCH completed")
	wantLines(t, "STORE", b.ok("b3", `STORE 2 FLAGS (\Seen)`), `* 2 FETCH (UID 2 FLAGS (\Seen))`, "b3 OK STORE completed")
	wantLines(t, "SEARCH", b.ok("b4", "SEARCH SEEN"), "* SEARCH 2", "b4 OK SEARCH completed")
	// Another change while the expunge waits: its news comes, the
	// expunge still waits.
	a.ok("a4", `STORE 2 +FLAGS.SILENT (\Flagged)`)
	time.Sleep(300 * time.Millisecond)
	wantLines(t, "SEARCH after a change", b.ok("b5", "SEARCH FLAGGED"), "* SEARCH", `* 3 FETCH (UID 3 FLAGS (\Flagged))`, "b5 OK SEARCH completed")
	wantLines(t, "NOOP", b.ok("b6", "NOOP"), "* 1 EXPUNGE", "b6 OK NOOP completed")
	wantLines(t, "FETCH after", b.ok("b7", "FETCH 1:* (UID FLAGS)"), `* 1 FETCH (UID 2 FLAGS (\Seen))`, `* 2 FETCH (UID 3 FLAGS (\Flagged))`, "b7 OK FETCH completed")
}

// imaptest's expunge2, step by step: expunges by one session reported to
// the other only where allowed, the others numbered accordingly.
func TestExpungesSeenFromAnotherSession(t *testing.T) {
	a, b := twoWithEvents(t, 6)
	wait := func() { time.Sleep(200 * time.Millisecond) } // the event reaches b's session
	a.ok("a2", `STORE 1,3 +FLAGS (\Deleted)`)
	wantLines(t, "a EXPUNGE", a.ok("a3", "EXPUNGE"), "* 3 EXPUNGE", "* 1 EXPUNGE", "a3 OK EXPUNGE completed")
	wait()
	// UID commands may report expunges (RFC 9051 §7.5.1).
	wantLines(t, "b UID FETCH", b.ok("b2", "UID FETCH 2,4 (UID)"), "* 2 FETCH (UID 2)", "* 4 FETCH (UID 4)", "* 3 EXPUNGE", "* 1 EXPUNGE", "b2 OK UID FETCH completed")
	wantLines(t, "b NOOP", b.ok("b3", "NOOP"), "b3 OK NOOP completed")
	a.ok("a4", `STORE 1 +FLAGS (\Deleted)`)
	wantLines(t, "a EXPUNGE 2", a.ok("a5", "EXPUNGE"), "* 1 EXPUNGE", "a5 OK EXPUNGE completed")
	wait()
	wantLines(t, "b UID STORE", b.ok("b4", `UID STORE 4 FLAGS (\Seen)`), `* 2 FETCH (UID 4 FLAGS (\Seen))`, "* 1 EXPUNGE", "b4 OK UID STORE completed")
	a.ok("a6", `STORE 1 +FLAGS (\Deleted)`)
	wantLines(t, "a EXPUNGE 3", a.ok("a7", "EXPUNGE"), "* 1 EXPUNGE", "a7 OK EXPUNGE completed")
	wantLines(t, "b CHECK", b.ok("b6", "CHECK"), "* 1 EXPUNGE", "b6 OK CHECK completed")
	a.ok("a8", `STORE 1 +FLAGS (\Deleted)`)
	wantLines(t, "a EXPUNGE 4", a.ok("a9", "EXPUNGE"), "* 1 EXPUNGE", "a9 OK EXPUNGE completed")
	wait()
	wantLines(t, "b FETCH", b.ok("b7", "FETCH 2 (FLAGS)"), `* 2 FETCH (UID 6 FLAGS ())`, "b7 OK FETCH completed")
	wantLines(t, "b STORE", b.ok("b8", `STORE 2 FLAGS (\Seen)`), `* 2 FETCH (UID 6 FLAGS (\Seen))`, "b8 OK STORE completed")
	wantLines(t, "b SEARCH", b.ok("b9", "SEARCH ALL"), "* SEARCH 2", "b9 OK SEARCH completed")
	wantLines(t, "b NOOP 3", b.ok("b10", "NOOP"), "* 1 EXPUNGE", "b10 OK NOOP completed")
}

// SELECT opens the mailbox a name names now, though it opened another one
// under that name before: renamed away and made again, or deleted, by
// another session.
func TestSelectFollowsRenamesAndDeletes(t *testing.T) {
	e := newEnv(t, envOptions{})
	a, b := dial(t, e.addr), dial(t, e.addr)
	a.login()
	b.login()
	b.ok("b1", "CREATE Work")
	if _, err := e.mail.Append(context.Background(), mailboxNamed(t, e, "Work").ID, nil, time.Time{}, []byte(testMessage)); err != nil {
		t.Fatal(err)
	}
	wantHas(t, a.ok("a1", "SELECT Work"), "* 1 EXISTS")
	a.ok("a2", "UNSELECT")
	b.ok("b3", "RENAME Work Archive")
	b.ok("b4", "CREATE Work")
	wantHas(t, a.ok("a3", "SELECT Work"), "* 0 EXISTS")
	wantHas(t, a.ok("a4", "SELECT Archive"), "* 1 EXISTS")
	a.ok("a5", "UNSELECT")
	b.ok("b5", "DELETE Work")
	if got := a.cmd("a6", "SELECT Work"); !contains(got, "a6 NO [NONEXISTENT]") {
		t.Fatalf("SELECT of a deleted mailbox: %q", got)
	}
	b.ok("b6", "CREATE Work")
	wantHas(t, a.ok("a7", "SELECT Work"), "* 0 EXISTS")
}

func wantHas(t *testing.T, lines []string, sub string) {
	t.Helper()
	if !contains(lines, sub) {
		t.Fatalf("no %q in %q", sub, lines)
	}
}

func mailboxNamed(t *testing.T, e *env, name string) mailstore.Mailbox {
	t.Helper()
	mb, err := e.mail.Mailbox(context.Background(), e.member.ID, name)
	if err != nil {
		t.Fatal(err)
	}
	return mb
}

// twoWithEvents returns two sessions with INBOX selected, of n messages,
// on a server whose sessions hear of each other's changes by events.
func twoWithEvents(t *testing.T, n int) (a, b *client) {
	t.Helper()
	return twoOn(t, envOptions{}, n, nil)
}
