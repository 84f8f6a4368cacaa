package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
)

// The benchmark clients speak just enough IMAP (RFC 9051) and POP3 (RFC 1939)
// to log in and out or to sit in IDLE; every reply is read to the end so that
// a cycle measures the server's whole work. The clients share the machine
// with the servers, so they spend as little as they can per cycle (no
// keep-alive options per socket, pooled buffers, commands built in place):
// what they spend is CPU taken from the server being measured.

var errRefused = errors.New("login refused")

// conn is one client connection with a line reader.
type conn struct {
	c net.Conn
	r *bufio.Reader
	w []byte // the command being sent
}

var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 512) }}

// dial connects to addr, from src when it is valid (a loopback address of
// 127.0.0.0/8, so that per-IP limits see many clients).
func dial(addr string, src net.IP) (*conn, error) {
	// No keep-alive: a cycle's connection lives for a millisecond, and the
	// option costs four setsockopt calls per socket.
	d := net.Dialer{Timeout: 30 * time.Second, KeepAlive: -1}
	if src != nil {
		d.LocalAddr = &net.TCPAddr{IP: src}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(60 * time.Second))
	r := readers.Get().(*bufio.Reader)
	r.Reset(c)
	return &conn{c: c, r: r}, nil
}

// close closes the connection and gives its reader back; c is not used after.
func (c *conn) close() {
	c.c.Close()
	c.r.Reset(nil)
	readers.Put(c.r)
	c.r = nil
}

func (c *conn) line() (string, error) {
	l, err := c.lineBytes()
	return string(l), err
}

// lineBytes returns the next line without its CRLF, valid until the next read.
func (c *conn) lineBytes() ([]byte, error) {
	l, err := c.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		// A line longer than the buffer (a long CAPABILITY): its start is
		// kept, the rest of it is of no interest.
		head := bytes.Clone(l)
		for err == bufio.ErrBufferFull {
			_, err = c.r.ReadSlice('\n')
		}
		l = head
	}
	return bytes.TrimRight(l, "\r\n"), err
}

// send writes a command made of parts and a CRLF in one write.
func (c *conn) send(parts ...string) error {
	c.w = c.w[:0]
	for _, p := range parts {
		c.w = append(c.w, p...)
	}
	c.w = append(c.w, "\r\n"...)
	_, err := c.c.Write(c.w)
	return err
}

// tagged reads until the reply tagged tag and reports whether it was OK.
func (c *conn) tagged(tag string) (bool, error) {
	for {
		l, err := c.lineBytes()
		if err != nil {
			return false, err
		}
		if len(l) > len(tag) && string(l[:len(tag)]) == tag && l[len(tag)] == ' ' {
			return bytes.HasPrefix(l[len(tag)+1:], []byte("OK")), nil
		}
	}
}

var quoter = strings.NewReplacer(`\`, `\\`, `"`, `\"`)

func quote(s string) string {
	if !strings.ContainsAny(s, `\"`) {
		return `"` + s + `"`
	}
	return `"` + quoter.Replace(s) + `"`
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
	if err := c.send("a LOGIN ", quote(user), " ", quote(pass)); err != nil {
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
	defer c.close()
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
	defer c.close()
	for _, cmd := range [...][2]string{{"", ""}, {"USER ", user}, {"PASS ", pass}, {"QUIT", ""}} {
		if cmd[0] != "" {
			if err := c.send(cmd[0], cmd[1]); err != nil {
				return err
			}
		}
		l, err := c.lineBytes()
		if err != nil {
			return err
		}
		if !bytes.HasPrefix(l, []byte("+OK")) {
			return errRefused
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
