package delivery

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postern/postern/internal/delivery/deliverytest"
)

// Every test server gets its own loopback address, port 25 (443 for
// MTA-STS policies), from a range no other package's tests use.
var ipSeq atomic.Int32

func newIP() string {
	n := ipSeq.Add(1)
	return fmt.Sprintf("127.15.%d.%d", n/200, n%200+1)
}

// testLog writes the Deliverer's log into the test's output.
type testLog struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
	buf  strings.Builder
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	if !l.done {
		l.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (l *testLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// newDeliverer returns a Deliverer asking dns, as sender.test, closed
// when the test ends.
func newDeliverer(t *testing.T, dns *deliverytest.DNS, mod ...func(*Config)) (*Deliverer, *testLog) {
	t.Helper()
	lw := &testLog{t: t}
	cfg := Config{Hostname: "sender.test", Resolver: dns.Addr,
		Log: slog.New(slog.NewTextHandler(lw, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	for _, f := range mod {
		f(&cfg)
	}
	d := New(cfg)
	t.Cleanup(func() {
		d.Close()
		lw.mu.Lock()
		lw.done = true
		lw.mu.Unlock()
	})
	return d, lw
}

const testBody = "From: alice@sender.test\r\nTo: bob@example.test\r\nSubject: hello\r\n\r\nHi Bob,\r\n.a line starting with a dot\r\n..two dots\r\n.\r\nBye\r\n"

func msg(domain string, rcpts ...string) Message {
	return Message{From: "alice@sender.test", Rcpts: rcpts, Domain: domain, Body: []byte(testBody)}
}

func deliver(t *testing.T, d *Deliverer, m Message) []Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res := d.Deliver(ctx, m)
	if len(res) != len(m.Rcpts) {
		t.Fatalf("%d results for %d recipients", len(res), len(m.Rcpts))
	}
	for i, r := range res {
		if r.Rcpt != m.Rcpts[i] {
			t.Fatalf("result %d is for %q, want %q", i, r.Rcpt, m.Rcpts[i])
		}
		t.Logf("%s: delivered=%v permanent=%v %s (remote %q)", r.Rcpt, r.Delivered, r.Permanent, r.Diagnostic(), r.RemoteMTA)
	}
	return res
}

func wantDelivered(t *testing.T, res []Result) {
	t.Helper()
	for _, r := range res {
		if !r.Delivered || r.Permanent || r.Code/100 != 2 {
			t.Errorf("%s: want delivered, got %+v", r.Rcpt, r)
		}
	}
}

// wantFailed checks each result is a failure, permanent or not, with the
// enhanced code.
func wantFailed(t *testing.T, res []Result, permanent bool, enhanced string) {
	t.Helper()
	for _, r := range res {
		if r.Delivered || r.Permanent != permanent || r.Enhanced != enhanced {
			t.Errorf("%s: want permanent=%v %s, got %+v", r.Rcpt, permanent, enhanced, r)
		}
	}
}

// rawServer runs a scripted SMTP server on ip:25: script gets each
// connection.
func rawServer(t *testing.T, ip string, script func(c *rawConn)) {
	t.Helper()
	l, err := net.Listen("tcp", ip+":25")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				script(&rawConn{c: c, r: bufio.NewReader(c)})
			}()
		}
	}()
}

type rawConn struct {
	c net.Conn
	r *bufio.Reader
}

func (c *rawConn) send(lines ...string) {
	for _, l := range lines {
		fmt.Fprintf(c.c, "%s\r\n", l)
	}
}

// expect reads a command line and returns it; "" at EOF.
func (c *rawConn) read() string {
	l, err := c.r.ReadString('\n')
	if err != nil {
		return ""
	}
	return strings.TrimRight(l, "\r\n")
}

// readData reads a message up to the final dot.
func (c *rawConn) readData() string {
	var b strings.Builder
	for {
		l, err := c.r.ReadString('\n')
		if err != nil || l == ".\r\n" {
			return b.String()
		}
		b.WriteString(l)
	}
}
