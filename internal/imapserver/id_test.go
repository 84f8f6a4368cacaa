package imapserver

import (
	"strings"
	"testing"
)

// TestID: ID (RFC 2971) is advertised before and after login and answered
// with the server's name, whatever the client says, NIL included; a
// client breaking the RFC's bounds gets BAD, not an answer.
func TestID(t *testing.T) {
	e := newEnv(t, envOptions{noTailer: true})
	c := dial(t, e.addr)
	if out := c.ok("a0", "CAPABILITY"); !hasCap(out, "ID") {
		t.Errorf("ID not advertised before login: %q", out)
	}
	if out := c.ok("a1", `ID ("name" "iPhone Mail" "version" "21A329" "os" "iOS" "os-version" "17.0")`); !contains(out, `* ID ("name" "Postern")`) {
		t.Errorf("ID: %q", out)
	}
	c.login()
	if out := c.ok("a2", "CAPABILITY"); !hasCap(out, "ID") {
		t.Errorf("ID not advertised after login: %q", out)
	}
	if out := c.ok("a3", "ID NIL"); !contains(out, `* ID ("name" "Postern")`) {
		t.Errorf("ID NIL: %q", out)
	}
	long := `ID ("` + strings.Repeat("x", 31) + `" "v")`
	if out := c.cmd("a4", long); !strings.HasPrefix(out[len(out)-1], "a4 BAD [CLIENTBUG] ") {
		t.Errorf("an over-long field: %q", out)
	}
	if out := c.cmd("a5", "ID (\"name\")"); !strings.HasPrefix(out[len(out)-1], "a5 BAD") {
		t.Errorf("a field without a value: %q", out)
	}
	c.ok("a6", "NOOP") // still in step
}

// hasCap reports whether the untagged CAPABILITY line lists name.
func hasCap(out []string, name string) bool {
	for _, l := range out {
		if f := strings.Fields(l); len(f) > 2 && f[0] == "*" && f[1] == "CAPABILITY" {
			for _, c := range f[2:] {
				if c == name {
					return true
				}
			}
		}
	}
	return false
}
