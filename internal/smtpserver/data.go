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
	"time"

	"github.com/emersion/go-message/textproto"

	"github.com/postern/postern/internal/mailstore"
)

// Verdicts of readData on a message that was read to its end but is refused.
var (
	errBareNewline = errors.New("bare LF or CR in message")
	errDataLine    = errors.New("message line too long")
	errTooBig      = errors.New("message too big")
	errNUL         = errors.New("NUL in message")
)

// data runs DATA (RFC 5321 §4.1.1.4). The message is read whole, then
// delivered to every recipient's INBOX, and 250 is sent only after every
// delivery committed: nothing acknowledged can be lost.
func (c *conn) data(arg string) {
	switch {
	case arg != "":
		c.fail(501, "5.5.4", "Syntax: DATA")
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
	rcpts, from := c.rcpts, c.from
	c.resetTx()
	body, verdict, err := readData(c.r, c.cfg.MaxDataLine, c.cfg.MaxMessageBytes, func() {
		c.nc.SetReadDeadline(time.Now().Add(c.cfg.IdleTimeout))
	})
	if err != nil {
		// The client is gone or silent mid-message: nothing was accepted.
		c.readFailed(err)
		c.quit = true
		return
	}
	switch {
	case errors.Is(verdict, errBareNewline):
		// CVE-2023-51764/5/6: a bare LF or CR is how "SMTP smuggling" hides an
		// end of data from one server and not another (RFC 5321 §2.3.8).
		c.log.Info("smtp: message refused", "reason", "bare-newline", "member", from)
		c.reply(554, "5.6.0", "Message refused: bare LF or CR; lines must end with CRLF")
		return
	case errors.Is(verdict, errNUL):
		// RFC 5321 §4.5.2 and RFC 6152 §3: NUL is never message content;
		// stores and readers that treat it as a terminator would disagree.
		c.reply(554, "5.6.0", "Message refused: NUL octets are not allowed")
		return
	case errors.Is(verdict, errDataLine):
		c.reply(554, "5.6.0", fmt.Sprintf("Message refused: a line is longer than %d octets", c.cfg.MaxDataLine))
		return
	case errors.Is(verdict, errTooBig):
		c.reply(552, "5.3.4", fmt.Sprintf("Message too big: the limit is %d octets", c.cfg.MaxMessageBytes))
		return
	}
	if refusal := checkIdentity(from, body); refusal != "" {
		// The author shown to recipients must be the member who logged in,
		// as the envelope sender must (SPEC §5).
		c.log.Info("smtp: message refused", "reason", "from-not-own", "member", from)
		c.reply(550, "5.7.1", refusal)
		return
	}
	now := c.cfg.Now()
	added := missingFields(body, now, c.cfg.Hostname, from)
	ds := make([]mailstore.Delivery, len(rcpts))
	for i, r := range rcpts {
		b := append(c.traceHeaders(from, r.email, now), added...)
		ds[i] = mailstore.Delivery{MemberID: r.memberID, Body: append(b, body...)}
	}
	// All recipients in one transaction: a failure leaves no copy anywhere,
	// so the client's retry after 451 duplicates nothing.
	if err := c.cfg.Mail.DeliverAll(c.ctx, ds); err != nil {
		c.log.Error("smtp: delivery failed", "member", from, "rcpts", len(rcpts), "err", err)
		c.reply(451, "4.3.0", "Delivery failed temporarily, try again later")
		return
	}
	c.log.Info("smtp: delivered", "member", from, "rcpts", len(rcpts), "bytes", len(body))
	c.reply(250, "2.0.0", "Message accepted and delivered")
}

// readData reads a DATA section from r up to its terminator and returns the
// message with dot-stuffing removed (RFC 5321 §4.5.2).
//
// Only <CRLF>.<CRLF> ends it: the "." line must end in CRLF and the line
// before it too (for the first line, the DATA command's CRLF), so \n.\n,
// \r.\n, \n.\r\n and \r\n.\n never do. The message is read to its end even
// when it is refused, so that the client and server stay in step, and the
// verdict says why it is refused: errBareNewline for any LF not preceded by
// CR or CR not followed by LF, errDataLine for a line over maxLine octets,
// errNUL for a NUL octet, errTooBig past maxSize. err is an I/O error
// (io.ErrUnexpectedEOF at EOF). beforeRead is called before each line, to
// extend the read deadline.
func readData(r *bufio.Reader, maxLine int, maxSize int64, beforeRead func()) (body []byte, verdict, err error) {
	var buf bytes.Buffer
	prevCRLF := true
	for {
		beforeRead()
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) || err == nil && len(line) > maxLine {
			verdict = firstErr(verdict, errDataLine)
			last := line[len(line)-1]
			for errors.Is(err, bufio.ErrBufferFull) {
				last = line[len(line)-1]
				line, err = r.ReadSlice('\n')
			}
			if err != nil {
				return nil, nil, eofIsUnexpected(err)
			}
			if len(line) >= 2 {
				last = line[len(line)-2]
			}
			prevCRLF = last == '\r'
			continue
		}
		if err != nil {
			return nil, nil, eofIsUnexpected(err)
		}
		crlf := len(line) >= 2 && line[len(line)-2] == '\r'
		content := line[:len(line)-1]
		if crlf {
			content = content[:len(content)-1]
		}
		if prevCRLF && crlf && len(content) == 1 && content[0] == '.' {
			if verdict != nil {
				return nil, verdict, nil
			}
			return buf.Bytes(), nil, nil
		}
		if !crlf || bytes.IndexByte(content, '\r') >= 0 {
			verdict = firstErr(verdict, errBareNewline)
		}
		if bytes.IndexByte(content, 0) >= 0 {
			verdict = firstErr(verdict, errNUL)
		}
		if prevCRLF && len(content) > 0 && content[0] == '.' {
			content = content[1:]
		}
		prevCRLF = crlf
		if verdict != nil {
			continue
		}
		if int64(buf.Len()+len(content)+2) > maxSize {
			verdict = errTooBig
			continue
		}
		buf.Write(content)
		buf.WriteString("\r\n")
	}
}

// firstErr keeps the first verdict: it is the one that made the message bad.
func firstErr(old, next error) error {
	if old != nil {
		return old
	}
	return next
}

func eofIsUnexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// traceHeaders returns the Return-Path and Received fields that the final
// delivery adds (RFC 5321 §4.4). They record the client's HELO name and IP,
// that it authenticated (with ESMTPA / ESMTPSA, RFC 3848) and the TLS it
// used, and nothing secret. "for" names only this copy's recipient, so Bcc
// recipients stay hidden from one another.
func (c *conn) traceHeaders(from, rcpt string, now time.Time) []byte {
	with, tlsInfo := "ESMTPA", ""
	if c.tls != nil {
		with = "ESMTPSA"
		tlsInfo = fmt.Sprintf("\r\n\t(using %s with cipher %s)",
			tls.VersionName(c.tls.Version), tls.CipherSuiteName(c.tls.CipherSuite))
	}
	return fmt.Appendf(nil, "Return-Path: <%s>\r\n"+
		"Received: from %s (%s)%s\r\n"+
		"\tby %s (Postern) with %s\r\n"+
		"\tfor <%s>; %s\r\n",
		from, c.helo, addrLiteral(c.remoteIP), tlsInfo,
		c.cfg.Hostname, with, rcpt, now.Format(time.RFC1123Z))
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
