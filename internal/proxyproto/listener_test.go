package proxyproto

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

func listen(t *testing.T, trusted string, timeout time.Duration) *Listener {
	t.Helper()
	tr, err := ParseTrusted(trusted)
	if err != nil {
		t.Fatal(err)
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := NewListener(inner, tr, timeout, discardLog)
	t.Cleanup(func() { l.Close() })
	return l
}

func dial(t *testing.T, l net.Listener, first []byte) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if len(first) > 0 {
		if _, err := c.Write(first); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// acceptOne accepts with a deadline; nil when nothing arrives in d.
func acceptOne(t *testing.T, l net.Listener, d time.Duration) net.Conn {
	t.Helper()
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			ch <- nil
			return
		}
		ch <- c
	}()
	select {
	case c := <-ch:
		if c != nil {
			t.Cleanup(func() { c.Close() })
		}
		return c
	case <-time.After(d):
		return nil
	}
}

// closedByServer waits until the server side closed c.
func closedByServer(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(c); err != nil && !errors.Is(err, io.EOF) {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("connection still open")
		}
	}
}

func TestTrustedHeaderSetsRemoteAddr(t *testing.T) {
	src := netip.MustParseAddrPort("203.0.113.9:40000")
	dst := netip.MustParseAddrPort("198.51.100.1:993")
	src6 := netip.MustParseAddrPort("[2001:db8::9]:40000")
	dst6 := netip.MustParseAddrPort("[2001:db8::1]:993")
	for name, c := range map[string]struct {
		header []byte
		want   string
	}{
		"v1":    {Header{Source: src, Destination: dst}.AppendV1(nil), "203.0.113.9:40000"},
		"v2":    {Header{Source: src, Destination: dst}.AppendV2(nil), "203.0.113.9:40000"},
		"v1-6":  {Header{Source: src6, Destination: dst6}.AppendV1(nil), "[2001:db8::9]:40000"},
		"v2-6":  {Header{Source: src6, Destination: dst6}.AppendV2(nil), "[2001:db8::9]:40000"},
		"local": {Header{Local: true}.AppendV2(nil), ""},
	} {
		t.Run(name, func(t *testing.T) {
			l := listen(t, "127.0.0.0/8", 0)
			// The header and the client's first bytes in one segment: nothing
			// after the header may be lost.
			cl := dial(t, l, append(c.header, "a1 NOOP\r\n"...))
			sc := acceptOne(t, l, 10*time.Second)
			if sc == nil {
				t.Fatal("not accepted")
			}
			want := c.want
			if want == "" {
				want = cl.LocalAddr().String()
			}
			if got := sc.RemoteAddr().String(); got != want {
				t.Errorf("RemoteAddr %s, want %s", got, want)
			}
			line, err := bufio.NewReader(sc).ReadString('\n')
			if err != nil || line != "a1 NOOP\r\n" {
				t.Errorf("read %q, %v", line, err)
			}
			// The connection works both ways after the header.
			sc.Write([]byte("* OK\r\n"))
			got, _ := bufio.NewReader(cl).ReadString('\n')
			if got != "* OK\r\n" {
				t.Errorf("client read %q", got)
			}
		})
	}
}

func TestTrustedWithoutHeaderClosed(t *testing.T) {
	for name, first := range map[string][]byte{
		"protocol":  []byte("a1 LOGIN user pass\r\n"),
		"bad-v1":    []byte("PROXY TCP4 1.2.3.4 nope 1 2\r\n"),
		"bad-v2":    append(append([]byte{}, v2Sig...), 0x21, 0x11, 0, 3, 1, 2, 3),
		"tls-hello": {0x16, 3, 1, 0, 1, 1},
	} {
		t.Run(name, func(t *testing.T) {
			l := listen(t, "127.0.0.1/32", 0)
			cl := dial(t, l, first)
			closedByServer(t, cl)
			if sc := acceptOne(t, l, 200*time.Millisecond); sc != nil {
				t.Fatalf("accepted %s", sc.RemoteAddr())
			}
		})
	}
}

// TestSlowTrustedPeer: a trusted peer that sends nothing is closed after the
// timeout and never holds up the next connection.
func TestSlowTrustedPeer(t *testing.T) {
	l := listen(t, "127.0.0.1", 500*time.Millisecond)
	silent := dial(t, l, nil)
	src := netip.MustParseAddrPort("203.0.113.5:1234")
	dial(t, l, Header{Source: src, Destination: src}.AppendV1(nil))
	sc := acceptOne(t, l, 10*time.Second)
	if sc == nil || sc.RemoteAddr().String() != "203.0.113.5:1234" {
		t.Fatalf("accepted %v", sc)
	}
	closedByServer(t, silent)
}

func TestUntrustedPeer(t *testing.T) {
	src := netip.MustParseAddrPort("203.0.113.5:1234")
	t.Run("header refused", func(t *testing.T) {
		for _, h := range [][]byte{Header{Source: src, Destination: src}.AppendV1(nil), Header{Source: src, Destination: src}.AppendV2(nil)} {
			l := listen(t, "192.0.2.0/24", 0)
			cl := dial(t, l, append(h, "a1 NOOP\r\n"...))
			sc := acceptOne(t, l, 10*time.Second)
			if sc == nil {
				t.Fatal("not accepted")
			}
			if _, err := sc.Read(make([]byte, 64)); !errors.Is(err, ErrUntrustedHeader) {
				t.Errorf("read: %v, want ErrUntrustedHeader", err)
			}
			closedByServer(t, cl)
		}
	})
	t.Run("protocol passes", func(t *testing.T) {
		l := listen(t, "192.0.2.0/24", 0)
		cl := dial(t, l, nil)
		sc := acceptOne(t, l, 10*time.Second)
		if sc == nil {
			t.Fatal("not accepted")
		}
		if sc.RemoteAddr().String() != cl.LocalAddr().String() {
			t.Errorf("RemoteAddr %s, want %s", sc.RemoteAddr(), cl.LocalAddr())
		}
		// Byte by byte, as a slow client types: "PRO" could start a header,
		// "PROBE" cannot; every byte reaches the protocol.
		go func() {
			for _, b := range []byte("PROBE x\r\n") {
				cl.Write([]byte{b})
				time.Sleep(5 * time.Millisecond)
			}
		}()
		line, err := bufio.NewReader(sc).ReadString('\n')
		if err != nil || line != "PROBE x\r\n" {
			t.Errorf("read %q, %v", line, err)
		}
	})
}

func TestCloseEndsAccept(t *testing.T) {
	l := listen(t, "127.0.0.1", 0)
	errc := make(chan error, 1)
	go func() { _, err := l.Accept(); errc <- err }()
	time.Sleep(20 * time.Millisecond)
	l.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Accept still blocked after Close")
	}
}

func TestParseTrusted(t *testing.T) {
	tr, err := ParseTrusted(" 10.0.0.0/8, 192.0.2.7,2001:db8::/32,::ffff:172.16.0.0/108 ")
	if err != nil {
		t.Fatal(err)
	}
	for ip, want := range map[string]bool{
		"10.1.2.3": true, "::ffff:10.1.2.3": true, "192.0.2.7": true, "192.0.2.8": false,
		"2001:db8::5": true, "2001:db9::5": false, "172.16.3.4": true, "172.32.0.1": false,
	} {
		if got := tr.Contains(netip.MustParseAddr(ip)); got != want {
			t.Errorf("Contains(%s) = %v", ip, got)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "example.com", "fe80::1%eth0"} {
		if _, err := ParseTrusted(bad); err == nil {
			t.Errorf("ParseTrusted(%q) accepted", bad)
		}
	}
	if tr, err := ParseTrusted(""); err != nil || len(tr) != 0 {
		t.Errorf("empty: %v %v", tr, err)
	}
}

// TestNetConn: both kinds of accepted connection expose the TCP socket
// beneath, so that a server can set its options (netserver.QuickAck).
func TestNetConn(t *testing.T) {
	src := netip.MustParseAddrPort("203.0.113.5:1234")
	for name, trusted := range map[string]string{"trusted": "127.0.0.0/8", "untrusted": "192.0.2.0/24"} {
		t.Run(name, func(t *testing.T) {
			l := listen(t, trusted, 0)
			dial(t, l, Header{Source: src, Destination: src}.AppendV1(nil))
			sc := acceptOne(t, l, 10*time.Second)
			if sc == nil {
				t.Fatal("not accepted")
			}
			nc, ok := sc.(interface{ NetConn() net.Conn })
			if !ok {
				t.Fatalf("%T has no NetConn", sc)
			}
			if _, ok := nc.NetConn().(*net.TCPConn); !ok {
				t.Fatalf("NetConn is %T, want *net.TCPConn", nc.NetConn())
			}
		})
	}
}
