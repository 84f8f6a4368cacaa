package imapserver

import (
	"bytes"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"

	"github.com/postern/postern/internal/mailstore"
	"github.com/postern/postern/internal/msgindex"
)

// Search is SEARCH and UID SEARCH (RFC 9051 §6.4.4) over the session's view.
// Address and subject keys and the SENT* dates are answered from the
// message index; message bodies are read, in one pass, only when a
// criterion needs them (BODY, TEXT, other HEADER fields).
func (s *session) Search(kind imapserver.NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (*imap.SearchData, error) {
	sel := s.sel
	if options.ReturnSave {
		// A failed SEARCH (SAVE) leaves $ empty (RFC 5182 §2.1).
		sel.saved = nil
	}
	var found []uint32 // UIDs, for SAVE
	hits, err := s.searchMatches(criteria)
	if err != nil {
		return nil, err
	}
	var data imap.SearchData
	var seqs imap.SeqSet
	var uids imap.UIDSet
	// With a MODSEQ key the result carries the highest mod-sequence of the
	// messages returned (RFC 7162 §3.1.5; RFC 4731 §3.2 with only MIN and
	// MAX: of those two).
	withModSeq := criteriaUseModSeq(criteria)
	var allModSeq, minModSeq, maxModSeq uint64
	for i, hit := range hits {
		if !hit {
			continue
		}
		view := sel.msg(i)
		if options.ReturnSave {
			found = append(found, view.UID)
		}
		num := uint32(i + 1)
		if kind == imapserver.NumKindUID {
			num = view.UID
			uids.AddNum(imap.UID(num))
		} else {
			seqs.AddNum(num)
		}
		modSeq := view.ModSeq
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
	if options.ReturnSave {
		sel.saved = savedResult(found, options)
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

// savedResult is what SEARCH RETURN (SAVE …) keeps as $ of the UIDs found
// (in order): all of them, or only the first and last when MIN or MAX
// come without ALL or COUNT (RFC 5182 §2.1).
func savedResult(found []uint32, options *imap.SearchOptions) []uint32 {
	if options.ReturnAll || options.ReturnCount || (!options.ReturnMin && !options.ReturnMax) || len(found) == 0 {
		return found
	}
	var out []uint32
	if options.ReturnMin {
		out = append(out, found[0])
	}
	if options.ReturnMax && (len(out) == 0 || found[len(found)-1] != out[0]) {
		out = append(out, found[len(found)-1])
	}
	return out
}

// searchMatches reports, for each message of the view in sequence order,
// whether it meets criteria.
func (s *session) searchMatches(criteria *imap.SearchCriteria) ([]bool, error) {
	sel := s.sel
	m := &matcher{sel: sel, indexed: map[*imap.SearchCriteriaHeaderField]map[uint32]bool{}, textIndexed: map[*string]map[uint32]bool{}}
	if err := s.searchIndex(m, criteria); err != nil {
		return nil, err
	}
	if searchWithIndex && criteriaNeedDates(criteria) {
		index, err := s.srv.cfg.Mail.Indexes(s.ctx, sel.mb.ID, nil, false)
		if err != nil {
			return nil, s.storeErr("search", err)
		}
		m.index = index
	}
	hits := make([]bool, sel.count())
	if !m.needBody(criteria) {
		for i := range hits {
			if !sel.isGone(i) {
				hits[i] = m.match(&searchMsg{seq: uint32(i + 1), view: sel.msg(i)}, criteria)
			}
		}
		return hits, nil
	}
	pos := make(map[int64]int, sel.count())
	ids := make([]int64, 0, sel.count())
	for i := range hits {
		if !sel.isGone(i) {
			pos[sel.msg(i).ID] = i
			ids = append(ids, sel.msg(i).ID)
		}
	}
	err := s.srv.cfg.Mail.Bodies(s.ctx, ids, func(id int64, body []byte) error {
		i, ok := pos[id]
		if ok {
			hits[i] = m.match(&searchMsg{seq: uint32(i + 1), view: sel.msg(i), body: body}, criteria)
		}
		return nil
	})
	if err != nil {
		return nil, s.storeErr("search", err)
	}
	return hits, nil
}

// indexFields are the header fields the message index answers, by the
// canonical name go-imap gives FROM, TO... (and HEADER, in any case).
var indexFields = map[string]mailstore.SearchField{
	"from": mailstore.SearchFrom, "to": mailstore.SearchTo, "cc": mailstore.SearchCc,
	"bcc": mailstore.SearchBcc, "subject": mailstore.SearchSubject,
}

// searchWithIndex is off only in tests, which compare the index's answers
// with those of the raw messages.
var searchWithIndex = true

// searchIndex answers every header criterion the index can from the store
// (one statement each), recording the matching UIDs in m.indexed.
func (s *session) searchIndex(m *matcher, c *imap.SearchCriteria) error {
	if !searchWithIndex {
		return nil
	}
	for i := range c.Header {
		hf := &c.Header[i]
		field, ok := indexFields[strings.ToLower(hf.Key)]
		value := strings.ToLower(hf.Value)
		if !ok || strings.IndexByte(value, mailstore.SearchSep) >= 0 {
			continue
		}
		set, err := s.indexSet(field, value)
		if err != nil {
			return err
		}
		m.indexed[hf] = set
	}
	for _, keys := range []struct {
		list  []string
		field mailstore.SearchField
	}{{c.Body, mailstore.SearchBody}, {c.Text, mailstore.SearchText}} {
		for i := range keys.list {
			value := strings.ToLower(keys.list[i])
			if strings.IndexByte(value, mailstore.SearchSep) >= 0 {
				continue
			}
			set, err := s.indexSet(keys.field, value)
			if err != nil {
				return err
			}
			m.textIndexed[&keys.list[i]] = set
		}
	}
	for i := range c.Not {
		if err := s.searchIndex(m, &c.Not[i]); err != nil {
			return err
		}
	}
	for i := range c.Or {
		for j := range c.Or[i] {
			if err := s.searchIndex(m, &c.Or[i][j]); err != nil {
				return err
			}
		}
	}
	return nil
}

// indexSet returns the UIDs of the selected mailbox's messages whose
// field contains value (lowercased), from the index.
func (s *session) indexSet(field mailstore.SearchField, value string) (map[uint32]bool, error) {
	uids, err := s.srv.cfg.Mail.SearchIndex(s.ctx, s.sel.mb.ID, field, value)
	if err != nil {
		return nil, s.storeErr("search", err)
	}
	set := make(map[uint32]bool, len(uids))
	for _, u := range uids {
		set[u] = true
	}
	return set, nil
}

// needBody reports whether a criterion of c needs the raw message.
func (mt *matcher) needBody(c *imap.SearchCriteria) bool {
	if mt.index == nil && (!c.SentSince.IsZero() || !c.SentBefore.IsZero()) {
		return true
	}
	for _, list := range [][]string{c.Body, c.Text} {
		for i := range list {
			if mt.textIndexed[&list[i]] == nil {
				return true
			}
		}
	}
	for i := range c.Header {
		if mt.indexed[&c.Header[i]] == nil {
			return true
		}
	}
	for i := range c.Not {
		if mt.needBody(&c.Not[i]) {
			return true
		}
	}
	for i := range c.Or {
		if mt.needBody(&c.Or[i][0]) || mt.needBody(&c.Or[i][1]) {
			return true
		}
	}
	return false
}

func criteriaNeedDates(c *imap.SearchCriteria) bool {
	if !c.SentSince.IsZero() || !c.SentBefore.IsZero() {
		return true
	}
	for i := range c.Not {
		if criteriaNeedDates(&c.Not[i]) {
			return true
		}
	}
	for i := range c.Or {
		if criteriaNeedDates(&c.Or[i][0]) || criteriaNeedDates(&c.Or[i][1]) {
			return true
		}
	}
	return false
}

type searchMsg struct {
	seq  uint32
	view *mailstore.MessageInfo
	body []byte
	hdr  *mail.Header // parsed on first use
}

func (m *searchMsg) header() *mail.Header {
	if m.hdr == nil {
		h, _ := msgindex.Header(m.body) // an empty header when it does not parse
		m.hdr = &mail.Header{Header: gomessage.Header{Header: h}}
	}
	return m.hdr
}

type matcher struct {
	sel *selected
	// indexed holds the UIDs matching each header criterion the index
	// answered; index the messages' indexes when a SENT* key needs them.
	indexed map[*imap.SearchCriteriaHeaderField]map[uint32]bool
	// textIndexed is indexed for BODY and TEXT keys, by their string.
	textIndexed map[*string]map[uint32]bool
	index       map[int64]*mailstore.MessageIndex
}

// match reports whether msg meets every criterion of c (they are ANDed).
func (mt *matcher) match(msg *searchMsg, c *imap.SearchCriteria) bool {
	info := msg.view
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
		if !mt.hasFlag(info, string(f)) {
			return false
		}
	}
	for _, f := range c.NotFlag {
		if mt.hasFlag(info, string(f)) {
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
		if !mt.sentMatches(msg, c) {
			return false
		}
	}
	for i := range c.Header {
		if set := mt.indexed[&c.Header[i]]; set != nil {
			if !set[info.UID] {
				return false
			}
		} else if !matchHeader(msg.header(), c.Header[i].Key, c.Header[i].Value) {
			return false
		}
	}
	for i, list := range [][]string{c.Body, c.Text} {
		for j := range list {
			if set := mt.textIndexed[&list[j]]; set != nil {
				if !set[info.UID] {
					return false
				}
			} else if !matchEntity(msg.body, list[j], i == 1) {
				return false
			}
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

// hasFlag tests a stored flag, or \Recent as the session sees it (RECENT,
// NEW and OLD).
func (mt *matcher) hasFlag(info *mailstore.MessageInfo, f string) bool {
	if strings.EqualFold(f, flagRecent) {
		return mt.sel.isRecent(info.UID)
	}
	return hasFlag(info.Flags, f)
}

// sentMatches is SENTSINCE and SENTBEFORE: the Date field's own date, from
// the index when it is loaded, else from the raw message. A message without
// a Date field, or with one that does not parse, has no sent date and
// matches neither.
func (mt *matcher) sentMatches(msg *searchMsg, c *imap.SearchCriteria) bool {
	if mt.index != nil {
		x := mt.index[msg.view.ID]
		return x != nil && !x.SentDate.IsZero() && matchDate(x.SentDate, c.SentSince, c.SentBefore)
	}
	t, err := msg.header().Date()
	return err == nil && !t.IsZero() && matchDate(t, c.SentSince, c.SentBefore)
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
	text, ok := msgindex.FieldText(h, key)
	return ok && containsPart(text, strings.ToLower(value))
}

// maxPartDepth bounds the walk through nested multiparts of hostile mail.
const maxPartDepth = 20

// matchEntity looks for text in the message's text parts (BODY), and in its
// headers as well for TEXT: the search texts the index keeps, made from
// the raw message.
func matchEntity(body []byte, text string, withHeader bool) bool {
	text = strings.ToLower(text)
	if !mayContain(body, text, withHeader) {
		return false
	}
	b, h, ok := msgindex.SearchTexts(body)
	return ok && (containsPart(b, text) || withHeader && containsPart(h, text))
}

// containsPart reports whether a part (or field) of a search text contains
// value; value may hold the separator only in the unindexed path.
func containsPart(text []byte, value string) bool {
	if strings.IndexByte(value, mailstore.SearchSep) < 0 {
		return bytes.Contains(text, []byte(value))
	}
	for _, f := range bytes.Split(text, []byte{mailstore.SearchSep}) {
		if bytes.Contains(f, []byte(value)) {
			return true
		}
	}
	return false
}

// mayContain reports whether a message's text parts (and, withHeader,
// its header fields) can contain text (lowercased) once decoded; false
// only when certainly not, so that most messages of a BODY or TEXT search
// are not parsed. Decoding can only reveal an ASCII string the raw bytes
// lack through a transfer encoding (base64, quoted-printable) or, in a
// header, an encoded word (=?) or folding (the string would hold a space);
// and lowercasing can only make one from the two non-ASCII letters whose
// lower case is ASCII (KELVIN SIGN, İ). Charsets other than UTF-8 are not
// converted.
func mayContain(raw []byte, text string, withHeader bool) bool {
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c >= utf8.RuneSelf || c < ' ' || c == 0x7f || (withHeader && c == ' ') {
			return true
		}
	}
	hide := []string{text, "base64", "quoted-printable"}
	if withHeader {
		hide = append(hide, "=?")
	}
	for _, h := range hide {
		if containsFold(raw, h) {
			return true
		}
	}
	return bytes.Contains(raw, []byte("\u212a")) || bytes.Contains(raw, []byte("\u0130"))
}

// containsFold reports whether b contains s (ASCII, lowercase, not empty)
// under ASCII case folding.
func containsFold(b []byte, s string) bool {
	lo, up := s[0], s[0]
	if 'a' <= lo && lo <= 'z' {
		up = lo - 'a' + 'A'
	}
	last := len(b) - len(s) // the last possible start
	// The next start with each case of s[0], found by IndexByte and kept
	// until passed, so each scan runs over b once.
	nextLo, nextUp := -1, -1
	for i := 0; i <= last; {
		if nextLo < i {
			nextLo = indexFrom(b[:last+1], lo, i)
		}
		if nextUp < i {
			nextUp = indexFrom(b[:last+1], up, i)
		}
		j := min(nextLo, nextUp)
		if j > last {
			return false
		}
		if equalFold(b[j:j+len(s)], s) {
			return true
		}
		i = j + 1
	}
	return false
}

// indexFrom is the index of c in b at or after from, or len(b) when
// there is none (past every start, so the caller never searches again).
func indexFrom(b []byte, c byte, from int) int {
	if k := bytes.IndexByte(b[from:], c); k >= 0 {
		return from + k
	}
	return len(b)
}

func equalFold(b []byte, s string) bool {
	for i := 0; i < len(s); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
