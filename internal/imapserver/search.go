package imapserver

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"github.com/postern/postern/internal/account"
)

// Search is SEARCH and UID SEARCH (RFC 9051 §6.4.4) over the session's view.
// Message bodies are read only when a criterion needs them.
func (s *session) Search(kind imapserver.NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (*imap.SearchData, error) {
	sel := s.sel
	m := &matcher{sel: sel}
	needBody := criteriaNeedBody(criteria)
	var data imap.SearchData
	var seqs imap.SeqSet
	var uids imap.UIDSet
	// With a MODSEQ key the result carries the highest mod-sequence of the
	// messages returned (RFC 7162 §3.1.5; RFC 4731 §3.2 with only MIN and
	// MAX: of those two).
	withModSeq := criteriaUseModSeq(criteria)
	var allModSeq, minModSeq, maxModSeq uint64
	for i := range sel.msgs {
		if sel.msgs[i].gone {
			continue
		}
		msg := &searchMsg{seq: uint32(i + 1), view: &sel.msgs[i]}
		if needBody {
			body, err := s.srv.cfg.Mail.Body(s.ctx, sel.msgs[i].ID)
			if account.ErrorCode(err) == account.ENOTFOUND {
				continue
			}
			if err != nil {
				return nil, s.storeErr("search", err)
			}
			msg.body = body
		}
		if !m.match(msg, criteria) {
			continue
		}
		num := msg.seq
		if kind == imapserver.NumKindUID {
			num = msg.view.UID
			uids.AddNum(imap.UID(num))
		} else {
			seqs.AddNum(num)
		}
		modSeq := msg.view.ModSeq
		if data.Min == 0 || num < data.Min {
			data.Min, minModSeq = num, modSeq
		}
		if num > data.Max {
			data.Max, maxModSeq = num, modSeq
		}
		allModSeq = max(allModSeq, modSeq)
		data.Count++
	}
	if withModSeq && data.Count > 0 {
		data.ModSeq = allModSeq
		if options != nil && !options.ReturnAll && !options.ReturnCount && (options.ReturnMin || options.ReturnMax) {
			data.ModSeq = 0
			if options.ReturnMin {
				data.ModSeq = minModSeq
			}
			if options.ReturnMax {
				data.ModSeq = max(data.ModSeq, maxModSeq)
			}
		}
	}
	if kind == imapserver.NumKindUID {
		data.All = uids
	} else {
		data.All = seqs
	}
	return &data, nil
}

// criteriaUseModSeq reports whether c has a MODSEQ key anywhere.
func criteriaUseModSeq(c *imap.SearchCriteria) bool {
	if c.ModSeq != nil {
		return true
	}
	for i := range c.Not {
		if criteriaUseModSeq(&c.Not[i]) {
			return true
		}
	}
	for i := range c.Or {
		if criteriaUseModSeq(&c.Or[i][0]) || criteriaUseModSeq(&c.Or[i][1]) {
			return true
		}
	}
	return false
}

func criteriaNeedBody(c *imap.SearchCriteria) bool {
	if len(c.Header) > 0 || len(c.Body) > 0 || len(c.Text) > 0 || !c.SentSince.IsZero() || !c.SentBefore.IsZero() {
		return true
	}
	for i := range c.Not {
		if criteriaNeedBody(&c.Not[i]) {
			return true
		}
	}
	for i := range c.Or {
		if criteriaNeedBody(&c.Or[i][0]) || criteriaNeedBody(&c.Or[i][1]) {
			return true
		}
	}
	return false
}

type searchMsg struct {
	seq  uint32
	view *viewMsg
	body []byte
	hdr  *mail.Header // parsed on first use
}

func (m *searchMsg) header() *mail.Header {
	if m.hdr == nil {
		h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(m.body)))
		if err != nil {
			h = textproto.Header{}
		}
		m.hdr = &mail.Header{Header: gomessage.Header{Header: h}}
	}
	return m.hdr
}

type matcher struct{ sel *selected }

// match reports whether msg meets every criterion of c (they are ANDed).
func (mt *matcher) match(msg *searchMsg, c *imap.SearchCriteria) bool {
	info := &msg.view.MessageInfo
	for _, set := range c.SeqNum {
		if !mt.inSet(msg, set) {
			return false
		}
	}
	for _, set := range c.UID {
		if !mt.inSet(msg, set) {
			return false
		}
	}
	if !matchDate(info.InternalDate, c.Since, c.Before) {
		return false
	}
	for _, f := range c.Flag {
		if !hasFlag(info.Flags, string(f)) {
			return false
		}
	}
	for _, f := range c.NotFlag {
		if hasFlag(info.Flags, string(f)) {
			return false
		}
	}
	// MODSEQ n: changed at n or later (RFC 7162 §3.1.5). Flags have no
	// mod-sequences of their own here: the message's counts for each.
	if c.ModSeq != nil && info.ModSeq < c.ModSeq.ModSeq {
		return false
	}
	if c.Larger > 0 && info.Size <= c.Larger {
		return false
	}
	if c.Smaller > 0 && info.Size >= c.Smaller {
		return false
	}
	if !c.SentSince.IsZero() || !c.SentBefore.IsZero() {
		t, err := msg.header().Date()
		if err != nil || !matchDate(t, c.SentSince, c.SentBefore) {
			return false
		}
	}
	for _, hf := range c.Header {
		if !matchHeader(msg.header(), hf.Key, hf.Value) {
			return false
		}
	}
	for _, text := range c.Body {
		if !matchEntity(msg.body, text, false) {
			return false
		}
	}
	for _, text := range c.Text {
		if !matchEntity(msg.body, text, true) {
			return false
		}
	}
	for i := range c.Not {
		if mt.match(msg, &c.Not[i]) {
			return false
		}
	}
	for i := range c.Or {
		if !mt.match(msg, &c.Or[i][0]) && !mt.match(msg, &c.Or[i][1]) {
			return false
		}
	}
	return true
}

// inSet resolves "*" against the view as FETCH does, then tests msg.
func (mt *matcher) inSet(msg *searchMsg, set imap.NumSet) bool {
	switch set := mt.sel.static(set).(type) {
	case imap.SeqSet:
		return set.Contains(msg.seq)
	case imap.UIDSet:
		return set.Contains(imap.UID(msg.view.UID))
	}
	return false
}

// matchDate compares dates only, disregarding time and time zone
// (RFC 9051 §6.4.4: SINCE, BEFORE, ON and their SENT* forms).
func matchDate(t, since, before time.Time) bool {
	if since.IsZero() && before.IsZero() {
		return true
	}
	y, mo, d := t.Date()
	day := time.Date(y, mo, d, 0, 0, 0, 0, time.UTC)
	sy, smo, sd := since.Date()
	if !since.IsZero() && day.Before(time.Date(sy, smo, sd, 0, 0, 0, 0, time.UTC)) {
		return false
	}
	by, bmo, bd := before.Date()
	if !before.IsZero() && !day.Before(time.Date(by, bmo, bd, 0, 0, 0, 0, time.UTC)) {
		return false
	}
	return true
}

// matchHeader: the field exists and, unless value is empty, contains value
// case-insensitively once decoded (RFC 9051 §6.4.4 HEADER, FROM, SUBJECT...).
func matchHeader(h *mail.Header, key, value string) bool {
	fields := h.FieldsByKey(key)
	if value == "" {
		return fields.Len() > 0
	}
	value = strings.ToLower(value)
	for fields.Next() {
		v, err := fields.Text()
		if err != nil {
			v = fields.Value()
		}
		if strings.Contains(strings.ToLower(v), value) {
			return true
		}
	}
	return false
}

// matchEntity looks for text in the message's text parts (BODY), and in its
// headers as well for TEXT.
func matchEntity(body []byte, text string, withHeader bool) bool {
	e, err := gomessage.Read(bytes.NewReader(body))
	if e == nil {
		return false
	}
	_ = err // an unknown charset or encoding still leaves the raw part readable
	return matchPart(e, strings.ToLower(text), withHeader, 0)
}

// maxPartDepth bounds the walk through nested multiparts of hostile mail.
const maxPartDepth = 20

func matchPart(e *gomessage.Entity, text string, withHeader bool, depth int) bool {
	if depth > maxPartDepth {
		return false
	}
	if withHeader {
		for f := e.Header.Fields(); f.Next(); {
			v, err := f.Text()
			if err != nil {
				v = f.Value()
			}
			if strings.Contains(strings.ToLower(v), text) {
				return true
			}
		}
	}
	if mr := e.MultipartReader(); mr != nil {
		for {
			part, err := mr.NextPart()
			if err != nil {
				return false
			}
			if matchPart(part, text, withHeader, depth+1) {
				return true
			}
		}
	}
	t, _, _ := e.Header.ContentType()
	if t != "" && !strings.HasPrefix(t, "text/") && !strings.HasPrefix(t, "message/") {
		return false
	}
	b, err := io.ReadAll(io.LimitReader(e.Body, 64<<20))
	if err != nil && len(b) == 0 {
		return false
	}
	return bytes.Contains(bytes.ToLower(b), []byte(text))
}
