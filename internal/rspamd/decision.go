package rspamd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime"
	"strings"

	"github.com/emersion/go-message/textproto"
)

// Outcome is what happens to a message.
type Outcome int

const (
	// Inbox delivers the message as usual.
	Inbox Outcome = iota
	// Junk delivers it to the recipient's \Junk mailbox.
	Junk
	// Refuse answers the DATA with 550 5.7.1.
	Refuse
	// TempFail answers 451 4.7.1: the sender tries again later.
	TempFail
)

func (o Outcome) String() string {
	switch o {
	case Inbox:
		return "inbox"
	case Junk:
		return "junk"
	case Refuse:
		return "refuse"
	case TempFail:
		return "tempfail"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Decision is what a mail server does with a message after the filter.
type Decision struct {
	Outcome Outcome
	// Code, Enhanced and Text are the SMTP reply for Refuse and TempFail,
	// e.g. 550, "5.7.1", "Message refused as spam: Gtube pattern".
	Code     int
	Enhanced string
	Text     string

	// What Apply does to the message delivered (Inbox and Junk).
	fields  []field  // prepended, in this order
	remove  []string // header fields dropped
	subject string   // the new Subject, if not empty
}

// isSpamField says whether a field is of the kind Apply writes, and so
// removes from the message as received: a sender must not be able to write its own
// "X-Spam-Status: No" for a client's or a filter's eyes.
func isSpamField(name string) bool {
	n := strings.ToLower(name)
	return n == "x-spam" || strings.HasPrefix(n, "x-spam-")
}

// Decision maps rspamd's action to what happens to the message:
//
//	reject                        → Refuse, 550 5.7.1
//	soft reject, greylist         → TempFail, 451 4.7.1
//	add header, rewrite subject   → Junk, with X-Spam-Status: Yes (and the
//	                                new Subject for rewrite subject)
//	no action                     → Inbox, with X-Spam-Status: No
//
// greylist is a temporary failure: it is the action rspamd's greylist
// module asks for, and greylisting means "come back later" (the module
// itself turns it into "soft reject" in current rspamd). An action this
// package does not know is delivered to Junk: rspamd did not say it was
// clean.
func (v Verdict) Decision() Decision {
	var d Decision
	switch v.Action {
	case "reject":
		text := "Message refused as spam"
		if m := printable(v.Message, 200); m != "" {
			text += ": " + m
		}
		return Decision{Outcome: Refuse, Code: 550, Enhanced: "5.7.1", Text: text}
	case "soft reject", "greylist":
		text := "Try again later"
		if m := printable(v.Message, 200); m != "" {
			text = m
		}
		return Decision{Outcome: TempFail, Code: 451, Enhanced: "4.7.1", Text: text}
	case "no action":
		d.Outcome = Inbox
	case "rewrite subject":
		d.Outcome = Junk
		d.subject = v.Subject
	default: // "add header" and any action not known here
		d.Outcome = Junk
	}
	yes := "No"
	if d.Outcome == Junk {
		yes = "Yes"
	}
	d.fields = []field{
		// SpamAssassin's form, which mail clients (Thunderbird among them)
		// can be told to trust.
		{"X-Spam-Status", fmt.Sprintf("%s, score=%.2f required=%.2f", yes, v.Score, v.Required)},
		{"X-Spam-Action", printable(v.Action, 40)},
	}
	if len(v.Symbols) > 0 {
		d.fields = append(d.fields, field{"X-Spam-Symbols", printable(strings.Join(v.Symbols, ", "), 4000)})
	}
	if d.Outcome == Junk {
		d.fields = append(d.fields, field{"X-Spam-Flag", "YES"})
	}
	for _, f := range v.addHeaders {
		if !isSpamField(f.name) && validName(f.name) {
			d.fields = append(d.fields, field{f.name, f.value})
		}
	}
	d.remove = v.removeHeaders
	return d
}

// unchecked is the Decision for a message rspamd did not check.
func unchecked(reason string) Decision {
	return Decision{Outcome: Inbox, fields: []field{{"X-Spam-Status", "Unknown (" + reason + ")"}}}
}

// Decide checks m and returns what to do with it. When rspamd cannot be
// asked (down, too slow, an error), Config.OnError decides: OnErrorTempFail
// answers 451 4.7.1, OnErrorAccept delivers to INBOX with "X-Spam-Status: Unknown
// (filter unavailable)". A message over Config.MaxSize is delivered
// unchecked ("Unknown (not checked: message too large)"), as rspamd itself
// would skip it.
func (c *Client) Decide(ctx context.Context, m Message) Decision {
	v, err := c.Check(ctx, m)
	switch {
	case err == nil:
		return v.Decision()
	case errors.Is(err, ErrTooLarge):
		c.log.Info("rspamd: message not checked", "size", len(m.Body), "max", c.cfg.MaxSize, "queue_id", m.QueueID)
		return unchecked("not checked: message too large")
	case ctx.Err() != nil:
		// The caller gave up (the SMTP client went away): nothing is
		// delivered, and rspamd is not to blame.
		return Decision{Outcome: TempFail, Code: 451, Enhanced: "4.7.1", Text: "Spam filter unavailable, try again later"}
	}
	c.log.Warn("rspamd: check failed", "err", err, "queue_id", m.QueueID, "on_error", c.cfg.OnError.String())
	if c.cfg.OnError == OnErrorAccept {
		return unchecked("filter unavailable")
	}
	return Decision{Outcome: TempFail, Code: 451, Enhanced: "4.7.1", Text: "Spam filter unavailable, try again later"}
}

func (o OnError) String() string {
	if o == OnErrorAccept {
		return "accept"
	}
	return "tempfail"
}

// ParseOnError reads "tempfail" or "accept" (a flag's value).
func ParseOnError(s string) (OnError, error) {
	switch s {
	case "tempfail":
		return OnErrorTempFail, nil
	case "accept":
		return OnErrorAccept, nil
	}
	return 0, fmt.Errorf("rspamd: %q: want tempfail or accept", s)
}

// Prepend returns the header fields to put on top of the message, each
// CRLF-terminated and folded at 78 characters. Apply does more (see there):
// a caller that can only prepend loses the removal of forged X-Spam fields
// and the new Subject.
func (d Decision) Prepend() []byte {
	if len(d.fields) == 0 {
		return nil
	}
	var out bytes.Buffer
	top := textproto.Header{}
	// Add puts a field on top: the last added is the first in the message.
	for i := len(d.fields) - 1; i >= 0; i-- {
		top.Add(d.fields[i].name, sanitizeValue(d.fields[i].value))
	}
	textproto.WriteHeader(&out, top)
	out.Truncate(out.Len() - len("\r\n")) // the empty line that ends a header
	return out.Bytes()
}

// Apply returns msg as it is to be delivered: every X-Spam field and every
// field rspamd asked to remove dropped, the Subject rewritten for "rewrite
// subject", and the Decision's fields prepended. The body is not touched;
// a header that cannot be parsed is left as it is, with the fields
// prepended all the same.
func (d Decision) Apply(msg []byte) []byte {
	var out bytes.Buffer
	out.Grow(len(msg) + 512)
	out.Write(d.Prepend())
	br := bufio.NewReader(bytes.NewReader(msg))
	h, err := textproto.ReadHeader(br)
	if err != nil {
		out.Write(msg)
		return out.Bytes()
	}
	for fs := h.Fields(); fs.Next(); {
		if isSpamField(fs.Key()) || hasFold(d.remove, fs.Key()) {
			fs.Del()
		}
	}
	if d.subject != "" {
		h.Set("Subject", mime.QEncoding.Encode("utf-8", sanitizeValue(d.subject)))
	}
	textproto.WriteHeader(&out, h)
	out.ReadFrom(br)
	return out.Bytes()
}

func hasFold(list []string, s string) bool {
	for _, e := range list {
		if strings.EqualFold(e, s) {
			return true
		}
	}
	return false
}

// sanitizeValue keeps a header value on its line: rspamd's values are
// trusted but CR and LF would start a field of their own.
func sanitizeValue(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == 0 {
			return ' '
		}
		return r
	}, s)
}

// validName is RFC 5322's field-name: printable ASCII except the colon.
func validName(s string) bool {
	if s == "" || len(s) > 76 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] >= 0x7f || s[i] == ':' {
			return false
		}
	}
	return true
}
