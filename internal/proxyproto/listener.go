package proxyproto

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Trusted is the set of networks whose connections carry a PROXY header:
// the load balancers.
type Trusted []netip.Prefix

// ParseTrusted reads a comma-separated list of CIDR prefixes or single
// addresses ("10.0.0.0/8, 192.0.2.7, 2001:db8::/32"). Empty means none.
func ParseTrusted(s string) (Trusted, error) {
	var out Trusted
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			if p.Addr().Zone() != "" {
				return nil, fmt.Errorf("%q: zones are not allowed", f)
			}
			out = append(out, netip.PrefixFrom(p.Addr().Unmap(), unmappedBits(p)).Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("%q is neither an address nor a CIDR prefix", f)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// unmappedBits keeps ::ffff:10.0.0.0/104 meaning 10.0.0.0/8.
func unmappedBits(p netip.Prefix) int {
	if p.Addr().Is4In6() {
		return max(p.Bits()-96, 0)
	}
	return p.Bits()
}

// Contains reports whether ip (IPv4-mapped IPv6 counts as IPv4) is trusted.
func (t Trusted) Contains(ip netip.Addr) bool {
	ip = ip.Unmap().WithZone("")
	for _, p := range t {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// String lists the prefixes, comma-separated.
func (t Trusted) String() string {
	s := make([]string, len(t))
	for i, p := range t {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// AddrIP returns the IP of a net.Addr (TCP addresses and host:port strings).
func AddrIP(a net.Addr) netip.Addr {
	if a == nil {
		return netip.Addr{}
	}
	if t, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(t.IP)
		return ip.Unmap()
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// DefaultHeaderTimeout bounds how long a trusted peer may take to send its
// header; a load balancer sends it at once.
const DefaultHeaderTimeout = 10 * time.Second

// Listener wraps a TCP listener. A connection from a Trusted network must
// start with a valid PROXY header (v1 or v2) and is handed over with the
// header's source as RemoteAddr; without one it is closed (a load balancer
// that stopped sending headers would otherwise make every client look like
// the balancer). A connection from anywhere else is handed over as is, but
// closed if its first bytes are a PROXY header: only the balancers may say
// who the client is.
//
// The header is read in a goroutine per connection, so a slow peer never
// holds up Accept.
type Listener struct {
	net.Listener
	trusted Trusted
	timeout time.Duration
	log     *slog.Logger

	conns   chan accepted
	done    chan struct{}
	closing sync.Once
}

type accepted struct {
	c   net.Conn
	err error
}

// NewListener wraps inner. timeout 0 means DefaultHeaderTimeout; log nil
// means slog.Default().
func NewListener(inner net.Listener, trusted Trusted, timeout time.Duration, log *slog.Logger) *Listener {
	if timeout <= 0 {
		timeout = DefaultHeaderTimeout
	}
	if log == nil {
		log = slog.Default()
	}
	l := &Listener{Listener: inner, trusted: trusted, timeout: timeout, log: log,
		conns: make(chan accepted), done: make(chan struct{})}
	// Accept in the background from the start, so that headers are read
	// (and bad peers closed) even while the server is busy.
	go l.loop()
	return l
}

// Accept returns the next connection ready for the protocol.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case a := <-l.conns:
		return a.c, a.err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close closes the listener; connections still sending their header are closed.
func (l *Listener) Close() error {
	err := l.Listener.Close()
	l.closing.Do(func() { close(l.done) })
	return err
}

func (l *Listener) loop() {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			// Hand the error over as the inner listener would have: the
			// server decides whether to retry (EMFILE) or stop.
			select {
			case l.conns <- accepted{err: err}:
			case <-l.done:
				return
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if !l.trusted.Contains(AddrIP(c.RemoteAddr())) {
			l.deliver(&guardConn{Conn: c, log: l.log})
			continue
		}
		go l.handshake(c)
	}
}

func (l *Listener) deliver(c net.Conn) {
	select {
	case l.conns <- accepted{c: c}:
	case <-l.done:
		c.Close()
	}
}

// handshake reads the header of a trusted peer and hands the connection
// over, or closes it.
func (l *Listener) handshake(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(l.timeout))
	br := bufio.NewReaderSize(c, 512)
	h, err := Read(br)
	if err != nil {
		l.log.Warn("PROXY protocol: connection from a trusted proxy without a valid header closed",
			"peer", c.RemoteAddr().String(), "err", err)
		c.Close()
		return
	}
	c.SetReadDeadline(time.Time{})
	pc := &Conn{Conn: c, r: br, header: h}
	if !h.Local {
		pc.remote = &net.TCPAddr{IP: h.Source.Addr().Unmap().AsSlice(), Port: int(h.Source.Port())}
	}
	l.deliver(pc)
}

// Conn is a connection that arrived through a trusted proxy.
type Conn struct {
	net.Conn
	r      *bufio.Reader // holds what arrived after the header
	header Header
	remote net.Addr // the header's source; nil for LOCAL/UNKNOWN
}

// Read reads the bytes after the header.
func (c *Conn) Read(p []byte) (int, error) {
	if c.r != nil {
		if c.r.Buffered() > 0 {
			return c.r.Read(p)
		}
		c.r = nil // drained: read the socket directly from now on
	}
	return c.Conn.Read(p)
}

// RemoteAddr is the client's address as the proxy saw it (the proxy's own
// address for LOCAL and UNKNOWN headers: health checks).
func (c *Conn) RemoteAddr() net.Addr {
	if c.remote != nil {
		return c.remote
	}
	return c.Conn.RemoteAddr()
}

// NetConn returns the proxy's connection beneath, for its socket options
// (netserver.QuickAck); reading it directly would skip what c has buffered.
func (c *Conn) NetConn() net.Conn { return c.Conn }

// ProxyHeader returns the header the proxy sent.
func (c *Conn) ProxyHeader() Header { return c.header }

// ErrUntrustedHeader is what reading returns when a peer outside the trusted
// networks sends a PROXY header; the connection is closed.
var ErrUntrustedHeader = errors.New("proxyproto: PROXY header from an untrusted peer")

// guardConn is a connection from an untrusted peer: it is closed if it
// starts with a PROXY header, and read unchanged otherwise.
type guardConn struct {
	net.Conn
	log     *slog.Logger
	checked bool
	buf     []byte // first bytes read while checking, not yet returned
}

// NetConn returns the connection beneath, for its socket options.
func (g *guardConn) NetConn() net.Conn { return g.Conn }

func (g *guardConn) Read(p []byte) (int, error) {
	if !g.checked {
		if err := g.check(); err != nil {
			return 0, err
		}
	}
	if len(g.buf) > 0 {
		n := copy(p, g.buf)
		g.buf = g.buf[n:]
		return n, nil
	}
	return g.Conn.Read(p)
}

// check reads just enough of the first bytes to tell a PROXY header from
// anything else: one byte in practice ('a' of an IMAP tag, 0x16 of a TLS
// handshake), at most 12.
func (g *guardConn) check() error {
	var tmp [16]byte
	for {
		possible, complete := maybeHeader(g.buf)
		if complete {
			g.log.Warn("PROXY protocol header from a peer outside --trusted-proxies; connection closed",
				"peer", g.Conn.RemoteAddr().String())
			g.Conn.Close()
			return ErrUntrustedHeader
		}
		if !possible {
			g.checked = true
			return nil
		}
		// Read no further than the longest signature, so that nothing
		// beyond what the peer sent is waited for.
		want := len(v2Sig) - len(g.buf)
		if len(g.buf) < len(v1Prefix) {
			want = len(v1Prefix) - len(g.buf)
		}
		n, err := g.Conn.Read(tmp[:want])
		g.buf = append(g.buf, tmp[:n]...)
		if err != nil && n == 0 {
			return err
		}
	}
}
