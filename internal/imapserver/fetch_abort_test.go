package imapserver

import (
	"net"
	"strings"
	"testing"
	"time"
)

// TestFetchWriteErrorEndsSession: a client that goes away in the middle of a
// large FETCH body (a phone losing its network, or a revoked session cut by
// abort) makes the server's write fail. The session must still end: found
// by the e2e test of a revoked session stuck writing, where go-imap's serve
// goroutine and the revocation's BYE waited for ever on the response
// encoder that the failed FETCH had left locked, and the session's Track
// done (and bus subscription) were never released.
func TestFetchWriteErrorEndsSession(t *testing.T) {
	e := newEnv(t, envOptions{noTailer: true})
	c := dial(t, e.addr)
	c.login()
	// Far more than the socket buffers of both ends hold.
	big := "Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("x", 76)+"\r\n", 100_000)
	appendCmd(c, "a1", "INBOX", "", big)
	c.ok("a2", "SELECT INBOX")
	if err := c.c.(*net.TCPConn).SetReadBuffer(4096); err != nil {
		t.Fatal(err)
	}
	c.send("a3 FETCH 1 BODY.PEEK[]\r\n")
	time.Sleep(300 * time.Millisecond) // the server is now blocked writing

	ts := e.auth.sessions()
	if len(ts) != 1 {
		t.Fatalf("%d tracked sessions", len(ts))
	}
	// Reset rather than close politely, so that the blocked write fails.
	c.c.(*net.TCPConn).SetLinger(0)
	c.c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for !ts[0].isEnded() {
		if time.Now().After(deadline) {
			t.Fatal("the session did not end after its client went away during FETCH")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// The same through a revocation while the client is merely slow: the
	// BYE must not wait for ever either.
	c2 := dial(t, e.addr)
	c2.login()
	c2.ok("b1", "SELECT INBOX")
	c2.c.(*net.TCPConn).SetReadBuffer(4096)
	c2.send("b2 FETCH 1 BODY.PEEK[]\r\n")
	time.Sleep(300 * time.Millisecond)
	ts = e.auth.sessions()
	ts[len(ts)-1].close()
	deadline = time.Now().Add(10 * time.Second)
	for !ts[len(ts)-1].isEnded() {
		if time.Now().After(deadline) {
			t.Fatalf("the revoked session stuck in FETCH did not end (%d sessions)", len(ts))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
