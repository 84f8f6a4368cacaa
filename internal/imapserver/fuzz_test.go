package imapserver

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

var fuzzSeeds = []string{
	"a1 CAPABILITY\r\n",
	"a1 LOGIN {17}\r\nalice@example.com {20}\r\nabcdefghijkmnpqrstuv\r\n",
	"a1 LOGIN {4294967295}\r\n",
	"a1 LOGIN {5000+}\r\n" + strings.Repeat("x", 5000) + "\r\n",
	"a1 LOGIN {3+}\r\nabc \"x\"\r\n",
	"a1 AUTHENTICATE PLAIN\r\nAGFsaWNlAHg=\r\n",
	"a1 AUTHENTICATE PLAIN =\r\n",
	"a1 STARTTLS\r\na2 NOOP\r\n",
	"a1 LOGIN \"a\x00b\" c\r\n",
	"a1 LOGIN a\rb c\r\n",
	"a1 SELECT INBOX\r\na2 FETCH 1:* (BODY[] BODYSTRUCTURE ENVELOPE)\r\n",
	"a1 APPEND INBOX (\\Seen) {10}\r\n0123456789\r\na2 SELECT INBOX\r\na3 UID SEARCH OR FROM x NOT SEEN\r\n",
	"a1 SELECT INBOX\r\na2 IDLE\r\nDONE\r\na3 UID EXPUNGE 1:*\r\n",
	"a1 SELECT INBOX\r\na2 STORE 1:* +FLAGS (\\Deleted)\r\na3 MOVE 1 Trash\r\na4 CLOSE\r\n",
	"a1 LIST \"\" \"*\"\r\na2 STATUS INBOX (MESSAGES UNSEEN SIZE)\r\na3 CREATE x/y\r\na4 RENAME x z\r\n",
	"a1 SEARCH {5}\r\n",
	"a1 APPEND INBOX (\\Seen) {3+}\r\none {3+}\r\ntwo ~{3+}\r\n\x00\xe4x\r\na2 APPEND INBOX {3}\r\nabc (x {1}\r\n",
	"a1 SELECT INBOX\r\na2 SEARCH RETURN (SAVE MIN) ALL\r\na3 FETCH $ (BINARY.PEEK[1]<0.3> BINARY.SIZE[1])\r\na4 UID MOVE $ x\r\n",
	"a1 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (\"a\" %) RETURN (CHILDREN STATUS (MESSAGES))\r\na2 CREATE a (USE (\\Archive \\All))\r\na3 ENABLE IMAP4rev2\r\n",
	"* \r\n+ \r\n{}\r\n",
}

// FuzzFrame checks the guard's line parser on its own.
func FuzzFrame(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			line = line[:i+1]
		}
		li := parseLine(line)
		body := bytes.TrimRight(line, "\r\n")
		if li.literal && !bytes.HasSuffix(body, []byte("}")) {
			t.Fatalf("literal without a closing brace: %q", line)
		}
		if li.size < 0 || li.size > tooBig {
			t.Fatalf("size %d out of range", li.size)
		}
		if li.tag != "" && (strings.ContainsAny(li.tag, " {\x00\r\n+") || li.cmd == "") {
			t.Fatalf("bad tag %q / cmd %q for %q", li.tag, li.cmd, line)
		}
	})
}

// errorLog fails the fuzz target when the server logs an error (go-imap
// logs the panics it recovers from at that level).
type errorLog struct {
	mu   sync.Mutex
	msgs []string
}

func (h *errorLog) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }
func (h *errorLog) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.msgs = append(h.msgs, r.Message)
	h.mu.Unlock()
	return nil
}
func (h *errorLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *errorLog) WithGroup(string) slog.Handler      { return h }

func (h *errorLog) take() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.msgs
	h.msgs = nil
	return m
}

// FuzzIMAPCommand sends random input to a live server, before and after
// login, and checks that it neither panics nor stops serving.
func FuzzIMAPCommand(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	errs := &errorLog{}
	e := newEnv(f, envOptions{noTailer: true, log: slog.New(errs)})
	f.Fuzz(func(t *testing.T, input []byte, login bool) {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if login {
			io.WriteString(c, "L LOGIN "+testUser+" "+testSecret+"\r\n")
		}
		c.Write(input)
		c.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, c) // until the server hangs up
		if m := errs.take(); len(m) > 0 {
			t.Fatalf("server errors for %q: %q", input, m)
		}
		// Still serving.
		c2, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		c2.SetDeadline(time.Now().Add(10 * time.Second))
		greeting := make([]byte, 4)
		if _, err := io.ReadFull(c2, greeting); err != nil || string(greeting) != "* OK" {
			t.Fatalf("greeting after %q: %q %v", input, greeting, err)
		}
	})
}
