// Package msgindex builds a message's index (mailstore.MessageIndex): what
// IMAP's FETCH ENVELOPE/BODYSTRUCTURE, SEARCH on address and subject
// fields, SORT, THREAD and PREVIEW need, computed once when a message is
// stored. The envelope and body structure come from the same go-imap
// builders a FETCH without the index uses, so both give the same bytes.
package msgindex

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"unicode"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"github.com/postern/postern/internal/mailstore"
)

// Version is the version of what Build computes. Stores keep it with each
// index and build again an index of an older version, so a change here
// (a fixed envelope builder) reaches messages stored before it.
const Version = 1

// Header parses the message's header as FETCH and SEARCH do: a message
// whose header does not parse has ok false.
func Header(body []byte) (h textproto.Header, ok bool) {
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(body)))
	return h, err == nil
}

// Envelope is the message's ENVELOPE; nil (all NIL) when the header does
// not parse.
func Envelope(body []byte) *imap.Envelope {
	h, ok := Header(body)
	if !ok {
		return nil
	}
	return imapserver.ExtractEnvelope(h)
}

// FieldText returns the search text of the header's fields named key:
// each decoded (the raw value when it does not decode) and lowercased,
// joined by mailstore.SearchSep; ok is false when there is no such field.
// SEARCH's HEADER, FROM, SUBJECT... keys match a value that this text
// contains (lowercased too). Address fields also give each address as
// mailbox@host, comments and the spaces around "@" taken out, so that
// FROM user@example.org finds "<user (comment)@ example.org>" as other
// servers do.
func FieldText(h *mail.Header, key string) (text []byte, ok bool) {
	fields := h.FieldsByKey(key)
	address := addressFields[strings.ToLower(key)]
	for fields.Next() {
		v, err := fields.Text()
		if err != nil {
			v = fields.Value()
		}
		if ok {
			text = append(text, mailstore.SearchSep)
		}
		text = append(text, strings.ToLower(v)...)
		ok = true
		if address {
			for _, a := range addresses(fields.Value()) {
				text = append(text, mailstore.SearchSep)
				text = append(text, strings.ToLower(a)...)
			}
		}
	}
	if ok && text == nil {
		text = []byte{}
	}
	return text, ok
}

// SearchTexts returns what SEARCH BODY and TEXT match (RFC 9051 §6.4.4):
// body is the decoded content of the message's text parts (and of its
// message/* parts, as they are), headers the decoded fields of the message
// and of every part; each lowercased, parts and fields joined by
// mailstore.SearchSep. ok is false for a message that does not parse at
// all, which no BODY or TEXT key matches.
func SearchTexts(raw []byte) (body, headers []byte, ok bool) {
	e, _ := gomessage.Read(bytes.NewReader(raw)) // an unknown charset or encoding still leaves the raw part readable
	if e == nil {
		return nil, nil, false
	}
	body, headers = []byte{}, []byte{}
	searchParts(e, 0, &body, &headers)
	return body, headers, true
}

// maxSearchPart bounds what one part gives the search text.
const maxSearchPart = 64 << 20

func searchParts(e *gomessage.Entity, depth int, body, headers *[]byte) {
	if depth > maxPartDepth {
		return
	}
	for f := e.Header.Fields(); f.Next(); {
		v, err := f.Text()
		if err != nil {
			v = f.Value()
		}
		*headers = appendSep(*headers, strings.ToLower(v))
	}
	if mr := e.MultipartReader(); mr != nil {
		for {
			part, err := mr.NextPart()
			if err != nil {
				return
			}
			searchParts(part, depth+1, body, headers)
		}
	}
	t, _, _ := e.Header.ContentType()
	if t != "" && !strings.HasPrefix(t, "text/") && !strings.HasPrefix(t, "message/") {
		return
	}
	b, err := io.ReadAll(io.LimitReader(e.Body, maxSearchPart))
	if err != nil && len(b) == 0 {
		return
	}
	*body = appendSep(*body, string(bytes.ToLower(b)))
}

// appendSep appends s to a search text, after a separator unless first.
func appendSep(text []byte, s string) []byte {
	if len(text) > 0 {
		text = append(text, mailstore.SearchSep)
	}
	return append(text, s...)
}

// addressFields are the fields whose search text lists their addresses.
var addressFields = map[string]bool{"from": true, "to": true, "cc": true, "bcc": true, "sender": true, "reply-to": true}

// addresses returns the mailbox@host of each address of a raw address
// field, with its comments taken out (RFC 5322 §3.2.2 CFWS may stand
// around every part of an addr-spec).
func addresses(raw string) []string {
	var b strings.Builder
	depth, quoted := 0, false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case quoted:
			b.WriteByte(c)
			if c == '\\' && i+1 < len(raw) {
				i++
				b.WriteByte(raw[i])
			} else if c == '"' {
				quoted = false
			}
		case depth > 0:
			if c == '\\' {
				i++
			} else if c == '(' {
				depth++
			} else if c == ')' {
				depth--
			}
		case c == '(':
			depth++
			b.WriteByte(' ')
		case c == '"':
			quoted = true
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	clean := b.String()
	for _, sp := range []string{" @", "@ "} {
		for strings.Contains(clean, sp) {
			clean = strings.ReplaceAll(clean, sp, "@")
		}
	}
	list, err := mail.ParseAddressList(clean)
	if err != nil {
		return nil
	}
	out := make([]string, len(list))
	for i, a := range list {
		out[i] = a.Address
	}
	return out
}

// Build computes a message's index from its raw bytes. It never fails: a
// message the parsers cannot take still gets an index (an empty envelope
// and a plain text body structure), so that delivery never does.
func Build(body []byte) (x *mailstore.MessageIndex) {
	defer func() {
		if recover() != nil {
			x = build(nil)
			x.Preview = ""
		}
	}()
	return build(body)
}

func build(body []byte) *mailstore.MessageIndex {
	x := &mailstore.MessageIndex{}
	env := Envelope(body)
	x.Envelope, x.EnvelopeUTF8 = encodeBoth(func(u bool) []byte { return imapserver.EncodeEnvelope(env, u) })
	bs := imapserver.ExtractBodyStructure(bytes.NewReader(body))
	x.Body, x.BodyUTF8 = encodeBoth(func(u bool) []byte { return imapserver.EncodeBodyStructure(bs, false, u) })
	x.BodyStructure, x.BodyStructureUTF8 = encodeBoth(func(u bool) []byte { return imapserver.EncodeBodyStructure(bs, true, u) })

	h, _ := Header(body) // an empty header when it does not parse, as SEARCH has it
	mh := &mail.Header{Header: gomessage.Header{Header: h}}
	x.From, _ = FieldText(mh, "From")
	x.To, _ = FieldText(mh, "To")
	x.Cc, _ = FieldText(mh, "Cc")
	x.Bcc, _ = FieldText(mh, "Bcc")
	x.Subject, _ = FieldText(mh, "Subject")
	x.SortFrom, x.DisplayFrom = sortAddr(mh, "From")
	x.SortTo, x.DisplayTo = sortAddr(mh, "To")
	x.SortCc, _ = sortAddr(mh, "Cc")
	x.BaseSubject, _ = BaseSubject(fieldText(mh, "Subject"))
	if env != nil {
		x.SentDate = env.Date
		x.MessageID = env.MessageID
		if len(env.InReplyTo) > 0 {
			x.InReplyTo = env.InReplyTo[0]
		}
	}
	x.References, _ = mh.MsgIDList("References")
	x.Preview, x.HasAttachment = preview(body)
	if b, hdr, ok := SearchTexts(body); ok {
		x.BodyText, x.HeaderText = b, hdr
	}
	for _, s := range []*string{&x.SortFrom, &x.SortTo, &x.SortCc, &x.DisplayFrom, &x.DisplayTo, &x.BaseSubject, &x.MessageID, &x.InReplyTo, &x.Preview} {
		*s = clean(*s)
	}
	for i := range x.References {
		x.References[i] = clean(x.References[i])
	}
	return x
}

// clean makes a key valid UTF-8 without NUL, which PostgreSQL's text
// takes; the search texts, compared as bytes, keep their bytes.
func clean(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
}

// encodeBoth encodes a value for both kinds of connection, keeping the
// UTF-8 form only when it differs.
func encodeBoth(enc func(quotedUTF8 bool) []byte) (plain, utf8 []byte) {
	plain, utf8 = enc(false), enc(true)
	if bytes.Equal(plain, utf8) {
		utf8 = nil
	}
	return plain, utf8
}

// sortAddr gives the sort keys of an address field (RFC 5256 §3 FROM,
// TO, CC: the first address's mailbox; RFC 5957 DISPLAYFROM/DISPLAYTO:
// its display name, or else the address). A field that does not parse as
// addresses (a bare "d") is its own key, as other servers take it.
//
// A list that starts with a group ("team: a@x, b@y;") sorts by the group's
// name, which is what ENVELOPE's group marker holds as the mailbox.
func sortAddr(h *mail.Header, key string) (mailbox, display string) {
	if name, ok := groupName(fieldText(h, key)); ok {
		return name, name
	}
	list, err := h.AddressList(key)
	if err != nil || len(list) == 0 {
		v := strings.TrimSpace(fieldText(h, key))
		return v, v
	}
	a := list[0]
	mailbox, _, _ = strings.Cut(a.Address, "@")
	display = a.Name
	if display == "" {
		display = a.Address
	}
	return mailbox, display
}

// groupName returns the name of the group an address list starts with:
// a phrase and ":" before any "<", "@", "," or quoted string.
func groupName(v string) (string, bool) {
	i := strings.IndexAny(v, ":<@,\"")
	if i <= 0 || v[i] != ':' {
		return "", false
	}
	name := strings.TrimSpace(v[:i])
	return name, name != ""
}

// fieldText is the first field named key, decoded (or raw when it does
// not decode); "" when there is none.
func fieldText(h *mail.Header, key string) string {
	v, err := h.Text(key)
	if err != nil {
		return h.Get(key)
	}
	return v
}

// maxPreview is RFC 8970 §3.1's bound: at most 200 characters.
const maxPreview = 200

// maxPreviewRead bounds how much of a text part the preview reads.
const maxPreviewRead = 16 << 10

// maxPartDepth bounds the walk through nested multiparts of hostile mail.
const maxPartDepth = 20

// preview returns the start of the message's first text part, whitespace
// runs made one space (RFC 8970 §3.1), and whether any part is an
// attachment.
func preview(body []byte) (text string, attachment bool) {
	e, err := gomessage.Read(bytes.NewReader(body))
	if e == nil {
		_ = err
		return "", false
	}
	var found bool
	walk(e, 0, func(p *gomessage.Entity) {
		disp, _, _ := p.Header.ContentDisposition()
		if strings.EqualFold(disp, "attachment") {
			attachment = true
			return
		}
		if found {
			return
		}
		t, _, _ := p.Header.ContentType()
		if t == "" {
			t = "text/plain"
		}
		if t != "text/plain" && t != "text/html" {
			return
		}
		b, _ := io.ReadAll(io.LimitReader(p.Body, maxPreviewRead))
		if t == "text/html" {
			b = stripTags(b)
		}
		text, found = normalize(b), true
	})
	return text, attachment
}

// walk calls fn with each leaf part, depth first.
func walk(e *gomessage.Entity, depth int, fn func(*gomessage.Entity)) {
	if depth > maxPartDepth {
		return
	}
	mr := e.MultipartReader()
	if mr == nil {
		fn(e)
		return
	}
	for {
		p, err := mr.NextPart()
		if err != nil {
			return
		}
		walk(p, depth+1, fn)
	}
}

// stripTags drops HTML tags and the content of style and script elements.
func stripTags(b []byte) []byte {
	var out []byte
	lower := bytes.ToLower(b)
	for i := 0; i < len(b); {
		if b[i] != '<' {
			out = append(out, b[i])
			i++
			continue
		}
		for _, skip := range []string{"<style", "<script"} {
			if bytes.HasPrefix(lower[i:], []byte(skip)) {
				end := bytes.Index(lower[i:], []byte("</"+skip[1:]))
				if end < 0 {
					return out
				}
				i += end
			}
		}
		end := bytes.IndexByte(b[i:], '>')
		if end < 0 {
			break
		}
		i += end + 1
		out = append(out, ' ')
	}
	return out
}

// normalize makes b valid UTF-8, its whitespace runs one space, trimmed,
// and at most maxPreview characters.
func normalize(b []byte) string {
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	var sb strings.Builder
	n := 0
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			space = sb.Len() > 0
			continue
		}
		if n == maxPreview {
			break
		}
		if space {
			if n+1 == maxPreview {
				break
			}
			sb.WriteByte(' ')
			n++
			space = false
		}
		sb.WriteRune(r)
		n++
	}
	return sb.String()
}

// BaseSubject is a subject's base subject (RFC 5256 §2.1), which SORT
// SUBJECT compares and THREAD groups by: the decoded subject without its
// reply and forward markers; reply is whether it had any (a reply or a
// forward, for THREAD REFERENCES). It is compared with the i;ascii-casemap
// collation (CompareFold).
func BaseSubject(subject string) (base string, reply bool) {
	s := subject
	for {
		// (1) whitespace runs become one space.
		s = strings.Join(strings.FieldsFunc(s, isWSP), " ")
		// (2) subj-trailer: "(fwd)" and whitespace at the end.
		for {
			t := strings.TrimRight(s, " ")
			if len(t) >= 5 && strings.EqualFold(t[len(t)-5:], "(fwd)") {
				t = t[:len(t)-5]
				reply = true
			}
			if t == s {
				break
			}
			s = t
		}
		// (3)–(5) subj-leader and subj-blob at the start, repeatedly.
		for {
			t, refwd := trimLeader(s)
			reply = reply || refwd
			if b, ok := cutBlob(t); ok && b != "" {
				t = b
			}
			if t == s {
				break
			}
			s = t
		}
		// (6) "[fwd:" … "]" around the whole rest.
		if len(s) >= 6 && strings.EqualFold(s[:5], "[fwd:") && s[len(s)-1] == ']' {
			s = s[5 : len(s)-1]
			reply = true
			continue
		}
		return s, reply
	}
}

func isWSP(r rune) bool { return r == ' ' || r == '\t' || r == '\r' || r == '\n' }

// trimLeader removes one subj-leader (RFC 5256 §5): a WSP, or
// *subj-blob subj-refwd where subj-refwd = ("re" / ("fw" ["d"])) *WSP
// [subj-blob] ":"; refwd reports a subj-refwd.
func trimLeader(s string) (rest string, refwd bool) {
	if strings.HasPrefix(s, " ") {
		return s[1:], false
	}
	t := s
	for {
		b, ok := cutBlob(t)
		if !ok {
			break
		}
		t = b
	}
	lower := strings.ToLower(t)
	switch {
	case strings.HasPrefix(lower, "re"):
		t = t[2:]
	case strings.HasPrefix(lower, "fwd"):
		t = t[3:]
	case strings.HasPrefix(lower, "fw"):
		t = t[2:]
	default:
		return s, false
	}
	t = strings.TrimLeft(t, " ")
	if b, ok := cutBlob(t); ok {
		t = b
	}
	if !strings.HasPrefix(t, ":") {
		return s, false
	}
	return t[1:], true
}

// cutBlob removes a leading subj-blob: "[" *BLOBCHAR "]" *WSP, where a
// BLOBCHAR is any character but "[" and "]".
func cutBlob(s string) (string, bool) {
	if !strings.HasPrefix(s, "[") {
		return s, false
	}
	end := strings.IndexAny(s[1:], "[]")
	if end < 0 || s[1+end] != ']' {
		return s, false
	}
	return strings.TrimLeft(s[end+2:], " "), true
}

// CompareFold compares two strings under the i;ascii-casemap collation
// (RFC 4790 §9.2) that SORT uses (RFC 5256 §3): ASCII letters folded to
// upper case, everything else by octet.
func CompareFold(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		x, y := upper(a[i]), upper(b[i])
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	switch {
	case len(a) < len(b):
		return -1
	case len(a) > len(b):
		return 1
	}
	return 0
}

func upper(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}
