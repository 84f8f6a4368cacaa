package imapserver

import (
	"strings"
	"testing"
)

// TestMailboxNamesWithAmpersand: a name that is not modified UTF-7 from a
// client that speaks it names no mailbox that can exist: the command reads
// its whole line and answers NO [CANNOT] with the reason (never SERVERBUG,
// never BAD, after which imaptest and some clients drop the connection), and
// LIST or LSUB with such a pattern lists nothing; after ENABLE UTF8=ACCEPT,
// & is an ordinary character both ways (RFC 6855 §3), and each kind of
// session sees the same mailboxes in its own form.
func TestMailboxNamesWithAmpersand(t *testing.T) {
	e := newEnv(t, envOptions{noTailer: true})
	rev1 := dial(t, e.addr)
	rev1.login()
	const notUTF7 = "NO [CANNOT] Mailbox name is not valid modified UTF-7 (RFC 3501 §5.1.3): write & as &-"
	for _, cmd := range []string{`CREATE Q&A`, `STATUS "R&D" (MESSAGES)`, "SELECT !#$&'+,-.0123456789:;<=>?@^_`|[}",
		`EXAMINE "R&D"`, `DELETE "R&D"`, `RENAME "R&D" Other`, `RENAME INBOX "R&D"`, `SUBSCRIBE "R&D"`, "SELECT {3+}\r\nR&D", `APPEND "R&D" {1+}` + "\r\nx"} {
		if out := rev1.cmd("b", cmd); len(out) != 1 || out[0] != "b "+notUTF7 {
			t.Errorf("%s: %q", cmd, out)
		}
	}
	for _, cmd := range []string{`LIST "" &`, `LIST "" "a&b"`, "LIST \"\" !#$&'+,-.0123456789:;<=>?@^_`|[}%*", `LIST "R&D" *`, `LSUB "" "a&b"`} {
		if out := rev1.cmd("b", cmd); len(out) != 1 || !strings.HasPrefix(out[0], "b OK ") {
			t.Errorf("%s: %q", cmd, out)
		}
	}
	rev1.ok("n", "NOOP") // the connection is still in step
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
	if out := u.cmd("u6", "CREATE \"\xff\""); len(out) != 1 || out[0] != "u6 NO [CANNOT] Mailbox name is not valid UTF-8" {
		t.Errorf("invalid UTF-8 name: %q", out)
	}
}
