package netserver

import (
	"bufio"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

var testRefusal = Refusal{PerAddr: "NO per address\r\n", Total: "NO total\r\n"}

// limited serves l under lim with testRefusal; accepted connections are
// held open (read until EOF) and sent "hello\r\n".
func limited(t *testing.T, lim Limits) (*Limiter, net.Listener) {
	t.Helper()
	l := listen(t)
	limiter := NewLimiter("test", lim, quiet)
	g := New("test", quiet)
	errc := serve(func() error {
		return g.Serve(limiter.Listener(l, testRefusal), func(c net.Conn) {
			io.WriteString(c, "hello\r\n")
			io.Copy(io.Discard, c)
		})
	})
	t.Cleanup(func() {
		g.Close()
		if err := result(t, errc); err != nil {
			t.Error(err)
		}
	})
	return limiter, l
}

// dialFrom connects to l from the loopback address from and returns the
// first line the server says.
func dialFrom(t *testing.T, l net.Listener, from string) (net.Conn, string) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetReadDeadline(time.Now().Add(deadline))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("from %s: reading the first line: %v", from, err)
	}
	c.SetReadDeadline(time.Time{})
	return c, line
}

func TestLimiterPerAddress(t *testing.T) {
	limiter, l := limited(t, Limits{PerAddr: 2, Total: 100})
	var open []net.Conn
	for range 2 {
		c, line := dialFrom(t, l, "127.0.0.2")
		if line != "hello\r\n" {
			t.Fatalf("connection within the cap got %q", line)
		}
		open = append(open, c)
	}
	c, line := dialFrom(t, l, "127.0.0.2")
	if line != "NO per address\r\n" {
		t.Fatalf("third connection from one address got %q, want the per-address refusal", line)
	}
	waitClosed(t, c)
	if _, line := dialFrom(t, l, "127.0.0.3"); line != "hello\r\n" {
		t.Fatalf("another address got %q", line)
	}
	// A closed connection frees its place.
	open[0].Close()
	waitCount(t, limiter, "127.0.0.2", 1)
	if _, line := dialFrom(t, l, "127.0.0.2"); line != "hello\r\n" {
		t.Fatalf("after a close, got %q", line)
	}
	if got := limiter.Refused(); got != 1 {
		t.Errorf("Refused = %d, want 1", got)
	}
}

func TestLimiterTotal(t *testing.T) {
	limiter, l := limited(t, Limits{PerAddr: 10, Total: 2})
	a, _ := dialFrom(t, l, "127.0.0.2")
	dialFrom(t, l, "127.0.0.3")
	c, line := dialFrom(t, l, "127.0.0.4")
	if line != "NO total\r\n" {
		t.Fatalf("connection over the total got %q, want the total refusal", line)
	}
	waitClosed(t, c)
	a.Close()
	waitCount(t, limiter, "127.0.0.2", 0)
	if _, line := dialFrom(t, l, "127.0.0.4"); line != "hello\r\n" {
		t.Fatalf("after a close, got %q", line)
	}
}

// waitCount waits until the connections counted for from are n (the server
// notices a client's close when its read ends).
func waitCount(t *testing.T, limiter *Limiter, from string, n int) {
	t.Helper()
	ip := netip.MustParseAddr(from)
	for end := time.Now().Add(deadline); ; {
		if _, got := limiter.Open(ip); got == n {
			return
		} else if time.Now().After(end) {
			t.Fatalf("%s holds %d connections, want %d", from, got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLimiterSilentRefusal(t *testing.T) {
	l := listen(t)
	limiter := NewLimiter("test", Limits{PerAddr: 1}, quiet)
	ll := limiter.Listener(l, Refusal{})
	go func() {
		for {
			c, err := ll.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	dial(t, l)
	c := dial(t, l)
	c.SetReadDeadline(time.Now().Add(deadline))
	if b, err := io.ReadAll(c); len(b) != 0 || err != nil {
		t.Fatalf("refused without a word: read %q, %v; want a plain close", b, err)
	}
}

func TestLimiterReleasesOnce(t *testing.T) {
	limiter := NewLimiter("test", Limits{PerAddr: 5, Total: 5}, quiet)
	ip := netip.MustParseAddr("192.0.2.1")
	key, keyed, why := limiter.admit(ip)
	if why != 0 {
		t.Fatal(why)
	}
	server, client := net.Pipe()
	defer client.Close()
	c := &limitedConn{Conn: server, lim: limiter, key: key, keyed: keyed}
	limiter.admit(ip)
	c.Close()
	c.Close() // a second Close, as TLS and the protocol both close
	if total, addr := limiter.Open(ip); total != 1 || addr != 1 {
		t.Errorf("after two Closes of one of two connections: total %d, address %d; want 1, 1", total, addr)
	}
}

func TestLimiterKeys(t *testing.T) {
	limiter := NewLimiter("test", Limits{PerAddr: 2, Total: 100}, quiet)
	admit := func(s string) Reason {
		_, _, why := limiter.admit(netip.MustParseAddr(s))
		return why
	}
	for _, tc := range []struct {
		name      string
		first     []string // admitted
		refused   string   // one more of the same key
		different string   // another key: admitted
	}{
		{"IPv6 /56", []string{"2001:db8:0:1::1", "2001:db8:0:ff::2"}, "2001:db8:0:1:ffff::9", "2001:db8:0:100::1"},
		{"IPv4-mapped is IPv4", []string{"192.0.2.7", "::ffff:192.0.2.7"}, "192.0.2.7", "192.0.2.8"},
		{"IPv4 /32", []string{"198.51.100.1", "198.51.100.1"}, "198.51.100.1", "198.51.100.2"},
	} {
		for _, a := range tc.first {
			if why := admit(a); why != 0 {
				t.Fatalf("%s: %s refused (%v)", tc.name, a, why)
			}
		}
		if why := admit(tc.refused); why != OverPerAddr {
			t.Errorf("%s: %s admitted past the cap of its key", tc.name, tc.refused)
		}
		if why := admit(tc.different); why != 0 {
			t.Errorf("%s: %s refused: counted with the others", tc.name, tc.different)
		}
	}
}

func TestLimiterExempt(t *testing.T) {
	proxy := netip.MustParseAddr("10.0.0.1")
	limiter := NewLimiter("test", Limits{PerAddr: 1, Total: 3, Exempt: func(a netip.Addr) bool { return a == proxy }}, quiet)
	for i := range 3 {
		if _, keyed, why := limiter.admit(proxy); why != 0 || keyed {
			t.Fatalf("exempt connection %d: keyed %v, refused %v", i, keyed, why)
		}
	}
	if _, _, why := limiter.admit(netip.MustParseAddr("192.0.2.1")); why != OverTotal {
		t.Fatalf("exempt connections do not count toward the total: %v", why)
	}
}

func TestLimiterOff(t *testing.T) {
	l := listen(t)
	if got := NewLimiter("test", Limits{}, quiet).Listener(l, testRefusal); got != l {
		t.Error("no caps, yet the listener is wrapped")
	}
	var nilLimiter *Limiter
	if got := nilLimiter.Listener(l, testRefusal); got != l {
		t.Error("a nil Limiter wraps the listener")
	}
}

// BenchmarkLimiterAdmitRelease is the caps' cost per connection: one count
// and one release, over 1,000 addresses in parallel.
func BenchmarkLimiterAdmitRelease(b *testing.B) {
	limiter := NewLimiter("bench", Limits{PerAddr: 200, Total: 20000}, quiet)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			ip := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8 & 3), byte(i)})
			key, keyed, why := limiter.admit(ip)
			if why != 0 {
				b.Fatal(why)
			}
			limiter.release(key, keyed)
			i++
		}
	})
}
