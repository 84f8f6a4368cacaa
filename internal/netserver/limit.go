package netserver

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/postern/postern/internal/auth"
)

// Limits caps the connections of one server (every listener of the IMAP
// server together, of the POP3 server, of SMTP submission, of the web).
type Limits struct {
	// PerAddr caps the open connections of one client address: an IPv4
	// address, or an IPv6 /56 as the login throttle keys them (auth.IPKey;
	// IPv4-mapped IPv6 counts as IPv4). 0 is no cap.
	PerAddr int
	// Total caps every open connection of the server. 0 is no cap.
	Total int
	// Exempt, when set, names addresses not capped per address; they still
	// count toward Total. These are the trusted load balancers: behind them
	// a mail connection carries the client's address from its PROXY header
	// and keeps the balancer's own only for its health checks, and every web
	// connection is the balancer's, shared by all its clients.
	Exempt func(netip.Addr) bool
}

func (l Limits) on() bool { return l.PerAddr > 0 || l.Total > 0 }

// Reason says which cap refused a connection.
type Reason int

// The caps of Limits.
const (
	OverPerAddr Reason = iota + 1
	OverTotal
)

func (r Reason) String() string {
	if r == OverPerAddr {
		return "per_address"
	}
	return "total"
}

// Refusal is what a listener writes to a connection over a cap before it
// closes it, in the protocol's words; "" closes without a word (implicit
// TLS, where the client's first expectation is a handshake).
type Refusal struct {
	PerAddr, Total string
}

func (r Refusal) line(why Reason) string {
	if why == OverPerAddr {
		return r.PerAddr
	}
	return r.Total
}

// refuseWrite bounds writing a refusal. It is written on the accept
// loop's goroutine (a goroutine per refused connection is what a flood
// would like), into the empty send buffer of a new socket: it returns at
// once, and the deadline only guards the accept loop against the
// impossible.
const refuseWrite = time.Second

// refusalLogEvery is how often refusals are logged at most: a flood must
// not flood the log too.
const refusalLogEvery = time.Minute

// Limiter counts the open connections of one server across its listeners
// and refuses those over its Limits as they are accepted. A connection is
// counted from its accept to its first Close.
type Limiter struct {
	lim  Limits
	name string
	log  *slog.Logger

	mu     sync.Mutex
	total  int
	byAddr map[netip.Prefix]int

	refused  atomic.Int64 // since the start
	logMu    sync.Mutex
	lastLog  time.Time
	unlogged int64 // refusals since the last log line; guarded by logMu
}

// NewLimiter returns a Limiter for lim. name ("imapserver") and log say who
// refuses in the log (slog.Default() when nil).
func NewLimiter(name string, lim Limits, log *slog.Logger) *Limiter {
	if log == nil {
		log = slog.Default()
	}
	return &Limiter{lim: lim, name: name, log: log, byAddr: map[netip.Prefix]int{}}
}

// Listener returns inner with the caps applied: its Accept refuses the
// connections over a cap (writing refusal's line and closing them) and
// returns the others, which are counted until closed. Without caps it
// returns inner itself.
func (l *Limiter) Listener(inner net.Listener, refusal Refusal) net.Listener {
	if l == nil || !l.lim.on() {
		return inner
	}
	return &limitListener{Listener: inner, lim: l, refusal: refusal}
}

// Open returns how many connections are counted now, in total and for the
// address ip.
func (l *Limiter) Open(ip netip.Addr) (total, addr int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total, l.byAddr[auth.IPKey(ip)]
}

// Refused returns how many connections were refused since the start.
func (l *Limiter) Refused() int64 { return l.refused.Load() }

// admit counts a connection from ip, or says which cap it is over. keyed
// tells whether it was counted per address (release needs to know).
func (l *Limiter) admit(ip netip.Addr) (key netip.Prefix, keyed bool, why Reason) {
	keyed = l.lim.PerAddr > 0 && (l.lim.Exempt == nil || !l.lim.Exempt(ip))
	if keyed {
		key = auth.IPKey(ip)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lim.Total > 0 && l.total >= l.lim.Total {
		return key, false, OverTotal
	}
	if keyed {
		n := l.byAddr[key]
		if n >= l.lim.PerAddr {
			return key, false, OverPerAddr
		}
		l.byAddr[key] = n + 1
	}
	l.total++
	return key, keyed, 0
}

func (l *Limiter) release(key netip.Prefix, keyed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if !keyed {
		return
	}
	// Delete at zero: the map holds only addresses with open connections.
	if n := l.byAddr[key] - 1; n > 0 {
		l.byAddr[key] = n
	} else {
		delete(l.byAddr, key)
	}
}

// noteRefusal counts a refusal and logs one line for the first, then at
// most one a minute with how many followed.
func (l *Limiter) noteRefusal(ip netip.Addr, why Reason) {
	l.refused.Add(1)
	l.logMu.Lock()
	l.unlogged++
	now := time.Now()
	if now.Sub(l.lastLog) < refusalLogEvery {
		l.logMu.Unlock()
		return
	}
	n := l.unlogged
	l.unlogged, l.lastLog = 0, now
	l.logMu.Unlock()
	l.log.Warn("connections refused: over the connection limit",
		"server", l.name, "limit", why.String(), "remote", ip.String(), "refused", n,
		"max_per_address", l.lim.PerAddr, "max_total", l.lim.Total)
}

// limitListener is a listener under a Limiter's caps.
type limitListener struct {
	net.Listener
	lim     *Limiter
	refusal Refusal
}

// Accept returns the next connection within the caps, refusing the others
// on the way. Errors are inner's, for the accept loop to judge.
func (ll *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := ll.Listener.Accept()
		if err != nil {
			return nil, err
		}
		// The client's address: after the PROXY header when c came through
		// a trusted load balancer (proxyproto.Listener sits below).
		ip := RemoteIP(c)
		key, keyed, why := ll.lim.admit(ip)
		if why == 0 {
			return &limitedConn{Conn: c, lim: ll.lim, key: key, keyed: keyed}, nil
		}
		ll.refuse(c, why)
		ll.lim.noteRefusal(ip, why)
	}
}

func (ll *limitListener) refuse(c net.Conn, why Reason) {
	if msg := ll.refusal.line(why); msg != "" {
		c.SetWriteDeadline(time.Now().Add(refuseWrite))
		io.WriteString(c, msg)
	}
	c.Close()
}

// limitedConn is a counted connection: its first Close releases its count.
type limitedConn struct {
	net.Conn
	lim      *Limiter
	key      netip.Prefix
	keyed    bool
	released atomic.Bool
}

func (c *limitedConn) Close() error {
	if c.released.CompareAndSwap(false, true) {
		c.lim.release(c.key, c.keyed)
	}
	return c.Conn.Close()
}

// NetConn returns the connection beneath, for its socket options
// (QuickAck); reads and writes go through c.
func (c *limitedConn) NetConn() net.Conn { return c.Conn }
