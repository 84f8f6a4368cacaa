// Package netservertest helps the protocol servers' tests check what a
// connection over a netserver.Limits cap is told.
package netservertest

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"
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
