package netserver

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// deadline bounds the functional waits: generous, never an assertion on
// how long something took.
const deadline = 10 * time.Second

var quiet = slog.New(slog.DiscardHandler)

func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func dial(t *testing.T, l net.Listener) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// serve runs fn (a Serve method) in the background; the channel yields
// its result.
func serve(fn func() error) <-chan error {
	errc := make(chan error, 1)
	go func() { errc <- fn() }()
	return errc
}

func result(t *testing.T, errc <-chan error) error {
	t.Helper()
	select {
	case err := <-errc:
		return err
	case <-time.After(deadline):
		t.Fatal("Serve did not return")
		return nil
	}
}

// waitClosed reads c until the server closes it.
func waitClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(deadline))
	_, err := io.Copy(io.Discard, c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("connection not closed by the server: %v", err)
	}
}

// timeoutErr is what accept returns when the process is out of file
// descriptors, as far as the accept loop can tell.
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "accept: too many open files (test)" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// temporaryErr is Temporary but not Timeout, like EMFILE from accept(2).
type temporaryErr struct{ timeoutErr }

func (temporaryErr) Timeout() bool { return false }

// fakeListener fails its first Accepts with errs, then hands out conns,
// then blocks until closed.
type fakeListener struct {
	mu      sync.Mutex
	errs    []error
	conns   []net.Conn
	accepts int
	done    chan struct{}
	once    sync.Once
}

func newFakeListener(errs []error, conns ...net.Conn) *fakeListener {
	return &fakeListener{errs: errs, conns: conns, done: make(chan struct{})}
}

func (l *fakeListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	l.accepts++
	if len(l.errs) > 0 {
		err := l.errs[0]
		l.errs = l.errs[1:]
		l.mu.Unlock()
		return nil, err
	}
	if len(l.conns) > 0 {
		c := l.conns[0]
		l.conns = l.conns[1:]
		l.mu.Unlock()
		return c, nil
	}
	l.mu.Unlock()
	<-l.done
	return nil, net.ErrClosed
}

func (l *fakeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *fakeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

func TestServeBacksOffOnTemporaryErrors(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	l := newFakeListener([]error{timeoutErr{}, temporaryErr{}, timeoutErr{}}, server)
	g := New("test", quiet)
	handled := make(chan net.Conn, 1)
	errc := serve(func() error { return g.Serve(l, func(c net.Conn) { handled <- c }) })

	select {
	case c := <-handled:
		if c != server {
			t.Fatalf("handled %v, want the listener's connection", c)
		}
	case <-time.After(deadline):
		t.Fatal("the connection after the temporary errors was not handled")
	}
	l.mu.Lock()
	accepts := l.accepts
	l.mu.Unlock()
	if accepts < 4 {
		t.Fatalf("%d accepts, want the 3 failed ones retried", accepts)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := result(t, errc); err != nil {
		t.Fatalf("Serve after Close: %v, want nil", err)
	}
}

func TestServeReturnsPermanentErrors(t *testing.T) {
	boom := errors.New("boom")
	l := newFakeListener([]error{boom})
	g := New("test", quiet)
	defer g.Close()
	err := result(t, serve(func() error { return g.Serve(l, func(net.Conn) {}) }))
	if !errors.Is(err, boom) {
		t.Fatalf("Serve: %v, want %v", err, boom)
	}
}

// A backoff in progress does not hold Serve up once the Group is closed.
func TestCloseDuringBackoff(t *testing.T) {
	errs := make([]error, 64) // the backoff reaches its 1 s ceiling
	for i := range errs {
		errs[i] = timeoutErr{}
	}
	l := newFakeListener(errs)
	g := New("test", quiet)
	errc := serve(func() error { return g.Serve(l, func(net.Conn) {}) })
	for {
		l.mu.Lock()
		n := l.accepts
		l.mu.Unlock()
		if n >= 2 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	g.Close()
	if err := result(t, errc); err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// Close ends the connections Serve tracks and returns only after their
// handlers have.
func TestCloseEndsConnectionsAndWaits(t *testing.T) {
	l := listen(t)
	g := New("test", quiet)
	started := make(chan struct{}, 2)
	var ended atomic.Int32
	errc := serve(func() error {
		return g.Serve(l, func(c net.Conn) {
			defer ended.Add(1)
			started <- struct{}{}
			io.Copy(io.Discard, c) // until Close closes c
			<-g.Context().Done()   // cancelled before Close waits
		})
	})
	clients := []net.Conn{dial(t, l), dial(t, l)}
	for range clients {
		select {
		case <-started:
		case <-time.After(deadline):
			t.Fatal("handler not started")
		}
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if n := ended.Load(); n != 2 {
		t.Fatalf("Close returned with %d of 2 handlers ended", n)
	}
	for _, c := range clients {
		waitClosed(t, c)
	}
	if err := result(t, errc); err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// With ServeHandoff the handler owns the connection: Close calls the abort
// it tracked, even after the handler returned.
func TestServeHandoffAbort(t *testing.T) {
	l := listen(t)
	g := New("test", quiet)
	tracked, aborted := make(chan struct{}, 1), make(chan struct{}, 1)
	errc := serve(func() error {
		return g.ServeHandoff(l, func(c net.Conn) {
			key := new(int)
			if !g.Track(key, func() { g.Untrack(key); c.Close(); aborted <- struct{}{} }) {
				c.Close()
			}
			tracked <- struct{}{}
		})
	})
	client := dial(t, l)
	select {
	case <-tracked:
	case <-time.After(deadline):
		t.Fatal("the connection was not handed over")
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-aborted:
	case <-time.After(deadline):
		t.Fatal("the tracked connection was not aborted")
	}
	waitClosed(t, client)
	if err := result(t, errc); err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

func TestServeAfterClose(t *testing.T) {
	g := New("test", quiet)
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	l := newFakeListener(nil)
	err := result(t, serve(func() error {
		return g.Serve(l, func(net.Conn) { t.Error("handler called after Close") })
	}))
	if err != nil {
		t.Fatalf("Serve after Close: %v, want nil", err)
	}
	select {
	case <-l.done:
	default:
		t.Fatal("Serve after Close left the listener open")
	}
	if g.Track(new(int), func() {}) {
		t.Fatal("Track after Close succeeded")
	}
	if err := g.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// When the listener is closed from outside, Serve reports it.
func TestServeListenerClosedElsewhere(t *testing.T) {
	l := listen(t)
	g := New("test", quiet)
	defer g.Close()
	errc := serve(func() error { return g.Serve(l, func(net.Conn) {}) })
	l.Close()
	if err := result(t, errc); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Serve: %v, want net.ErrClosed", err)
	}
}

// goroutineID is the id runtime.Stack prints for the calling goroutine.
func goroutineID() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	id, _, _ := strings.Cut(strings.TrimPrefix(string(buf), "goroutine "), " ")
	return id
}

// TestWorkersReused: a goroutine that served a connection serves the next
// one (its stack already grown); at most maxIdleWorkers wait, and Close ends
// those waiting.
func TestWorkersReused(t *testing.T) {
	done := make(chan bool, 1000)
	workerDone = func(waits bool) { done <- waits }
	t.Cleanup(func() { workerDone = nil })
	g := New("test", quiet)
	l := listen(t)
	var mu sync.Mutex
	ids := map[string]int{}
	release := make(chan struct{})
	errc := serve(func() error {
		return g.Serve(l, func(c net.Conn) {
			mu.Lock()
			ids[goroutineID()]++
			mu.Unlock()
			c.Write([]byte("hi\n"))
			<-release
		})
	})
	// One connection after another: each waits until the worker that
	// served the last one is waiting, and is served by it.
	close(release)
	for i := range 20 {
		c := dial(t, l)
		waitClosed(t, c)
		select {
		case waits := <-done:
			if !waits {
				t.Fatalf("connection %d: its worker ended", i)
			}
		case <-time.After(deadline):
			t.Fatalf("connection %d: its worker did not finish", i)
		}
	}
	mu.Lock()
	if len(ids) != 1 {
		t.Errorf("20 connections in a row served by %d goroutines, want 1", len(ids))
	}
	mu.Unlock()

	// A burst of maxIdleWorkers+20 at once: all served, then at most
	// maxIdleWorkers wait.
	hold := make(chan struct{})
	release2 := make(chan struct{})
	var served atomic.Int32
	g2 := New("test2", quiet)
	l2 := listen(t)
	errc2 := serve(func() error {
		return g2.Serve(l2, func(c net.Conn) {
			served.Add(1)
			hold <- struct{}{}
			<-release2
		})
	})
	n := maxIdleWorkers + 20
	for range n {
		dial(t, l2)
	}
	for i := range n {
		select {
		case <-hold:
		case <-time.After(deadline):
			t.Fatalf("%d of %d connections served at once", i, n)
		}
	}
	close(release2)
	waited := 0
	for i := range n {
		select {
		case waits := <-done:
			if waits {
				waited++
			}
		case <-time.After(deadline):
			t.Fatalf("%d of %d workers finished", i, n)
		}
	}
	if waited != maxIdleWorkers {
		t.Errorf("%d workers wait, want %d (the other %d end)", waited, maxIdleWorkers, n-maxIdleWorkers)
	}
	g.Close()
	g2.Close() // returns only once every waiting worker has ended
	if err := result(t, errc); err != nil {
		t.Error(err)
	}
	if err := result(t, errc2); err != nil {
		t.Error(err)
	}
}
