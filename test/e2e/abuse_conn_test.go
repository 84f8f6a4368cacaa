package e2e

// Connection abuse against the real binary: the caps on open connections
// per client address and in total (--max-connections-per-ip,
// --max-connections), the web's minimum request-body rate, and the office
// behind one NAT address that the caps must leave alone.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// capProto is one protocol server under test: its listeners (STARTTLS and
// implicit TLS share one count), how its greeting starts and its refusals.
type capProto struct {
	name, tlsName  string
	greeting       string
	perAddr, total string
}

func capProtos(t *testing.T) []capProto {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	return []capProto{
		{"imap", "imaps", "* OK ",
			"* BYE [UNAVAILABLE] Too many connections from your address, try again later\r\n",
			"* BYE [UNAVAILABLE] Too many connections, try again later\r\n"},
		{"pop3", "pop3s", "+OK ",
			"-ERR [SYS/TEMP] Too many connections from your address, try again later\r\n",
			"-ERR [SYS/TEMP] Too many connections, try again later\r\n"},
		{"submission", "submissions", "220 ",
			"421 4.7.0 " + host + " Too many connections from your address, try again later\r\n",
			"421 4.7.0 " + host + " Too many connections, try again later\r\n"},
	}
}

// greeted connects from src and checks the greeting; the connection stays
// open until the test ends (or the caller closes it).
func greeted(t *testing.T, addr, src, greeting string) *lineConn {
	t.Helper()
	c := dialFrom(t, addr, src)
	if l := c.line(); !strings.HasPrefix(l, greeting) {
		t.Fatalf("from %s: %q, want a greeting starting %q", src, l, greeting)
	}
	return c
}

// refused connects from src and returns all the server says before it
// closes the connection.
func refused(t *testing.T, addr, src string) string {
	t.Helper()
	got, err := dialFrom(t, addr, src).drain(30 * time.Second)
	if err != nil {
		t.Fatalf("from %s: the server did not close the connection: %v (got %q)", src, err, got)
	}
	return got
}

// greetedAgain connects from src until it is greeted: the server frees a
// closed connection's place once it has noticed the close.
func greetedAgain(t *testing.T, addr, src, greeting string) {
	t.Helper()
	for end := time.Now().Add(30 * time.Second); ; {
		c := dialFrom(t, addr, src)
		l, err := c.drainLine()
		if strings.HasPrefix(l, greeting) {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("from %s: still %q, %v after closing connections", src, l, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// drainLine reads the first line, or what comes before the close.
func (c *lineConn) drainLine() (string, error) {
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	return c.r.ReadString('\n')
}

func TestAbuseConnPerAddress(t *testing.T) {
	const limit = 3
	in := NewSQLite(t)
	srv := in.StartServer(t, "--max-connections-per-ip", fmt.Sprint(limit), "--max-connections", "1000")
	for _, p := range capProtos(t) {
		t.Run(p.name, func(t *testing.T) {
			addr := srv.Addr(p.name)
			var held []*lineConn
			for range limit {
				held = append(held, greeted(t, addr, "127.0.0.2", p.greeting))
			}
			for range 2 {
				if got := refused(t, addr, "127.0.0.2"); got != p.perAddr {
					t.Fatalf("over the cap: %q, want %q", got, p.perAddr)
				}
			}
			// One count for both listeners; implicit TLS is refused with a
			// plain close (a line in clear would be garbage to a TLS client).
			if got := refused(t, srv.Addr(p.tlsName), "127.0.0.2"); got != "" {
				t.Fatalf("%s over the cap: %q, want a close without a word", p.tlsName, got)
			}
			// Another address is served meanwhile.
			greeted(t, addr, "127.0.0.3", p.greeting)
			// Closed connections free their places.
			held[0].Close()
			held[1].Close()
			greetedAgain(t, addr, "127.0.0.2", p.greeting)
			greetedAgain(t, addr, "127.0.0.2", p.greeting)
		})
	}
	t.Run("web", func(t *testing.T) {
		addr := srv.Addr("web")
		for range limit {
			// Idle connections that have sent nothing yet.
			dialFrom(t, addr, "127.0.0.2")
		}
		got := refused(t, addr, "127.0.0.2")
		if !strings.HasPrefix(got, "HTTP/1.1 503 Service Unavailable\r\n") || !strings.Contains(got, "\r\nRetry-After: 10\r\n") {
			t.Fatalf("web over the cap: %q, want 503 with Retry-After", got)
		}
		c := dialFrom(t, addr, "127.0.0.3")
		c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		if l := c.line(); !strings.HasPrefix(l, "HTTP/1.1 200 ") {
			t.Fatalf("another address: %q", l)
		}
	})
}

func TestAbuseConnTotal(t *testing.T) {
	const limit = 4
	in := NewSQLite(t)
	srv := in.StartServer(t, "--max-connections", fmt.Sprint(limit), "--max-connections-per-ip", "0")
	for _, p := range capProtos(t) {
		t.Run(p.name, func(t *testing.T) {
			addr := srv.Addr(p.name)
			var held []*lineConn
			for i := range limit {
				held = append(held, greeted(t, addr, fmt.Sprintf("127.0.0.%d", 2+i%2), p.greeting))
			}
			if got := refused(t, addr, "127.0.0.5"); got != p.total {
				t.Fatalf("over the total: %q, want %q", got, p.total)
			}
			if got := refused(t, srv.Addr(p.tlsName), "127.0.0.6"); got != "" {
				t.Fatalf("%s over the total: %q, want a close without a word", p.tlsName, got)
			}
			held[0].Close()
			greetedAgain(t, addr, "127.0.0.5", p.greeting)
		})
	}
}

// TestAbuseConnSlowBody trickles a CalDAV PUT at a byte every 2 s: the web
// listener cuts it once its 30 s of grace are over (then it wants 1 KiB/s),
// long before the body is complete.
func TestAbuseConnSlowBody(t *testing.T) {
	in := NewSQLite(t)
	pass, _ := davMember(t, in)
	srv := in.StartServer(t)
	url := srv.URL("/dav/calendars/alice@example.com/default/")
	// The same PUT sent at once is accepted: the cut below is the rate's.
	if code, _, body := davDo(t, "PUT", url+"quick.ics", "alice@example.com", pass, davEvent("quick", "Quick"), "Content-Type", "text/calendar"); code != 201 {
		t.Fatalf("PUT at once: %d %s", code, body)
	}

	const size = 200 // bytes announced; 400 s at this pace
	c := dialFrom(t, srv.Addr("web"), nextSrc())
	req, _ := http.NewRequest("PUT", url+"slow.ics", nil)
	req.SetBasicAuth("alice@example.com", pass)
	c.send(fmt.Sprintf("PUT /dav/calendars/alice@example.com/default/slow.ics HTTP/1.1\r\nHost: x\r\n"+
		"Authorization: %s\r\nContent-Type: text/calendar\r\nContent-Length: %d\r\n\r\n", req.Header.Get("Authorization"), size))
	var sent atomic.Int64
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for sent.Load() < size {
			if _, err := c.Write([]byte("B")); err != nil {
				return
			}
			sent.Add(1)
			select {
			case <-time.After(2 * time.Second):
			case <-stop:
				return
			}
		}
	}()
	// Generous: the cut is due after 30 s.
	c.SetReadDeadline(time.Now().Add(3 * time.Minute))
	status, err := c.r.ReadString('\n')
	if n := sent.Load(); n >= size {
		t.Fatalf("the whole trickled body was taken (%d bytes): %q", n, status)
	}
	if err != nil && (errors.Is(err, os.ErrDeadlineExceeded) || !errors.Is(err, io.EOF) && !isReset(err)) {
		t.Fatalf("the trickling request was not cut: %v", err)
	}
	if err == nil && !strings.HasPrefix(status, "HTTP/1.1 4") && !strings.HasPrefix(status, "HTTP/1.1 5") {
		t.Fatalf("the trickled PUT was answered %q", status)
	}
	t.Logf("cut after %d bytes: %q %v", sent.Load(), strings.TrimSpace(status), err)
}

// TestAbuseConnOffice is the innocent side of the per-address cap: 64 mail
// programs behind one NAT address connect to IMAP and log in with their app
// passwords over and over, at the default caps, and none is ever refused.
func TestAbuseConnOffice(t *testing.T) {
	const (
		clients = 64
		members = 8
		rounds  = 10
		src     = "127.0.0.4"
	)
	in := NewSQLite(t)
	in.MustRun(t, "domain", "add", "example.com")
	type cred struct{ user, pass string }
	var creds []cred
	for i := range members {
		m := addMember(t, in, fmt.Sprintf("office%d@example.com", i))
		creds = append(creds, cred{m.Email, createAppPass(t, in, m.Email, "Thunderbird").Password})
	}
	srv := in.StartServer(t)
	addr := srv.Addr("imap")

	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Add(1)
		go func(cr cred) {
			defer wg.Done()
			for r := range rounds {
				if err := imapLoginLogout(addr, src, cr.user, cr.pass); err != nil {
					errs <- fmt.Errorf("%s, round %d: %w", cr.user, r, err)
					return
				}
			}
		}(creds[i%members])
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// imapLoginLogout is one short IMAP session from src: greeting, LOGIN,
// LOGOUT. It runs on goroutines of its own, so it returns its failure.
func imapLoginLogout(addr, src, user, pass string) error {
	d := net.Dialer{Timeout: 30 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	r := bufio.NewReader(c)
	// expect reads up to the line starting with prefix; untagged lines
	// before it are fine, except a BYE before LOGOUT (a refusal).
	expect := func(prefix string) error {
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return fmt.Errorf("waiting for %q: %v (got %q)", prefix, err, l)
			}
			if strings.HasPrefix(l, prefix) {
				return nil
			}
			if !strings.HasPrefix(l, "* ") || strings.HasPrefix(l, "* BYE") && prefix != "b OK " {
				return fmt.Errorf("waiting for %q: got %q", prefix, l)
			}
		}
	}
	if err := expect("* OK "); err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	fmt.Fprintf(c, "a LOGIN %s %s\r\n", user, pass)
	if err := expect("a OK "); err != nil {
		return err
	}
	fmt.Fprintf(c, "b LOGOUT\r\n")
	return expect("b OK ")
}

// TestAbuseConnBehindProxy: behind a trusted load balancer the per-address
// cap counts the client of each PROXY header, and never the balancer's own
// address, which every connection through it comes from (its health checks,
// PROXY LOCAL, keep it; so do all web connections, whose clients are named
// per request).
func TestAbuseConnBehindProxy(t *testing.T) {
	const limit = 2
	in := NewSQLite(t)
	srv := in.StartServer(t, "--trusted-proxies", trustedLB+"/32", "--max-connections-per-ip", fmt.Sprint(limit))
	imap := capProtos(t)[0]
	addr := srv.Addr("imap")
	for range limit {
		if l := proxyDial(t, addr, 1, "192.0.2.1:4000", false).line(); !strings.HasPrefix(l, imap.greeting) {
			t.Fatalf("client through the balancer: %q", l)
		}
	}
	c := proxyDial(t, addr, 2, "192.0.2.1:4001", false)
	if got, _ := c.drain(30 * time.Second); got != imap.perAddr {
		t.Fatalf("a client over its cap through the balancer: %q, want %q", got, imap.perAddr)
	}
	if l := proxyDial(t, addr, 1, "192.0.2.2:4000", false).line(); !strings.HasPrefix(l, imap.greeting) {
		t.Fatalf("another client through the balancer: %q", l)
	}
	for i := range limit + 1 {
		c := dialFrom(t, addr, trustedLB)
		c.send("PROXY UNKNOWN\r\n") // the balancer's health check
		if l := c.line(); !strings.HasPrefix(l, imap.greeting) {
			t.Fatalf("health check %d: %q", i, l)
		}
	}
	web := srv.Addr("web")
	for range limit + 1 {
		dialFrom(t, web, trustedLB)
	}
	c = dialFrom(t, web, trustedLB)
	c.send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 192.0.2.1\r\n\r\n")
	if l := c.line(); !strings.HasPrefix(l, "HTTP/1.1 200 ") {
		t.Fatalf("the balancer's web connection over the per-address cap: %q", l)
	}
}
