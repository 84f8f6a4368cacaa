package e2e

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMailBadInput sends the hostile input of the security checklist (§4)
// to the real binary: STARTTLS command injection, huge literals and lines
// before login (memory must stay flat), and malformed SASL exchanges.
func TestMailBadInput(t *testing.T) {
	t.Parallel()
	in := NewSQLite(t)
	in.MustRun(t, "domain", "add", "example.com")
	in.MustRun(t, "domain", "add", "legacy.example", "--created", "2020-04-01")
	alice := addMember(t, in, "alice@example.com")
	app := createAppPass(t, in, alice.Email, "Thunderbird")
	addMember(t, in, "bob@legacy.example")
	srv := in.StartServer(t)

	t.Run("STARTTLS injection", func(t *testing.T) { testSTARTTLSInjection(t, srv) })
	t.Run("memory", func(t *testing.T) { testHugeInputMemory(t, srv, alice.Email, app.Password) })
	t.Run("malformed SASL", func(t *testing.T) { testMalformedSASL(t, srv, alice.Email, app.Password) })
}

// startTLSCase is one protocol's STARTTLS command, with a command to send
// in the same write (CVE-2011-0411: it must not be answered, neither in
// plaintext nor inside TLS).
type startTLSCase struct {
	listener string
	hello    func(c *lineConn)          // after connecting, before STARTTLS
	inject   string                     // STARTTLS and the smuggled command in one write
	ok       string                     // prefix of the STARTTLS reply
	probe    func(c *lineConn) []string // the first command after TLS; its reply lines
	wantHead string                     // the first line of probe's reply starts with this
}

var startTLSCases = []startTLSCase{
	{
		listener: "imap",
		hello:    func(c *lineConn) { c.line() },
		inject:   "a STARTTLS\r\nn1 NOOP\r\n", ok: "a OK",
		probe: func(c *lineConn) []string {
			return strings.SplitAfter(c.cmd("b CAPABILITY", "b "), "\n")
		},
		wantHead: "* CAPABILITY ",
	},
	{
		listener: "pop3",
		hello:    func(c *lineConn) { c.line() },
		inject:   "STLS\r\nNOOP\r\n", ok: "+OK",
		probe:    func(c *lineConn) []string { return []string{c.cmd("CAPA", "")} },
		wantHead: "+OK Capability",
	},
	{
		listener: "submission",
		hello: func(c *lineConn) {
			c.until("220 ")
			c.cmd("EHLO client.example", "250 ")
		},
		inject: "STARTTLS\r\nNOOP\r\n", ok: "220 ",
		probe:    func(c *lineConn) []string { return strings.SplitAfter(c.cmd("EHLO client.example", "250 "), "\n") },
		wantHead: "250-",
	},
}

func testSTARTTLSInjection(t *testing.T, srv *Server) {
	for _, tc := range startTLSCases {
		t.Run(tc.listener, func(t *testing.T) {
			c := dial(t, srv.Addr(tc.listener))
			tc.hello(c)
			c.send(tc.inject)
			if r := c.line(); !strings.HasPrefix(r, tc.ok) {
				t.Fatalf("STARTTLS: %q", r)
			}
			// The server speaks second in a TLS handshake: anything that
			// arrives now is a plaintext answer to the smuggled command.
			c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			if b, err := c.r.Peek(1); err == nil || c.r.Buffered() > 0 {
				more, _ := c.drain(100 * time.Millisecond)
				t.Fatalf("plaintext after the STARTTLS reply: %q", string(b)+more)
			} else if !isTimeout(err) {
				// Closing the connection is a correct answer too.
				t.Logf("%s closed the connection after the smuggled command: %v", tc.listener, err)
				return
			}
			c.SetReadDeadline(time.Time{})
			tc2 := tls.Client(c.Conn, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"})
			if err := tc2.Handshake(); err != nil {
				// Plaintext that arrived late would break the handshake this way.
				if strings.Contains(err.Error(), "does not look like a TLS handshake") {
					t.Fatalf("plaintext after the STARTTLS reply (the smuggled command was answered?): %v", err)
				}
				t.Logf("%s: TLS handshake after the smuggled command failed (connection refused): %v", tc.listener, err)
				return
			}
			tlsConn := &lineConn{t: t, Conn: tc2, r: bufio.NewReader(tc2)}
			lines := tc.probe(tlsConn)
			if !strings.HasPrefix(lines[0], tc.wantHead) {
				t.Errorf("first reply inside TLS: %q, want %q… (the smuggled command was answered?)", lines, tc.wantHead)
			}
			for _, l := range lines {
				if strings.HasPrefix(l, "n1 ") || strings.HasPrefix(l, "250 2.0.0 OK") {
					t.Errorf("the smuggled NOOP was answered inside TLS: %q", lines)
				}
			}
		})
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// testHugeInputMemory: a pre-login IMAP literal of 4294967295 octets (and
// its cousins) is refused without a continuation, and a 1 MiB line without
// CRLF is refused on every protocol, several at once; the server's memory
// stays flat (GreenMail #1038; go-imap #93; checklist 4.5).
func testHugeInputMemory(t *testing.T, srv *Server, user, password string) {
	pid := srv.Pid()
	// Warm up: one full login per protocol, so that lazily built state is
	// in the baseline.
	for _, r := range pyLogins(t, []pyAttempt{
		newAttempt("imap-login", srv.Addr("imap"), user, password, "starttls"),
		newAttempt("pop3-user", srv.Addr("pop3"), user, password, "starttls"),
		newAttempt("smtp", srv.Addr("submission"), user, password, "starttls"),
	}) {
		if !r.OK {
			t.Fatalf("warm-up login: %s", r.Error)
		}
	}
	rss0, hwm0 := memKiB(t, pid, "VmRSS"), memKiB(t, pid, "VmHWM")

	t.Run("IMAP literals before login", func(t *testing.T) {
		for i := 0; i < 5; i++ {
			for _, lit := range []string{"{4294967295}", "{2147483647}", "{99999999999}", "{18446744073709551616}", "{-1}", "{}"} {
				c := dial(t, srv.Addr("imap"))
				c.line()
				r := c.cmd("a1 LOGIN "+lit, "")
				if !strings.HasPrefix(r, "a1 BAD") && !strings.HasPrefix(r, "a1 NO") && !strings.HasPrefix(r, "* BYE") {
					t.Fatalf("LOGIN %s: %q, want BAD (no continuation)", lit, r)
				}
				c.Close()
			}
		}
	})

	const mib = 1 << 20
	long := strings.Repeat("a", mib)
	t.Run("1 MiB lines", func(t *testing.T) {
		var wg sync.WaitGroup
		for _, p := range []struct{ listener, want string }{
			{"imap", "* BYE"}, {"pop3", "-ERR"}, {"submission", "500 5.5."},
		} {
			for i := 0; i < 8; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := dial(t, srv.Addr(p.listener))
					if p.listener == "submission" {
						c.until("220 ")
						c.cmd("EHLO client.example", "250 ")
					} else {
						c.line()
					}
					c.SetWriteDeadline(time.Now().Add(30 * time.Second))
					_, werr := c.Write([]byte(long))
					if p.listener == "submission" && werr == nil {
						// SMTP cannot answer in the middle of a line: the server
						// discards it (bounded) and refuses it at its CRLF
						// (RFC 5321 §4.5.3.1.4), keeping the session usable.
						c.send("\r\n")
						if r := c.line(); !strings.HasPrefix(r, p.want) {
							t.Errorf("SMTP 1 MiB line: %q, want %q…", r, p.want)
						}
						if r := c.cmd("NOOP", ""); !strings.HasPrefix(r, "250 ") {
							t.Errorf("SMTP after the long line: NOOP %q", r)
						}
						return
					}
					got, err := c.drain(30 * time.Second)
					if isTimeout(err) {
						t.Errorf("%s: connection still open 30 s after a 1 MiB line (write error %v)", p.listener, werr)
					}
					if !strings.HasPrefix(got, p.want) && !(werr != nil && got == "") {
						t.Errorf("%s 1 MiB line: %q, want %q…", p.listener, got, p.want)
					}
				}()
			}
		}
		wg.Wait()
	})

	t.Run("SMTP line over the discard limit", func(t *testing.T) {
		c := dial(t, srv.Addr("submission"))
		c.until("220 ")
		c.SetWriteDeadline(time.Now().Add(30 * time.Second))
		c.Write([]byte(long + long)) // may fail once the server hangs up
		if got, err := c.drain(30 * time.Second); isTimeout(err) {
			t.Errorf("SMTP: connection still open after a 2 MiB line; got %q", got)
		}
	})

	// The server still works.
	if r := pyLogins(t, []pyAttempt{newAttempt("imap-plain", srv.Addr("imap"), user, password, "none")}); !r[0].OK {
		t.Fatalf("login after the hostile input: %s", r[0].Error)
	}
	rss1, hwm1 := memKiB(t, pid, "VmRSS"), memKiB(t, pid, "VmHWM")
	t.Logf("server memory: VmRSS %d → %d KiB, peak (VmHWM) %d → %d KiB", rss0, rss1, hwm0, hwm1)
	const limit = 20 << 10 // KiB
	if rss1-rss0 > limit || hwm1-hwm0 > limit {
		t.Errorf("memory grew by more than 20 MiB: VmRSS %+d KiB, VmHWM %+d KiB", rss1-rss0, hwm1-hwm0)
	}
}
