package smtpserver

import (
	"bytes"
	"context"
	"net/netip"
)

// Inspector looks at a received message before it is delivered: sender
// authentication (SPF, DKIM, DMARC) and spam filtering, built in other
// packages and composed by the caller. Inspect sees the message exactly as
// the client sent it (dot-stuffing removed, nothing added or stripped: DKIM
// signatures cover these bytes). An error is temporary: the client is told
// 451 4.3.0 and nothing is delivered, so nothing is lost.
type Inspector interface {
	Inspect(ctx context.Context, e Envelope, msg []byte) (Inspection, error)
}

// Envelope is what the SMTP dialogue said about a message.
type Envelope struct {
	RemoteIP netip.Addr // the client's address; the zero Addr on a unix socket
	Helo     string     // the EHLO/HELO/LHLO name
	TLS      bool       // the session is under TLS
	MailFrom string     // the reverse path; "" for the null sender <>
	Rcpts    []string   // the accepted recipients' addresses, normalised
}

// Inspection is an Inspector's verdict. The zero value delivers the message
// to every recipient's INBOX as it is.
type Inspection struct {
	// Prepend is header fields to put on top of the message (each one
	// CRLF-terminated), such as Authentication-Results or X-Spam fields.
	Prepend []byte
	// Junk delivers to each recipient's Junk mailbox instead of INBOX.
	Junk bool
	// Reject refuses the message with this reply, for every recipient
	// (550 5.7.1 for a DMARC p=reject, 451 4.7.1 for a soft reject).
	Reject *Reply
}

// Reply is an SMTP reply: a code (RFC 5321 §4.2), an enhanced status code
// (RFC 3463, e.g. "5.7.1") and a text on one line.
type Reply struct {
	Code     int
	Enhanced string
	Text     string
}

// stripAuthResults removes every Authentication-Results field from msg's
// header (RFC 8601 §5: a receiver must not let fields from outside pass for
// its own). The header is taken to end at the first empty line: a field
// after a malformed line is removed too, since a lenient reader may still
// believe it. msg is returned unchanged, without copying, when it has none.
func stripAuthResults(msg []byte) []byte {
	const name = "authentication-results"
	if !bytes.Contains(bytes.ToLower(headerOf(msg)), []byte(name)) {
		return msg
	}
	out := make([]byte, 0, len(msg))
	dropping := false
	rest := msg
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		line := rest
		if i >= 0 {
			line = rest[:i+1]
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			break // the empty line: the body follows
		}
		if line[0] != ' ' && line[0] != '\t' {
			dropping = false
			if n, _, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(bytes.TrimRight(n, " \t"), []byte(name)) {
				dropping = true
			}
		}
		if !dropping {
			out = append(out, line...)
		}
		rest = rest[len(line):]
	}
	return append(out, rest...)
}

// headerOf returns msg up to its first empty line.
func headerOf(msg []byte) []byte {
	if bytes.HasPrefix(msg, []byte("\r\n")) {
		return nil
	}
	if i := bytes.Index(msg, []byte("\r\n\r\n")); i >= 0 {
		return msg[:i+2]
	}
	return msg
}
