package imapserver

import (
	"bufio"
	"bytes"
	"io"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-message/textproto"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/mailstore"
)

var errReadOnly = &imap.Error{
	Type: imap.StatusResponseTypeNo,
	Code: imap.ResponseCodeCannot,
	Text: "The mailbox is open read-only (EXAMINE).",
}

// Fetch is FETCH and UID FETCH (RFC 9051 §6.4.5). Envelope, body structure
// and sections come from the raw message through go-imap's helpers.
func (s *session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	sel := s.sel
	idx := sel.resolve(numSet)
	if len(idx) == 0 {
		return nil
	}
	// Reading a body section without PEEK sets \Seen, and the new flags go
	// with the response (RFC 9051 §6.4.5); not in a read-only mailbox.
	seen, err := s.markSeen(idx, options)
	if err != nil {
		return err
	}
	needBody := options.Envelope || options.BodyStructure != nil || len(options.BodySection) > 0 ||
		len(options.BinarySection) > 0 || len(options.BinarySectionSize) > 0
	for _, i := range idx {
		m := sel.msgs[i]
		var body []byte
		if needBody {
			body, err = s.srv.cfg.Mail.Body(s.ctx, m.ID)
			if account.ErrorCode(err) == account.ENOTFOUND {
				continue // expunged elsewhere a moment ago
			}
			if err != nil {
				return s.storeErr("fetch", err)
			}
		}
		rw := w.CreateMessage(uint32(i + 1))
		rw.WriteUID(imap.UID(m.UID))
		if options.Flags || seen[m.UID] {
			rw.WriteFlags(sel.flagsOf(&m))
		}
		if options.InternalDate {
			rw.WriteInternalDate(m.InternalDate)
		}
		if options.RFC822Size {
			rw.WriteRFC822Size(m.Size)
		}
		if options.Envelope {
			rw.WriteEnvelope(envelope(body))
		}
		if options.BodyStructure != nil {
			rw.WriteBodyStructure(imapserver.ExtractBodyStructure(bytes.NewReader(body)))
		}
		if err := writeSections(rw, body, options); err != nil {
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

// writeSections writes the body sections and binary sections of a FETCH
// response; it stops at the first write error.
func writeSections(rw *imapserver.FetchResponseWriter, body []byte, options *imap.FetchOptions) error {
	for _, bs := range options.BodySection {
		b := imapserver.ExtractBodySection(bytes.NewReader(body), bs)
		if err := writeLiteral(rw.WriteBodySection(bs, int64(len(b))), b); err != nil {
			return err
		}
	}
	for _, bs := range options.BinarySection {
		b := imapserver.ExtractBinarySection(bytes.NewReader(body), bs)
		if err := writeLiteral(rw.WriteBinarySection(bs, int64(len(b))), b); err != nil {
			return err
		}
	}
	for _, bs := range options.BinarySectionSize {
		rw.WriteBinarySectionSize(bs, imapserver.ExtractBinarySectionSize(bytes.NewReader(body), bs))
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

func envelope(body []byte) *imap.Envelope {
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(body)))
	if err != nil {
		return nil
	}
	return imapserver.ExtractEnvelope(h)
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
		if !hasFlag(sel.msgs[i].Flags, `\Seen`) {
			uids = append(uids, sel.msgs[i].UID)
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

// apply records new flags in the view and returns the UIDs it touched.
func (sel *selected) apply(infos []mailstore.MessageInfo) map[uint32]bool {
	byUID := make(map[uint32][]string, len(infos))
	for _, m := range infos {
		byUID[m.UID] = m.Flags
	}
	touched := make(map[uint32]bool, len(infos))
	for i := range sel.msgs {
		if f, ok := byUID[sel.msgs[i].UID]; ok {
			sel.msgs[i].Flags = f
			touched[sel.msgs[i].UID] = true
		}
	}
	return touched
}

// Store is STORE and UID STORE (RFC 9051 §6.4.6).
func (s *session) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, _ *imap.StoreOptions) error {
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
	infos, err := s.srv.cfg.Mail.StoreFlags(s.ctx, sel.mb.ID, sel.uids(idx), op, fromIMAPFlags(flags.Flags))
	if err != nil {
		return s.storeErr("store", err)
	}
	touched := sel.apply(infos)
	for _, m := range infos {
		if err := sel.announceKeywords(w, m.Flags); err != nil {
			return err
		}
	}
	if flags.Silent {
		return nil
	}
	for _, i := range idx {
		m := sel.msgs[i]
		if !touched[m.UID] {
			continue
		}
		rw := w.CreateMessage(uint32(i + 1))
		rw.WriteUID(imap.UID(m.UID))
		rw.WriteFlags(sel.flagsOf(&m))
		if err := rw.Close(); err != nil {
			return err
		}
	}
	return nil
}
