package imapserver

import (
	"fmt"
	"io"
	"slices"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/mailstore"
)

var errTooBig = &imap.Error{
	Type: imap.StatusResponseTypeNo,
	Code: imap.ResponseCodeTooBig,
	Text: fmt.Sprintf("Messages are limited to %d octets.", mailstore.MaxMessageSize),
}

// destination looks up the target of APPEND, COPY or MOVE; a missing one
// gets [TRYCREATE] so that the client creates it and retries (RFC 9051 §6.3.12).
func (s *session) destination(op, name string) (mailstore.Mailbox, error) {
	mb, err := s.srv.cfg.Mail.Mailbox(s.ctx, s.memberID, name)
	if account.ErrorCode(err) == account.ENOTFOUND {
		return mb, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTryCreate, Text: "No such mailbox."}
	}
	if err != nil {
		return mb, s.storeErr(op, err)
	}
	return mb, nil
}

// Append is APPEND (RFC 9051 §6.3.12) with APPENDUID (RFC 4315). go-imap
// has checked the literal's announced size against AppendLimit already.
func (s *session) Append(name string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	if r.Size() > mailstore.MaxMessageSize {
		return nil, errTooBig
	}
	mb, _, err := s.appendTarget(name, r, r.Size())
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(r, mailstore.MaxMessageSize+1))
	if err != nil {
		return nil, fmt.Errorf("append: read literal: %w", err)
	}
	if len(body) > mailstore.MaxMessageSize {
		return nil, errTooBig
	}
	mb, uid, err := s.appendOne(name, mb, mailstore.NewMessage{Flags: fromIMAPFlags(options.Flags), Date: options.Time, Body: body})
	if err != nil {
		return nil, err
	}
	s.markChanged(mb.ID)
	return &imap.AppendData{UID: imap.UID(uid), UIDValidity: mb.UIDValidity}, nil
}

// The bounds of one APPEND of several messages (MULTIAPPEND): they are held
// in memory until the last one has arrived, so together they may take no
// more than one message of the largest size, as a single APPEND does.
const (
	maxMultiAppendSize  = mailstore.MaxMessageSize
	maxMultiAppendCount = 1000
)

var errMultiAppendTooBig = &imap.Error{
	Type: imap.StatusResponseTypeNo,
	Code: imap.ResponseCodeTooBig,
	Text: fmt.Sprintf("One APPEND takes at most %d messages of %d octets in all; append the others separately.", maxMultiAppendCount, maxMultiAppendSize),
}

// AppendMulti is APPEND of one or more messages (MULTIAPPEND, RFC 3502):
// all are read, then stored in one transaction, so that a failure leaves
// none of them; APPENDUID names every new UID.
func (s *session) AppendMulti(name string, r *imapserver.AppendReader) (*imap.AppendData, error) {
	var msgs []mailstore.NewMessage
	var total int64
	var mb mailstore.Mailbox
	var known bool // a check answered from an earlier APPEND (appendTarget)
	for {
		lit, options, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if lit.Size() > mailstore.MaxMessageSize {
			return nil, errTooBig
		}
		if total += lit.Size(); total > maxMultiAppendSize || len(msgs) == maxMultiAppendCount {
			return nil, errMultiAppendTooBig
		}
		// The messages so far must fit together, before this one is read.
		var k bool
		if len(msgs) == 0 {
			mb, k, err = s.appendTarget(name, lit, total)
		} else {
			k, err = s.fitsAppend(lit, total)
		}
		if err != nil {
			return nil, err
		}
		known = known || k
		body := make([]byte, lit.Size())
		if _, err := io.ReadFull(lit, body); err != nil {
			return nil, fmt.Errorf("append: read literal: %w", err)
		}
		msgs = append(msgs, mailstore.NewMessage{Flags: fromIMAPFlags(options.Flags), Date: options.Time, Body: encodeNULParts(body)})
	}
	if len(msgs) == 1 {
		mb, uid, err := s.appendOne(name, mb, msgs[0])
		if err != nil {
			return nil, err
		}
		s.markChanged(mb.ID)
		return &imap.AppendData{UID: imap.UID(uid), UIDValidity: mb.UIDValidity}, nil
	}
	if known {
		// AppendMany checks neither the mailbox nor the quota as it
		// stores (appendOne's AppendIf does): both are read now.
		var err error
		if mb, err = s.destination("append", name); err != nil {
			return nil, err
		}
		if err := s.fitsQuota(total); err != nil {
			return nil, err
		}
	}
	uids, err := s.srv.cfg.Mail.AppendMany(s.ctx, mb.ID, msgs)
	if err != nil {
		return nil, s.storeErr("append", err)
	}
	s.markChanged(mb.ID)
	data := &imap.AppendData{UIDValidity: mb.UIDValidity}
	for _, uid := range uids {
		data.UIDs.AddNum(imap.UID(uid))
	}
	return data, nil
}

// Copy is COPY and UID COPY with COPYUID (RFC 4315).
func (s *session) Copy(numSet imap.NumSet, dest string) (*imap.CopyData, error) {
	sel := s.sel
	dst, err := s.destination("copy", dest)
	if err != nil {
		return nil, err
	}
	idx := sel.resolve(numSet)
	if len(idx) == 0 {
		return nil, nil
	}
	// A copy counts as much as its original; MOVE needs no check, the
	// messages stay the member's.
	var size int64
	for _, i := range idx {
		size += sel.msg(i).Size
	}
	if err := s.fitsQuota(size); err != nil {
		return nil, err
	}
	src, dstUIDs, validity, err := s.srv.cfg.Mail.Copy(s.ctx, sel.mb.ID, sel.uids(idx), dst.ID)
	if err != nil {
		return nil, s.storeErr("copy", err)
	}
	s.markChanged(dst.ID)
	s.learnFiled(sel, idx, dst, src, dstUIDs)
	return copyData(src, dstUIDs, validity), nil
}

func copyData(src, dst []uint32, validity uint32) *imap.CopyData {
	if len(src) == 0 {
		return nil
	}
	d := &imap.CopyData{UIDValidity: validity}
	for i := range src {
		d.SourceUIDs.AddNum(imap.UID(src[i]))
		d.DestUIDs.AddNum(imap.UID(dst[i]))
	}
	return d
}

// Move is MOVE and UID MOVE (RFC 6851): COPYUID first, then the EXPUNGEs.
func (s *session) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	sel := s.sel
	if sel.readOnly {
		return errReadOnly
	}
	dst, err := s.destination("move", dest)
	if err != nil {
		return err
	}
	idx := sel.resolve(numSet)
	if len(idx) == 0 {
		return nil
	}
	src, dstUIDs, validity, err := s.srv.cfg.Mail.Move(s.ctx, sel.mb.ID, sel.uids(idx), dst.ID)
	if err != nil {
		return s.storeErr("move", err)
	}
	s.learnFiled(sel, idx, dst, src, dstUIDs)
	if d := copyData(src, dstUIDs, validity); d != nil {
		if err := w.WriteCopyData(d); err != nil {
			return err
		}
	}
	s.markChanged(dst.ID)
	return sel.remove(src, w, s.conn.Enabled(imap.CapQResync))
}

// Expunge is EXPUNGE, UID EXPUNGE (RFC 4315 §2.1) and the silent expunge of
// CLOSE. In a read-only mailbox it does nothing, so that CLOSE after EXAMINE
// succeeds (RFC 9051 §6.4.1).
func (s *session) Expunge(w *imapserver.ExpungeWriter, uids *imap.UIDSet) error {
	sel := s.sel
	if sel.readOnly {
		return nil
	}
	var only []uint32
	if uids != nil {
		idx := sel.resolve(*uids)
		if len(idx) == 0 {
			return nil
		}
		only = sel.uids(idx)
	}
	removed, err := s.srv.cfg.Mail.Expunge(s.ctx, sel.mb.ID, only)
	if err != nil {
		return s.storeErr("expunge", err)
	}
	if err := sel.remove(removed, w, s.conn.Enabled(imap.CapQResync)); err != nil {
		return err
	}
	// A message the view still holds flagged \Deleted was expunged (or
	// undeleted) elsewhere a moment before: the poll after EXPUNGE then
	// re-reads the mailbox, so that it is reported now, not when its event
	// comes (imaptest: two sessions expunging the same message).
	if sel.holdsDeleted(only) {
		s.dirty.Store(true)
	}
	return nil
}

// holdsDeleted reports whether a message of the view flagged \Deleted is
// left among uids (all of them when nil).
func (sel *selected) holdsDeleted(uids []uint32) bool {
	if uids == nil {
		return sel.list.Summary().Deleted > 0
	}
	for _, u := range uids {
		if i, ok := sel.list.Search(u); ok && sel.msg(i).Deleted() {
			return true
		}
	}
	return false
}

// expungeReporter is what reports expunges: go-imap's ExpungeWriter,
// MoveWriter and UpdateWriter.
type expungeReporter interface {
	WriteExpunge(seqNum uint32) error
	WriteVanished(uids imap.UIDSet) error
}

// remove drops uids from the view and reports them (reportGone).
func (sel *selected) remove(uids []uint32, w expungeReporter, vanished bool) error {
	if len(uids) == 0 {
		return nil
	}
	if err := sel.reportGone(uids, w, vanished); err != nil {
		return err
	}
	gone := make(map[uint32]bool, len(uids))
	for _, u := range uids {
		gone[u] = true
		delete(sel.gone, u)
	}
	sel.list = sel.list.Filter(func(m *mailstore.MessageInfo) bool { return !gone[m.UID] })
	sel.own = true
	return nil
}

// reportGone reports the messages of uids in the view as expunged: to a
// client that enabled QRESYNC in one VANISHED (RFC 7162 §3.2.10), to the
// others with an EXPUNGE for each sequence number, highest first so that
// every number is still valid when it is read. The view is left as it is.
func (sel *selected) reportGone(uids []uint32, w expungeReporter, vanished bool) error {
	var idx []int
	for _, u := range uids {
		if i, ok := sel.list.Search(u); ok {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return nil
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	if vanished {
		var set imap.UIDSet
		for _, i := range idx {
			set.AddNum(imap.UID(sel.msg(i).UID))
		}
		return w.WriteVanished(set)
	}
	for k := len(idx) - 1; k >= 0; k-- {
		if err := w.WriteExpunge(uint32(idx[k] + 1)); err != nil {
			return err
		}
	}
	return nil
}
