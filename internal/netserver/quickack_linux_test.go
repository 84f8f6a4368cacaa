package netserver

import (
	"crypto/tls"
	"io"
	"net"
	"syscall"
	"testing"
)

// quickAckState reads TCP_QUICKACK of c's socket: Linux answers 1 when the
// socket acknowledges at once, 0 when it is in its interactive ("pingpong")
// mode, where ACKs wait to ride on the next reply.
func quickAckState(t *testing.T, c net.Conn) int {
	t.Helper()
	sc, ok := socketOf(c).(syscall.Conn)
	if !ok {
		t.Fatalf("no socket found beneath %T", c)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	rc.Control(func(fd uintptr) { v, gerr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK) })
	if gerr != nil {
		t.Fatal(gerr)
	}
	return v
}

// TestQuickAck: after a request answered at once, the server's socket delays
// its ACKs (the kernel expects the next reply to carry them); QuickAck, given
// the connection as a server holds it (under TLS, under the limiter), makes
// it acknowledge at once again.
func TestQuickAck(t *testing.T) {
	l := listen(t)
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := NewLimiter("test", Limits{Total: 10}, quiet).Listener(l, testRefusal).Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	client, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server := <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	defer server.Close()
	if _, ok := server.(syscall.Conn); ok {
		t.Fatal("the limiter's connection is the socket itself: the test would not exercise the unwrapping")
	}
	wrapped := tls.Server(server, &tls.Config{}) // NetConn only, no handshake

	// The kernel enters its interactive mode when the server replies soon
	// after the request; on a loaded machine the reply may come too late,
	// so the exchange is repeated until it did.
	buf := make([]byte, 4)
	interactive := false
	for range 20 {
		io.WriteString(client, "ping")
		if _, err := io.ReadFull(server, buf); err != nil {
			t.Fatal(err)
		}
		io.WriteString(server, "pong")
		if _, err := io.ReadFull(client, buf); err != nil {
			t.Fatal(err)
		}
		if quickAckState(t, server) == 0 {
			interactive = true
			break
		}
	}
	if !interactive {
		t.Skip("the kernel never delayed the server's ACKs here")
	}
	QuickAck(wrapped)
	if got := quickAckState(t, server); got != 1 {
		t.Fatalf("after QuickAck, TCP_QUICKACK = %d, want 1 (ACKs at once)", got)
	}
}

func TestQuickAckNotTCP(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	QuickAck(a) // no socket: nothing to do, and no panic
}
