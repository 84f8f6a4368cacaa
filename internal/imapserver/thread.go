package imapserver

import (
	"bytes"
	"cmp"
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/postern/postern/internal/mailstore"
	"github.com/postern/postern/internal/msgindex"
)

// Thread is THREAD and UID THREAD (RFC 5256 §3: ORDEREDSUBJECT and
// REFERENCES), over the message index.
func (s *session) Thread(kind imapserver.NumKind, alg imap.ThreadAlgorithm, criteria *imap.SearchCriteria) ([]imap.Thread, error) {
	msgs, err := s.sortable(criteria)
	if err != nil {
		return nil, err
	}
	var roots []*container
	if alg == imap.ThreadOrderedSubject {
		roots = orderedSubject(msgs)
	} else {
		roots = references(msgs)
	}
	out := make([]imap.Thread, len(roots))
	for i, c := range roots {
		out[i] = c.thread(kind)
	}
	return out, nil
}

// container is a node of a thread tree; m is nil for a dummy.
type container struct {
	m        *sortMsg
	parent   *container
	children []*container
}

func (c *container) thread(kind imapserver.NumKind) imap.Thread {
	t := imap.Thread{Children: make([]imap.Thread, len(c.children))}
	if c.m != nil {
		t.Num = c.m.num(kind)
	}
	for i, ch := range c.children {
		t.Children[i] = ch.thread(kind)
	}
	return t
}

// first is the message that stands for c: itself, or a dummy's first child.
func (c *container) first() *sortMsg {
	for c.m == nil && len(c.children) > 0 {
		c = c.children[0]
	}
	return c.m
}

// compareSent orders messages by sent date (the internal date for those
// without one, as SORT DATE), then by their place in the mailbox.
func compareSent(a, b *sortMsg) int {
	if c := a.sentDate().Compare(b.sentDate()); c != 0 {
		return c
	}
	return cmp.Compare(a.pos, b.pos)
}

// subjectKey is a base subject as threads compare them: i;ascii-casemap.
func subjectKey(m *sortMsg) string {
	return strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' {
			return r - 'a' + 'A'
		}
		return r
	}, m.x.BaseSubject)
}

// orderedSubject is ORDEREDSUBJECT (RFC 5256 §3): messages sorted by base
// subject then sent date; each subject's first message is the parent of
// the others; threads sorted by their first message's sent date.
func orderedSubject(msgs []sortMsg) []*container {
	sorted := make([]*sortMsg, len(msgs))
	for i := range msgs {
		sorted[i] = &msgs[i]
	}
	slices.SortStableFunc(sorted, func(a, b *sortMsg) int {
		if c := msgindex.CompareFold(a.x.BaseSubject, b.x.BaseSubject); c != 0 {
			return c
		}
		return compareSent(a, b)
	})
	var roots []*container
	var cur *container
	for _, m := range sorted {
		if cur != nil && msgindex.CompareFold(cur.m.x.BaseSubject, m.x.BaseSubject) == 0 {
			cur.children = append(cur.children, &container{m: m, parent: cur})
			continue
		}
		cur = &container{m: m}
		roots = append(roots, cur)
	}
	slices.SortStableFunc(roots, func(a, b *container) int { return compareSent(a.m, b.m) })
	return roots
}

// references is REFERENCES (RFC 5256 §3): threads from Message-ID,
// References and In-Reply-To, dummies pruned, top-level threads with the
// same base subject merged, siblings sorted by sent date.
func references(msgs []sortMsg) []*container {
	ids := map[string]*container{}
	var all []*container // creation order, so the result never depends on map order
	get := func(id string) *container {
		c := ids[id]
		if c == nil {
			c = &container{}
			ids[id] = c
			all = append(all, c)
		}
		return c
	}
	for i := range msgs {
		m := &msgs[i]
		// (1A) the message's container; a missing or duplicate id gets one of its own.
		var c *container
		if id := m.x.MessageID; id != "" && (ids[id] == nil || ids[id].m == nil) {
			c = get(id)
		} else {
			c = &container{}
			all = append(all, c)
		}
		c.m = m
		refs := m.x.References
		if len(refs) == 0 && m.x.InReplyTo != "" {
			refs = []string{m.x.InReplyTo}
		}
		// (1B) link the references in order, keeping existing links, never a loop.
		var prev *container
		for _, r := range refs {
			rc := get(r)
			if prev != nil && rc.parent == nil && !ancestor(rc, prev) {
				link(prev, rc)
			}
			prev = rc
		}
		// (1C) the last reference is the message's parent, unless a loop.
		if prev != nil && ancestor(c, prev) {
			prev = nil
		}
		if c.parent != prev {
			unlink(c)
			if prev != nil {
				link(prev, c)
			}
		}
	}
	// (2) the root set.
	var roots []*container
	for _, c := range all {
		if c.parent == nil {
			roots = append(roots, c)
		}
	}
	// (4) prune dummies.
	roots = prune(roots, true)
	for _, c := range roots {
		c.parent = nil
	}
	// (5) merge top-level threads with the same base subject.
	roots = mergeSubjects(roots)
	// (6) sort siblings by sent date, the deepest first.
	sortSiblings(roots)
	return roots
}

// ancestor reports whether a is c or one of its ancestors.
func ancestor(a, c *container) bool {
	for p := c; p != nil; p = p.parent {
		if p == a {
			return true
		}
	}
	return false
}

func link(parent, child *container) {
	child.parent = parent
	parent.children = append(parent.children, child)
}

func unlink(c *container) {
	if p := c.parent; p != nil {
		p.children = slices.DeleteFunc(p.children, func(x *container) bool { return x == c })
		c.parent = nil
	}
}

// prune removes dummies without children and splices in the children of
// the others, except at the top where only a dummy with one child goes
// (RFC 5256 §3 REFERENCES step 4).
func prune(list []*container, top bool) []*container {
	var out []*container
	for _, c := range list {
		c.children = prune(c.children, false)
		if c.m == nil {
			if len(c.children) == 0 {
				continue
			}
			if !top || len(c.children) == 1 {
				for _, ch := range c.children {
					ch.parent = c.parent
				}
				out = append(out, c.children...)
				continue
			}
		}
		out = append(out, c)
	}
	return out
}

// isReply reports whether the message's subject is a reply or a forward.
func isReply(m *sortMsg) bool {
	subject := m.x.Subject
	if i := bytes.IndexByte(subject, mailstore.SearchSep); i >= 0 {
		subject = subject[:i]
	}
	_, reply := msgindex.BaseSubject(string(subject))
	return reply
}

// mergeSubjects is REFERENCES step 5: top-level threads whose subjects
// have the same base subject become one.
func mergeSubjects(roots []*container) []*container {
	table := map[string]*container{}
	for _, c := range roots {
		m := c.first()
		if m == nil || m.x.BaseSubject == "" {
			continue
		}
		key := subjectKey(m)
		old := table[key]
		if old == nil || (old.m != nil && (c.m == nil || (isReply(old.m) && !isReply(c.m)))) {
			table[key] = c
		}
	}
	gone := map[*container]bool{}
	replaced := map[*container]*container{}
	for _, c := range roots {
		m := c.first()
		if m == nil || m.x.BaseSubject == "" {
			continue
		}
		key := subjectKey(m)
		t := table[key]
		if t == c {
			continue
		}
		switch {
		case t.m == nil && c.m == nil:
			for _, ch := range c.children {
				link(t, ch)
			}
			c.children = nil
			gone[c] = true
		case t.m == nil:
			link(t, c)
			gone[c] = true
		case c.m != nil && isReply(c.m) && !isReply(t.m):
			link(t, c)
			gone[c] = true
		default:
			d := &container{}
			replaced[t] = d
			link(d, t)
			link(d, c)
			gone[c] = true
			table[key] = d
		}
	}
	var out []*container
	for _, c := range roots {
		if gone[c] {
			continue
		}
		if d := replaced[c]; d != nil {
			c = d
		}
		out = append(out, c)
	}
	return out
}

// sortSiblings sorts every set of siblings by sent date, children before
// their parents, so a dummy sorts by its first child.
func sortSiblings(list []*container) {
	for _, c := range list {
		sortSiblings(c.children)
	}
	slices.SortStableFunc(list, func(a, b *container) int { return compareSent(a.first(), b.first()) })
}
