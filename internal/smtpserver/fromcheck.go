package smtpserver

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// allowedSender is the one rule for which addresses a member may send as,
// at MAIL FROM and in the message's From: and Sender: fields: one of allowed
// (the member's own address and those of the aliases it receives, as
// Sending.Senders gives them), compared case-insensitively in US-ASCII (RFC
// 5321 §2.4 lets a server treat local parts so, and domains are
// case-insensitive), or one of them with a plus tag (alice+news@ for
// alice@, sales+eu@ for sales@): mail to such an address reaches the member
// (account.ResolveRecipient), so replies come back to it and it names no one
// else. tagged says it matched so: someone who has the address as written
// (a member named alice+news@) owns it instead, which the caller checks
// (maySendAs). A non-ASCII address never matches: SMTPUTF8 addresses name
// no member, and Unicode case folding would let look-alikes such as the
// long s ſ (U+017F) pass for "s".
func allowedSender(allowed []string, addr string) (ok, tagged bool) {
	if !isASCII(addr) {
		return false, false
	}
	for _, a := range allowed {
		if strings.EqualFold(addr, a) {
			return true, false
		}
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return false, false
	}
	base, tag, plus := strings.Cut(addr[:at], "+")
	if !plus || base == "" || tag == "" {
		return false, false
	}
	for _, a := range allowed {
		if strings.EqualFold(base+addr[at:], a) {
			return true, true
		}
	}
	return false, false
}

// identityFields returns the raw values of the From: and Sender: fields of
// msg's header: the fields that say who wrote and who sent the message,
// which mail programs show as its author.
//
// The header is read with go-message's textproto, as missingFields and the
// IMAP server's ENVELOPE read it, with one difference: a line that is no
// field does not end the search here. Reading goes on past it up to the
// first empty line, because a more lenient reader (a mail program, a filter)
// may still take a From: after such a line as the author.
func identityFields(msg []byte) (from, sender []string) {
	r := bufio.NewReader(bytes.NewReader(msg))
	for {
		h, err := textproto.ReadHeader(r)
		from = append(from, h.Values("From")...)
		sender = append(sender, h.Values("Sender")...)
		if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return from, sender
		}
		// A malformed line: ReadHeader has consumed it; go on after it.
		if _, perr := r.Peek(1); perr != nil {
			return from, sender
		}
	}
}

// checkIdentity returns "" when every address in msg's From: and Sender:
// fields is one the member may send as (may, allowedSender's rule), else the
// text of the refusal, which says the addresses allowed (yours); err is a
// failure of may.
//
// RFC 5322 §3.6.2 lets From: list several authors (then Sender: names the
// one who sent it); every address listed must be the member's. A field that
// cannot be parsed, or that names nobody (an empty group), is refused too:
// a mail program may still show something from it. Display names are free,
// encoded words included: the address is what is checked. A message without
// From: is not refused; data adds one.
func checkIdentity(msg []byte, may func(addr string) (bool, error), yours string) (string, error) {
	from, sender := identityFields(msg)
	for _, f := range []struct {
		name   string
		values []string
	}{{"From:", from}, {"Sender:", sender}} {
		for _, v := range f.values {
			addrs, err := mail.ParseAddressList(v)
			if err != nil || len(addrs) == 0 {
				return "The " + f.name + " field cannot be read as addresses; it must hold " + yours, nil
			}
			for _, a := range addrs {
				ok, err := may(a.Address)
				if err != nil {
					return "", err
				}
				if !ok {
					return "The " + f.name + " address must be " + yours, nil
				}
			}
		}
	}
	return "", nil
}
