package imapserver

import (
	"fmt"
	"io"
	"mime"
	"strings"

	gomessage "github.com/emersion/go-message"

	"github.com/emersion/go-imap/v2"
)

// MissingDomain is the host of an address written without one ("To:
// user"), as Dovecot names it: an empty host would read as a group marker
// (RFC 3501 §7.4.2).
const MissingDomain = "MISSING_DOMAIN"

// ParseAddressList reads an address-list header value (RFC 5322 §3.4, with
// the obsolete forms of §4.4) as IMAP's ENVELOPE lists it (RFC 3501
// §7.4.2): a group is a start marker (NIL NIL "name" NIL), its members and
// an end marker (NIL NIL NIL NIL), so "undisclosed-recipients:;" is two
// markers; a source route ("<@route:user@domain>") is kept; an address with
// no display name takes the comment after it ("user@domain (Real Name)");
// display names are decoded (RFC 2047). It never fails: what it cannot
// read is skipped, as mail in the wild is often malformed.
func ParseAddressList(value string) []imap.Address {
	if strings.ContainsAny(value, "\r\n") {
		value = unfold.Replace(value)
	}
	p := &addrParser{s: value}
	var out []imap.Address
	for {
		p.skipCFWS()
		if p.eof() {
			return out
		}
		if c := p.s[p.i]; c == ',' || c == ';' || c == '>' || c == ')' {
			p.i++
			continue
		}
		out = p.address(out, false)
	}
}

// unfold removes the line breaks of a folded header value. One replacer
// for every call: building it took more time and memory than its work.
var unfold = strings.NewReplacer("\r", "", "\n", "")

type addrParser struct {
	s       string
	i       int
	comment string // the last comment skipCFWS passed
}

// addrWord is an atom, a quoted string, a domain literal or a "." with
// whether white space or a comment came before it.
type addrWord struct {
	text  string
	space bool
}

func (p *addrParser) eof() bool { return p.i >= len(p.s) }

// skipCFWS passes white space and comments (nested, with quoted pairs),
// keeping the last comment's text.
func (p *addrParser) skipCFWS() bool {
	start := p.i
	for !p.eof() {
		switch c := p.s[p.i]; {
		case c == ' ' || c == '\t':
			p.i++
		case c == '(':
			p.comment = p.readComment()
		default:
			return p.i > start
		}
	}
	return p.i > start
}

func (p *addrParser) readComment() string {
	var b strings.Builder
	depth := 0
	for ; !p.eof(); p.i++ {
		c := p.s[p.i]
		switch {
		case c == '\\' && p.i+1 < len(p.s):
			p.i++
			b.WriteByte(p.s[p.i])
			continue
		case c == '(':
			depth++
			if depth == 1 {
				continue
			}
		case c == ')':
			depth--
			if depth == 0 {
				p.i++
				return strings.TrimSpace(b.String())
			}
		}
		b.WriteByte(c)
	}
	return strings.TrimSpace(b.String())
}

// isAtext: RFC 5322's atext, and octets above 127 (RFC 6532).
func isAtext(c byte) bool {
	return c > ' ' && c != 0x7f && !strings.ContainsRune(`()<>[]:;@\,."`, rune(c))
}

// word reads an atom, a quoted string, a domain literal or a "."; ok is
// false at a special that ends the phrase (or an unexpected one).
func (p *addrParser) word() (w addrWord, ok bool) {
	w.space = p.skipCFWS()
	if p.eof() {
		return w, false
	}
	switch c := p.s[p.i]; {
	case c == '"':
		var b strings.Builder
		for p.i++; !p.eof() && p.s[p.i] != '"'; p.i++ {
			if p.s[p.i] == '\\' && p.i+1 < len(p.s) {
				p.i++
			}
			b.WriteByte(p.s[p.i])
		}
		p.i++ // the closing quote
		w.text = b.String()
	case c == '[':
		end := strings.IndexByte(p.s[p.i:], ']')
		if end < 0 {
			end = len(p.s) - p.i - 1
		}
		w.text = p.s[p.i : p.i+end+1]
		p.i += end + 1
	case c == '.':
		p.i++
		w.text = "."
	case isAtext(c):
		start := p.i
		for !p.eof() && isAtext(p.s[p.i]) {
			p.i++
		}
		w.text = p.s[start:p.i]
	default:
		return w, false
	}
	return w, true
}

// words reads words up to a special.
func (p *addrParser) words() []addrWord {
	var ws []addrWord
	for {
		w, ok := p.word()
		if !ok {
			return ws
		}
		ws = append(ws, w)
	}
}

// phrase joins words as written, one space where there was any.
func phrase(ws []addrWord) string {
	var b strings.Builder
	for i, w := range ws {
		if i > 0 && w.space {
			b.WriteByte(' ')
		}
		b.WriteString(w.text)
	}
	return b.String()
}

// tight joins words with no space (a local part or a domain).
func tight(ws []addrWord) string {
	var b strings.Builder
	for _, w := range ws {
		b.WriteString(w.text)
	}
	return b.String()
}

var wordDecoder = mime.WordDecoder{CharsetReader: func(charset string, r io.Reader) (io.Reader, error) {
	if gomessage.CharsetReader != nil {
		return gomessage.CharsetReader(charset, r)
	}
	return nil, fmt.Errorf("unknown charset %q", charset)
}}

func decodeName(s string) string {
	if d, err := wordDecoder.DecodeHeader(s); err == nil {
		return d
	}
	return s
}

// address reads one address or, outside a group, one group, and appends
// it to out.
func (p *addrParser) address(out []imap.Address, inGroup bool) []imap.Address {
	p.comment = ""
	ws := p.words()
	if p.eof() {
		return appendBare(out, ws, p.comment)
	}
	switch p.s[p.i] {
	case '<':
		p.i++
		return p.angle(out, decodeName(phrase(ws)))
	case ':':
		p.i++
		if inGroup { // no groups in groups: read the name as an address
			return out
		}
		// A group without a name has no start marker to give: its
		// members are listed on their own.
		name := decodeName(phrase(ws))
		if name != "" {
			out = append(out, imap.Address{Mailbox: name})
		}
		for {
			p.skipCFWS()
			if p.eof() {
				break
			}
			if c := p.s[p.i]; c == ';' {
				p.i++
				break
			} else if c == ',' || c == '>' || c == ')' || c == ':' {
				p.i++
				continue
			}
			out = p.address(out, true)
		}
		if name == "" {
			return out
		}
		return append(out, imap.Address{})
	case '@':
		p.i++
		p.comment = ""
		domain := tight(p.words())
		p.skipCFWS()
		a := imap.Address{Name: decodeName(p.comment), Mailbox: tight(ws), Host: domain}
		if a.Host == "" {
			a.Host = MissingDomain
		}
		if a.Mailbox == "" {
			return out
		}
		return append(out, a)
	}
	if len(ws) == 0 {
		p.i++ // a stray special: pass it
		return out
	}
	return appendBare(out, ws, p.comment)
}

// appendBare appends an address written without "@".
func appendBare(out []imap.Address, ws []addrWord, comment string) []imap.Address {
	if len(ws) == 0 {
		return out
	}
	return append(out, imap.Address{Name: decodeName(comment), Mailbox: tight(ws), Host: MissingDomain})
}

// angle reads an angle-addr after its "<": an optional source route, the
// local part and the domain, up to ">".
func (p *addrParser) angle(out []imap.Address, name string) []imap.Address {
	a := imap.Address{Name: name}
	p.skipCFWS()
	if !p.eof() && p.s[p.i] == '@' {
		end := strings.IndexByte(p.s[p.i:], ':')
		if end < 0 {
			end = len(p.s) - p.i
		}
		a.Route = strings.Join(strings.Fields(p.s[p.i:p.i+end]), "")
		p.i += end + 1
	}
	a.Mailbox = tight(p.words())
	if !p.eof() && p.s[p.i] == '@' {
		p.i++
		a.Host = tight(p.words())
	}
	if p.i > len(p.s) {
		p.i = len(p.s)
	}
	if end := strings.IndexByte(p.s[p.i:], '>'); end >= 0 {
		p.i += end + 1
	} else {
		p.i = len(p.s)
	}
	if a.Mailbox == "" {
		return out // "<>": no address
	}
	if a.Host == "" {
		a.Host = MissingDomain
	}
	return append(out, a)
}
