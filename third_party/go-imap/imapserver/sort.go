package imapserver

import (
	"fmt"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/internal/imapwire"
)

// SessionSort is an IMAP session that supports SORT (RFC 5256).
type SessionSort interface {
	Session

	// Sort returns the numbers (sequence numbers or UIDs, by numKind) of
	// the messages matching criteria, in the order the keys give.
	Sort(numKind NumKind, keys []imap.SortCriterion, criteria *imap.SearchCriteria) ([]uint32, error)
}

// SessionThread is an IMAP session that supports THREAD (RFC 5256).
type SessionThread interface {
	Session

	// Thread returns the threads of the messages matching criteria.
	Thread(numKind NumKind, algorithm imap.ThreadAlgorithm, criteria *imap.SearchCriteria) ([]imap.Thread, error)
}

var sortKeys = map[string]imap.SortKey{
	"ARRIVAL": imap.SortKeyArrival, "CC": imap.SortKeyCc, "DATE": imap.SortKeyDate, "FROM": imap.SortKeyFrom,
	"SIZE": imap.SortKeySize, "SUBJECT": imap.SortKeySubject, "TO": imap.SortKeyTo,
	"DISPLAYFROM": imap.SortKeyDisplayFrom, "DISPLAYTO": imap.SortKeyDisplayTo,
}

// handleSort is SORT and UID SORT: sort-criteria SP search-charset
// 1*(SP search-key) (RFC 5256 §5).
func (c *Conn) handleSort(dec *imapwire.Decoder, numKind NumKind) error {
	var keys []imap.SortCriterion
	if !dec.ExpectSP() {
		return dec.Err()
	}
	err := dec.ExpectList(func() error {
		var k imap.SortCriterion
		var atom string
		if !dec.ExpectAtom(&atom) {
			return dec.Err()
		}
		if strings.EqualFold(atom, "REVERSE") {
			k.Reverse = true
			if !dec.ExpectSP() || !dec.ExpectAtom(&atom) {
				return dec.Err()
			}
		}
		key, ok := sortKeys[strings.ToUpper(atom)]
		if !ok {
			return newClientBugError("Unknown SORT key")
		}
		k.Key = key
		keys = append(keys, k)
		return nil
	})
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		return newClientBugError("SORT needs at least one key")
	}
	criteria, err := readCharsetAndCriteria(dec)
	if err != nil {
		return err
	}
	if err := c.checkState(imap.ConnStateSelected); err != nil {
		return err
	}
	session, ok := c.session.(SessionSort)
	if !ok {
		return newClientBugError("SORT is not supported")
	}
	nums, err := session.Sort(numKind, keys, criteria)
	if err != nil {
		return err
	}
	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("SORT")
	for _, n := range nums {
		enc.SP().Number(n)
	}
	return enc.CRLF()
}

// handleThread is THREAD and UID THREAD: thread-alg SP search-charset
// 1*(SP search-key) (RFC 5256 §5).
func (c *Conn) handleThread(dec *imapwire.Decoder, numKind NumKind) error {
	var atom string
	if !dec.ExpectSP() || !dec.ExpectAtom(&atom) {
		return dec.Err()
	}
	var alg imap.ThreadAlgorithm
	switch strings.ToUpper(atom) {
	case string(imap.ThreadOrderedSubject):
		alg = imap.ThreadOrderedSubject
	case string(imap.ThreadReferences):
		alg = imap.ThreadReferences
	default:
		return newClientBugError("Unknown THREAD algorithm")
	}
	criteria, err := readCharsetAndCriteria(dec)
	if err != nil {
		return err
	}
	if err := c.checkState(imap.ConnStateSelected); err != nil {
		return err
	}
	session, ok := c.session.(SessionThread)
	if !ok {
		return newClientBugError("THREAD is not supported")
	}
	threads, err := session.Thread(numKind, alg, criteria)
	if err != nil {
		return err
	}
	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("THREAD")
	if len(threads) > 0 {
		enc.SP()
	}
	for i := range threads {
		writeThread(enc.Encoder, &threads[i])
	}
	return enc.CRLF()
}

// readCharsetAndCriteria reads SORT's and THREAD's SP search-charset
// 1*(SP search-key) and the CRLF. The charset is required there.
func readCharsetAndCriteria(dec *imapwire.Decoder) (*imap.SearchCriteria, error) {
	var charset string
	if !dec.ExpectSP() || !dec.ExpectAString(&charset) {
		return nil, dec.Err()
	}
	var criteria imap.SearchCriteria
	n := 0
	for dec.SP() {
		if err := readSearchKey(&criteria, dec, 0); err != nil {
			return nil, fmt.Errorf("in search-key: %w", err)
		}
		n++
	}
	if n == 0 {
		return nil, newClientBugError("Missing search criteria")
	}
	if !dec.ExpectCRLF() {
		return nil, dec.Err()
	}
	switch strings.ToUpper(charset) {
	case "US-ASCII", "UTF-8":
	default:
		return nil, &imap.Error{
			Type: imap.StatusResponseTypeNo,
			Code: imap.ResponseCodeBadCharset,
			Text: "Only US-ASCII and UTF-8 are supported charsets",
		}
	}
	return &criteria, nil
}

// writeThread writes a thread-list: "(" followed by the chain of single
// children as thread-members, then the children of the first node with
// several as thread-nested, ")" (RFC 5256 §5). A dummy writes no number.
func writeThread(enc *imapwire.Encoder, t *imap.Thread) {
	enc.Special('(')
	first := true
	for {
		if t.Num != 0 {
			if !first {
				enc.SP()
			}
			enc.Number(t.Num)
			first = false
		}
		if len(t.Children) != 1 {
			break
		}
		t = &t.Children[0]
	}
	if len(t.Children) > 1 {
		if !first {
			enc.SP()
		}
		for i := range t.Children {
			writeThread(enc, &t.Children[i])
		}
	}
	enc.Special(')')
}
