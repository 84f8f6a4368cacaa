package imapserver

import (
	"strings"
	"testing"
)

// TestMailboxNamesWithAmpersand: a name that is not modified UTF-7 from a
// client that speaks it is the client's mistake (BAD [CLIENTBUG], never
// SERVERBUG); after ENABLE UTF8=ACCEPT, & is an ordinary character both
// ways (RFC 6855 §3), and each kind of session sees the same mailboxes in
// its own form.
func TestMailboxNamesWithAmpersand(t *testing.T) {
	e := newEnv(t, envOptions{noTailer: true})
	rev1 := dial(t, e.addr)
	rev1.login()
	for _, cmd := range []string{`LIST "" &`, `LIST "" "a&b"`, `CREATE Q&A`, `STATUS "R&D" (MESSAGES)`} {
		if out := rev1.cmd("b", cmd); !strings.HasPrefix(out[len(out)-1], "b BAD [CLIENTBUG] ") {
			t.Errorf("%s: %q", cmd, out)
		}
	}
	rev1.ok("c1", `CREATE "Q&-A"`)

	u := dial(t, e.addr)
	u.login()
	u.ok("u0", "ENABLE UTF8=ACCEPT")
	if out := u.ok("u1", `LIST "" "*"`); !contains(out, `* LIST (\HasNoChildren) "/" "Q&A"`) {
		t.Errorf("UTF-8 session's LIST: %q", out)
	}
	if out := u.ok("u2", `STATUS "Q&A" (MESSAGES)`); !contains(out, `* STATUS "Q&A" (MESSAGES 0)`) {
		t.Errorf("UTF-8 STATUS: %q", out)
	}
	u.ok("u3", `CREATE "Tom & Jerry"`)
	u.ok("u4", `CREATE "R&D/Plans"`)
	if out := u.ok("u5", `LIST "" "Tom & Jerry"`); !contains(out, `* LIST (\HasNoChildren) "/" "Tom & Jerry"`) {
		t.Errorf("UTF-8 LIST of one name: %q", out)
	}
	out := rev1.ok("c2", `LIST "" "*"`)
	for _, want := range []string{`"/" "Q&-A"`, `"/" "Tom &- Jerry"`, `"/" "R&-D/Plans"`} {
		if !contains(out, want) {
			t.Errorf("modified UTF-7 session's LIST lacks %s: %q", want, out)
		}
	}
	if out := u.cmd("u6", "CREATE \"\xff\""); !strings.HasPrefix(out[len(out)-1], "u6 BAD") {
		t.Errorf("invalid UTF-8 name: %q", out)
	}
}
