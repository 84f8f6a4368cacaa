package imapserver

import (
	"fmt"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/internal/imapwire"
)

// CONDSTORE and QRESYNC (RFC 7162), server side (Postern). The session
// does the work (SessionCondStore); this file parses the syntax, writes the
// responses and keeps track of what the client enabled.

func errCondStoreSyntax(what string) error {
	return newClientBugError(what + " requires CONDSTORE, which this server does not offer")
}

// enableCondStore records that the client used a CONDSTORE enabling command
// (RFC 7162 §3.1); the first time, with a mailbox selected, it tells the
// client the mailbox's HIGHESTMODSEQ, which it has not been told yet.
func (c *Conn) enableCondStore() error {
	c.mutex.Lock()
	had := c.enabled.Has(imap.CapCondStore)
	c.enabled[imap.CapCondStore] = struct{}{}
	c.mutex.Unlock()
	if had {
		return nil
	}
	return c.condStoreEnabledSelected()
}

// condStoreEnabledSelected writes `* OK [HIGHESTMODSEQ n]` when a mailbox
// is selected: CONDSTORE was just enabled.
func (c *Conn) condStoreEnabledSelected() error {
	if c.state != imap.ConnStateSelected {
		return nil
	}
	sess, ok := c.session.(SessionCondStore)
	if !ok {
		return nil
	}
	n, err := sess.HighestModSeq()
	if err != nil {
		return err
	}
	return c.writeHighestModSeq(n)
}

func (c *Conn) writeHighestModSeq(n uint64) error {
	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("OK").SP()
	enc.Special('[').Atom("HIGHESTMODSEQ").SP().ModSeq(n).Special(']')
	enc.SP().Text("Highest")
	return enc.CRLF()
}

// writeVanished writes `* VANISHED [(EARLIER) ]uids` (RFC 7162 §3.2.10).
func (c *Conn) writeVanished(earlier bool, uids imap.UIDSet) error {
	if len(uids) == 0 {
		return nil
	}
	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("VANISHED").SP()
	if earlier {
		enc.Special('(').Atom("EARLIER").Special(')').SP()
	}
	enc.NumSet(uids)
	return enc.CRLF()
}

// readSelectParams reads SELECT's and EXAMINE's optional parameters
// (RFC 4466 §2.1): CONDSTORE and QRESYNC (RFC 7162 §3.1.8, §3.2.5).
func (c *Conn) readSelectParams(dec *imapwire.Decoder, options *imap.SelectOptions) error {
	return dec.ExpectList(func() error {
		var name string
		if !dec.ExpectAtom(&name) {
			return dec.Err()
		}
		switch strings.ToUpper(name) {
		case "CONDSTORE":
			if !c.server.options.caps().Has(imap.CapCondStore) {
				return errCondStoreSyntax("SELECT (CONDSTORE)")
			}
			options.CondStore = true
			return nil
		case "QRESYNC":
			if !dec.ExpectSP() {
				return dec.Err()
			}
			q, err := readQResyncParam(dec)
			if err != nil {
				return err
			}
			options.QResync = q
			return nil
		}
		return newClientBugError("Unknown SELECT parameter")
	})
}

// readQResyncParam reads "(" uidvalidity SP mod-sequence-value [SP
// known-uids] [SP seq-match-data] ")".
func readQResyncParam(dec *imapwire.Decoder) (*imap.SelectQResync, error) {
	var q imap.SelectQResync
	item := 0
	err := dec.ExpectList(func() error {
		defer func() { item++ }()
		switch item {
		case 0:
			if !dec.ExpectNumber(&q.UIDValidity) {
				return dec.Err()
			}
			if q.UIDValidity == 0 {
				return newClientBugError("QRESYNC: UIDVALIDITY must not be 0")
			}
		case 1:
			if !dec.ExpectModSeq(&q.ModSeq) {
				return dec.Err()
			}
		case 2, 3:
			isList, err := dec.List(func() error {
				if q.SeqMatch != nil {
					return newClientBugError("QRESYNC: one sequence match list at most")
				}
				var m imap.SelectSeqMatch
				var seqs imap.NumSet
				if !dec.ExpectNumSet(imapwire.NumKindSeq, &seqs) || !dec.ExpectSP() || !dec.ExpectUIDSet(&m.UIDs) {
					return dec.Err()
				}
				m.SeqNums, _ = seqs.(imap.SeqSet)
				if m.SeqNums == nil {
					return newClientBugError("QRESYNC: $ is not a sequence set")
				}
				q.SeqMatch = &m
				return nil
			})
			if err != nil {
				return err
			}
			if isList {
				item = 4 // nothing may follow the sequence match data
				return nil
			}
			if item == 3 || q.KnownUIDs != nil {
				return newClientBugError("QRESYNC: known UIDs come once, before the sequence match data")
			}
			if !dec.ExpectUIDSet(&q.KnownUIDs) {
				return dec.Err()
			}
		default:
			return newClientBugError("QRESYNC: too many parameters")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if item < 2 {
		return nil, newClientBugError("QRESYNC needs a UIDVALIDITY and a mod-sequence")
	}
	return &q, nil
}

// checkSelectParams refuses what the client may not ask for: QRESYNC
// before ENABLE QRESYNC (RFC 7162 §3.2.5).
func (c *Conn) checkSelectParams(options *imap.SelectOptions) error {
	if options.QResync != nil && !c.Enabled(imap.CapQResync) {
		return newClientBugError("SELECT (QRESYNC) needs ENABLE QRESYNC first")
	}
	if options.CondStore || options.QResync != nil {
		c.mutex.Lock()
		c.enabled[imap.CapCondStore] = struct{}{}
		c.mutex.Unlock()
	}
	return nil
}

// resyncSelected sends what changed since the client's QRESYNC data: the
// UIDs expunged since (VANISHED (EARLIER)) and the messages changed since,
// as UID FETCH known-uids (FLAGS) (CHANGEDSINCE modseq VANISHED) would
// (RFC 7162 §3.2.5). Nothing when the UIDVALIDITY is not the mailbox's.
func (c *Conn) resyncSelected(q *imap.SelectQResync, data *imap.SelectData) error {
	if q == nil || q.UIDValidity != data.UIDValidity {
		return nil
	}
	var known imap.NumSet = q.KnownUIDs
	if q.KnownUIDs == nil {
		known = imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}
	}
	w := &FetchWriter{conn: c}
	options := &imap.FetchOptions{UID: true, Flags: true, ModSeq: true, ChangedSince: q.ModSeq, Vanished: true}
	return c.session.Fetch(w, known, options)
}

// readFetchModifiers reads FETCH's modifiers (RFC 4466 §2.4): CHANGEDSINCE
// and VANISHED (RFC 7162 §3.1.4.1, §3.2.6).
func (c *Conn) readFetchModifiers(dec *imapwire.Decoder, numKind NumKind, options *imap.FetchOptions) error {
	changedSince := false
	err := dec.ExpectList(func() error {
		var name string
		if !dec.ExpectAtom(&name) {
			return dec.Err()
		}
		switch strings.ToUpper(name) {
		case "CHANGEDSINCE":
			if !c.server.options.caps().Has(imap.CapCondStore) {
				return errCondStoreSyntax("FETCH (CHANGEDSINCE)")
			}
			if !dec.ExpectSP() || !dec.ExpectModSeq(&options.ChangedSince) {
				return dec.Err()
			}
			changedSince = true
			options.ModSeq = true // RFC 7162 §3.1.4.1
		case "VANISHED":
			options.Vanished = true
		default:
			return newClientBugError("Unknown FETCH modifier")
		}
		return nil
	})
	if err != nil {
		return err
	}
	if options.Vanished {
		switch {
		case numKind != NumKindUID:
			return newClientBugError("VANISHED is for UID FETCH only")
		case !c.Enabled(imap.CapQResync):
			return newClientBugError("FETCH (VANISHED) needs ENABLE QRESYNC first")
		case !changedSince:
			return newClientBugError("VANISHED needs CHANGEDSINCE")
		}
	}
	return nil
}

// readStoreModifiers reads STORE's modifiers: UNCHANGEDSINCE (RFC 7162
// §3.1.3).
func (c *Conn) readStoreModifiers(dec *imapwire.Decoder, options *imap.StoreOptions) (isList bool, err error) {
	seen := false
	return dec.List(func() error {
		var name string
		if !dec.ExpectAtom(&name) {
			return dec.Err()
		}
		if !strings.EqualFold(name, "UNCHANGEDSINCE") || seen {
			return newClientBugError("Unknown STORE modifier")
		}
		if !c.server.options.caps().Has(imap.CapCondStore) {
			return errCondStoreSyntax("STORE (UNCHANGEDSINCE)")
		}
		seen = true
		options.Conditional = true
		if !dec.ExpectSP() || !dec.ExpectModSeq(&options.UnchangedSince) {
			return dec.Err()
		}
		return nil
	})
}

// readSearchModSeq reads the MODSEQ search key after its name (RFC 7162
// §3.1.5): [entry-name SP entry-type-req SP] mod-sequence-valzer.
func readSearchModSeq(dec *imapwire.Decoder, criteria *imap.SearchCriteria) error {
	var ms imap.SearchCriteriaModSeq
	if !dec.ExpectSP() {
		return dec.Err()
	}
	if !dec.ModSeq(&ms.ModSeq) {
		var typ string
		if !dec.ExpectAString(&ms.MetadataName) || !dec.ExpectSP() || !dec.ExpectAtom(&typ) || !dec.ExpectSP() || !dec.ExpectModSeq(&ms.ModSeq) {
			return dec.Err()
		}
		ms.MetadataType = imap.SearchCriteriaMetadataType(strings.ToLower(typ))
		switch ms.MetadataType {
		case imap.SearchCriteriaMetadataAll, imap.SearchCriteriaMetadataPrivate, imap.SearchCriteriaMetadataShared:
		default:
			return newClientBugError("SEARCH MODSEQ: the entry type is priv, shared or all")
		}
	}
	// Several MODSEQ keys are ANDed: the highest is the one that counts.
	if criteria.ModSeq == nil || ms.ModSeq > criteria.ModSeq.ModSeq {
		criteria.ModSeq = &ms
	}
	return nil
}

// searchUsesModSeq reports whether criteria has a MODSEQ key anywhere: the
// SEARCH is then CONDSTORE enabling, and its result carries MODSEQ.
func searchUsesModSeq(criteria *imap.SearchCriteria) bool {
	if criteria.ModSeq != nil {
		return true
	}
	for i := range criteria.Not {
		if searchUsesModSeq(&criteria.Not[i]) {
			return true
		}
	}
	for i := range criteria.Or {
		if searchUsesModSeq(&criteria.Or[i][0]) || searchUsesModSeq(&criteria.Or[i][1]) {
			return true
		}
	}
	return false
}

// WriteModSeq writes the message's mod-sequence: MODSEQ (n).
func (w *FetchResponseWriter) WriteModSeq(modSeq uint64) {
	w.writeItemSep()
	w.enc.Atom("MODSEQ").SP().Special('(').ModSeq(modSeq).Special(')')
}

// WriteVanished writes `* VANISHED (EARLIER) uids`: the UIDs of a UID FETCH
// (CHANGEDSINCE n VANISHED) or SELECT (QRESYNC ...) expunged since n. It
// must not be called while a FetchResponseWriter is open.
func (cmd *FetchWriter) WriteVanished(uids imap.UIDSet) error {
	return cmd.conn.writeVanished(true, uids)
}

// SetModified records the messages a STORE (UNCHANGEDSINCE n) left alone
// because they changed since n: the command completes with
// OK [MODIFIED set] (RFC 7162 §3.1.3). set holds sequence numbers for STORE
// and UIDs for UID STORE.
func (cmd *FetchWriter) SetModified(set imap.NumSet) {
	cmd.modified = set
}

// WriteVanished reports expunged messages by UID, for a client that enabled
// QRESYNC, instead of WriteExpunge (RFC 7162 §3.2.10).
func (w *ExpungeWriter) WriteVanished(uids imap.UIDSet) error {
	if w.conn == nil {
		return nil
	}
	return w.conn.writeVanished(false, uids)
}

// WriteVanished is ExpungeWriter.WriteVanished for MOVE.
func (w *MoveWriter) WriteVanished(uids imap.UIDSet) error {
	return w.conn.writeVanished(false, uids)
}

// WriteVanished is ExpungeWriter.WriteVanished for unsolicited updates.
func (w *UpdateWriter) WriteVanished(uids imap.UIDSet) error {
	if !w.allowExpunge {
		return fmt.Errorf("imapserver: VANISHED updates are not allowed in this context")
	}
	return w.conn.writeVanished(false, uids)
}

// WriteMessageFlagsModSeq is WriteMessageFlags with the message's
// mod-sequence: a client that enabled CONDSTORE gets MODSEQ in every
// FETCH that reports a flag change (RFC 7162 §3.1.2, §3.2.4).
func (w *UpdateWriter) WriteMessageFlagsModSeq(seqNum uint32, uid imap.UID, flags []imap.Flag, modSeq uint64) error {
	fetchWriter := &FetchWriter{conn: w.conn}
	respWriter := fetchWriter.CreateMessage(seqNum)
	if uid != 0 {
		respWriter.WriteUID(uid)
	}
	respWriter.WriteFlags(flags)
	if modSeq != 0 && w.conn.Enabled(imap.CapCondStore) {
		respWriter.WriteModSeq(modSeq)
	}
	return respWriter.Close()
}

// writeStoreDone ends a STORE: OK, with [MODIFIED set] when some messages
// failed UNCHANGEDSINCE.
func (c *Conn) writeStoreDone(tag, name string, modified imap.NumSet) error {
	if err := c.poll(name); err != nil {
		return err
	}
	resp := &imap.StatusResponse{Type: imap.StatusResponseTypeOK, Text: name + " completed"}
	if modified != nil && !isNumSetEmpty(modified) {
		resp.Code = imap.ResponseCode("MODIFIED " + modified.String())
		resp.Text = "Conditional STORE failed"
	}
	return c.writeStatusResp(tag, resp)
}
