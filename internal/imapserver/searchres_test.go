package imapserver

import (
	"fmt"
	"testing"
)

// appendN appends n one-line messages to INBOX through the client.
func appendN(c *client, n int) {
	c.t.Helper()
	for i := 0; i < n; i++ {
		msg := "Subject: m" + itoa(uint32(i+1)) + "\r\n\r\nbody\r\n"
		c.send("ap APPEND INBOX {" + itoa(uint32(len(msg))) + "+}\r\n" + msg + "\r\n")
		c.until("ap")
	}
}

// TestSearchRes: SEARCH RETURN (SAVE) keeps its result for "$" (RFC 5182)
// in FETCH, STORE, COPY, SEARCH and their UID forms; SAVE alone answers
// with the tagged OK only; with MIN or MAX alone only those are saved; a
// new SELECT empties it; an expunged message drops out of it.
func TestSearchRes(t *testing.T) {
	e := newEnv(t, envOptions{noTailer: true})
	c := dial(t, e.addr)
	c.login()
	if out := c.ok("a0", "CAPABILITY"); !hasCap(out, "SEARCHRES") || !hasCap(out, "ESEARCH") {
		t.Fatalf("capabilities: %q", out)
	}
	appendN(c, 5)
	c.ok("a1", "SELECT INBOX")
	wantReply(t, c.cmd("a2", "FETCH $ (UID)"), "a2 OK FETCH completed")
	c.ok("a3", "STORE 2,4 +FLAGS.SILENT (\\Flagged)")
	wantReply(t, c.cmd("a4", "SEARCH RETURN (SAVE) FLAGGED"), "a4 OK SEARCH completed")
	wantReply(t, c.cmd("a5", "FETCH $ (UID)"),
		"* 2 FETCH (UID 2)", "* 4 FETCH (UID 4)", "a5 OK FETCH completed")
	wantReply(t, c.cmd("a6", "UID SEARCH UID $"), "* SEARCH 2 4", "a6 OK UID SEARCH completed")
	wantReply(t, c.cmd("a7", "SEARCH $ 3:*"), "* SEARCH 4", "a7 OK SEARCH completed")
	wantReply(t, c.cmd("a8", "STORE $ +FLAGS (\\Seen)"),
		"* 2 FETCH (UID 2 FLAGS (\\Flagged \\Seen \\Recent))", "* 4 FETCH (UID 4 FLAGS (\\Flagged \\Seen \\Recent))", "a8 OK STORE completed")
	c.ok("a9", "CREATE Saved")
	if out := c.cmd("a10", "UID COPY $ Saved"); out[len(out)-1] != "a10 OK [COPYUID "+itoa(copyValidity(t, c))+" 2,4 1:2] COPY completed" {
		t.Errorf("copy: %q", out)
	}
	// MIN and MAX with SAVE save only those; the ESEARCH still answers.
	wantReply(t, c.cmd("b1", "SEARCH RETURN (SAVE MIN) ALL"), "* ESEARCH (TAG \"b1\") MIN 1", "b1 OK SEARCH completed")
	wantReply(t, c.cmd("b2", "UID FETCH $ (UID)"), "* 1 FETCH (UID 1)", "b2 OK UID FETCH completed")
	wantReply(t, c.cmd("b3", "SEARCH RETURN (SAVE MIN MAX) ALL"), "* ESEARCH (TAG \"b3\") MIN 1 MAX 5", "b3 OK SEARCH completed")
	wantReply(t, c.cmd("b4", "FETCH $ (UID)"), "* 1 FETCH (UID 1)", "* 5 FETCH (UID 5)", "b4 OK FETCH completed")
	wantReply(t, c.cmd("b5", "SEARCH RETURN (SAVE COUNT) 2:3"), "* ESEARCH (TAG \"b5\") COUNT 2", "b5 OK SEARCH completed")
	// An expunged message drops out; the rest keep their UIDs.
	c.ok("b6", "STORE 2 +FLAGS.SILENT (\\Deleted)")
	c.ok("b7", "EXPUNGE")
	wantReply(t, c.cmd("b8", "FETCH $ (UID)"), "* 2 FETCH (UID 3)", "b8 OK FETCH completed")
	// MOVE takes $ as well.
	wantReply(t, c.cmd("b9", "UID MOVE $ Saved")[1:], "* 2 EXPUNGE", "b9 OK UID MOVE completed")
	// SELECT forgets it.
	c.ok("c1", "SEARCH RETURN (SAVE) ALL")
	c.ok("c2", "SELECT INBOX")
	wantReply(t, c.cmd("c3", "FETCH $ (UID)"), "c3 OK FETCH completed")
}

// copyValidity is the UIDVALIDITY of the mailbox Saved.
func copyValidity(t *testing.T, c *client) uint32 {
	t.Helper()
	out := c.ok("cv", "STATUS Saved (UIDVALIDITY)")
	var v uint32
	for _, l := range out {
		if n, _ := fmt.Sscanf(l, "* STATUS \"Saved\" (UIDVALIDITY %d)", &v); n == 1 {
			return v
		}
		if n, _ := fmt.Sscanf(l, "* STATUS Saved (UIDVALIDITY %d)", &v); n == 1 {
			return v
		}
	}
	t.Fatalf("no UIDVALIDITY in %q", out)
	return 0
}
