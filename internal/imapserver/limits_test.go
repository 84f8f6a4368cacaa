package imapserver

import (
	"testing"

	"github.com/postern/postern/internal/netserver"
	"github.com/postern/postern/internal/netserver/netservertest"
)

// TestConnectionLimits: the BYE of a connection over a cap, byte for byte.
func TestConnectionLimits(t *testing.T) {
	netservertest.CheckRefusals(t, func(l netserver.Limits) (string, string) {
		e := newEnv(t, envOptions{limits: l})
		return e.addr, e.tlsAddr
	}, "* OK ",
		"* BYE [UNAVAILABLE] Too many connections from your address, try again later\r\n",
		"* BYE [UNAVAILABLE] Too many connections, try again later\r\n")
}
