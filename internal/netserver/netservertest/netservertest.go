// Package netservertest helps the protocol servers' tests check what a
// connection over a netserver.Limits cap is told.
package netservertest

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/internal/netserver"
)

// timeout bounds each connection: generous, never an assertion on time.
const timeout = 10 * time.Second

// Hold opens a connection to addr, reads its first line (the greeting, or
// a refusal) and keeps it open until the test ends.
func Hold(t testing.TB, addr string) string {
	t.Helper()
	c := dial(t, addr)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("%s: reading the first line: %v (got %q)", addr, err, line)
	}
	return line
}

// ReadToClose opens a connection to addr and returns everything the server
// says before it closes the connection.
func ReadToClose(t testing.TB, addr string) string {
	t.Helper()
	b, err := io.ReadAll(dial(t, addr))
	if err != nil {
		t.Fatalf("%s: reading to the close: %v (got %q)", addr, err, b)
	}
	return string(b)
}

func dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(timeout))
	return c
}

// CheckRefusals checks, for a per-address cap of one and a total cap of
// one, that a connection over the cap gets the protocol's refusal byte for
// byte (perAddr, total), and that a server's listeners share one count:
// with one connection open on the plain port, the implicit-TLS port refuses
// without a word. start serves a fresh server with limits and returns its
// plain and implicit-TLS addresses; greeting is how its greeting starts.
func CheckRefusals(t *testing.T, start func(netserver.Limits) (addr, tlsAddr string), greeting, perAddr, total string) {
	t.Helper()
	for _, tc := range []struct {
		limits netserver.Limits
		want   string
	}{
		{netserver.Limits{PerAddr: 1}, perAddr},
		{netserver.Limits{Total: 1}, total},
	} {
		addr, tlsAddr := start(tc.limits)
		if g := Hold(t, addr); !strings.HasPrefix(g, greeting) {
			t.Fatalf("%+v: first connection: %q", tc.limits, g)
		}
		if got := ReadToClose(t, tlsAddr); got != "" {
			t.Errorf("%+v: implicit TLS over the cap got %q, want a close", tc.limits, got)
		}
		if got := ReadToClose(t, addr); got != tc.want {
			t.Errorf("%+v: over the cap got %q, want %q", tc.limits, got, tc.want)
		}
	}
}
