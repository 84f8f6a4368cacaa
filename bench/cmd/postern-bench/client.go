package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// The benchmark clients speak just enough IMAP (RFC 9051) and POP3 (RFC 1939)
// to log in and out or to sit in IDLE; every reply is read to the end so that
// a cycle measures the server's whole work.

var errRefused = errors.New("login refused")

// conn is one client connection with a line reader.
type conn struct {
	c net.Conn
	r *bufio.Reader
}

// dial connects to addr, from src when it is valid (a loopback address of
// 127.0.0.0/8, so that per-IP limits see many clients).
func dial(addr string, src net.IP) (*conn, error) {
	d := net.Dialer{Timeout: 30 * time.Second}
	if src != nil {
		d.LocalAddr = &net.TCPAddr{IP: src}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(60 * time.Second))
	return &conn{c: c, r: bufio.NewReaderSize(c, 512)}, nil
}

func (c *conn) line() (string, error) {
	l, err := c.r.ReadString('\n')
	return strings.TrimRight(l, "\r\n"), err
}

func (c *conn) send(s string) error {
	_, err := c.c.Write([]byte(s + "\r\n"))
	return err
}

// tagged reads until the reply tagged tag and reports whether it was OK.
func (c *conn) tagged(tag string) (bool, error) {
	for {
		l, err := c.line()
		if err != nil {
			return false, err
		}
		if strings.HasPrefix(l, tag+" ") {
			return strings.HasPrefix(l[len(tag)+1:], "OK"), nil
		}
	}
}

func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// imapLogin dials addr and logs in; the connection is left open.
func imapLogin(addr string, src net.IP, user, pass string) (*conn, error) {
	c, err := dial(addr, src)
	if err != nil {
		return nil, err
	}
	if g, err := c.line(); err != nil || !strings.HasPrefix(g, "* OK") {
		c.c.Close()
		return nil, fmt.Errorf("imap greeting %q: %v", g, err)
	}
	if err := c.send("a LOGIN " + quote(user) + " " + quote(pass)); err != nil {
		c.c.Close()
		return nil, err
	}
	ok, err := c.tagged("a")
	if err != nil {
		c.c.Close()
		return nil, err
	}
	if !ok {
		c.c.Close()
		return nil, errRefused
	}
	return c, nil
}

// imapCycle is one LOGIN+LOGOUT cycle on a new connection.
func imapCycle(addr string, src net.IP, user, pass string) error {
	c, err := imapLogin(addr, src, user, pass)
	if err != nil {
		return err
	}
	defer c.c.Close()
	if err := c.send("b LOGOUT"); err != nil {
		return err
	}
	if _, err := c.tagged("b"); err != nil {
		return err
	}
	return nil
}

// pop3Cycle is one USER/PASS/QUIT cycle on a new connection.
func pop3Cycle(addr string, src net.IP, user, pass string) error {
	c, err := dial(addr, src)
	if err != nil {
		return err
	}
	defer c.c.Close()
	expect := func(cmd string) error {
		if cmd != "" {
			if err := c.send(cmd); err != nil {
				return err
			}
		}
		l, err := c.line()
		if err != nil {
			return err
		}
		if !strings.HasPrefix(l, "+OK") {
			return errRefused
		}
		return nil
	}
	for _, cmd := range []string{"", "USER " + user, "PASS " + pass, "QUIT"} {
		if err := expect(cmd); err != nil {
			return err
		}
	}
	return nil
}

// idle logs in, selects INBOX and enters IDLE (RFC 2177); it returns once the server has
// sent its continuation request. closed receives the time the server ended
// the connection (a BYE or the end of the stream).
func idle(addr string, src net.IP, user, pass string) (*conn, <-chan time.Time, error) {
	c, err := imapLogin(addr, src, user, pass)
	if err != nil {
		return nil, nil, err
	}
	// As mail clients do: IDLE watches the selected INBOX.
	if err := c.send("s SELECT INBOX"); err != nil {
		c.c.Close()
		return nil, nil, err
	}
	if ok, err := c.tagged("s"); err != nil || !ok {
		c.c.Close()
		return nil, nil, fmt.Errorf("SELECT INBOX refused: %v", err)
	}
	if err := c.send("i IDLE"); err != nil {
		c.c.Close()
		return nil, nil, err
	}
	for {
		l, err := c.line()
		if err != nil {
			c.c.Close()
			return nil, nil, fmt.Errorf("IDLE: %w", err)
		}
		if strings.HasPrefix(l, "+") {
			break
		}
		if strings.HasPrefix(l, "i ") {
			c.c.Close()
			return nil, nil, fmt.Errorf("IDLE refused: %s", l)
		}
	}
	c.c.SetDeadline(time.Time{})
	closed := make(chan time.Time, 1)
	go func() {
		for {
			l, err := c.line()
			if err != nil || strings.HasPrefix(l, "* BYE") {
				closed <- time.Now()
				return
			}
		}
	}()
	return c, closed, nil
}

// srcIP returns the n-th client address of 127.0.0.0/8 beyond 127.0.0.1:
// 127.1.0.0 upwards, 16 million of them.
func srcIP(n int) net.IP {
	n = n % (1 << 24)
	return net.IPv4(127, byte(1+n>>16%254), byte(n>>8), byte(n))
}
