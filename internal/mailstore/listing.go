package mailstore

import (
	"cmp"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
)

// Listing is a mailbox's messages in UID order, as State returns it. It is
// immutable and shared: the store's cache and every session of the mailbox
// hold the same one. It is kept in chunks of chunkLen messages (the last
// may hold fewer), so that a listing with some messages changed or added
// (Replace, Append) copies the chunks those touch and the chunk pointers,
// and shares the rest: after a STORE on 1,000 messages of a mailbox of
// 100,000, the new listing copies a few thousand entries, not 100,000
// (10 MB), and a session comparing its listing with the new one skips the
// chunks they share. Removing messages (Filter) copies them all: expunges
// are rare next to flag changes and arrivals.
//
// A Listing's zero value is empty. The MessageInfo values it hands out
// (At) must not be changed.
type Listing struct {
	chunks []*chunk
	n      int
}

const (
	chunkShift = 8
	chunkLen   = 1 << chunkShift
)

type chunk struct {
	msgs []MessageInfo
	sum  atomic.Pointer[chunkSummary] // made on first use: the chunk never changes
}

// NewListing makes a listing of msgs, which must be in UID order; the
// listing keeps msgs, which the caller must not change afterwards.
func NewListing(msgs []MessageInfo) Listing {
	l := Listing{n: len(msgs), chunks: make([]*chunk, 0, (len(msgs)+chunkLen-1)/chunkLen)}
	for i := 0; i < len(msgs); i += chunkLen {
		j := min(i+chunkLen, len(msgs))
		l.chunks = append(l.chunks, &chunk{msgs: msgs[i:j:j]})
	}
	return l
}

// Len is the number of messages.
func (l Listing) Len() int { return l.n }

// At returns the i-th message (0-based: the sequence number less one).
func (l Listing) At(i int) *MessageInfo {
	return &l.chunks[i>>chunkShift].msgs[i&(chunkLen-1)]
}

// LastUID is the UID of the last message, 0 when there is none.
func (l Listing) LastUID() uint32 {
	if l.n == 0 {
		return 0
	}
	return l.At(l.n - 1).UID
}

// Search returns the index of the message of the UID, or where it would
// be, and whether it is there.
func (l Listing) Search(uid uint32) (int, bool) {
	c := sort.Search(len(l.chunks), func(c int) bool {
		m := l.chunks[c].msgs
		return m[len(m)-1].UID >= uid
	})
	if c == len(l.chunks) {
		return l.n, false
	}
	j, ok := slices.BinarySearchFunc(l.chunks[c].msgs, uid, func(m MessageInfo, u uint32) int { return cmp.Compare(m.UID, u) })
	return c<<chunkShift + j, ok
}

// Messages returns a copy of the messages.
func (l Listing) Messages() []MessageInfo {
	out := make([]MessageInfo, 0, l.n)
	for _, c := range l.chunks {
		out = append(out, c.msgs...)
	}
	return out
}

// Replace returns the listing with infos in place of the messages of the
// same UIDs; those of UIDs it does not hold are left out,
// and found reports whether there were none such. Only the chunks infos
// touch are copied.
func (l Listing) Replace(infos []MessageInfo) (out Listing, found bool) {
	found = true
	if len(infos) == 0 {
		return l, found
	}
	out = Listing{n: l.n, chunks: slices.Clone(l.chunks)}
	for k := range infos {
		i, ok := l.Search(infos[k].UID)
		if !ok {
			found = false
			continue
		}
		c := i >> chunkShift
		if out.chunks[c] == l.chunks[c] {
			out.chunks[c] = &chunk{msgs: slices.Clone(l.chunks[c].msgs)}
		}
		out.chunks[c].msgs[i&(chunkLen-1)] = infos[k]
	}
	return out, found
}

// Append returns the listing with infos (in UID order, every UID above
// LastUID) added at its end. The last chunk, when not full, is copied.
func (l Listing) Append(infos []MessageInfo) Listing {
	if len(infos) == 0 {
		return l
	}
	out := Listing{n: l.n + len(infos), chunks: slices.Clip(l.chunks)}
	if k := len(out.chunks); k > 0 && len(out.chunks[k-1].msgs) < chunkLen {
		last := out.chunks[k-1].msgs
		take := min(chunkLen-len(last), len(infos))
		msgs := make([]MessageInfo, len(last)+take)
		copy(msgs, last)
		copy(msgs[len(last):], infos[:take])
		out.chunks = append(out.chunks[:k-1:k-1], &chunk{msgs: msgs})
		infos = infos[take:]
	}
	for len(infos) > 0 {
		take := min(chunkLen, len(infos))
		out.chunks = append(out.chunks, &chunk{msgs: slices.Clone(infos[:take])})
		infos = infos[take:]
	}
	return out
}

// Filter returns the listing of the messages keep accepts, all copied.
func (l Listing) Filter(keep func(*MessageInfo) bool) Listing {
	msgs := make([]MessageInfo, 0, l.n)
	for _, c := range l.chunks {
		for i := range c.msgs {
			if keep(&c.msgs[i]) {
				msgs = append(msgs, c.msgs[i])
			}
		}
	}
	return NewListing(msgs)
}

// SharesChunk reports whether the i-th messages of l and o are in the same
// chunk (so both listings hold the same messages in it at the same
// indexes): a comparison of two listings can skip it.
func (l Listing) SharesChunk(o Listing, i int) bool {
	c := i >> chunkShift
	return c < len(l.chunks) && c < len(o.chunks) && l.chunks[c] == o.chunks[c]
}

// ChunkEnd is the index after the last message of the chunk of the i-th.
func ChunkEnd(i int) int { return (i>>chunkShift + 1) << chunkShift }

// Summary is what a client learns of a whole mailbox at SELECT besides its
// counts: the keywords in use (announced in FLAGS) and the first message
// without \Seen.
type Summary struct {
	Keywords    []string // in the spelling and the order of their first use; one per keyword, compared case-insensitively
	FirstUnseen int      // index of the first message without \Seen; -1: none
	Deleted     int      // messages flagged \Deleted
}

type chunkSummary struct {
	keywords    []string
	firstUnseen int // index in the chunk; -1: none
	deleted     int
}

// Summary summarizes the listing: each chunk is summarized once, when a
// listing holding it is first summarized, so that a SELECT after a change
// reads the few chunks the change made, not every message's flags.
func (l Listing) Summary() Summary {
	s := Summary{FirstUnseen: -1}
	var seen map[string]bool
	for c, ch := range l.chunks {
		cs := ch.summary()
		if s.FirstUnseen < 0 && cs.firstUnseen >= 0 {
			s.FirstUnseen = c<<chunkShift + cs.firstUnseen
		}
		s.Deleted += cs.deleted
		for _, k := range cs.keywords {
			if seen == nil {
				seen = map[string]bool{}
			}
			if lk := strings.ToLower(k); !seen[lk] {
				seen[lk] = true
				s.Keywords = append(s.Keywords, k)
			}
		}
	}
	return s
}

func isSeen(f string) bool { return strings.EqualFold(f, `\Seen`) }

func isDeleted(f string) bool { return strings.EqualFold(f, `\Deleted`) }

// Deleted reports whether the message is flagged \Deleted.
func (m *MessageInfo) Deleted() bool { return slices.ContainsFunc(m.Flags, isDeleted) }

func (c *chunk) summary() *chunkSummary {
	if s := c.sum.Load(); s != nil {
		return s
	}
	s := &chunkSummary{firstUnseen: -1}
	var seen map[string]bool
	var last []string // the last set of flags looked at: most messages share a few sets
	lastDeleted := false
	for i := range c.msgs {
		f := c.msgs[i].Flags
		if s.firstUnseen < 0 && !slices.ContainsFunc(f, isSeen) {
			s.firstUnseen = i
		}
		if len(f) == len(last) && (len(f) == 0 || &f[0] == &last[0]) {
			if lastDeleted {
				s.deleted++
			}
			continue // the same slice: the store shares equal sets
		}
		last = f
		if lastDeleted = c.msgs[i].Deleted(); lastDeleted {
			s.deleted++
		}
		for _, k := range f {
			if strings.HasPrefix(k, `\`) {
				continue
			}
			if seen == nil {
				seen = map[string]bool{}
			}
			if lk := strings.ToLower(k); !seen[lk] {
				seen[lk] = true
				s.keywords = append(s.keywords, k)
			}
		}
	}
	c.sum.Store(s)
	return s
}
