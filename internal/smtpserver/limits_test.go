package smtpserver

import (
	"testing"

	"github.com/postern/postern/internal/netserver"
	"github.com/postern/postern/internal/netserver/netservertest"
)

// TestConnectionLimits: the 421 of a connection over a cap, byte for byte.
func TestConnectionLimits(t *testing.T) {
	netservertest.CheckRefusals(t, func(l netserver.Limits) (string, string) {
		e := newEnv(t, func(c *Config) { c.Limits = l })
		return e.addr, e.tlsAddr
	}, "220 ",
		"421 4.7.0 mx.example.test Too many connections from your address, try again later\r\n",
		"421 4.7.0 mx.example.test Too many connections, try again later\r\n")
}
