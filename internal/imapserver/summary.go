package imapserver

import (
	"strings"
	"sync"

	"github.com/postern/postern/internal/mailstore"
)

// listingKey names one listing of a mailbox: the listing at a given
// HIGHESTMODSEQ of a mailbox (and UIDVALIDITY) is always the same, since
// every change to its messages takes a new mod-sequence.
type listingKey struct {
	mailbox     int64
	uidValidity uint32
	highest     uint64
}

// listingSummary is what SELECT reads of every message of a listing: the
// keywords in use (announced in FLAGS) and the first message without
// \Seen. Kept per listing, it spares every later SELECT of an unchanged
// mailbox a pass over all its messages' flags (10 MB at 100,000).
type listingSummary struct {
	kwList      []string // sorted, in their spelling
	firstUnseen uint32   // sequence number; 0: none
}

// summaries holds the summaries of the listings selected lately, one per
// mailbox (the latest).
type summaries struct {
	mu sync.Mutex
	m  map[int64]summaryEntry
}

type summaryEntry struct {
	key listingKey
	sum listingSummary
}

// maxSummaries bounds the mailboxes remembered; past it all are forgotten
// at once (each is cheap to make again).
const maxSummaries = 4096

func (c *summaries) get(k listingKey) (listingSummary, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k.mailbox]
	if !ok || e.key != k {
		return listingSummary{}, false
	}
	return e.sum, true
}

func (c *summaries) put(k listingKey, s listingSummary) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxSummaries {
		c.m = map[int64]summaryEntry{}
	}
	c.m[k.mailbox] = summaryEntry{key: k, sum: s}
}

// summarize makes the summary of a listing.
func summarize(infos []mailstore.MessageInfo) listingSummary {
	var s listingSummary
	seen := map[string]bool{}
	var last []string // the last set of flags looked at: most messages share a few sets
	for i := range infos {
		f := infos[i].Flags
		if s.firstUnseen == 0 && !hasFlag(f, `\Seen`) {
			s.firstUnseen = uint32(i + 1)
		}
		if sameSlice(f, last) {
			continue
		}
		last = f
		for _, k := range f {
			if !strings.HasPrefix(k, `\`) && !seen[strings.ToLower(k)] {
				seen[strings.ToLower(k)] = true
				s.kwList = append(s.kwList, k)
			}
		}
	}
	return s
}

// sameSlice reports whether a and b are the same slice (the listings share
// the slices of equal flag sets): equal without comparing them.
func sameSlice(a, b []string) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}
