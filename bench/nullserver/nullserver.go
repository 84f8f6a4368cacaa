// Package nullserver is the yardstick of the benchmarks: an IMAP and POP3
// server that accepts every login without checking anything and keeps no
// state. Its login throughput is the loopback limit of the machine (client,
// kernel and one Go process), against which Postern's is compared (issue 6).
//
// It speaks just enough of RFC 9051 (greeting, CAPABILITY, LOGIN,
// AUTHENTICATE PLAIN with SASL-IR, NOOP, SELECT of an empty mailbox, IDLE,
// LOGOUT) and RFC 1939 (USER, PASS, AUTH PLAIN, STAT, NOOP, QUIT) for the
// benchmark clients, and of RFC 5321 (EHLO, MAIL, RCPT, DATA, RSET, NOOP,
// QUIT, with PIPELINING) to be the null MX: it reads each message to its end
// and keeps nothing but counts. Its SMTP also takes AUTH PLAIN and LOGIN
// (RFC 4954) with any credentials, so that it is the yardstick of a
// submission load too, and it counts what it took (messages, recipients,
// the time of the last), so that it is the sink that a sending server's
// deliveries are counted at. It is benchmark tooling: never expose it.
package nullserver

import (
	"bufio"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Server serves the null protocols on any number of listeners.
type Server struct {
	// Messages and Bytes count the messages the null MX answered 250 after
	// DATA, and their sizes as sent (without the dot-stuffing); Recipients
	// the accepted recipients of those messages (a message to three is
	// three copies delivered); Last the time of the last such 250, in
	// Unix nanoseconds (0: none yet); Signed the messages with at least one
	// DKIM-Signature header field.
	Messages, Bytes, Recipients, Last, Signed atomic.Int64

	mu     sync.Mutex
	lns    []net.Listener
	conns  map[net.Conn]struct{}
	closed bool
}

// New returns an empty Server.
func New() *Server { return &Server{conns: map[net.Conn]struct{}{}} }

// ServeIMAP accepts IMAP connections on ln until it is closed.
func (s *Server) ServeIMAP(ln net.Listener) error { return s.serve(ln, imapConn) }

// ServePOP3 accepts POP3 connections on ln until it is closed.
func (s *Server) ServePOP3(ln net.Listener) error { return s.serve(ln, pop3Conn) }

// ServeSMTP accepts SMTP connections on ln until it is closed.
func (s *Server) ServeSMTP(ln net.Listener) error {
	return s.serve(ln, func(rw *bufio.ReadWriter) error { return s.smtpConn(rw) })
}

func (s *Server) serve(ln net.Listener, handle func(*bufio.ReadWriter) error) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return net.ErrClosed
	}
	s.lns = append(s.lns, ln)
	s.mu.Unlock()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return nil
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		go func() {
			defer func() {
				c.Close()
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			}()
			handle(bufio.NewReadWriter(bufio.NewReaderSize(c, 1024), bufio.NewWriterSize(c, 1024)))
		}()
	}
}

// Close closes the listeners and every connection.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for _, ln := range s.lns {
		ln.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	return nil
}

func reply(rw *bufio.ReadWriter, lines ...string) error {
	for _, l := range lines {
		rw.WriteString(l)
		rw.WriteString("\r\n")
	}
	return rw.Flush()
}

func readLine(rw *bufio.ReadWriter) (string, error) {
	l, err := rw.ReadString('\n')
	return strings.TrimRight(l, "\r\n"), err
}

func imapConn(rw *bufio.ReadWriter) error {
	if err := reply(rw, "* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN IDLE] null server ready"); err != nil {
		return err
	}
	for {
		line, err := readLine(rw)
		if err != nil {
			return err
		}
		tag, rest, _ := strings.Cut(line, " ")
		cmd, _, _ := strings.Cut(rest, " ")
		switch strings.ToUpper(cmd) {
		case "CAPABILITY":
			err = reply(rw, "* CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN IDLE", tag+" OK CAPABILITY completed")
		case "LOGIN", "AUTHENTICATE":
			err = reply(rw, tag+" OK [CAPABILITY IMAP4rev1 IDLE] logged in")
		case "NOOP":
			err = reply(rw, tag+" OK NOOP completed")
		case "SELECT", "EXAMINE":
			err = reply(rw, "* 0 EXISTS", "* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft)",
				"* OK [UIDVALIDITY 1] UIDs valid", "* OK [UIDNEXT 1] predicted next UID", tag+" OK [READ-WRITE] SELECT completed")
		case "IDLE":
			if err = reply(rw, "+ idling"); err != nil {
				return err
			}
			if _, err = readLine(rw); err != nil { // DONE
				return err
			}
			err = reply(rw, tag+" OK IDLE terminated")
		case "LOGOUT":
			return reply(rw, "* BYE logging out", tag+" OK LOGOUT completed")
		default:
			err = reply(rw, tag+" BAD unknown command")
		}
		if err != nil {
			return err
		}
	}
}

func pop3Conn(rw *bufio.ReadWriter) error {
	if err := reply(rw, "+OK null server ready"); err != nil {
		return err
	}
	for {
		line, err := readLine(rw)
		if err != nil {
			return err
		}
		cmd, _, _ := strings.Cut(line, " ")
		switch strings.ToUpper(cmd) {
		case "USER", "PASS", "AUTH", "NOOP":
			err = reply(rw, "+OK")
		case "STAT":
			err = reply(rw, "+OK 0 0")
		case "QUIT":
			return reply(rw, "+OK bye")
		default:
			err = reply(rw, "-ERR unknown command")
		}
		if err != nil {
			return err
		}
	}
}

// UnknownUser is the local part the null MX refuses at RCPT (550 5.1.1), so
// that clients can be tested on refusals.
const UnknownUser = "unknown"

func (s *Server) smtpConn(rw *bufio.ReadWriter) error {
	if err := reply(rw, "220 null.test ESMTP null server"); err != nil {
		return err
	}
	rcpts := 0
	for {
		line, err := readLine(rw)
		if err != nil {
			return err
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			err = reply(rw, "250-null.test", "250-PIPELINING", "250-8BITMIME", "250-SIZE 52428800", "250-AUTH PLAIN LOGIN", "250 ENHANCEDSTATUSCODES")
		case "AUTH":
			err = smtpAuth(rw, arg)
		case "HELO":
			err = reply(rw, "250 null.test")
		case "MAIL":
			rcpts = 0
			err = reply(rw, "250 2.1.0 OK")
		case "RCPT":
			if strings.HasPrefix(strings.ToLower(arg), "to:<"+UnknownUser+"@") {
				err = reply(rw, "550 5.1.1 no such user")
				break
			}
			rcpts++
			err = reply(rw, "250 2.1.5 OK")
		case "DATA":
			if rcpts == 0 {
				err = reply(rw, "554 5.5.1 no valid recipients")
				break
			}
			if err = reply(rw, "354 end with <CRLF>.<CRLF>"); err != nil {
				return err
			}
			n, signed, err := readData(rw.Reader)
			if err != nil {
				return err
			}
			if signed {
				s.Signed.Add(1)
			}
			// Last first: a reader that sees the counts of this message
			// sees its time (or a later one) in Last.
			storeMax(&s.Last, time.Now().UnixNano())
			s.Recipients.Add(int64(rcpts))
			s.Bytes.Add(n)
			s.Messages.Add(1)
			rcpts = 0
			err = reply(rw, "250 2.0.0 OK queued")
		case "RSET":
			rcpts = 0
			err = reply(rw, "250 2.0.0 OK")
		case "NOOP":
			err = reply(rw, "250 2.0.0 OK")
		case "QUIT":
			return reply(rw, "221 2.0.0 bye")
		default:
			err = reply(rw, "502 5.5.2 unknown command")
		}
		if err != nil {
			return err
		}
	}
}

// storeMax raises v to n unless it holds more already (messages finishing
// at once store their times in any order).
func storeMax(v *atomic.Int64, n int64) {
	for {
		o := v.Load()
		if o >= n || v.CompareAndSwap(o, n) {
			return
		}
	}
}

// smtpAuth takes any credentials: PLAIN with or without an initial
// response, LOGIN's two prompts.
func smtpAuth(rw *bufio.ReadWriter, arg string) error {
	mech, initial, _ := strings.Cut(arg, " ")
	prompts := 0
	switch strings.ToUpper(mech) {
	case "PLAIN":
		if initial == "" {
			prompts = 1
		}
	case "LOGIN":
		prompts = 2
		if initial != "" {
			prompts = 1
		}
	default:
		return reply(rw, "504 5.5.4 unrecognized authentication type")
	}
	for ; prompts > 0; prompts-- {
		if err := reply(rw, "334 "); err != nil {
			return err
		}
		l, err := readLine(rw)
		if err != nil {
			return err
		}
		if l == "*" {
			return reply(rw, "501 5.0.0 authentication cancelled")
		}
	}
	return reply(rw, "235 2.7.0 authentication successful")
}

// readData reads a message up to its "." line and returns its size without
// the dot-stuffing (RFC 5321 4.5.2) and the final line, and whether its
// header holds a DKIM-Signature field.
func readData(r *bufio.Reader) (n int64, signed bool, err error) {
	start := true  // at the start of a line
	header := true // before the empty line that ends the header
	for {
		l, err := r.ReadSlice('\n')
		if err != nil && err != bufio.ErrBufferFull {
			return n, signed, err
		}
		if start && len(l) > 0 && l[0] == '.' {
			if string(l) == ".\r\n" {
				return n, signed, nil
			}
			l = l[1:]
		}
		if start && header {
			switch {
			case string(l) == "\r\n" || string(l) == "\n":
				header = false
			case len(l) >= len(dkimField) && strings.EqualFold(string(l[:len(dkimField)]), dkimField):
				signed = true
			}
		}
		n += int64(len(l))
		start = err == nil
	}
}

const dkimField = "DKIM-Signature:"
