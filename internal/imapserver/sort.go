package imapserver

import (
	"cmp"
	"slices"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/postern/postern/internal/mailstore"
	"github.com/postern/postern/internal/msgindex"
)

// sortMsg is a message SORT and THREAD order: its place in the view and
// its index.
type sortMsg struct {
	pos int // index in the view: the sequence number less one
	msg *mailstore.MessageInfo
	x   *mailstore.MessageIndex
}

// sentDate is the message's sent date for SORT DATE: the Date field, or
// the internal date when it has none (RFC 5256 §3).
func (m *sortMsg) sentDate() time.Time {
	if !m.x.SentDate.IsZero() {
		return m.x.SentDate
	}
	return m.msg.InternalDate
}

// sortable returns the view's messages matching criteria, with their
// indexes, in sequence order.
func (s *session) sortable(criteria *imap.SearchCriteria) ([]sortMsg, error) {
	sel := s.sel
	hits, err := s.searchMatches(criteria)
	if err != nil {
		return nil, err
	}
	index, err := s.srv.cfg.Mail.Indexes(s.ctx, sel.mb.ID, nil, false)
	if err != nil {
		return nil, s.storeErr("sort", err)
	}
	var out []sortMsg
	for i, hit := range hits {
		if !hit {
			continue
		}
		x := index[sel.msg(i).ID]
		if x == nil {
			x = &mailstore.MessageIndex{} // expunged elsewhere a moment ago
		}
		out = append(out, sortMsg{pos: i, msg: sel.msg(i), x: x})
	}
	return out, nil
}

// num is the message's number in a response of the given kind.
func (m *sortMsg) num(kind imapserver.NumKind) uint32 {
	if kind == imapserver.NumKindUID {
		return m.msg.UID
	}
	return uint32(m.pos + 1)
}

// Sort is SORT and UID SORT (RFC 5256 §3, RFC 5957's DISPLAYFROM and
// DISPLAYTO), over the message index.
func (s *session) Sort(kind imapserver.NumKind, keys []imap.SortCriterion, criteria *imap.SearchCriteria) ([]uint32, error) {
	msgs, err := s.sortable(criteria)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(msgs, func(a, b sortMsg) int {
		for _, k := range keys {
			c := compareKey(&a, &b, k.Key)
			if k.Reverse {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return cmp.Compare(a.pos, b.pos) // equal keys: mailbox order
	})
	out := make([]uint32, len(msgs))
	for i := range msgs {
		out[i] = msgs[i].num(kind)
	}
	return out, nil
}

func compareKey(a, b *sortMsg, key imap.SortKey) int {
	switch key {
	case imap.SortKeyArrival:
		return a.msg.InternalDate.Compare(b.msg.InternalDate)
	case imap.SortKeyDate:
		return a.sentDate().Compare(b.sentDate())
	case imap.SortKeySize:
		return cmp.Compare(a.msg.Size, b.msg.Size)
	case imap.SortKeySubject:
		return msgindex.CompareFold(a.x.BaseSubject, b.x.BaseSubject)
	case imap.SortKeyFrom:
		return msgindex.CompareFold(a.x.SortFrom, b.x.SortFrom)
	case imap.SortKeyTo:
		return msgindex.CompareFold(a.x.SortTo, b.x.SortTo)
	case imap.SortKeyCc:
		return msgindex.CompareFold(a.x.SortCc, b.x.SortCc)
	case imap.SortKeyDisplayFrom:
		return msgindex.CompareFold(a.x.DisplayFrom, b.x.DisplayFrom)
	case imap.SortKeyDisplayTo:
		return msgindex.CompareFold(a.x.DisplayTo, b.x.DisplayTo)
	}
	return 0
}
