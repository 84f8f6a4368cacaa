package imapserver

import (
	"testing"
)

// TestListExtended: LIST-EXTENDED (RFC 5258) with several patterns, the
// selection options SUBSCRIBED (a deleted mailbox still subscribed shows
// as \NonExistent), SPECIAL-USE, REMOTE and RECURSIVEMATCH (CHILDINFO), and
// the return options SUBSCRIBED, CHILDREN, SPECIAL-USE and STATUS.
func TestListExtended(t *testing.T) {
	_, c := loggedIn(t, "LIST-EXTENDED")
	for _, cmd := range []string{"CREATE L/a", "CREATE L/b/c", `CREATE L/d (USE (\Archive))`, "CREATE L/gone",
		"UNSUBSCRIBE L", "UNSUBSCRIBE L/a", "UNSUBSCRIBE L/b", "UNSUBSCRIBE L/b/c", "UNSUBSCRIBE L/d",
		"SUBSCRIBE L/a", "SUBSCRIBE L/b/c", "SUBSCRIBE L/gone", "DELETE L/gone"} {
		c.ok("p", cmd)
	}
	wantReply(t, c.cmd("a1", `LIST (SUBSCRIBED) "" "L/*"`),
		`* LIST (\HasNoChildren \Subscribed) "/" "L/a"`,
		`* LIST (\HasNoChildren \Subscribed) "/" "L/b/c"`,
		`* LIST (\NonExistent \Subscribed) "/" "L/gone"`,
		"a1 OK LIST completed")
	wantReply(t, c.cmd("a2", `LIST (SUBSCRIBED RECURSIVEMATCH) "" "L/%" RETURN (CHILDREN)`),
		`* LIST (\HasNoChildren \Subscribed) "/" "L/a"`,
		`* LIST (\HasChildren) "/" "L/b" (CHILDINFO ("SUBSCRIBED"))`,
		`* LIST (\NonExistent \Subscribed) "/" "L/gone"`,
		"a2 OK LIST completed")
	// A subscribed child that a pattern matches earns its parent nothing.
	wantReply(t, c.cmd("a3", `LIST (SUBSCRIBED RECURSIVEMATCH) "" ("L/b" "L/b/c")`),
		`* LIST (\HasNoChildren \Subscribed) "/" "L/b/c"`,
		"a3 OK LIST completed")
	wantReply(t, c.cmd("a4", `LIST "" ("L/a" "L/d") RETURN (SUBSCRIBED SPECIAL-USE)`),
		`* LIST (\HasNoChildren \Subscribed) "/" "L/a"`,
		`* LIST (\HasNoChildren \Archive) "/" "L/d"`,
		"a4 OK LIST completed")
	wantReply(t, c.cmd("a5", `LIST (SPECIAL-USE) "" "L/*"`),
		`* LIST (\HasNoChildren \Archive) "/" "L/d"`,
		"a5 OK LIST completed")
	wantReply(t, c.cmd("a6", `LIST (REMOTE) "" "L/%"`),
		`* LIST (\HasNoChildren) "/" "L/a"`,
		`* LIST (\HasChildren) "/" "L/b"`,
		`* LIST (\HasNoChildren \Archive) "/" "L/d"`,
		"a6 OK LIST completed")
	wantReply(t, c.cmd("a7", `LIST "" "L/a" RETURN (STATUS (MESSAGES))`),
		`* LIST (\HasNoChildren) "/" "L/a"`,
		`* STATUS "L/a" (MESSAGES 0)`,
		"a7 OK LIST completed")
	wantReply(t, c.cmd("a8", `LIST (RECURSIVEMATCH) "" "*"`),
		"a8 BAD [CLIENTBUG] The LIST RECURSIVEMATCH select option requires SUBSCRIBED")
	// Unsubscribing the deleted mailbox's name forgets it; a mailbox made
	// again under a subscribed name is subscribed.
	c.ok("b1", "CREATE L/again")
	c.ok("b2", "SUBSCRIBE L/again")
	c.ok("b3", "DELETE L/again")
	c.ok("b4", "UNSUBSCRIBE L/gone")
	wantReply(t, c.cmd("b5", "UNSUBSCRIBE L/gone"), "b5 NO [NONEXISTENT] No such mailbox.")
	c.ok("b6", "CREATE L/again")
	wantReply(t, c.cmd("b7", `LIST (SUBSCRIBED) "" "L/*g*"`),
		`* LIST (\HasNoChildren \Subscribed) "/" "L/again"`,
		"b7 OK LIST completed")
}
