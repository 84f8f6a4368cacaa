package imapserver

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/postern/postern/internal/netserver"
)

// ackWatch replaces quickAck for a test: it runs the real one, then reads
// back the socket's TCP_QUICKACK (Linux: 1 when it acknowledges at once, 0
// while it holds ACKs for its next reply).
type ackWatch struct {
	mu     sync.Mutex
	states []int
}

func watchQuickAck(t *testing.T) *ackWatch {
	w := &ackWatch{}
	quickAck = func(c net.Conn) {
		netserver.QuickAck(c)
		v := -1
		if nc, ok := c.(interface{ NetConn() net.Conn }); ok {
			c = nc.NetConn()
		}
		if sc, ok := c.(syscall.Conn); ok {
			if rc, err := sc.SyscallConn(); err == nil {
				rc.Control(func(fd uintptr) { v, _ = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK) })
			}
		}
		w.mu.Lock()
		w.states = append(w.states, v)
		w.mu.Unlock()
	}
	t.Cleanup(func() { quickAck = netserver.QuickAck })
	return w
}

// calls returns how many times the server asked for immediate ACKs and
// fails unless each left the socket acknowledging at once.
func (w *ackWatch) calls(t *testing.T) int {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, v := range w.states {
		if v != 1 {
			t.Fatalf("call %d: TCP_QUICKACK = %d after QuickAck, want 1", i, v)
		}
	}
	return len(w.states)
}

// TestLiteralAckedAtOnce: a client that keeps Nagle's algorithm on and sends
// an APPEND's literal and its closing CRLF in two writes (python's imaplib)
// waits, before the CRLF leaves, for the server's ACK of the literal; the
// server must not delay that ACK (Linux's delayed ACK: 40 ms per APPEND).
// Commands without literals keep the usual ACK, carried by the response.
func TestLiteralAckedAtOnce(t *testing.T) {
	e := newEnv(t, envOptions{})
	w := watchQuickAck(t)
	for _, tc := range []struct {
		name string
		dial func(t *testing.T) *client
	}{
		{"plaintext", func(t *testing.T) *client { return dial(t, e.addr) }},
		{"TLS", func(t *testing.T) *client { return dialTLS(t, e) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := w.calls(t)
			c := tc.dial(t)
			raw := c.c
			if tlsc, ok := raw.(interface{ NetConn() net.Conn }); ok {
				raw = tlsc.NetConn()
			}
			if err := raw.(*net.TCPConn).SetNoDelay(false); err != nil {
				t.Fatal(err)
			}
			c.login()
			c.ok("n1", "NOOP")
			base := w.calls(t)
			if base != start {
				t.Fatalf("%d immediate ACKs asked for LOGIN and NOOP, want none", base-start)
			}
			msg := "From: a@example.org\r\nSubject: Nagle\r\n\r\n" + strings.Repeat("body line\r\n", 100)

			// Each piece in a write of its own, as imaplib does. A
			// synchronizing literal waits for "+"; with LITERAL- the
			// literal follows its line unasked for, and Nagle holds it
			// as well.
			before := base
			for _, lit := range []struct{ tag, plus, kind string }{{"a1", "", "synchronizing"}, {"a2", "+", "non-synchronizing"}} {
				c.send(fmt.Sprintf("%s APPEND INBOX {%d%s}\r\n", lit.tag, len(msg), lit.plus))
				if lit.plus == "" {
					if l := c.line(); !strings.HasPrefix(l, "+") {
						t.Fatalf("APPEND: %q", l)
					}
				}
				c.send(msg)
				c.send("\r\n")
				if out := c.until(lit.tag); !strings.HasPrefix(out[len(out)-1], lit.tag+" OK") {
					t.Fatalf("APPEND: %q", out)
				}
				n := w.calls(t)
				if n == before {
					t.Fatalf("the server read a %s literal without asking for an immediate ACK", lit.kind)
				}
				before = n
			}

			c.ok("n2", "NOOP")
			c.ok("n3", "STATUS INBOX (MESSAGES)")
			if n := w.calls(t); n != before {
				t.Fatalf("%d immediate ACKs asked between commands, want none", n-before)
			}
		})
	}
}
