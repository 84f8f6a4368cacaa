package imapserver

import (
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/postern/postern/internal/mailstore"
)

// flagRecent is IMAP4rev1's session flag (RFC 3501 §2.3.2); IMAP4rev2
// removed it (RFC 9051 App. E).
const flagRecent = `\Recent`

// sessionFlags is what a mailbox's \Recent and keyword state looks like to
// one session: which messages are recent in it, and which keywords its last
// FLAGS response announced.
type sessionFlags struct {
	// recent holds the UIDs this session claimed (mailstore.ClaimRecent).
	recent imap.UIDSet
	// recentFrom, in a read-only view, is the mailbox's first unclaimed
	// UID when it was opened: EXAMINE shows those messages as recent
	// without claiming them, so the next SELECT still sees them so.
	recentFrom uint32
	// keywords: the keywords of the last FLAGS response, lower-cased
	// (keywords compare case-insensitively); kwList in their spelling.
	keywords map[string]bool
	kwList   []string
}

// rev1 reports whether the session speaks IMAP4rev1, which has \Recent,
// rather than IMAP4rev2 (ENABLE IMAP4rev2).
func (s *session) rev1() bool { return !s.conn.Enabled(imap.CapIMAP4rev2) }

// claimRecent claims the selected mailbox's messages no session has seen
// yet as recent in this one (RFC 3501 §2.3.2: the first session to be
// notified of a message). Read-only views and IMAP4rev2 sessions claim
// nothing. mb is the mailbox as last read.
func (s *session) claimRecent(sel *selected, mb mailstore.Mailbox) error {
	if sel.readOnly || !s.rev1() {
		return nil
	}
	first, next, err := s.srv.cfg.Mail.ClaimRecent(s.ctx, mb)
	if err != nil {
		return err
	}
	if first < next {
		sel.recent.AddRange(imap.UID(first), imap.UID(next-1))
	}
	return nil
}

func (sel *selected) isRecent(uid uint32) bool {
	return (sel.recentFrom != 0 && uid >= sel.recentFrom) || sel.recent.Contains(imap.UID(uid))
}

// numRecent counts the recent messages of the view, for "* n RECENT".
// The view is in UID order and the recent UIDs are a few ranges: each is
// found by binary search and only its messages are visited, not every
// message of the mailbox on every SELECT.
func (sel *selected) numRecent() uint32 {
	var n uint32
	count := func(lo, hi uint32) {
		i, _ := sel.list.Search(lo)
		for ; i < sel.count() && sel.msg(i).UID <= hi; i++ {
			if !sel.isGone(i) {
				n++
			}
		}
	}
	limit := uint32(math.MaxUint32)
	if sel.recentFrom != 0 {
		count(sel.recentFrom, limit)
		limit = sel.recentFrom - 1 // counted already
	}
	for _, r := range sel.recent { // sorted, disjoint
		hi := uint32(r.Stop)
		if hi == 0 { // "*"
			hi = math.MaxUint32
		}
		if lo := uint32(r.Start); lo <= min(hi, limit) {
			count(lo, min(hi, limit))
		}
	}
	return n
}

// flagsOf is a message's FLAGS as this session sees them: the stored flags
// and \Recent when it is recent here. The slice is the view's, good until
// the next call (every caller writes it at once): a FETCH of every
// message's flags allocated one per message.
func (sel *selected) flagsOf(m *mailstore.MessageInfo) []imap.Flag {
	out := sel.flagBuf[:0]
	for _, f := range m.Flags {
		out = append(out, imap.Flag(f))
	}
	if sel.isRecent(m.UID) {
		out = append(out, flagRecent)
	}
	sel.flagBuf = out
	return out
}

// learnKeywords adds the keywords among flags that the session has not
// announced yet and reports whether there were any: a client must see a
// keyword in FLAGS before any FETCH shows it (RFC 3501 §7.2.6).
func (sel *selected) learnKeywords(flags []string) bool {
	added := false
	for _, f := range flags {
		if strings.HasPrefix(f, `\`) {
			continue
		}
		k := strings.ToLower(f)
		if sel.keywords == nil {
			sel.keywords = map[string]bool{}
		}
		if !sel.keywords[k] {
			sel.keywords[k] = true
			sel.kwList = append(sel.kwList, f)
			added = true
		}
	}
	if added {
		sort.Strings(sel.kwList)
	}
	return added
}

// mailboxFlags is the FLAGS response: the system flags and the keywords
// announced.
func (sel *selected) mailboxFlags() []imap.Flag {
	return toIMAPFlags(append(slices.Clone(systemFlags), sel.kwList...))
}

// permanentFlags is the PERMANENTFLAGS list: none in a read-only view, else
// the flags and "\*": any keyword may be created (RFC 9051 §7.1).
func (sel *selected) permanentFlags() []imap.Flag {
	if sel.readOnly {
		return []imap.Flag{}
	}
	return append(sel.mailboxFlags(), imap.FlagWildcard)
}

// flagsWriter writes the untagged FLAGS and PERMANENTFLAGS responses; both
// go-imap's UpdateWriter and FetchWriter are one.
type flagsWriter interface {
	WriteMailboxFlags([]imap.Flag) error
	WritePermanentFlags([]imap.Flag) error
}

var (
	_ flagsWriter = (*imapserver.UpdateWriter)(nil)
	_ flagsWriter = (*imapserver.FetchWriter)(nil)
)

// announceKeywords writes FLAGS and PERMANENTFLAGS when flags hold a
// keyword the session has not announced yet.
func (sel *selected) announceKeywords(w flagsWriter, flags []string) error {
	if !sel.learnKeywords(flags) {
		return nil
	}
	if err := w.WriteMailboxFlags(sel.mailboxFlags()); err != nil {
		return err
	}
	return w.WritePermanentFlags(sel.permanentFlags())
}
