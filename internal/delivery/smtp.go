package delivery

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// reply is one SMTP reply. text joins the lines' texts with a space; the
// enhanced code (RFC 3463), when the first line starts with one whose class
// matches the reply code, is taken off every line and kept apart.
type reply struct {
	code     int
	enhanced string
	lines    []string // each line's text, enhanced code included (EHLO's keywords)
	text     string
}

func (r reply) String() string {
	if r.enhanced != "" {
		return fmt.Sprintf("%d %s %s", r.code, r.enhanced, r.text)
	}
	return fmt.Sprintf("%d %s", r.code, r.text)
}

// result turns the reply into a recipient's result: 2xx delivered, 5xx
// permanent, anything else temporary. A reply without an enhanced code gets
// the class's generic one (X.0.0), as DSNs need one.
func (r reply) result(host string) Result {
	enh := r.enhanced
	class := r.code / 100
	if enh == "" && (class == 2 || class == 4 || class == 5) {
		enh = fmt.Sprintf("%d.0.0", class)
	}
	return Result{
		Delivered: class == 2,
		Permanent: class == 5,
		Code:      r.code,
		Enhanced:  enh,
		Text:      r.text,
		RemoteMTA: host,
	}
}

// parseEnhanced reads an RFC 3463 code at the start of text: class.subject.detail,
// class 2, 4 or 5 and equal to the reply code's, subject and detail 1-3 digits.
func parseEnhanced(text string, code int) (string, bool) {
	word, _, _ := strings.Cut(text, " ")
	parts := strings.Split(word, ".")
	if len(parts) != 3 || parts[0] != strconv.Itoa(code/100) {
		return "", false
	}
	if parts[0] != "2" && parts[0] != "4" && parts[0] != "5" {
		return "", false
	}
	for _, p := range parts[1:] {
		if len(p) < 1 || len(p) > 3 {
			return "", false
		}
		for _, c := range p {
			if c < '0' || c > '9' {
				return "", false
			}
		}
	}
	return word, true
}

// errProtocol is a reply that is not SMTP: the session cannot go on.
var errProtocol = errors.New("SMTP protocol error")

// maxReplyLines bounds a multi-line reply; EHLO lists rarely exceed 20.
const maxReplyLines = 100

// session is one SMTP connection, with what EHLO offered.
type session struct {
	d    *Deliverer
	conn net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	host string         // the name we connected to (RemoteMTA)
	addr netip.AddrPort // the address
	key  string         // pool key: address and TLS policy
	ext  map[string]string
	tls  *tls.ConnectionState
	// mails counts transactions, for LIMITS MAILMAX (RFC 9422).
	mails int
	// broken: an I/O or protocol error, a 421, or a canceled context; the
	// connection is closed instead of pooled.
	broken bool

	// blockTimeout, when set, is the deadline given to each write (DATA's
	// blocks).
	blockTimeout time.Duration

	mu       sync.Mutex
	ctx      context.Context
	canceled bool
	stop     func() bool
}

func newSession(d *Deliverer, c net.Conn, host string, addr netip.AddrPort, key string) *session {
	s := &session{d: d, host: host, addr: addr, key: key, ctx: context.Background()}
	s.setConn(c)
	return s
}

func (s *session) setConn(c net.Conn) {
	s.mu.Lock()
	s.conn = c
	s.mu.Unlock()
	s.br = bufio.NewReaderSize(c, 4096)
	s.bw = bufio.NewWriterSize(writerFunc(s.rawWrite), 16*1024)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func (s *session) rawWrite(p []byte) (int, error) {
	if s.blockTimeout > 0 {
		s.deadline(s.blockTimeout)
	}
	return s.conn.Write(p)
}

// bind ties the session to ctx: canceling ctx ends any read or write under
// way at once.
func (s *session) bind(ctx context.Context) {
	s.mu.Lock()
	s.ctx = ctx
	s.canceled = false
	s.mu.Unlock()
	s.stop = context.AfterFunc(ctx, func() {
		s.mu.Lock()
		s.canceled = true
		s.conn.SetDeadline(time.Unix(1, 0))
		s.mu.Unlock()
	})
}

// unbind undoes bind; a session whose context ended is broken.
func (s *session) unbind() {
	if s.stop != nil {
		s.stop()
		s.stop = nil
	}
	s.mu.Lock()
	if s.canceled {
		s.broken = true
	}
	s.ctx = context.Background()
	s.mu.Unlock()
}

// deadline sets the connection's deadline t from now, or the context's if
// sooner; never after the context was canceled, whose past deadline stays.
func (s *session) deadline(t time.Duration) {
	dl := time.Now().Add(t)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.canceled {
		return
	}
	if cdl, ok := s.ctx.Deadline(); ok && cdl.Before(dl) {
		dl = cdl
	}
	s.conn.SetDeadline(dl)
}

func (s *session) close() {
	s.broken = true
	s.conn.Close()
}

// quit says QUIT, waits briefly for the reply and closes.
func (s *session) quit() {
	if !s.broken {
		s.cmd(5*time.Second, "QUIT")
	}
	s.close()
}

// readReply reads one reply within t.
func (s *session) readReply(t time.Duration) (reply, error) {
	s.deadline(t)
	var r reply
	for n := 0; ; n++ {
		line, err := s.br.ReadSlice('\n')
		if err != nil {
			s.broken = true
			if errors.Is(err, bufio.ErrBufferFull) {
				return r, fmt.Errorf("%w: reply line too long", errProtocol)
			}
			return r, s.ioErr(err)
		}
		l := strings.TrimRight(string(line), "\r\n")
		if len(l) < 3 || (len(l) > 3 && l[3] != ' ' && l[3] != '-') {
			s.broken = true
			return r, fmt.Errorf("%w: %q is not an SMTP reply", errProtocol, trunc(l))
		}
		code, err := strconv.Atoi(l[:3])
		if err != nil || code < 200 || code > 599 || (n > 0 && code != r.code) {
			s.broken = true
			return r, fmt.Errorf("%w: %q is not an SMTP reply", errProtocol, trunc(l))
		}
		r.code = code
		text := ""
		if len(l) > 4 {
			text = l[4:]
		}
		r.lines = append(r.lines, text)
		if len(l) == 3 || l[3] == ' ' {
			break
		}
		if n >= maxReplyLines {
			s.broken = true
			return r, fmt.Errorf("%w: reply of more than %d lines", errProtocol, maxReplyLines)
		}
	}
	if enh, ok := parseEnhanced(r.lines[0], r.code); ok {
		r.enhanced = enh
	}
	texts := make([]string, 0, len(r.lines))
	for _, l := range r.lines {
		if r.enhanced != "" {
			if l == r.enhanced {
				l = ""
			} else {
				l = strings.TrimPrefix(l, r.enhanced+" ")
			}
		}
		if l = strings.TrimSpace(l); l != "" {
			texts = append(texts, l)
		}
	}
	r.text = strings.Join(texts, " ")
	if r.code == 421 {
		// RFC 5321 §3.8: the server is closing the connection.
		s.broken = true
	}
	return r, nil
}

func trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// ioErr names a timeout or a cancellation as such.
func (s *session) ioErr(err error) error {
	s.mu.Lock()
	canceled := s.canceled
	ctx := s.ctx
	s.mu.Unlock()
	if canceled && ctx.Err() != nil {
		return fmt.Errorf("delivery interrupted: %w", ctx.Err())
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("timeout: %w", err)
	}
	return err
}

// send writes one command line without waiting for the reply (pipelining).
func (s *session) send(t time.Duration, format string, args ...any) {
	s.deadline(t)
	fmt.Fprintf(s.bw, format, args...)
	s.bw.WriteString("\r\n")
}

func (s *session) flush(t time.Duration) error {
	s.deadline(t)
	if err := s.bw.Flush(); err != nil {
		s.broken = true
		return s.ioErr(err)
	}
	return nil
}

// cmd sends one command and reads its reply, both within t.
func (s *session) cmd(t time.Duration, format string, args ...any) (reply, error) {
	s.send(t, format, args...)
	if err := s.flush(t); err != nil {
		return reply{}, err
	}
	return s.readReply(t)
}

func (s *session) has(ext string) bool {
	_, ok := s.ext[ext]
	return ok
}

// hello says EHLO, or HELO when EHLO is refused (5xx), and records the
// extensions offered.
func (s *session) hello() (reply, error) {
	t := s.d.cfg.Timeouts.Command
	r, err := s.cmd(t, "EHLO %s", s.d.cfg.Hostname)
	if err != nil {
		return r, err
	}
	if r.code/100 == 5 {
		r, err = s.cmd(t, "HELO %s", s.d.cfg.Hostname)
		if err != nil || r.code/100 != 2 {
			return r, err
		}
		s.ext = map[string]string{}
		return r, nil
	}
	if r.code/100 != 2 {
		return r, nil
	}
	s.ext = map[string]string{}
	for _, l := range r.lines[1:] {
		kw, params, _ := strings.Cut(strings.TrimSpace(l), " ")
		s.ext[strings.ToUpper(kw)] = params
	}
	return r, nil
}

// startTLS upgrades the connection; the caller says EHLO again. A STARTTLS
// refused by the server returns the reply and leaves the session in clear
// text; a failed handshake breaks it.
func (s *session) startTLS(cfg *tls.Config) (reply, error) {
	t := s.d.cfg.Timeouts.Command
	r, err := s.cmd(t, "STARTTLS")
	if err != nil || r.code != 220 {
		return r, err
	}
	if s.br.Buffered() > 0 {
		// Anything sent after the 220 and before the handshake was not
		// protected by TLS and must not be read as if it were (CVE-2011-0411).
		s.broken = true
		return r, fmt.Errorf("%w: data after the STARTTLS reply", errProtocol)
	}
	return r, s.handshake(cfg)
}

func (s *session) handshake(cfg *tls.Config) error {
	tc := tls.Client(s.conn, cfg)
	s.deadline(s.d.cfg.Timeouts.Command)
	s.mu.Lock()
	ctx := s.ctx
	s.mu.Unlock()
	if err := tc.HandshakeContext(ctx); err != nil {
		s.broken = true
		return s.ioErr(err)
	}
	cs := tc.ConnectionState()
	s.tls = &cs
	s.setConn(tc)
	s.ext = nil
	return nil
}

// tlsDesc describes the session's TLS for logs.
func (s *session) tlsDesc() string {
	if s.tls == nil {
		return "none"
	}
	return tls.VersionName(s.tls.Version) + " " + tls.CipherSuiteName(s.tls.CipherSuite)
}

// limit reads a LIMITS parameter (RFC 9422), 0 when not offered.
func (s *session) limit(name string) int {
	params, ok := s.ext["LIMITS"]
	if !ok {
		return 0
	}
	for _, p := range strings.Fields(params) {
		k, v, _ := strings.Cut(p, "=")
		if strings.EqualFold(k, name) {
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				return n
			}
		}
	}
	return 0
}

// transaction runs MAIL, RCPT for each of idx and DATA, recording each
// recipient's result in j. Commands are pipelined (RFC 2920) when offered.
func (s *session) transaction(j *job, idx []int) {
	t := s.d.cfg.Timeouts
	m := j.m
	s.mails++
	var mail strings.Builder
	fmt.Fprintf(&mail, "MAIL FROM:<%s>", m.From)
	if s.has("SIZE") {
		fmt.Fprintf(&mail, " SIZE=%d", len(m.Body))
	}
	if m.EightBit && s.has("8BITMIME") {
		mail.WriteString(" BODY=8BITMIME")
	}
	if m.SMTPUTF8 && s.has("SMTPUTF8") {
		mail.WriteString(" SMTPUTF8")
	}
	var mr reply
	rcptReplies := make([]reply, len(idx))
	lost := func(err error) {
		for k, i := range idx {
			if r := rcptReplies[k]; r.code/100 == 4 || r.code/100 == 5 {
				j.set(i, r.result(s.host))
				continue
			}
			j.set(i, Result{Enhanced: "4.4.2", Text: fmt.Sprintf("connection to %s lost: %v", s.host, err), RemoteMTA: s.host})
		}
	}
	if s.has("PIPELINING") {
		s.send(t.Mail, "%s", mail.String())
		for _, i := range idx {
			s.send(t.Rcpt, "RCPT TO:<%s>", m.Rcpts[i])
		}
		if err := s.flush(t.Mail); err != nil {
			lost(err)
			return
		}
		var err error
		if mr, err = s.readReply(t.Mail); err != nil {
			lost(err)
			return
		}
		for k := range idx {
			if s.broken {
				break
			}
			if rcptReplies[k], err = s.readReply(t.Rcpt); err != nil {
				lost(err)
				return
			}
		}
	} else {
		var err error
		if mr, err = s.cmd(t.Mail, "%s", mail.String()); err != nil {
			lost(err)
			return
		}
		if mr.code/100 == 2 {
			for k, i := range idx {
				if rcptReplies[k], err = s.cmd(t.Rcpt, "RCPT TO:<%s>", m.Rcpts[i]); err != nil {
					lost(err)
					return
				}
				if s.broken {
					break
				}
			}
		}
	}
	if mr.code/100 != 2 {
		for _, i := range idx {
			j.set(i, mr.result(s.host))
		}
		s.reset()
		return
	}
	var accepted []int
	for k, i := range idx {
		r := rcptReplies[k]
		switch {
		case r.code == 0: // not sent: the server closed the session (421)
			j.set(i, Result{Enhanced: "4.4.2", Text: fmt.Sprintf("%s ended the session before this recipient", s.host), RemoteMTA: s.host})
		case r.code/100 == 2:
			accepted = append(accepted, i)
		case r.code == 552:
			// RFC 5321 §4.5.3.1.10: "too many recipients" is sometimes
			// sent as 552; it is temporary.
			res := r.result(s.host)
			res.Permanent = false
			j.set(i, res)
		default:
			j.set(i, r.result(s.host))
		}
	}
	if len(accepted) == 0 || s.broken {
		s.reset()
		return
	}
	dr, err := s.cmd(t.DataInit, "DATA")
	if err != nil {
		lost(err)
		return
	}
	if dr.code != 354 {
		if dr.code/100 == 2 {
			s.broken = true
			dr = reply{code: 451, enhanced: "4.5.0", text: fmt.Sprintf("%s answered DATA with %d instead of 354", s.host, dr.code)}
		}
		for _, i := range accepted {
			j.set(i, dr.result(s.host))
		}
		s.reset()
		return
	}
	if err := s.writeData(m.Body); err != nil {
		lost(err)
		return
	}
	fr, err := s.readReply(t.DataEnd)
	if err != nil {
		for _, i := range accepted {
			// The message was sent; the server may have delivered it
			// without our hearing so (RFC 1047): a retry may duplicate it.
			j.set(i, Result{Enhanced: "4.4.2", Text: fmt.Sprintf("no reply from %s after the message was sent: %v", s.host, err), RemoteMTA: s.host})
		}
		return
	}
	for _, i := range accepted {
		j.set(i, fr.result(s.host))
	}
}

// writeData sends the message dot-stuffed (RFC 5321 §4.5.2) and the final
// dot, each block of writes within Timeouts.DataBlock. A dot after any LF,
// bare ones included, is doubled, so that no reading of line ends can find
// the end of the data inside the message.
func (s *session) writeData(body []byte) error {
	s.blockTimeout = s.d.cfg.Timeouts.DataBlock
	defer func() { s.blockTimeout = 0 }()
	b := body
	if len(b) > 0 && b[0] == '.' {
		s.bw.WriteByte('.')
	}
	for len(b) > 0 {
		i := bytes.Index(b, []byte("\n."))
		if i < 0 {
			s.bw.Write(b)
			break
		}
		s.bw.Write(b[:i+2])
		s.bw.WriteByte('.')
		b = b[i+2:]
	}
	switch {
	case len(body) == 0:
	case bytes.HasSuffix(body, []byte("\r\n")):
	default:
		s.bw.WriteString("\r\n")
	}
	s.bw.WriteString(".\r\n")
	if err := s.bw.Flush(); err != nil {
		s.broken = true
		return s.ioErr(err)
	}
	return nil
}

// reset ends a transaction that did not reach DATA's end, so that the
// session can carry another.
func (s *session) reset() {
	if s.broken {
		return
	}
	if r, err := s.cmd(s.d.cfg.Timeouts.Command, "RSET"); err != nil || r.code/100 != 2 {
		s.broken = true
	}
}

// auth authenticates to a smarthost with PLAIN, or LOGIN when that is all
// it offers. The error's text never holds the credentials.
func (s *session) auth(user, pass string) (reply, error) {
	mechs := strings.Fields(strings.ToUpper(s.ext["AUTH"]))
	has := func(m string) bool {
		for _, x := range mechs {
			if x == m {
				return true
			}
		}
		return false
	}
	t := s.d.cfg.Timeouts.Command
	switch {
	case has("PLAIN"):
		ir := b64("\x00" + user + "\x00" + pass)
		return s.cmd(t, "AUTH PLAIN %s", ir)
	case has("LOGIN"):
		r, err := s.cmd(t, "AUTH LOGIN")
		if err != nil || r.code != 334 {
			return r, err
		}
		r, err = s.cmd(t, "%s", b64(user))
		if err != nil || r.code != 334 {
			return r, err
		}
		return s.cmd(t, "%s", b64(pass))
	case len(mechs) == 0:
		return reply{}, errors.New("the smarthost offers no AUTH, and credentials are configured")
	default:
		return reply{}, fmt.Errorf("the smarthost offers neither AUTH PLAIN nor LOGIN (only %s)", strings.Join(mechs, " "))
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
