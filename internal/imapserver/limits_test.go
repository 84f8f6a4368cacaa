package imapserver

import (
	"strings"
	"testing"

	"github.com/postern/postern/internal/netserver"
	"github.com/postern/postern/internal/netserver/netservertest"
)

// TestConnectionLimits checks the BYE of a connection over a cap, byte for
// byte, and that both listeners share one count: with one connection open
// on the STARTTLS port, the implicit-TLS port refuses without a word.
func TestConnectionLimits(t *testing.T) {
	for _, tc := range []struct {
		limits netserver.Limits
		want   string
	}{
		{netserver.Limits{PerAddr: 1}, "* BYE [UNAVAILABLE] Too many connections from your address, try again later\r\n"},
		{netserver.Limits{Total: 1}, "* BYE [UNAVAILABLE] Too many connections, try again later\r\n"},
	} {
		e := newEnv(t, envOptions{limits: tc.limits})
		if g := netservertest.Hold(t, e.addr); !strings.HasPrefix(g, "* OK ") {
			t.Fatalf("%+v: first connection: %q", tc.limits, g)
		}
		if got := netservertest.ReadToClose(t, e.tlsAddr); got != "" {
			t.Errorf("%+v: implicit TLS over the cap got %q, want a close", tc.limits, got)
		}
		if got := netservertest.ReadToClose(t, e.addr); got != tc.want {
			t.Errorf("%+v: over the cap got %q, want %q", tc.limits, got, tc.want)
		}
	}
}
