package netserver

import (
	"crypto/tls"
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

// setQuickAck sets TCP_QUICKACK on the socket beneath c.
func setQuickAck(t *testing.T, c net.Conn, v int) {
	t.Helper()
	rc, err := socketOf(c).(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, v) })
	if serr != nil {
		t.Fatal(serr)
	}
}

// TestQuickAck: a server socket that delays its ACKs (as the kernel makes it
// after a request answered at once, expecting the next reply to carry them);
// QuickAck, given
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

	// Put the socket in delayed-ACK mode as the kernel does after a request
	// answered at once, but deterministically: waiting for the kernel's own
	// interactive mode depends on the machine's load.
	setQuickAck(t, server, 0)
	if got := quickAckState(t, server); got != 0 {
		t.Fatalf("TCP_QUICKACK = %d after setting 0", got)
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
