package imapserver

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2/imapserver"
)

// TestSearchTooDeep: SEARCH keys nested past imapserver.MaxSearchDepth
// (NOT, OR, parentheses, and the decoder's own list bound far beyond) get
// BAD with a clear text, never NO [SERVERBUG], and the connection goes on.
// Memory stays bounded: the command is at most maxCommand octets and the
// parser stops at the limit.
func TestSearchTooDeep(t *testing.T) {
	e := newEnv(t, envOptions{noTailer: true})
	c := dial(t, e.addr)
	c.login()
	c.ok("s0", "SELECT INBOX")
	tooDeep := fmt.Sprintf(" BAD [CLIENTBUG] SEARCH keys nested too deeply: at most %d levels of NOT, OR and parentheses", imapserver.MaxSearchDepth)
	n := imapserver.MaxSearchDepth
	cases := []struct{ name, keys, want string }{
		{"1000 NOT", strings.Repeat("NOT ", 1000) + "ALL", tooDeep},
		{"1000 parens", strings.Repeat("(", 1000) + "ALL" + strings.Repeat(")", 1000), tooDeep},
		{"5000 parens", strings.Repeat("(", 5000) + "ALL" + strings.Repeat(")", 5000), tooDeep},
		{"OR chain", strings.Repeat("OR SEEN ", 1000) + "ALL", tooDeep},
		{"left OR chain", strings.Repeat("OR ", 1000) + "ALL" + strings.Repeat(" SEEN", 1000), tooDeep},
		{"past the limit", strings.Repeat("NOT ", n+1) + "ALL", tooDeep},
		{"at the limit", strings.Repeat("NOT ", n) + "ALL", " OK SEARCH completed"},
		{"parens at the limit", strings.Repeat("(", n) + "ALL" + strings.Repeat(")", n), " OK SEARCH completed"},
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i, tc := range cases {
		tag := fmt.Sprintf("d%d", i)
		out := c.cmd(tag, "SEARCH "+tc.keys)
		if got := out[len(out)-1]; got != tag+tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tag+tc.want)
		}
		for _, l := range out {
			if strings.Contains(l, "SERVERBUG") {
				t.Errorf("%s: %q", tc.name, l)
			}
		}
		c.ok(tag+"n", "NOOP") // still in step
	}
	// UID SEARCH and a search with RETURN take the same path.
	out := c.cmd("u1", "UID SEARCH RETURN (COUNT) "+strings.Repeat("NOT ", 1000)+"ALL")
	if got := out[len(out)-1]; got != "u1"+tooDeep {
		t.Errorf("UID SEARCH: got %q", got)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 8<<20 {
		t.Errorf("heap grew by %d bytes", grown)
	}
}
