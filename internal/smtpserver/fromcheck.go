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

// ownAddress is the one rule for which addresses a member may send as: its
// own, compared case-insensitively in US-ASCII (RFC 5321 §2.4 lets a server
// treat local parts so, and domains are case-insensitive). A non-ASCII
// address never matches: SMTPUTF8 is not offered, and Unicode case folding
// would let look-alikes such as the long s ſ (U+017F) pass for "s".
// Both MAIL FROM and the message's From: and Sender: fields are held to it.
func ownAddress(member, addr string) bool {
	for i := 0; i < len(addr); i++ {
		if addr[i] >= 0x80 {
			return false
		}
	}
	return strings.EqualFold(addr, member)
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
// fields is the member's own (ownAddress), else the text of the refusal.
//
// RFC 5322 §3.6.2 lets From: list several authors (then Sender: names the
// one who sent it); since a member owns one address, every address listed
// must be it. A field that cannot be parsed, or that names nobody (an empty
// group), is refused too: a mail program may still show something from it.
// Display names are free, encoded words included: the address is what is
// checked. A message without From: is not refused; data adds one.
func checkIdentity(member string, msg []byte) string {
	from, sender := identityFields(msg)
	for _, f := range []struct {
		name   string
		values []string
	}{{"From:", from}, {"Sender:", sender}} {
		for _, v := range f.values {
			addrs, err := mail.ParseAddressList(v)
			if err != nil || len(addrs) == 0 {
				return "The " + f.name + " field cannot be read as addresses; it must hold your own address <" + member + ">"
			}
			for _, a := range addrs {
				if !ownAddress(member, a.Address) {
					return "The " + f.name + " address must be your own address <" + member + ">"
				}
			}
		}
	}
	return ""
}
