package archtest

import (
	"strings"
	"testing"
)

// Sender authentication knows nothing of the servers that call it, nor of
// the stores: the MX listener's wiring in cmd/postern adapts it.
func TestMailauthIsALeaf(t *testing.T) {
	for _, d := range deps(t, "internal/mailauth") {
		if strings.HasPrefix(d, mod) && d != mod+"internal/mailauth" {
			t.Errorf("internal/mailauth depends on %s", d)
		}
	}
}
