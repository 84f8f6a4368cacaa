package imapserver

import (
	"testing"
)

// TestCreateSpecialUse: CREATE name (USE (…)) stores the special use
// (RFC 6154 §3), which LIST shows; a use a real mailbox cannot have, an
// unknown one, or two at once are NO [USEATTR], and nothing is created.
func TestCreateSpecialUse(t *testing.T) {
	_, c := loggedIn(t, "CREATE-SPECIAL-USE")
	c.ok("a1", `CREATE Old (USE (\archive))`)
	wantReply(t, c.cmd("a2", `LIST "" Old`), `* LIST (\HasNoChildren \Archive) "/" "Old"`, "a2 OK LIST completed")
	c.ok("a3", `CREATE Plain (USE ())`)
	for _, cmd := range []string{`CREATE A (USE (\All))`, `CREATE A (USE (\Flagged))`, `CREATE A (USE (\Bogus))`, `CREATE A (USE (\Sent \Trash))`} {
		out := c.cmd("b", cmd)
		if last := out[len(out)-1]; len(last) < 14 || last[:14] != "b NO [USEATTR]" {
			t.Errorf("%s: %q", cmd, out)
		}
	}
	wantReply(t, c.cmd("a4", `LIST "" A`), "a4 OK LIST completed")
}
