// Package mailauthtest gives tests of mail authentication (SPF, DKIM,
// DMARC) their DNS server on loopback: internal/dnstest's, under the name
// the unit tests of mailauth and the end-to-end tests use.
package mailauthtest

import (
	"testing"

	"github.com/postern/postern/internal/dnstest"
)

// Server is the loopback DNS server of internal/dnstest.
type Server = dnstest.Server

// Start runs one until the test ends.
func Start(t testing.TB) *Server { return dnstest.Start(t) }
