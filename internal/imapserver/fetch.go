package imapserver

import (
	"bytes"
	"io"
	"slices"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/postern/postern/internal/mailstore"
)

var errReadOnly = &imap.Error{
	Type: imap.StatusResponseTypeNo,
	Code: imap.ResponseCodeCannot,
	Text: "The mailbox is open read-only (EXAMINE).",
}

// Fetch is FETCH and UID FETCH (RFC 9051 §6.4.5). ENVELOPE, BODY,
// BODYSTRUCTURE and PREVIEW come from the message index, encoded when the
// message was stored (through the server's itemCache); only sections read
// the raw message.
func (s *session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	sel := s.sel
	if options.Vanished {
		if err := s.writeVanishedSince(w, numSet, options.ChangedSince); err != nil {
			return err
		}
	}
	idx := sel.resolve(numSet)
	if options.ChangedSince != 0 {
		// CHANGEDSINCE (RFC 7162 §3.1.4.1): only what changed after it.
		idx = slices.DeleteFunc(idx, func(i int) bool { return sel.msg(i).ModSeq <= options.ChangedSince })
	}
	if len(idx) == 0 {
		return nil
	}
	condStore := s.conn.Enabled(imap.CapCondStore)
	// Reading a body section without PEEK sets \Seen, and the new flags go
	// with the response (RFC 9051 §6.4.5); not in a read-only mailbox.
	seen, err := s.markSeen(idx, options)
	if err != nil {
		return err
	}
	var index map[int64]*mailstore.MessageIndex
	if options.Envelope || options.BodyStructure != nil || options.Preview {
		ids := make([]int64, len(idx))
		for n, i := range idx {
			ids[n] = sel.msg(i).ID
		}
		index = make(map[int64]*mailstore.MessageIndex, len(ids))
		if missing := s.srv.items.get(ids, index); len(missing) > 0 {
			read, err := s.srv.cfg.Mail.Indexes(s.ctx, sel.mb.ID, missing, true)
			if err != nil {
				return s.storeErr("fetch", err)
			}
			for id, x := range read {
				index[id] = keepItems(s.srv.items, id, x)
			}
		}
	}
	needBody := len(options.BodySection) > 0 || len(options.BinarySection) > 0 || len(options.BinarySectionSize) > 0
	var bodies map[int64][]byte
	loaded := 0 // idx[:loaded] have had their bodies read
	for n, i := range idx {
		m := sel.msg(i)
		x := index[m.ID]
		if index != nil && x == nil {
			continue // expunged elsewhere a moment ago
		}
		var body []byte
		if needBody {
			if n >= loaded {
				if bodies, loaded, err = s.readBodies(bodies, idx, n); err != nil {
					return s.storeErr("fetch", err)
				}
			}
			var ok bool
			if body, ok = bodies[m.ID]; !ok {
				continue // expunged elsewhere a moment ago
			}
		}
		// Binary sections are decoded before the response starts: an
		// encoding that cannot be undone fails the command (NO
		// [UNKNOWN-CTE], RFC 3516 §4.3) instead of cutting a response.
		bin, err := binarySections(body, options)
		if err != nil {
			return err
		}
		rw := w.CreateMessage(uint32(i + 1))
		rw.WriteUID(imap.UID(m.UID))
		if options.Flags || seen[m.UID] {
			rw.WriteFlags(sel.flagsOf(m))
		}
		if options.ModSeq || condStore && seen[m.UID] {
			rw.WriteModSeq(m.ModSeq)
		}
		if options.InternalDate {
			rw.WriteInternalDate(m.InternalDate)
		}
		if options.RFC822Size {
			rw.WriteRFC822Size(m.Size)
		}
		utf8 := rw.QuotedUTF8()
		if options.Envelope {
			rw.WriteEnvelopeEncoded(encodedFor(x.Envelope, x.EnvelopeUTF8, utf8))
		}
		if options.BodyStructure != nil {
			rw.WriteBodyStructureEncoded(encodedFor(x.Body, x.BodyUTF8, utf8), encodedFor(x.BodyStructure, x.BodyStructureUTF8, utf8))
		}
		if options.Preview {
			rw.WritePreview(x.Preview, true)
		}
		if err := writeSections(rw, body, bin, options); err != nil {
			// rw holds go-imap's response encoder lock until Close: without
			// it, a write error (client gone, or a revoked session cut by
			// abort) left go-imap's serve goroutine and the revocation's
			// BYE waiting for ever, and the session never ended.
			rw.Close()
			return err
		}
		if err := rw.Close(); err != nil {
			return err
		}
	}
	return nil
}

// Bodies are read for up to bodyBatch messages, or bodyBatchBytes, at a
// time: on PostgreSQL each read is a round trip, and a FETCH of sections
// of many messages made one per message; the bound keeps a FETCH 1:*
// BODY[] of a large mailbox from holding all of it in memory.
const (
	bodyBatch      = 64
	bodyBatchBytes = 1 << 20
)

// readBodies reads into bodies (emptied first) the raw messages of
// idx[from:], as many as one batch holds (at least one), and returns
// where the batch ends. A message expunged meanwhile is left out.
func (s *session) readBodies(bodies map[int64][]byte, idx []int, from int) (map[int64][]byte, int, error) {
	if bodies == nil {
		bodies = make(map[int64][]byte, min(bodyBatch, len(idx)-from))
	}
	clear(bodies)
	ids := make([]int64, 0, min(bodyBatch, len(idx)-from))
	end, size := from, int64(0)
	for ; end < len(idx) && len(ids) < bodyBatch && (len(ids) == 0 || size < bodyBatchBytes); end++ {
		m := s.sel.msg(idx[end])
		ids = append(ids, m.ID)
		size += m.Size
	}
	missing := s.srv.bodies.get(ids, bodies)
	if len(missing) == 0 {
		return bodies, end, nil
	}
	err := s.srv.cfg.Mail.Bodies(s.ctx, missing, func(id int64, body []byte) error {
		bodies[id] = body
		s.srv.bodies.put(id, body)
		return nil
	})
	return bodies, end, err
}

// encodedFor picks an index's encoded item for the connection: the UTF-8
// form when the connection takes UTF-8 quoted strings and it differs.
func encodedFor(plain, utf8 []byte, quotedUTF8 bool) []byte {
	if quotedUTF8 && utf8 != nil {
		return utf8
	}
	return plain
}

// binarySections decodes the BINARY and BINARY.SIZE sections of a FETCH,
// in that order.
func binarySections(body []byte, options *imap.FetchOptions) ([][]byte, error) {
	if len(options.BinarySection)+len(options.BinarySectionSize) == 0 {
		return nil, nil
	}
	out := make([][]byte, 0, len(options.BinarySection)+len(options.BinarySectionSize))
	for _, bs := range options.BinarySection {
		b, err := imapserver.DecodeBinarySection(bytes.NewReader(body), bs)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	for _, bs := range options.BinarySectionSize {
		b, err := imapserver.DecodeBinarySection(bytes.NewReader(body), &imap.FetchItemBinarySection{Part: bs.Part})
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// writeSections writes the body sections and the binary sections (bin,
// from binarySections) of a FETCH response; it stops at the first write
// error.
func writeSections(rw *imapserver.FetchResponseWriter, body []byte, bin [][]byte, options *imap.FetchOptions) error {
	for _, bs := range options.BodySection {
		b := imapserver.ExtractBodySection(bytes.NewReader(body), bs)
		if err := writeLiteral(rw.WriteBodySection(bs, int64(len(b))), b); err != nil {
			return err
		}
	}
	for i, bs := range options.BinarySection {
		if err := rw.WriteBinarySectionBytes(bs, bin[i]); err != nil {
			return err
		}
	}
	for i, bs := range options.BinarySectionSize {
		rw.WriteBinarySectionSize(bs, uint32(len(bin[len(options.BinarySection)+i])))
	}
	return nil
}

func writeLiteral(wc io.WriteCloser, b []byte) error {
	_, werr := wc.Write(b)
	cerr := wc.Close()
	if werr != nil {
		return werr
	}
	return cerr
}

// markSeen sets \Seen on the messages a FETCH reads without PEEK and returns
// the UIDs whose flags changed.
func (s *session) markSeen(idx []int, options *imap.FetchOptions) (map[uint32]bool, error) {
	sel := s.sel
	if sel.readOnly {
		return nil, nil
	}
	reads := false
	for _, bs := range options.BodySection {
		reads = reads || !bs.Peek
	}
	for _, bs := range options.BinarySection {
		reads = reads || !bs.Peek
	}
	if !reads {
		return nil, nil
	}
	var uids []uint32
	for _, i := range idx {
		if m := sel.msg(i); !hasFlag(m.Flags, `\Seen`) {
			uids = append(uids, m.UID)
		}
	}
	if len(uids) == 0 {
		return nil, nil
	}
	infos, err := s.srv.cfg.Mail.StoreFlags(s.ctx, sel.mb.ID, uids, mailstore.FlagsAdd, []string{`\Seen`})
	if err != nil {
		return nil, s.storeErr("fetch", err)
	}
	return sel.apply(infos), nil
}

// apply records new flags (infos, in UID order) in the view and returns
// the UIDs it touched.
func (sel *selected) apply(infos []mailstore.MessageInfo) map[uint32]bool {
	touched := make(map[uint32]bool, len(infos))
	var in []mailstore.MessageInfo
	for _, m := range infos {
		sel.ownModSeq = max(sel.ownModSeq, m.ModSeq)
		if _, ok := sel.list.Search(m.UID); ok {
			touched[m.UID] = true
			in = append(in, m)
		}
	}
	// The view's listing is shared: a new one, sharing what infos leave.
	sel.list, _ = sel.list.Replace(in)
	return touched
}

// Store is STORE and UID STORE (RFC 9051 §6.4.6), with UNCHANGEDSINCE
// (RFC 7162 §3.1.3): the messages changed since are left alone and named
// in OK [MODIFIED ...], the test and the change being one step in the store.
func (s *session) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, options *imap.StoreOptions) error {
	sel := s.sel
	if sel.readOnly {
		return errReadOnly
	}
	idx := sel.resolve(numSet)
	if len(idx) == 0 {
		return nil
	}
	op := mailstore.FlagsSet
	switch flags.Op {
	case imap.StoreFlagsAdd:
		op = mailstore.FlagsAdd
	case imap.StoreFlagsDel:
		op = mailstore.FlagsRemove
	}
	before := make(map[uint32]uint64, len(idx))
	for _, i := range idx {
		before[sel.msg(i).UID] = sel.msg(i).ModSeq
	}
	var infos []mailstore.MessageInfo
	var modified []uint32
	var err error
	if options.Conditional && options.UnchangedSince == 0 {
		modified = sel.uids(idx) // every message has a mod-sequence above 0
	} else {
		infos, modified, err = s.srv.cfg.Mail.StoreFlagsIf(s.ctx, sel.mb.ID, sel.uids(idx), op, fromIMAPFlags(flags.Flags), options.UnchangedSince)
		if err != nil {
			return s.storeErr("store", err)
		}
	}
	touched := sel.apply(infos)
	for _, m := range infos {
		if err := sel.announceKeywords(w, m.Flags); err != nil {
			return err
		}
	}
	if len(modified) > 0 {
		w.SetModified(sel.numSet(modified, numSet))
	}
	condStore := s.conn.Enabled(imap.CapCondStore)
	for _, i := range idx {
		m := sel.msg(i)
		if !touched[m.UID] {
			continue
		}
		// .SILENT drops the flags, not the news of a new mod-sequence
		// to a client that follows them (RFC 7162 §3.1.3).
		changed := condStore && m.ModSeq != before[m.UID]
		if flags.Silent && !changed {
			continue
		}
		rw := w.CreateMessage(uint32(i + 1))
		rw.WriteUID(imap.UID(m.UID))
		if !flags.Silent {
			rw.WriteFlags(sel.flagsOf(m))
		}
		if condStore {
			rw.WriteModSeq(m.ModSeq)
		}
		if err := rw.Close(); err != nil {
			return err
		}
	}
	return nil
}

// numSet returns uids as the kind of set like is: UIDs for a UID command,
// sequence numbers of the view for the others.
func (sel *selected) numSet(uids []uint32, like imap.NumSet) imap.NumSet {
	if _, ok := like.(imap.UIDSet); ok {
		var set imap.UIDSet
		for _, u := range uids {
			set.AddNum(imap.UID(u))
		}
		return set
	}
	var set imap.SeqSet
	for _, u := range uids {
		if i, ok := sel.list.Search(u); ok {
			set.AddNum(uint32(i + 1))
		}
	}
	return set
}

// writeVanishedSince writes VANISHED (EARLIER) for the UIDs of numSet
// expunged after modseq since (UID FETCH ... (CHANGEDSINCE since
// VANISHED), SELECT (QRESYNC ...), RFC 7162 §3.2.5, §3.2.6). UIDs still in
// the view are left out: they are reported as they leave it. When the store
// no longer knows every expunge after since, every UID of numSet up to the
// last one handed out that is not in the view is reported (§3.2.5.2 allows
// UIDs the client never knew).
func (s *session) writeVanishedSince(w *imapserver.FetchWriter, numSet imap.NumSet, since uint64) error {
	sel := s.sel
	uids, complete, err := s.srv.cfg.Mail.Vanished(s.ctx, sel.mb.ID, since)
	if err != nil {
		return s.storeErr("fetch", err)
	}
	present := func(u uint32) bool { _, ok := sel.list.Search(u); return ok }
	// "*" is the last UID handed out here, not the last one present: the
	// last messages may be the ones that vanished.
	last := max(sel.mb.UIDNext-1, sel.lastUID())
	set, _ := numSet.(imap.UIDSet)
	set = slices.Clone(set)
	for i := range set {
		staticRange((*uint32)(&set[i].Start), (*uint32)(&set[i].Stop), last)
	}
	var out imap.UIDSet
	if complete {
		for _, u := range uids {
			if !present(u) && set.Contains(imap.UID(u)) {
				out.AddNum(imap.UID(u))
			}
		}
		return w.WriteVanished(out)
	}
	for _, r := range set {
		// The gaps between the view's UIDs (in order) within the range.
		cur, stop := uint32(r.Start), min(uint32(r.Stop), last)
		i, _ := sel.list.Search(cur)
		for ; i < sel.count() && sel.msg(i).UID <= stop && cur <= stop; i++ {
			if u := sel.msg(i).UID; u > cur {
				out.AddRange(imap.UID(cur), imap.UID(u-1))
			}
			cur = sel.msg(i).UID + 1
		}
		if cur != 0 && cur <= stop {
			out.AddRange(imap.UID(cur), imap.UID(stop))
		}
	}
	return w.WriteVanished(out)
}
