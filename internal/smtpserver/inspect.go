package smtpserver

import (
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
	// Rewrite, when set, returns the message to deliver from the message
	// as received (on the MX listener, with outside Authentication-Results
	// already removed): a spam filter drops forged X-Spam fields or
	// rewrites the Subject. Called once for all recipients' copies.
	Rewrite func(msg []byte) []byte
}

// Reply is an SMTP reply: a code (RFC 5321 §4.2), an enhanced status code
// (RFC 3463, e.g. "5.7.1") and a text on one line.
type Reply struct {
	Code     int
	Enhanced string
	Text     string
}
