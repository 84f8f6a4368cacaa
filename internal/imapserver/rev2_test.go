package imapserver

import (
	"strings"
	"testing"
)

// TestIMAP4rev2Session: a session that enables IMAP4rev2 (RFC 9051) gets
// SELECT without RECENT or UNSEEN and with the mailbox's LIST, ESEARCH for
// every SEARCH, STATUS DELETED, UTF-8 mailbox names, no \Recent, and $.
func TestIMAP4rev2Session(t *testing.T) {
	e := newEnv(t, envOptions{noTailer: true})
	c := dial(t, e.addr)
	if out := c.ok("a0", "CAPABILITY"); !hasCap(out, "IMAP4rev2") || !hasCap(out, "IMAP4rev1") {
		t.Fatalf("capabilities: %q", out)
	}
	c.login()
	appendN(c, 2)
	wantReply(t, c.cmd("a1", "ENABLE IMAP4rev2"), "* ENABLED IMAP4rev2", "a1 OK ENABLE completed")
	wantReply(t, c.cmd("a2", "SELECT INBOX"),
		"* 2 EXISTS",
		"* OK [UIDVALIDITY "+itoa(e.inbox(t).UIDValidity)+"] UIDs valid",
		"* OK [UIDNEXT 3] Predicted next UID",
		`* FLAGS (\Answered \Deleted \Draft \Flagged \Seen)`,
		`* OK [PERMANENTFLAGS (\Answered \Deleted \Draft \Flagged \Seen \*)] Permanent flags`,
		`* LIST (\HasNoChildren) "/" INBOX`,
		"a2 OK [READ-WRITE] SELECT completed")
	wantReply(t, c.cmd("a3", "SEARCH UNSEEN"), `* ESEARCH (TAG "a3") ALL 1:2`, "a3 OK SEARCH completed")
	wantReply(t, c.cmd("a4", "SEARCH 99"), `* ESEARCH (TAG "a4")`, "a4 OK SEARCH completed")
	wantReply(t, c.cmd("a5", "UID SEARCH RETURN (COUNT) ALL"), `* ESEARCH (TAG "a5") UID COUNT 2`, "a5 OK UID SEARCH completed")
	c.ok("a6", `STORE 1 +FLAGS.SILENT (\Deleted)`)
	wantReply(t, c.cmd("a7", "STATUS INBOX (MESSAGES DELETED)"), `* STATUS INBOX (MESSAGES 2 DELETED 1)`, "a7 OK STATUS completed")
	out := c.ok("a8", "FETCH 1:2 (FLAGS)")
	if contains(out, `\Recent`) {
		t.Errorf("\\Recent in an IMAP4rev2 session: %q", out)
	}
	c.ok("a9", "SEARCH RETURN (SAVE) DELETED")
	wantReply(t, c.cmd("b1", "FETCH $ (UID)"), "* 1 FETCH (UID 1)", "b1 OK FETCH completed")
	c.ok("b2", `CREATE "Q&A"`)
	if out := c.ok("b3", `LIST "" "Q*"`); !contains(out, `"/" "Q&A"`) || strings.Contains(strings.Join(out, ""), "&-") {
		t.Errorf("UTF-8 name: %q", out)
	}
}
