package imapserver

import (
	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/internal/imapwire"
)

// RFC 2971 §3.3's bounds on the client's parameters.
const (
	maxIDFields     = 30
	maxIDFieldLen   = 30
	maxIDValueLen   = 1024
	idFieldsPerLine = 2 // a field and its value
)

// handleID answers ID (RFC 2971) in any state with Options.ID. The
// client's fields are checked against the RFC's bounds and otherwise
// ignored: no client gets another treatment for what it says it is.
func (c *Conn) handleID(dec *imapwire.Decoder) error {
	if c.server.options.ID == nil {
		return newClientBugError("ID is not supported")
	}
	if !dec.ExpectSP() {
		return dec.Err()
	}
	var n int
	var tooMany bool
	isList, err := dec.List(func() error {
		var field, value string
		if !dec.ExpectString(&field) || !dec.ExpectSP() || !dec.ExpectNString(&value) {
			return dec.Err()
		}
		n++
		if n > maxIDFields || len(field) > maxIDFieldLen || len(value) > maxIDValueLen {
			tooMany = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !isList && !dec.ExpectNIL() {
		return dec.Err()
	}
	if !dec.ExpectCRLF() {
		return dec.Err()
	}
	if tooMany {
		return &imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeClientBug,
			Text: "ID allows at most 30 fields of 30 octets with values of 1024 (RFC 2971 §3.3)"}
	}

	id := c.server.options.ID
	var pairs []string
	for _, p := range [][2]string{{"name", id.Name}, {"version", id.Version}, {"os", id.OS}, {"os-version", id.OSVersion},
		{"vendor", id.Vendor}, {"support-url", id.SupportURL}, {"address", id.Address}, {"date", id.Date},
		{"command", id.Command}, {"arguments", id.Arguments}, {"environment", id.Environment}} {
		if p[1] != "" {
			pairs = append(pairs, p[0], p[1])
		}
	}
	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("ID").SP()
	if len(pairs) == 0 {
		enc.NIL()
	} else {
		enc.List(len(pairs)/idFieldsPerLine, func(i int) {
			enc.String(pairs[2*i]).SP().String(pairs[2*i+1])
		})
	}
	return enc.CRLF()
}
