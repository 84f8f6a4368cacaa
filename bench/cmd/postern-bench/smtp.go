package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// The MX load: senders that deliver messages over plain SMTP (RFC 5321) as
// a sending MTA would: EHLO, then per message MAIL, RCPT, DATA pipelined
// (RFC 2920) when the server offers it, the message, and its final reply. A
// message counts only when the server answered 250 after DATA. Like the
// login clients, a sender spends as little CPU as it can, as it shares the
// machine with the servers: the message body is made once per sender, each
// message's headers are written into the sender's own buffer, replies are
// read in place.

// errSMTPRefused is a reply other than the one expected; the error's text
// holds the reply.
var errSMTPRefused = errors.New("refused")

// smtpMessage describes the messages of the load.
type smtpMessage struct {
	From  string   // envelope and From: sender
	Size  int      // bytes of a message, headers included (approximately: the body is cut to fit)
	Rcpts []string // recipients, in turn
	// PerMsg lists the recipients per message in turn (1,1,1,3: every
	// fourth message goes to three members).
	PerMsg []int
	// Logins make the load a submission load (RFC 6409): each connection
	// logs in with AUTH PLAIN (RFC 4954) as the next of them, all senders
	// together taking them in turn, and sends as that login's address
	// instead of From.
	Logins    []user
	nextLogin atomic.Int64
}

// smtpSender is one sending MTA: one connection at a time, its messages in
// sequence.
type smtpSender struct {
	addr    string
	src     func() net.IP // the address of each new connection; nil: the system's choice
	m       *smtpMessage
	perConn int // messages per connection (0: unlimited)
	id      int // the sender's number, in Message-IDs

	c    net.Conn
	r    *bufio.Reader
	from string    // the sender's address on this connection
	pipe bool      // the server offers PIPELINING
	sent int       // messages on this connection
	body []byte    // the dot-stuffed body with its final ".", made once
	w    []byte    // the command or message being sent
	next int       // index of the next recipient in m.Rcpts
	want []pending // replies still to read
	// copies counts the recipients of the messages accepted (a message to
	// three members is three copies to deliver), rcptRefused the recipients
	// refused; lastErr is the first error.
	copies, rcptRefused int
	lastErr             string
}

// newSMTPSender makes sender id's body: plain text paragraphs, as a
// person's mail, to fill the message to m.Size.
func newSMTPSender(addr string, src func() net.IP, m *smtpMessage, perConn, id int) *smtpSender {
	s := &smtpSender{addr: addr, src: src, m: m, perConn: perConn, id: id, next: id * 7}
	s.body = messageBody(max(0, m.Size-headerBudget))
	s.w = make([]byte, 0, m.Size+1024)
	return s
}

// headerBudget is about the size of the headers written per message.
const headerBudget = 700

const lorem = "Thank you for the notes from Tuesday's meeting. As agreed, the quarterly figures go to the " +
	"board on Friday; could you check the totals in section 3 against the ledger before then? " +
	"The venue for the offsite is confirmed for the 14th, and lunch will be served at one. " +
	"Let me know whether the proposal needs another pass, and I will book the room. "

// messageBody returns size bytes of text in lines of at most 76 characters,
// CRLF-terminated, then the end of data ("." line). A line that starts with
// a dot is stuffed (none does, but the rule is kept).
func messageBody(size int) []byte {
	var b bytes.Buffer
	b.Grow(size + 100)
	words := strings.Fields(lorem)
	line := 0
	for i := 0; b.Len() < size; i++ {
		w := words[i%len(words)]
		if line > 0 && line+1+len(w) > 76 {
			b.WriteString("\r\n")
			line = 0
			if i%9 == 0 {
				b.WriteString("\r\n") // paragraphs
			}
		}
		if line > 0 {
			b.WriteByte(' ')
			line++
		}
		if line == 0 && w[0] == '.' {
			b.WriteByte('.')
		}
		b.WriteString(w)
		line += len(w)
	}
	b.WriteString("\r\n.\r\n")
	return b.Bytes()
}

// send delivers one message, connecting first when needed, and returns nil
// only on a 250 after DATA.
func (s *smtpSender) send(seq int) error {
	if s.c == nil {
		if err := s.connect(); err != nil {
			s.fail(err)
			return err
		}
	}
	err := s.transaction(seq)
	s.sent++
	if err != nil {
		s.fail(err)
		// The next message starts on a new connection: after a refusal
		// the session's state is not worth reasoning about in a benchmark.
		s.close()
		return err
	}
	if s.perConn > 0 && s.sent >= s.perConn {
		s.quit()
	}
	return nil
}

func (s *smtpSender) fail(err error) {
	if s.lastErr == "" {
		s.lastErr = err.Error()
	}
}

func (s *smtpSender) connect() error {
	d := net.Dialer{Timeout: 30 * time.Second, KeepAlive: -1}
	if s.src != nil {
		d.LocalAddr = &net.TCPAddr{IP: s.src()}
	}
	c, err := d.Dial("tcp", s.addr)
	if err != nil {
		return err
	}
	c.SetDeadline(time.Now().Add(60 * time.Second))
	s.c, s.sent = c, 0
	s.r = readers.Get().(*bufio.Reader)
	s.r.Reset(c)
	if _, err := s.expect(220, nil); err != nil {
		s.close()
		return fmt.Errorf("greeting: %w", err)
	}
	s.w = append(s.w[:0], "EHLO sender"...)
	s.w = strconv.AppendInt(s.w, int64(s.id), 10)
	s.w = append(s.w, ".example.org\r\n"...)
	if _, err := s.c.Write(s.w); err != nil {
		s.close()
		return err
	}
	s.pipe = false
	if _, err := s.expect(250, func(l []byte) {
		if len(l) >= 14 && strings.EqualFold(string(l[4:14]), "PIPELINING") {
			s.pipe = true
		}
	}); err != nil {
		s.close()
		return fmt.Errorf("EHLO: %w", err)
	}
	s.from = s.m.From
	if len(s.m.Logins) == 0 {
		return nil
	}
	u := s.m.Logins[int((s.m.nextLogin.Add(1)-1)%int64(len(s.m.Logins)))]
	s.w = append(s.w[:0], "AUTH PLAIN "...)
	s.w = base64.StdEncoding.AppendEncode(s.w, []byte("\x00"+u.Email+"\x00"+u.Pass))
	s.w = append(s.w, "\r\n"...)
	if _, err := s.c.Write(s.w); err != nil {
		s.close()
		return err
	}
	if _, err := s.expect(235, nil); err != nil {
		s.close()
		return fmt.Errorf("AUTH as %s: %w", u.Email, err)
	}
	s.from = u.Email
	return nil
}

// transaction sends message seq of this sender: the envelope (in one write
// when pipelining, a command at a time otherwise), then the message.
func (s *smtpSender) transaction(seq int) error {
	n := s.m.PerMsg[seq%len(s.m.PerMsg)]
	refusedBefore := s.rcptRefused
	to := s.next
	s.next = (to + n) % len(s.m.Rcpts)
	s.c.SetDeadline(time.Now().Add(60 * time.Second))
	s.w = append(s.w[:0], "MAIL FROM:<"...)
	s.w = append(s.w, s.from...)
	s.w = append(s.w, "> SIZE="...)
	s.w = strconv.AppendInt(s.w, int64(len(s.body)+headerBudget), 10)
	s.w = append(s.w, "\r\n"...)
	if err := s.command(250, "MAIL"); err != nil {
		return err
	}
	for k := 0; k < n; k++ {
		s.w = append(s.w, "RCPT TO:<"...)
		s.w = append(s.w, s.m.Rcpts[(to+k)%len(s.m.Rcpts)]...)
		s.w = append(s.w, ">\r\n"...)
		if err := s.command(250, "RCPT"); err != nil {
			return err
		}
	}
	s.w = append(s.w, "DATA\r\n"...)
	if err := s.command(354, "DATA"); err != nil {
		return err
	}
	if s.pipe {
		if err := s.flush(); err != nil {
			return err
		}
		if err := s.replies(); err != nil {
			return err
		}
	}
	s.w = s.appendHeaders(s.w[:0], seq, to, n)
	s.w = append(s.w, s.body...)
	if _, err := s.c.Write(s.w); err != nil {
		return err
	}
	if _, err := s.expect(250, nil); err != nil {
		return fmt.Errorf("after DATA: %w", err)
	}
	s.copies += n - (s.rcptRefused - refusedBefore)
	return nil
}

// command queues the reply expected to the command at the end of s.w and,
// without pipelining, sends it and reads its reply at once.
func (s *smtpSender) command(code int, name string) error {
	s.want = append(s.want, pending{code, name})
	if s.pipe {
		return nil
	}
	if err := s.flush(); err != nil {
		return err
	}
	return s.replies()
}

// pending is a reply still to read.
type pending struct {
	code int
	name string
}

func (s *smtpSender) flush() error {
	_, err := s.c.Write(s.w)
	s.w = s.w[:0]
	return err
}

// replies reads the replies of the commands sent. A recipient's refusal is
// counted (the other recipients still take the message); any other refusal
// or an I/O error is returned.
func (s *smtpSender) replies() error {
	var fatal error
	for _, p := range s.want {
		_, err := s.expect(p.code, nil)
		switch {
		case err == nil:
		case !errors.Is(err, errSMTPRefused):
			s.want = s.want[:0]
			return err
		case p.name == "RCPT":
			s.rcptRefused++
			s.fail(err)
		case fatal == nil:
			fatal = fmt.Errorf("%s: %w", p.name, err)
		}
	}
	s.want = s.want[:0]
	return fatal
}

// appendHeaders writes the headers of message seq: those a sending MTA and
// a mail client write (no DKIM-Signature: the receiving side would verify
// it against DNS); a submission load's, a mail client's only.
func (s *smtpSender) appendHeaders(w []byte, seq, to, n int) []byte {
	now := time.Now()
	if len(s.m.Logins) == 0 {
		// A mail client's message has none: its submission server adds it.
		w = append(w, "Received: from sender"...)
		w = strconv.AppendInt(w, int64(s.id), 10)
		w = append(w, ".example.org (sender.example.org [192.0.2.10])\r\n\tby mail.example.org with ESMTPS id b"...)
		w = strconv.AppendInt(w, int64(seq), 36)
		w = append(w, "\r\n\tfor <"...)
		w = append(w, s.m.Rcpts[to%len(s.m.Rcpts)]...)
		w = append(w, ">; "...)
		w = now.AppendFormat(w, time.RFC1123Z)
		w = append(w, "\r\n"...)
	}
	w = append(w, "From: Alex Sender <"...)
	w = append(w, s.from...)
	w = append(w, ">\r\nTo: "...)
	for k := 0; k < n; k++ {
		if k > 0 {
			w = append(w, ",\r\n\t"...)
		}
		w = append(w, '<')
		w = append(w, s.m.Rcpts[(to+k)%len(s.m.Rcpts)]...)
		w = append(w, '>')
	}
	w = append(w, "\r\nSubject: Notes from Tuesday's meeting (#"...)
	w = strconv.AppendInt(w, int64(seq), 10)
	w = append(w, ")\r\nDate: "...)
	w = now.AppendFormat(w, time.RFC1123Z)
	w = append(w, "\r\nMessage-ID: <"...)
	w = strconv.AppendInt(w, now.UnixNano(), 36)
	w = append(w, '.')
	w = strconv.AppendInt(w, int64(s.id), 10)
	w = append(w, '.')
	w = strconv.AppendInt(w, int64(seq), 10)
	w = append(w, "@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8; format=flowed\r\n"+
		"Content-Transfer-Encoding: 7bit\r\nUser-Agent: postern-bench\r\n\r\n"...)
	return w
}

// expect reads a reply (every line of a multi-line one) and checks its
// code; each line goes to line when it is not nil. A reply with another
// code returns errSMTPRefused with the reply's last line.
func (s *smtpSender) expect(code int, line func([]byte)) (int, error) {
	for {
		l, err := s.r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			for err == bufio.ErrBufferFull {
				_, err = s.r.ReadSlice('\n')
			}
			l = l[:4]
		}
		if err != nil {
			return 0, err
		}
		if len(l) < 4 {
			return 0, fmt.Errorf("malformed reply %q", l)
		}
		got := int(l[0]-'0')*100 + int(l[1]-'0')*10 + int(l[2]-'0')
		if line != nil {
			line(l)
		}
		if l[3] == '-' {
			continue
		}
		if got != code {
			return got, fmt.Errorf("%w: %s", errSMTPRefused, bytes.TrimRight(l, "\r\n"))
		}
		return got, nil
	}
}

// drain reads n more replies of a pipelined group, whatever they say.
func (s *smtpSender) drain(n int) {
	for k := 0; k < n; k++ {
		if _, err := s.expect(0, nil); err != nil && !errors.Is(err, errSMTPRefused) {
			return
		}
	}
}

// quit ends the session politely.
func (s *smtpSender) quit() {
	if s.c == nil {
		return
	}
	s.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := s.c.Write([]byte("QUIT\r\n")); err == nil {
		s.expect(221, nil)
	}
	s.close()
}

func (s *smtpSender) close() {
	if s.c == nil {
		return
	}
	s.c.Close()
	s.r.Reset(nil)
	readers.Put(s.r)
	s.c, s.r = nil, nil
}

// smtpOpts is one MX load.
type smtpOpts struct {
	addr    string
	senders int
	dur     time.Duration
	perConn int
	msg     *smtpMessage
	// src gives each new connection its address (a sending MTA each);
	// nil: the system's choice.
	src func() net.IP
}

// smtpResult is a loadResult with what the senders met.
type smtpResult struct {
	loadResult
	Copies      int // recipients of the messages accepted
	RcptRefused int
	FirstErr    string
}

// runSMTP runs o.senders senders for o.dur; a message counts when the
// server answered 250 after its DATA, its latency from the start of its
// transaction (with the connection, when it opened one) to that reply.
func runSMTP(o smtpOpts) smtpResult {
	ss := make([]*smtpSender, o.senders)
	for w := range ss {
		ss[w] = newSMTPSender(o.addr, o.src, o.msg, o.perConn, w)
	}
	r := smtpResult{loadResult: runLoad(o.senders, o.dur, func(w, i int) error { return ss[w].send(i) })}
	for _, s := range ss {
		s.quit()
		r.RcptRefused += s.rcptRefused
		r.Copies += s.copies
		if r.FirstErr == "" {
			r.FirstErr = s.lastErr
		}
	}
	return r
}

// benchMessage is the MX benchmark's message: size bytes from
// sender@example.org to members of the seeded population in turn, with
// perMsg recipients per message in turn.
func benchMessage(size, members int, perMsg []int) *smtpMessage {
	m := &smtpMessage{From: "alex.sender@example.org", Size: size, PerMsg: perMsg}
	for i := 0; i < members; i++ {
		m.Rcpts = append(m.Rcpts, emailOf(i))
	}
	return m
}

// parseCounts reads "1,1,1,3".
func parseCounts(flag, s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("--%s wants counts such as 1,1,1,3, not %q", flag, s)
		}
		out = append(out, n)
	}
	return out, nil
}

// smtpCmd is one MX load against any server, by hand.
func smtpCmd(args []string) error {
	fs := flag.NewFlagSet("smtp", flag.ContinueOnError)
	addr := fs.String("addr", "", "the MX (HOST:PORT), plain SMTP")
	c := fs.Int("c", 16, "concurrent senders")
	d := fs.Duration("d", 10*time.Second, "duration")
	size := fs.Int("size", 10<<10, "message size in bytes")
	members := fs.Int("members", 1000, "recipients are u000000@bench.test ... of the seeded population")
	rcpts := fs.String("rcpts", "1,1,1,3", "recipients per message, in turn")
	perConn := fs.Int("per-conn", 1, "messages per connection (0: one connection per sender for the whole run)")
	spread := fs.Bool("spread", true, "each connection from a new address of 127.0.0.0/8, as mail from many MTAs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *addr == "" {
		return fmt.Errorf("smtp needs --addr")
	}
	per, err := parseCounts("rcpts", *rcpts)
	if err != nil {
		return err
	}
	raiseFileLimit()
	o := smtpOpts{addr: *addr, senders: *c, dur: *d, perConn: *perConn, msg: benchMessage(*size, *members, per)}
	if *spread {
		o.src = newSources(0)
	}
	r := runSMTP(o)
	fmt.Printf("smtp c=%d: %.0f messages/s, p50 %.2f ms, p99 %.2f ms, %d messages, %d errors, %d recipients refused\n",
		*c, r.Rate, r.P50, r.P99, r.Count, r.Errors, r.RcptRefused)
	if r.FirstErr != "" {
		fmt.Printf("first error: %s\n", r.FirstErr)
	}
	return nil
}

// newSources returns a source of client addresses of 127.0.0.0/8 (srcIP),
// from the n-th on, a new one at every call: every connection of the MX
// load comes from its own address, as mail to a domain comes from many
// MTAs, so that neither side's per-client limits (Postern's per-address
// rate limit, Postfix's anvil) measure the load generator instead of the
// server.
func newSources(n int) func() net.IP {
	var next atomic.Int64
	next.Store(int64(n))
	return func() net.IP { return srcIP(int(next.Add(1) - 1)) }
}
