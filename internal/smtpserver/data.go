package smtpserver

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"

	"github.com/postern/postern/internal/mailauth"
	"github.com/postern/postern/internal/mailstore"
)

// txn is a mail transaction's envelope, taken from the session when its
// message has arrived.
type txn struct {
	from  string
	utf8  bool // MAIL FROM had SMTPUTF8
	rcpts []recipient
}

func (c *conn) takeTx() txn {
	t := txn{from: c.from, utf8: c.utf8, rcpts: c.rcpts}
	c.resetTx()
	return t
}

// data runs DATA (RFC 5321 §4.1.1.4). The message is read whole, then
// delivered to every recipient, and 250 is sent only after every delivery
// committed: nothing acknowledged can be lost.
func (c *conn) data(arg string) {
	switch {
	case arg != "":
		c.fail(501, "5.5.4", "Syntax: DATA")
		return
	case c.body != nil:
		// RFC 3030 §2: a message is sent with DATA or with BDAT, not both.
		c.fail(503, "5.5.1", "DATA after BDAT: send the rest of the message with BDAT")
		return
	case !c.inTx:
		c.fail(503, "5.5.1", "Send MAIL first")
		return
	case len(c.rcpts) == 0:
		c.fail(503, "5.5.1", "Send RCPT first: no valid recipients")
		return
	}
	c.reply(354, "", "End data with <CR><LF>.<CR><LF>")
	if err := c.flush(); err != nil {
		c.quit = true
		return
	}
	t := c.takeTx()
	w := c.newBody()
	if err := readData(c.r, w, func() {
		c.nc.SetReadDeadline(time.Now().Add(c.cfg.IdleTimeout))
	}); err != nil {
		// The client is gone or silent mid-message: nothing was accepted.
		c.readFailed(err)
		c.quit = true
		return
	}
	c.finish(t, w)
}

// bdat runs BDAT (RFC 3030): a chunk of exactly the given size, with no
// terminator to look for and no dot-stuffing, so no end of data can be
// smuggled inside one; the content rules of DATA (bodyWriter) hold across
// the chunks. A chunk is read even when it is refused, to stay in step
// with a pipelining client; one that cannot fit ends the session instead.
func (c *conn) bdat(arg string) {
	f := strings.Fields(arg)
	last := len(f) == 2 && strings.EqualFold(f[1], "LAST")
	n := int64(-1)
	if len(f) == 1 || last {
		n = parseOctets(f[0])
	}
	if n < 0 {
		// The chunk's size is unknown, so is where the next command starts.
		c.reply(501, "5.5.4", "Syntax: BDAT size [LAST]; closing connection")
		c.quit = true
		return
	}
	var received int64
	if c.body != nil {
		received = c.body.n
	}
	if n > c.cfg.MaxMessageBytes-received {
		c.reply(552, "5.3.4", fmt.Sprintf("Message too big: the limit is %d octets; closing connection", c.cfg.MaxMessageBytes))
		c.quit = true
		return
	}
	ok := c.inTx && len(c.rcpts) > 0
	var w io.Writer = io.Discard
	if ok {
		if c.body == nil {
			c.body = c.newBody()
		}
		w = c.body
	}
	if err := c.readChunk(w, n); err != nil {
		c.readFailed(err)
		c.quit = true
		return
	}
	switch {
	case !ok:
		c.fail(503, "5.5.1", "Send MAIL and RCPT first: no valid recipients")
	case !last:
		c.reply(250, "2.0.0", fmt.Sprintf("%d octets received", n))
	default:
		w := c.body
		c.finish(c.takeTx(), w)
	}
}

// parseOctets reads BDAT's chunk-size (1*DIGIT), -1 when it is not one.
func parseOctets(s string) int64 {
	if s == "" || len(s) > 18 {
		return -1
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return -1
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n
}

// readChunk copies n octets of the client's input to w, under the idle
// timeout for each read.
func (c *conn) readChunk(w io.Writer, n int64) error {
	for n > 0 {
		c.nc.SetReadDeadline(time.Now().Add(c.cfg.IdleTimeout))
		k, err := io.CopyN(w, c.r, min(n, 64<<10))
		n -= k
		if err != nil {
			return eofIsUnexpected(err)
		}
	}
	return nil
}

// finish answers a message read to its end: refused by a content rule, or
// delivered.
func (c *conn) finish(t txn, w *bodyWriter) {
	body, verdict := w.end()
	switch {
	case verdict == nil:
		c.deliver(t, body)
	case errors.Is(verdict, errBareNewline):
		c.log.Info("smtp: message refused", "reason", "bare-newline", "from", t.from)
		c.replyAll(t, Reply{554, "5.6.0", "Message refused: bare LF or CR; lines must end with CRLF"})
	case errors.Is(verdict, errNUL):
		c.replyAll(t, Reply{554, "5.6.0", "Message refused: NUL octets are not allowed"})
	case errors.Is(verdict, errDataLine):
		c.replyAll(t, Reply{554, "5.6.0", fmt.Sprintf("Message refused: a line is longer than %d octets", c.cfg.MaxDataLine)})
	case errors.Is(verdict, errHeaderBig):
		c.log.Info("smtp: message refused", "reason", "header-too-big", "from", t.from)
		c.replyAll(t, Reply{552, "5.3.4", fmt.Sprintf("Message header too big: at most %d octets and %d fields", c.cfg.MaxHeaderBytes, c.cfg.MaxHeaderFields)})
	default: // errTooBig
		c.replyAll(t, Reply{552, "5.3.4", fmt.Sprintf("Message too big: the limit is %d octets", c.cfg.MaxMessageBytes)})
	}
}

// replyAll answers the end of a message: once, or in LMTP once for each
// accepted recipient (RFC 2033 §4.2).
func (c *conn) replyAll(t txn, r Reply) {
	n := 1
	if c.cfg.Mode == LMTP {
		n = len(t.rcpts)
	}
	for range n {
		c.reply(r.Code, r.Enhanced, r.Text)
	}
}

// deliver inspects the message, then stores one copy for each member the
// recipients reach (each member once, however many recipients reach it),
// all in one transaction.
func (c *conn) deliver(t txn, body []byte) {
	if c.cfg.Mode == Submission {
		if refusal := c.checkIdentity(body); refusal != nil { // sending.go
			c.replyAll(t, *refusal)
			return
		}
	}
	var ins Inspection
	if c.cfg.Inspector != nil {
		env := Envelope{RemoteIP: c.remoteIP, Helo: c.helo, TLS: c.tls != nil, MailFrom: t.from}
		for _, r := range t.rcpts {
			env.Rcpts = append(env.Rcpts, r.address)
		}
		var err error
		ins, err = c.cfg.Inspector.Inspect(c.ctx, env, body)
		if err != nil {
			c.log.Warn("smtp: inspection failed", "err", err)
			c.replyAll(t, Reply{451, "4.3.0", "Message could not be checked, try again later"})
			return
		}
		if r := ins.Reject; r != nil {
			c.log.Info("smtp: message refused", "reason", "inspection", "code", r.Code, "from", t.from)
			c.replyAll(t, *r)
			return
		}
	}
	if c.cfg.Mode == MX {
		// After Inspect, which needs the original bytes (DKIM): RFC 8601 §5,
		// no field from outside may pass for this server's own.
		body = mailauth.StripAuthResults(body)
	}
	if ins.Rewrite != nil {
		body = ins.Rewrite(body)
	}
	now := c.cfg.Now()
	var added []byte
	if c.cfg.Mode == Submission {
		added = missingFields(body, now, c.cfg.Hostname, t.from)
	}
	id := rand.Text()[:16]
	results := make([]Reply, len(t.rcpts)) // Code 0: delivered
	full := map[int64]bool{}
	var ds []mailstore.Delivery
	for i, r := range t.rcpts {
		nfull := 0
		for _, m := range r.members {
			if _, seen := full[m]; !seen {
				h := c.traceHeaders(t, r.address, id, now, ins.Prepend, added)
				// LMTP has a reply per recipient, so the real size can
				// refuse one; SMTP refuses here only a mailbox that filled
				// up since RCPT, because its one reply would hold the
				// message back from everyone.
				size := int64(0)
				if c.cfg.Mode == LMTP {
					size = int64(len(h) + len(body))
				}
				ok, err := c.fits(m, size)
				if err != nil {
					c.log.Warn("smtp: mailbox usage", "err", err)
					c.replyAll(t, Reply{451, "4.3.0", "Delivery failed temporarily, try again later"})
					return
				}
				full[m] = !ok
				if ok {
					ds = append(ds, mailstore.Delivery{MemberID: m, Header: h, Body: body, Junk: ins.Junk})
				}
			}
			if full[m] {
				nfull++
			}
		}
		if nfull > 0 && nfull == len(r.members) {
			results[i] = Reply{452, "4.2.2", "Mailbox full: <" + r.address + "> is over its quota"}
			if c.cfg.Mode != LMTP {
				c.replyAll(t, results[i])
				return
			}
		} else if nfull > 0 {
			c.log.Warn("smtp: members of a recipient over quota skipped", "rcpt", r.address, "members", nfull)
		}
	}
	// All copies in one transaction: a failure leaves no copy anywhere, so
	// the client's retry after 451 duplicates nothing.
	var store func() error
	switch {
	case c.cfg.Mode == Submission && c.cfg.Submit != nil:
		sub, err := c.submission(t, ds, body, added, id, now)
		if err != nil {
			c.log.Error("smtp: signing failed", "from", t.from, "err", err)
			c.replyAll(t, Reply{451, "4.3.0", "Message could not be signed, try again later"})
			return
		}
		store = func() error { return c.cfg.Submit.Submit(c.ctx, sub) }
	case len(ds) > 0:
		store = func() error { return c.cfg.Mail.DeliverAll(c.ctx, ds) }
	}
	if store != nil {
		if err := store(); err != nil {
			c.log.Error("smtp: delivery failed", "from", t.from, "rcpts", len(t.rcpts), "err", err)
			for i := range results {
				if results[i].Code == 0 {
					results[i] = Reply{451, "4.3.0", "Delivery failed temporarily, try again later"}
				}
			}
		}
	}
	if c.cfg.Mode != LMTP && results[0].Code != 0 {
		c.reply(results[0].Code, results[0].Enhanced, results[0].Text)
		return
	}
	queued := 0
	for _, r := range t.rcpts {
		if r.external {
			queued++
		}
	}
	c.log.Info("smtp: delivered", "from", t.from, "rcpts", len(t.rcpts), "copies", len(ds), "queued", queued, "bytes", len(body), "junk", ins.Junk, "id", id)
	if c.cfg.Mode != LMTP {
		if queued > 0 {
			c.reply(250, "2.0.0", "Message accepted for delivery, id "+id)
			return
		}
		c.reply(250, "2.0.0", "Message accepted and delivered")
		return
	}
	for i, r := range results {
		if r.Code == 0 {
			r = Reply{250, "2.0.0", "<" + t.rcpts[i].address + "> delivered"}
		}
		c.reply(r.Code, r.Enhanced, r.Text)
	}
}

// withProtocol is the Received field's "with" (RFC 3848, RFC 6531 §3.7.3):
// ESMTP or LMTP, UTF8SMTP for SMTPUTF8, S with TLS, A after AUTH.
func (c *conn) withProtocol(t txn) string {
	with := map[Mode]string{Submission: "ESMTP", MX: "ESMTP", LMTP: "LMTP"}[c.cfg.Mode]
	if t.utf8 && c.cfg.Mode != LMTP {
		with = "UTF8SMTP"
	}
	if c.tls != nil {
		with += "S"
	}
	if c.cfg.Mode == Submission {
		with += "A"
	}
	return with
}

// submission is what a member's message becomes: the local copies, and
// for recipients of other domains one copy to queue, with a Received field
// that names this server but not the member's address (it would tell every
// outside recipient where the member was), the fields a submission agent
// adds, and the DKIM signatures of the sender's domain on top.
func (c *conn) submission(t txn, local []mailstore.Delivery, body, added []byte, id string, now time.Time) (mailstore.Submission, error) {
	sub := mailstore.Submission{MemberID: c.login.Member.ID, AppPasswordID: c.login.Credential.AppPasswordID, Local: local, Recipients: len(t.rcpts)}
	var rcpts []string
	for _, r := range t.rcpts {
		if r.external {
			rcpts = append(rcpts, r.address)
		}
	}
	if len(rcpts) == 0 {
		return sub, nil
	}
	out := fmt.Appendf(nil, "Received: by %s (Postern) with %s id %s;\r\n\t%s\r\n", c.cfg.Hostname, c.withProtocol(t), id, now.Format(time.RFC1123Z))
	out = append(out, added...)
	out = append(out, body...)
	if c.cfg.Signer != nil {
		_, domain, _ := strings.Cut(t.from, "@")
		sig, err := c.cfg.Signer.Sign(c.ctx, domain, out)
		if err != nil {
			return sub, err
		}
		out = append(sig, out...)
	}
	sub.Outbound = &mailstore.Outbound{From: t.from, Rcpts: rcpts, Body: out, SMTPUTF8: t.utf8, EightBit: !isASCII(string(out))}
	return sub, nil
}

// readData reads a DATA section from r up to its terminator into w, with
// dot-stuffing removed (RFC 5321 §4.5.2); w's verdict says whether the
// message is refused.
//
// Only <CRLF>.<CRLF> ends it: the "." line must end in CRLF and the line
// before it too (for the first line, the DATA command's CRLF), so \n.\n,
// \r.\n, \n.\r\n and \r\n.\n never do. The message is read to its end even
// when it is refused, so that the client and server stay in step. A line
// longer than w's maxLine as sent (dot included) is refused. err is an I/O
// error (io.ErrUnexpectedEOF at EOF). beforeRead is called before each
// line, to extend the read deadline.
func readData(r *bufio.Reader, w *bodyWriter, beforeRead func()) error {
	prevCRLF := true
	for {
		beforeRead()
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) || err == nil && len(line) > w.maxLine {
			w.fail(errDataLine)
			last := line[len(line)-1]
			for errors.Is(err, bufio.ErrBufferFull) {
				last = line[len(line)-1]
				line, err = r.ReadSlice('\n')
			}
			if err != nil {
				return eofIsUnexpected(err)
			}
			if len(line) >= 2 {
				last = line[len(line)-2]
			}
			prevCRLF = last == '\r'
			continue
		}
		if err != nil {
			return eofIsUnexpected(err)
		}
		crlf := len(line) >= 2 && line[len(line)-2] == '\r'
		if prevCRLF && crlf && len(line) == 3 && line[0] == '.' {
			return nil
		}
		if prevCRLF && line[0] == '.' {
			line = line[1:]
		}
		prevCRLF = crlf
		w.Write(line)
	}
}

func eofIsUnexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// traceHeaders returns the fields the final delivery puts on top of one
// recipient's copy: Return-Path (RFC 5321 §4.4), Delivered-To (RFC 9228),
// an Inspector's fields, Received, and the fields submission adds. Received
// records the client's HELO name and IP, how it came (RFC 3848's ESMTP,
// ESMTPS, ESMTPSA, LMTP…; UTF8SMTP with SMTPUTF8, RFC 6531 §3.7.3) and the
// TLS it used, and nothing secret. "for" names only this copy's recipient,
// so Bcc recipients stay hidden from one another.
func (c *conn) traceHeaders(t txn, rcpt, id string, now time.Time, prepend, added []byte) []byte {
	with := c.withProtocol(t)
	tlsInfo := ""
	if c.tls != nil {
		tlsInfo = fmt.Sprintf("\r\n\t(using %s with cipher %s)",
			tls.VersionName(c.tls.Version), tls.CipherSuiteName(c.tls.CipherSuite))
	}
	from := "(local)"
	if c.remoteIP.IsValid() {
		from = "(" + addrLiteral(c.remoteIP) + ")"
	}
	h := fmt.Appendf(nil, "Return-Path: <%s>\r\nDelivered-To: %s\r\n", t.from, rcpt)
	h = append(h, prepend...)
	h = fmt.Appendf(h, "Received: from %s %s%s\r\n"+
		"\tby %s (Postern) with %s id %s\r\n"+
		"\tfor <%s>; %s\r\n",
		c.helo, from, tlsInfo, c.cfg.Hostname, with, id, rcpt, now.Format(time.RFC1123Z))
	return append(h, added...)
}

// missingFields returns the From, Date and Message-ID fields that the
// message's header lacks, as a message submission agent adds them (RFC 6409
// §8, §8.2, §8.3): a script's or a device's message without them has no
// author, no date in mail programs but the arrival time, and no identity for
// replies to thread on. From is the envelope sender, the member's address
// (RFC 5322 §3.6 requires the field); it counts as present when
// identityFields finds one, even after a malformed line, so that a message
// never gets two.
// The header is read as the IMAP server reads it for ENVELOPE (go-message's
// textproto): up to the empty line, or up to a line that is no field, the
// fields before which count. Every recipient's copy gets the same Message-ID.
func missingFields(msg []byte, now time.Time, hostname, from string) []byte {
	h, _ := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(msg)))
	var out []byte
	if f, _ := identityFields(msg); len(f) == 0 {
		out = fmt.Appendf(out, "From: <%s>\r\n", from)
	}
	if !h.Has("Date") {
		out = fmt.Appendf(out, "Date: %s\r\n", now.Format(time.RFC1123Z))
	}
	if !h.Has("Message-Id") {
		out = fmt.Appendf(out, "Message-ID: <%s@%s>\r\n", rand.Text(), hostname)
	}
	return out
}

// addrLiteral writes an IP as RFC 5321 §4.1.3 does: [192.0.2.1], [IPv6:…].
func addrLiteral(ip netip.Addr) string {
	if ip.Is6() {
		return "[IPv6:" + ip.String() + "]"
	}
	return "[" + ip.String() + "]"
}
