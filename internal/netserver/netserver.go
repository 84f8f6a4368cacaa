// Package netserver is the connection bookkeeping the protocol servers
// (IMAP, POP3, SMTP submission) share: the listeners one server serves, an
// accept loop that rides out temporary errors, the live connections, and a
// Close that ends them all and waits for their goroutines.
package netserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Group is the listeners and connections of one server. Create it with New;
// all methods may be called from any goroutine.
type Group struct {
	name   string
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed by Close: cuts an accept backoff short

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	conns     map[any]func() // tracked connection → its abort
	wg        sync.WaitGroup // the goroutines Serve starts (workers)
}

// New returns an open Group. name prefixes its errors ("pop3server") and
// log carries its accept warnings (slog.Default() when nil).
func New(name string, log *slog.Logger) *Group {
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Group{
		name: name, log: log, ctx: ctx, cancel: cancel,
		done:      make(chan struct{}),
		listeners: map[net.Listener]struct{}{},
		conns:     map[any]func(){},
	}
}

// Context is cancelled by Close, after the connections are aborted and
// before it waits for their goroutines: it ends the store and
// authentication calls they may still be blocked in.
func (g *Group) Context() context.Context { return g.ctx }

// Serve accepts connections on l and runs handle for each on a goroutine of
// its own, which Close waits for. The connection is tracked while handle
// runs (Close closes it) and closed when handle returns: the shape of a
// server that serves each connection to its end in handle.
//
// Serve returns nil once the Group is closed (at once, closing l, when it
// already is), and the accept error when l fails otherwise; temporary
// errors (EMFILE, ENFILE) are waited out as net/http does.
func (g *Group) Serve(l net.Listener, handle func(net.Conn)) error {
	return g.ServeHandoff(l, func(c net.Conn) {
		defer c.Close()
		if !g.Track(c, func() { c.Close() }) {
			return
		}
		defer g.Untrack(c)
		handle(c)
	})
}

// ServeHandoff is Serve for a server whose connections outlive handle (IMAP
// hands them to a go-imap server): handle owns the connection, closes it,
// and calls Track and Untrack itself so that Close can end it.
func (g *Group) ServeHandoff(l net.Listener, handle func(net.Conn)) error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		l.Close()
		return nil
	}
	g.listeners[l] = struct{}{}
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		delete(g.listeners, l)
		g.mu.Unlock()
	}()

	w := &workers{g: g, handle: handle, next: make(chan net.Conn)}
	var delay time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if g.isClosed() {
				return nil
			}
			if !temporary(err) {
				return fmt.Errorf("%s: accept: %w", g.name, err)
			}
			// Out of file descriptors and the like: wait for some to be
			// freed rather than fail the listener, as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			g.log.Warn("accept failed", "server", g.name, "err", err, "retry_in", delay)
			select {
			case <-time.After(delay):
			case <-g.done:
			}
			continue
		}
		delay = 0
		select {
		case w.next <- c: // a goroutine that served a connection takes it
			continue
		default:
		}
		// Add under mu, checked against closed, so that no Add can race
		// with the Wait in Close.
		g.mu.Lock()
		if g.closed {
			g.mu.Unlock()
			c.Close()
			return nil
		}
		g.wg.Add(1)
		g.mu.Unlock()
		go w.serve(c)
	}
}

// maxIdleWorkers is how many goroutines of one listener wait for its next
// connection once they have served one.
const maxIdleWorkers = 64

// workers run handle for the connections of one listener. A goroutine that
// has served a connection waits for the next (up to maxIdleWorkers of them
// wait) instead of ending: a new goroutine starts on a small stack, and a
// login grew it two or three times, each growth a copy of the whole stack
// (5 % of an IMAP login's CPU, docs/benchmarks.md). A waiting goroutine
// holds no connection; the collector shrinks its stack if it stays unused.
type workers struct {
	g      *Group
	handle func(net.Conn)
	next   chan net.Conn // unbuffered: a send succeeds only if one waits
	idle   atomic.Int32
}

// workerDone, when set (by tests, before serving), is called as a worker
// has served a connection, with whether it waits for another or ends.
var workerDone func(waits bool)

func (w *workers) serve(c net.Conn) {
	defer w.g.wg.Done()
	for c != nil {
		w.handle(c)
		wait := w.idle.Add(1) <= maxIdleWorkers
		if workerDone != nil {
			workerDone(wait)
		}
		c = nil
		if wait {
			select {
			case c = <-w.next:
			case <-w.g.done:
			}
		}
		w.idle.Add(-1)
	}
}

// temporary says whether an accept error is worth waiting out. EMFILE and
// ENFILE are Temporary but not Timeout; net.Error's Temporary is deprecated
// for reads and writes, where it misled, but is still what tells these
// apart for Accept (net/http's Server.Serve relies on it too).
func temporary(err error) bool {
	var ne net.Error
	if !errors.As(err, &ne) {
		return false
	}
	if ne.Timeout() {
		return true
	}
	t, ok := ne.(interface{ Temporary() bool })
	return ok && t.Temporary()
}

// Track records a live connection under key, with the function that ends
// it at once (closing the socket, or saying BYE first). It returns false,
// tracking nothing, when the Group is closed: the caller closes the
// connection itself.
func (g *Group) Track(key any, abort func()) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.conns[key] = abort
	return true
}

// Untrack forgets key; the connection is over.
func (g *Group) Untrack(key any) {
	g.mu.Lock()
	delete(g.conns, key)
	g.mu.Unlock()
}

// Close closes every listener, aborts every tracked connection, cancels
// Context and waits for the goroutines Serve started. It returns the first
// error closing a listener; a second Close does nothing.
func (g *Group) Close() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	close(g.done)
	var err error
	for l := range g.listeners {
		if cerr := l.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) && err == nil {
			err = fmt.Errorf("%s: close listener: %w", g.name, cerr)
		}
	}
	aborts := make([]func(), 0, len(g.conns))
	for _, abort := range g.conns {
		aborts = append(aborts, abort)
	}
	g.mu.Unlock()
	// Outside mu: an abort may Untrack.
	for _, abort := range aborts {
		abort()
	}
	g.cancel()
	g.wg.Wait()
	return err
}

func (g *Group) isClosed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}

// RemoteIP returns the client's address of c, unmapped (::ffff:192.0.2.1 is
// 192.0.2.1, so that it is throttled and logged as such), or the zero Addr
// when c's address is not an IP address.
func RemoteIP(c net.Conn) netip.Addr {
	switch a := c.RemoteAddr().(type) {
	case *net.TCPAddr: // without formatting and parsing it, on every connection
		return a.AddrPort().Addr().Unmap()
	case nil:
		return netip.Addr{}
	default:
		ap, err := netip.ParseAddrPort(a.String())
		if err != nil {
			return netip.Addr{}
		}
		return ap.Addr().Unmap()
	}
}
