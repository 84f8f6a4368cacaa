package e2e

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// slowReader reads at most 64 KiB per 5 ms.
type slowReader struct{ r io.Reader }

func (s slowReader) Read(p []byte) (int, error) {
	time.Sleep(5 * time.Millisecond)
	return s.r.Read(p[:min(len(p), 64<<10)])
}

// testStuckWriterRevocation: a session whose client stopped reading in the
// middle of a large FETCH or RETR (so the server is blocked writing) is
// still closed when its app password is deleted: the revocation cannot wait
// for a response that never finishes. (That the IMAP session also ends
// inside the server — go-imap's encoder lock released — is checked by
// imapserver's TestFetchWriteErrorEndsSession: a leaked goroutine is not
// visible from here.)
func (f *mailFixture) testStuckWriterRevocation(t *testing.T) {
	gina := addMember(t, f.in, "gina@example.com")
	g1 := createAppPass(t, f.in, gina.Email, "Desktop")
	const line = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789\r\n"
	const lines = 200_000 // 15 MiB: far more than the socket buffers hold
	msg := "Subject: big\r\n\r\n" + strings.Repeat(line, lines)

	c := dial(t, f.srv.Addr("imap"))
	c.line()
	c.cmd("a1 LOGIN "+gina.Email+" "+g1.Password, "a1 OK")
	c.cmd(fmt.Sprintf("a2 APPEND INBOX {%d}", len(msg)), "+")
	if r := c.cmd(msg, "a2 "); !strings.Contains(r, "a2 OK") {
		t.Fatalf("APPEND: %q", r)
	}
	c.cmd("a3 LOGOUT", "a3 ")
	c.Close()

	// The INBOX holds the "app password created" message (1) and the big one (2).
	imap := dial(t, f.srv.Addr("imap"))
	imap.line()
	imap.cmd("a1 LOGIN "+gina.Email+" "+g1.Password, "a1 OK")
	imap.cmd("a2 SELECT INBOX", "a2 OK")
	imap.send("a3 FETCH 2 BODY.PEEK[]\r\na4 FETCH 2 BODY.PEEK[]\r\na5 FETCH 2 BODY.PEEK[]\r\n")
	pop := dial(t, f.srv.Addr("pop3"))
	pop.line()
	pop.cmd("USER "+gina.Email, "+OK")
	pop.cmd("PASS "+g1.Password, "+OK")
	pop.send("RETR 2\r\nRETR 2\r\nRETR 2\r\n")
	// The client reads nothing: the socket buffers (a few MiB) fill and both
	// servers block in a write.
	time.Sleep(500 * time.Millisecond)

	f.in.MustRun(t, "apppass", "delete", gina.Email, g1.ID)
	full := 3 * len(msg)
	var wg sync.WaitGroup
	for _, s := range []struct {
		name string
		c    *lineConn
	}{{"IMAP FETCH", imap}, {"POP3 RETR", pop}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Read what is left: the connection must end long before the
			// three responses are complete.
			// The client drains at a bounded pace (~12 MiB/s), like a slow
			// network: revocation lets a response in progress finish for
			// up to a second before it cuts the connection, and a client
			// reading at loopback speed would take all 45 MiB in that time.
			start := time.Now()
			s.c.SetReadDeadline(time.Now().Add(revocationDeadline + 30*time.Second))
			n, err := io.Copy(io.Discard, slowReader{s.c.r})
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				t.Errorf("%s: the stuck session was not closed after its app password was deleted (%d octets read)", s.name, n)
			case n >= int64(full):
				t.Errorf("%s: the client received all %d octets of a revoked session", s.name, n)
			default:
				t.Logf("%s stuck in a write: connection ended (%v) after %d of %d octets, drained in %v",
					s.name, err, n, full, time.Since(start).Round(time.Millisecond))
			}
		}()
	}
	wg.Wait()
}
