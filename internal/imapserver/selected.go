package imapserver

import (
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/mailstore"
)

// selected is a session's view of its selected mailbox: the messages the
// client knows, in sequence-number order. Changes made elsewhere (other
// sessions, other nodes, SMTP delivery) reach it when the session re-reads
// the mailbox after an EventMailboxChanged and reports the difference.
type selected struct {
	mb       mailstore.Mailbox
	readOnly bool
	// list is the view: the messages by sequence number (index + 1). It is
	// the store's listing itself, shared with the store's cache and the
	// other sessions of the mailbox (a SELECT of 100,000 messages copies
	// nothing), or one made from it for this session while some of its
	// messages are gone. Never changed: a change makes a new listing,
	// which copies only the chunks it touches (mailstore.Listing).
	list mailstore.Listing
	// gone holds the UIDs of messages of list expunged elsewhere while
	// EXPUNGE responses were not allowed (during FETCH, STORE and SEARCH,
	// RFC 9051 §7.5.1): each keeps its sequence number until the next
	// command that allows them. Empty most of the time.
	gone map[uint32]bool
	sessionFlags
	// saved is the result of the last SEARCH RETURN (SAVE) (RFC 5182), by
	// UID: "$" in later commands. Empty on SELECT; an expunged message
	// simply drops out, as its UID names nothing.
	saved []uint32
	// highest is the HIGHESTMODSEQ up to which the client has been told
	// every change (RFC 7162): it moves only when a re-read is reported in
	// full, expunges included, so a client that keeps it misses nothing.
	highest uint64
	// read is the HighestModSeq of the store's listing the view was last
	// made from. The session's own changes since are in the view, not in
	// that listing: ownModSeq is the latest of its flag changes, and own
	// says that it expunged (which tells no mod-sequence). A re-read after
	// an event may take a listing the store kept (mailstore.Store.
	// StateHeard) only when it is no older than read and ownModSeq, and
	// not while own is set: an older one would undo changes shown.
	read, ownModSeq uint64
	own             bool
	// flagBuf is flagsOf's result.
	flagBuf []imap.Flag
}

// count is the number of messages in the view (the last sequence number).
func (sel *selected) count() int { return sel.list.Len() }

// msg is the message of sequence number i+1; it must not be changed.
func (sel *selected) msg(i int) *mailstore.MessageInfo { return sel.list.At(i) }

// isGone reports whether the message of sequence number i+1 is gone (see
// selected.gone).
func (sel *selected) isGone(i int) bool {
	return len(sel.gone) > 0 && sel.gone[sel.list.At(i).UID]
}

// lastUID is the UID of the view's last message, 0 when it is empty.
func (sel *selected) lastUID() uint32 { return sel.list.LastUID() }

// systemFlags are the flags every mailbox offers (RFC 9051 §2.3.2).
var systemFlags = []string{`\Answered`, `\Deleted`, `\Draft`, `\Flagged`, `\Seen`}

// pollEvery is how often IDLE re-reads the mailbox when there is no Bus.
const pollEvery = 10 * time.Second

// Select is SELECT and EXAMINE (RFC 9051 §6.3.2, §6.3.3).
func (s *session) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	s.Unselect()
	mb, infos, err := s.selectState(name)
	sel := &selected{mb: mb, readOnly: options != nil && options.ReadOnly}
	if err == nil && sel.readOnly && s.rev1() {
		sel.recentFrom = mb.RecentUID // shown, not claimed
	} else if err == nil && mb.RecentUID < mb.UIDNext {
		// Claimed after the listing: the UIDs claimed that it lacks
		// are recent here when a refresh brings them.
		err = s.claimRecent(sel, mb)
	}
	if err != nil {
		s.selectedID.Store(0)
		return nil, s.storeErr("select", err)
	}
	sel.mb, sel.highest, sel.read, sel.list = mb, mb.HighestModSeq, mb.HighestModSeq, infos
	sum := infos.Summary()
	sel.learnKeywords(sum.Keywords)
	s.sel = sel
	data := &imap.SelectData{
		Flags:             sel.mailboxFlags(),
		PermanentFlags:    sel.permanentFlags(),
		NumMessages:       uint32(sel.count()),
		NumRecent:         sel.numRecent(),
		FirstUnseenSeqNum: uint32(sum.FirstUnseen + 1),
		UIDNext:           imap.UID(mb.UIDNext),
		UIDValidity:       mb.UIDValidity,
		HighestModSeq:     mb.HighestModSeq,
	}
	if s.rev1() {
		return data, nil
	}
	// RFC 9051 §6.3.2: an IMAP4rev2 SELECT names the mailbox in a LIST
	// response with its attributes.
	if data.List, err = s.selectedList(mb); err != nil {
		s.Unselect()
		return nil, err
	}
	return data, nil
}

// selectState reads the mailbox of the name and its listing in one
// snapshot, listening to its changes from before the read, so that no
// change falls between the two (errors are the store's). When the name
// opened a mailbox lately
// (Server.names), that mailbox is read at once, and the read tells whether
// it still has that name; otherwise the name is looked up first.
func (s *session) selectState(name string) (mailstore.Mailbox, mailstore.Listing, error) {
	mail := s.srv.cfg.Mail
	if h, ok := s.srv.names.get(s.memberID, name); ok {
		s.selectedID.Store(h.mailboxID)
		s.dirty.Store(false)
		s.heard.Store(0)
		mb, list, err := mail.State(s.ctx, h.mailboxID)
		if err == nil && mb.MemberID == s.memberID && mb.Name == h.name {
			return mb, list, nil
		}
		s.selectedID.Store(0)
		if err != nil && account.ErrorCode(err) != account.ENOTFOUND {
			return mailstore.Mailbox{}, mailstore.Listing{}, err
		}
		s.srv.names.drop(s.memberID, name)
	}
	mb, err := mail.Mailbox(s.ctx, s.memberID, name)
	if err != nil {
		return mailstore.Mailbox{}, mailstore.Listing{}, err
	}
	s.selectedID.Store(mb.ID)
	s.dirty.Store(false)
	s.heard.Store(0)
	mb, list, err := mail.State(s.ctx, mb.ID)
	if err != nil {
		s.selectedID.Store(0)
		return mailstore.Mailbox{}, mailstore.Listing{}, err
	}
	s.srv.names.put(s.memberID, name, nameHint{mailboxID: mb.ID, name: mb.Name})
	return mb, list, nil
}

// selectedList is the LIST response of SELECT for mb.
func (s *session) selectedList(mb mailstore.Mailbox) (*imap.ListData, error) {
	mbs, err := s.srv.cfg.Mail.Mailboxes(s.ctx, s.memberID)
	if err != nil {
		return nil, s.storeErr("select", err)
	}
	attr := imap.MailboxAttrHasNoChildren
	for _, m := range mbs {
		if strings.HasPrefix(m.Name, mb.Name+string(delim)) {
			attr = imap.MailboxAttrHasChildren
			break
		}
	}
	data := &imap.ListData{Mailbox: mb.Name, Delim: delim, Attrs: []imap.MailboxAttr{attr}}
	if mb.SpecialUse != "" {
		data.Attrs = append(data.Attrs, imap.MailboxAttr(mb.SpecialUse))
	}
	return data, nil
}

// Unselect is UNSELECT and the end of CLOSE.
func (s *session) Unselect() error {
	s.sel = nil
	s.selectedID.Store(0)
	return nil
}

// Poll reports changes made elsewhere; go-imap calls it after each command.
func (s *session) Poll(w *imapserver.UpdateWriter, allowExpunge bool) error {
	if s.sel == nil {
		return nil
	}
	all, heard := s.dirty.Swap(false), s.heard.Swap(0)
	if !all && heard == 0 && s.srv.cfg.Bus != nil && !(allowExpunge && len(s.sel.gone) > 0) {
		return nil
	}
	if all || s.sel.own || s.srv.cfg.Bus == nil {
		heard = 0 // everything committed until now
	}
	return s.refresh(w, allowExpunge, heard)
}

// Noop makes the poll after NOOP and CHECK re-read the mailbox: a change
// another session made before the NOOP shows in its answer even when its
// event has not arrived yet (imaptest checks this across connections).
func (s *session) Noop() { s.dirty.Store(true) }

// Idle is IDLE (RFC 2177): it waits for changes to the selected mailbox.
func (s *session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	if err := s.Poll(w, true); err != nil {
		return err
	}
	var tick <-chan time.Time
	if s.srv.cfg.Bus == nil {
		t := time.NewTicker(pollEvery)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-stop:
			return nil
		case <-s.ctx.Done():
			return nil
		case <-s.changed:
		case <-tick:
		}
		if err := s.Poll(w, true); err != nil {
			return err
		}
	}
}

// markChanged makes the next Poll re-read the mailbox: after this session's
// own APPEND or COPY into it, the EXISTS must not wait for the event.
func (s *session) markChanged(mailboxID int64) {
	if s.sel != nil && s.sel.mb.ID == mailboxID {
		s.dirty.Store(true)
	}
}

// refresh re-reads the mailbox and writes FETCH FLAGS (with MODSEQ once
// CONDSTORE is enabled), EXPUNGE (VANISHED once QRESYNC is) and EXISTS for
// what changed: the changes heard of at heard (see session.heard), or all
// of them when it is 0.
func (s *session) refresh(w *imapserver.UpdateWriter, allowExpunge bool, heard uint64) error {
	sel := s.sel
	mb, list, err := s.srv.cfg.Mail.StateHeard(s.ctx, sel.mb.ID, heard, max(sel.read, sel.ownModSeq))
	if account.ErrorCode(err) == account.ENOTFOUND {
		// Deleted elsewhere: every message is gone, and the view stays
		// where it was (a mailbox made again has another UIDVALIDITY).
		mb, list, err = sel.mb, mailstore.Listing{}, nil
		mb.HighestModSeq = sel.highest
	}
	if err != nil {
		return s.storeErr("poll", err)
	}
	sel.read, sel.own = max(sel.read, mb.HighestModSeq), false
	condStore := s.conn.Enabled(imap.CapCondStore)
	// Both listings are in UID order: one walk matches them, with no map
	// of the whole mailbox on every re-read; and where the two hold the
	// same chunk at the same place (mailstore.Listing), nothing in it
	// changed: after a STORE on a few messages, the walk visits those.
	old := sel.list
	var changed []mailstore.MessageInfo
	var newlyGone []uint32
	j := 0
	for i := 0; i < old.Len(); i++ {
		if i == j && old.SharesChunk(list, i) {
			i = min(mailstore.ChunkEnd(i), old.Len()) - 1
			j = i + 1
			continue
		}
		m := old.At(i)
		if sel.gone[m.UID] {
			continue
		}
		for j < list.Len() && list.At(j).UID < m.UID {
			j++
		}
		if j == list.Len() || list.At(j).UID != m.UID {
			newlyGone = append(newlyGone, m.UID)
			continue
		}
		n := list.At(j)
		j++
		if n == m {
			continue
		}
		flagsChanged := !slices.Equal(m.Flags, n.Flags)
		modSeqChanged := m.ModSeq != n.ModSeq
		if flagsChanged || modSeqChanged {
			changed = append(changed, *n)
		}
		if flagsChanged {
			if err := sel.announceKeywords(w, n.Flags); err != nil {
				return err
			}
		}
		if flagsChanged || condStore && modSeqChanged {
			if err := w.WriteMessageFlagsModSeq(uint32(i+1), imap.UID(n.UID), sel.flagsOf(n), n.ModSeq); err != nil {
				return err
			}
		}
	}
	last := old.LastUID()
	arrived, _ := list.Search(last + 1)
	if (len(newlyGone) > 0 || len(sel.gone) > 0) && !allowExpunge {
		// The gone keep their numbers: the view stays the old one, with the
		// news of the others, until expunges may be reported.
		if sel.gone == nil {
			sel.gone = map[uint32]bool{}
		}
		for _, u := range newlyGone {
			sel.gone[u] = true
		}
		sel.list, _ = old.Replace(changed)
		var added []mailstore.MessageInfo
		for k := arrived; k < list.Len(); k++ {
			added = append(added, *list.At(k))
		}
		sel.list = sel.list.Append(added)
	} else {
		var gone []uint32
		for u := range sel.gone {
			gone = append(gone, u)
		}
		gone = append(gone, newlyGone...)
		if err := sel.reportGone(gone, w, s.conn.Enabled(imap.CapQResync)); err != nil {
			return err
		}
		// Every message of the view not gone is in list with the same
		// UID, and list's others arrived since: list is the view now.
		sel.list, sel.gone = list, nil
	}
	if len(sel.gone) == 0 {
		sel.highest = max(sel.highest, mb.HighestModSeq)
	}
	if arrived == list.Len() {
		return nil
	}
	for k := arrived; k < list.Len(); k++ {
		if err := sel.announceKeywords(w, list.At(k).Flags); err != nil {
			return err
		}
	}
	// New mail is recent in the first session to see it (RFC 3501 §2.3.2);
	// a claim made after the listing may take UIDs it does not hold yet:
	// they are recent here when the next refresh brings them.
	if mb.RecentUID < mb.UIDNext {
		if err := s.claimRecent(sel, mb); err != nil {
			return s.storeErr("poll", err)
		}
	}
	if err := w.WriteNumMessages(uint32(sel.count())); err != nil {
		return err
	}
	return w.WriteNumRecent(sel.numRecent())
}

// HighestModSeq is the selected mailbox's HIGHESTMODSEQ as the client
// knows it (imapserver.SessionCondStore).
func (s *session) HighestModSeq() (uint64, error) {
	if s.sel == nil {
		return 0, nil
	}
	return s.sel.highest, nil
}

// resolve returns the indexes in the view of the messages numSet names,
// in order, skipping those gone.
func (sel *selected) resolve(numSet imap.NumSet) []int {
	var out []int
	// Sized once, by the numbers the set spans (at most the view): grown
	// by append, UID FETCH 1:* on a large mailbox copied it a dozen times.
	n := 0
	switch set := sel.static(numSet).(type) {
	case imap.SeqSet:
		for _, r := range set {
			n += int(r.Stop-r.Start) + 1
		}
		out = make([]int, 0, min(n, sel.count()))
		for _, r := range set {
			for i := max(int(r.Start), 1) - 1; i < min(int(r.Stop), sel.count()); i++ {
				if !sel.isGone(i) {
					out = append(out, i)
				}
			}
		}
	case imap.UIDSet:
		for _, r := range set {
			n += int(r.Stop-r.Start) + 1
		}
		out = make([]int, 0, min(n, sel.count()))
		for _, r := range set {
			i, _ := sel.list.Search(uint32(r.Start))
			for ; i < sel.count() && sel.msg(i).UID <= uint32(r.Stop); i++ {
				if !sel.isGone(i) {
					out = append(out, i)
				}
			}
		}
	}
	// The ranges, with "*" made a number, may overlap or come in any
	// order: the numbers go in sequence order, once each.
	if !slices.IsSorted(out) {
		slices.Sort(out)
	}
	return slices.Compact(out)
}

// static returns a copy of numSet with "*" replaced by the last sequence
// number or UID of the view, and "$" (SEARCHRES) by the saved UIDs.
func (sel *selected) static(numSet imap.NumSet) imap.NumSet {
	if imap.IsSearchRes(numSet) {
		var set imap.UIDSet
		for _, uid := range sel.saved {
			set.AddNum(imap.UID(uid))
		}
		return set
	}
	switch set := numSet.(type) {
	case imap.SeqSet:
		static := slices.Clone(set)
		n := uint32(sel.count())
		for i := range static {
			staticRange(&static[i].Start, &static[i].Stop, n)
		}
		return static
	case imap.UIDSet:
		static := slices.Clone(set)
		last := sel.lastUID()
		for i := range static {
			staticRange((*uint32)(&static[i].Start), (*uint32)(&static[i].Stop), last)
		}
		return static
	}
	return nil
}

// staticRange replaces "*" (0) by max. "n:*" with n above max still names
// the last message (RFC 9051 §6.4.8), hence the swap.
func staticRange(start, stop *uint32, max uint32) {
	dyn := false
	if *start == 0 {
		*start, dyn = max, true
	}
	if *stop == 0 {
		*stop, dyn = max, true
	}
	if dyn && *start > *stop {
		*start, *stop = *stop, *start
	}
}

func toIMAPFlags(flags []string) []imap.Flag {
	out := make([]imap.Flag, len(flags))
	for i, f := range flags {
		out[i] = imap.Flag(f)
	}
	return out
}

func fromIMAPFlags(flags []imap.Flag) []string {
	out := make([]string, len(flags))
	for i, f := range flags {
		out[i] = string(f)
	}
	return out
}

func (sel *selected) uids(idx []int) []uint32 {
	out := make([]uint32, len(idx))
	for i, j := range idx {
		out[i] = sel.msg(j).UID
	}
	return out
}
