package deliverytest

import (
	"testing"

	"github.com/postern/postern/internal/dnstest"
)

// DNS is the loopback DNS server of internal/dnstest.
type DNS = dnstest.Server

// StartDNS runs one until the test ends.
func StartDNS(t testing.TB) *DNS { return dnstest.Start(t) }
