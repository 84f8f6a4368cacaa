package imapserver_test

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

// Postern: a FETCH's (and a STORE's) responses go out together with its tagged reply, not
// one write per message.

// manyFetchSession answers FETCH with n messages.
type manyFetchSession struct {
	condStoreSession
	n uint32
}

func (s *manyFetchSession) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	for i := uint32(1); i <= s.n; i++ {
		rw := w.CreateMessage(i)
		rw.WriteUID(imap.UID(i))
		if err := rw.Close(); err != nil {
			return err
		}
	}
	return nil
}

func (s *manyFetchSession) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, options *imap.StoreOptions) error {
	for i := uint32(1); i <= s.n; i++ {
		rw := w.CreateMessage(i)
		rw.WriteFlags(flags.Flags)
		if err := rw.Close(); err != nil {
			return err
		}
	}
	return nil
}

// countingConn counts the writes made to it and the write deadlines set
// (set: those that are not none).
type countingConn struct {
	net.Conn
	writes    atomic.Int64
	deadlines atomic.Int64
	set       atomic.Int64
}

func (c *countingConn) SetWriteDeadline(t time.Time) error {
	c.deadlines.Add(1)
	if !t.IsZero() {
		c.set.Add(1)
	}
	return c.Conn.SetWriteDeadline(t)
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

func TestFetchResponsesBatched(t *testing.T) {
	const n = 100
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &manyFetchSession{n: n}, nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}},
		InsecureAuth: true,
	})
	client, server := net.Pipe()
	defer client.Close()
	counted := &countingConn{Conn: server}
	go srv.ServeConn(counted)
	r := bufio.NewReader(client)
	line := func() string {
		t.Helper()
		client.SetReadDeadline(time.Now().Add(10 * time.Second))
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		return strings.TrimSuffix(l, "\r\n")
	}
	send := func(s string) {
		t.Helper()
		client.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := client.Write([]byte(s + "\r\n")); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	line() // greeting
	send("a LOGIN u p")
	line()
	send("s SELECT INBOX")
	for !strings.HasPrefix(line(), "s OK") {
	}
	before := counted.writes.Load()
	deadlines := counted.deadlines.Load()
	send("f FETCH 1:* (UID)")
	for i := uint32(1); i <= n; i++ {
		if got, want := line(), fmt.Sprintf("* %d FETCH (UID %d)", i, i); got != want {
			t.Fatalf("response %d: got %q, want %q", i, got, want)
		}
	}
	if got := line(); got != "f OK FETCH completed" {
		t.Fatalf("tagged reply %q", got)
	}
	// 100 short responses and the tagged reply fit in one buffer.
	if w := counted.writes.Load() - before; w > 2 {
		t.Errorf("%d writes for a FETCH of %d messages", w, n)
	}
	// One write deadline for the batch, not one per response.
	if d := counted.deadlines.Load() - deadlines; d > 4 {
		t.Errorf("%d write deadlines set for a FETCH of %d messages", d, n)
	}
	before = counted.writes.Load()
	send(`t STORE 1:* +FLAGS (\Seen)`)
	for i := uint32(1); i <= n; i++ {
		if got, want := line(), fmt.Sprintf(`* %d FETCH (FLAGS (\Seen))`, i); got != want {
			t.Fatalf("response %d: got %q, want %q", i, got, want)
		}
	}
	if got := line(); got != "t OK STORE completed" {
		t.Fatalf("tagged reply %q", got)
	}
	if w := counted.writes.Load() - before; w > 2 {
		t.Errorf("%d writes for a STORE of %d messages", w, n)
	}
	// What follows is sent as before, a reply per command, and with a
	// deadline of its own: the batch's was cleared (kept, it would have
	// spared the NOOP's reply setting one).
	set := counted.set.Load()
	send("n NOOP")
	if got := line(); got != "n OK NOOP completed" {
		t.Fatalf("NOOP: %q", got)
	}
	if counted.set.Load() == set {
		t.Error("the batch's write deadline was left in force after the STORE")
	}
}

// flagsFetchSession answers FETCH with n messages' UID and FLAGS, as
// `UID FETCH 1:* (UID FLAGS)` on a large mailbox.
type flagsFetchSession struct {
	condStoreSession
	n uint32
}

func (s *flagsFetchSession) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	flags := []imap.Flag{imap.FlagSeen}
	for i := uint32(1); i <= s.n; i++ {
		rw := w.CreateMessage(i)
		rw.WriteUID(imap.UID(i))
		rw.WriteFlags(flags[:i%2])
		if err := rw.Close(); err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkFetchFlags: the server's side of a FETCH of 10,000 messages'
// UID and FLAGS over loopback TCP, the client reading and discarding.
func BenchmarkFetchFlags(b *testing.B) {
	const n = 10000
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &flagsFetchSession{n: n}, nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}},
		InsecureAuth: true,
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	go srv.Serve(l)
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReaderSize(c, 64<<10)
	until := func(tag string) {
		for {
			l, err := r.ReadSlice('\n')
			if err != nil {
				b.Fatal(err)
			}
			if strings.HasPrefix(string(l), tag+" ") {
				return
			}
		}
	}
	c.Write([]byte("a LOGIN u p\r\ns SELECT INBOX\r\n"))
	until("s")
	b.ReportAllocs()
	for b.Loop() {
		c.Write([]byte("f UID FETCH 1:* (UID FLAGS)\r\n"))
		until("f")
	}
}

// TestLargeFetchFewWrites: a batch leaves in writes of the batch writer's
// size, not of bufio's default 4 KiB (Postern).
func TestLargeFetchFewWrites(t *testing.T) {
	const n = 5000 // about 120 KiB of responses
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &manyFetchSession{n: n}, nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}},
		InsecureAuth: true,
	})
	client, server := net.Pipe()
	defer client.Close()
	counted := &countingConn{Conn: server}
	go srv.ServeConn(counted)
	r := bufio.NewReader(client)
	line := func() string {
		t.Helper()
		client.SetReadDeadline(time.Now().Add(10 * time.Second))
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		return strings.TrimSuffix(l, "\r\n")
	}
	send := func(s string) {
		t.Helper()
		client.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := client.Write([]byte(s + "\r\n")); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	line() // greeting
	send("a LOGIN u p")
	line()
	send("s SELECT INBOX")
	for !strings.HasPrefix(line(), "s OK") {
	}
	for round := 0; round < 2; round++ { // the second with a writer from the pool
		before := counted.writes.Load()
		octets := 0
		send("f FETCH 1:* (UID)")
		for i := uint32(1); i <= n; i++ {
			got, want := line(), fmt.Sprintf("* %d FETCH (UID %d)", i, i)
			if got != want {
				t.Fatalf("round %d, response %d: got %q, want %q", round, i, got, want)
			}
			octets += len(got) + 2
		}
		if got := line(); got != "f OK FETCH completed" {
			t.Fatalf("tagged reply %q", got)
		}
		if w, most := counted.writes.Load()-before, int64(octets/(64<<10)+2); w > most {
			t.Errorf("round %d: %d writes for %d octets of responses, want %d at most", round, w, octets, most)
		}
		send("n NOOP")
		if got := line(); got != "n OK NOOP completed" {
			t.Fatalf("NOOP: %q", got)
		}
	}
}

// After login a command's responses go out with its tagged reply, in one
// write (SELECT's untagged lines, EXPUNGE's); the continuation request of
// a synchronizing literal and IDLE's go out at once, or the client, which
// waits for them, would never send the rest.
func TestCommandResponsesOneWrite(t *testing.T) {
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &condStoreSession{}, nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIdle: {}},
		InsecureAuth: true,
	})
	client, server := net.Pipe()
	defer client.Close()
	counted := &countingConn{Conn: server}
	go srv.ServeConn(counted)
	r := bufio.NewReader(client)
	line := func() string {
		t.Helper()
		client.SetReadDeadline(time.Now().Add(10 * time.Second))
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		return strings.TrimSuffix(l, "\r\n")
	}
	send := func(s string) {
		t.Helper()
		client.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := client.Write([]byte(s)); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	// until reads up to the tagged reply and returns the lines read.
	until := func(tag string) []string {
		t.Helper()
		var lines []string
		for {
			l := line()
			lines = append(lines, l)
			if strings.HasPrefix(l, tag+" ") {
				return lines
			}
		}
	}
	line() // greeting
	send("a LOGIN u p\r\n")
	until("a")

	for _, c := range []struct{ tag, cmd string }{
		{"s", "SELECT INBOX"},
		{"e", "EXPUNGE"},
		{"n", "NOOP"},
	} {
		before := counted.writes.Load()
		send(c.tag + " " + c.cmd + "\r\n")
		lines := until(c.tag)
		if w := counted.writes.Load() - before; w != 1 {
			t.Errorf("%s: %d writes for %d lines, want 1", c.cmd, w, len(lines))
		}
		if c.cmd == "SELECT INBOX" && len(lines) < 5 {
			t.Errorf("SELECT answered %q", lines)
		}
	}

	send("p APPEND INBOX {5}\r\n")
	if l := line(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("APPEND: %q instead of the continuation request", l)
	}
	send("hello\r\n")
	if l := until("p"); !strings.HasPrefix(l[len(l)-1], "p OK") {
		t.Fatalf("APPEND: %q", l)
	}

	send("i IDLE\r\n")
	if l := line(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("IDLE: %q instead of the continuation request", l)
	}
	if l := line(); !strings.HasPrefix(l, "* 1 FETCH") {
		t.Fatalf("IDLE: %q instead of the update", l)
	}
	send("DONE\r\n")
	if l := until("i"); !strings.HasPrefix(l[len(l)-1], "i OK") {
		t.Fatalf("IDLE: %q", l)
	}
}
