package imapserver

import (
	"bufio"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkIMAPLoginLogout measures connect, LOGIN and LOGOUT over loopback
// against the in-process server, with an authenticator that answers at once.
func BenchmarkIMAPLoginLogout(b *testing.B) {
	e := newEnv(b, envOptions{noTailer: true})
	login := "a1 LOGIN " + testUser + " " + testSecret + "\r\na2 LOGOUT\r\n"
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			b.Fatal(err)
		}
		r := bufio.NewReader(c)
		if _, err := r.ReadString('\n'); err != nil {
			b.Fatal(err)
		}
		io.WriteString(c, login)
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				b.Fatal(err)
			}
			if strings.HasPrefix(l, "a1 ") && !strings.HasPrefix(l, "a1 OK") {
				b.Fatalf("login: %q", l)
			}
			if strings.HasPrefix(l, "a2 ") {
				break
			}
		}
		c.Close()
	}
}

// BenchmarkIdleMemory reports the server's heap and stacks per connection
// sitting in IDLE, plain and with COMPRESS=DEFLATE (docs/benchmarks.md):
// -benchtime=1x, each run opens 200 connections. The clients drop their
// decompressors once IDLE is confirmed, so what stays is the server's.
func BenchmarkIdleMemory(b *testing.B) {
	for _, compress := range []bool{false, true} {
		name := "plain"
		if compress {
			name = "deflate"
		}
		b.Run(name, func(b *testing.B) {
			e := newEnv(b, envOptions{noTailer: true})
			const n = 200
			var kib float64
			for i := 0; i < b.N; i++ {
				before := inUse()
				conns := make([]net.Conn, 0, n)
				for k := 0; k < n; k++ {
					c := dial(b, e.addr)
					c.login()
					if compress {
						c.ok("z", "COMPRESS DEFLATE")
						deflateClient(c)
					}
					c.ok("s", "SELECT INBOX")
					c.send("i IDLE\r\n")
					if l := c.line(); !strings.HasPrefix(l, "+") {
						b.Fatalf("IDLE: %q", l)
					}
					nc := c.c
					if d, ok := nc.(*deflateConn); ok {
						nc = d.Conn // the client's compressor is the client's
					}
					conns = append(conns, nc)
				}
				kib = float64(inUse()-before) / n / 1024
				for _, c := range conns {
					c.Close()
				}
			}
			b.ReportMetric(kib, "KiB/conn")
		})
	}
}

func inUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// BenchmarkAppendWithoutNoDelay measures an APPEND from a client that keeps
// Nagle's algorithm on and writes the literal and its closing CRLF apart, as
// python's imaplib does: with the server's ACK of the literal delayed, each
// takes 40 ms or more on Linux (TestLiteralAckedAtOnce checks the cause).
func BenchmarkAppendWithoutNoDelay(b *testing.B) {
	e := newEnv(b, envOptions{noTailer: true})
	c := dial(b, e.addr)
	if err := c.c.(*net.TCPConn).SetNoDelay(false); err != nil {
		b.Fatal(err)
	}
	c.login()
	msg := "From: a@example.org\r\nSubject: Nagle\r\n\r\n" + strings.Repeat("body line\r\n", 100)
	cmd := "a APPEND INBOX {" + strconv.Itoa(len(msg)) + "}\r\n"
	b.ResetTimer()
	for range b.N {
		c.send(cmd)
		if l := c.line(); !strings.HasPrefix(l, "+") {
			b.Fatalf("APPEND: %q", l)
		}
		c.send(msg)
		c.send("\r\n")
		if out := c.until("a"); !strings.HasPrefix(out[len(out)-1], "a OK") {
			b.Fatalf("APPEND: %q", out)
		}
	}
}
