package pop3server

import (
	"testing"

	"github.com/postern/postern/internal/netserver"
	"github.com/postern/postern/internal/netserver/netservertest"
)

// TestConnectionLimits: the -ERR of a connection over a cap, byte for byte.
func TestConnectionLimits(t *testing.T) {
	netservertest.CheckRefusals(t, func(l netserver.Limits) (string, string) {
		e := newEnv(t, nil, func(c *Config) { c.Limits = l })
		return e.addr, e.serveImplicit(t)
	}, "+OK ",
		"-ERR [SYS/TEMP] Too many connections from your address, try again later\r\n",
		"-ERR [SYS/TEMP] Too many connections, try again later\r\n")
}
