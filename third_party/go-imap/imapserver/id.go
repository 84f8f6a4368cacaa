package imapserver

import (
	"strings"

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

// SessionClientID is a Session told what the client says it is (ID, RFC
// 2971), to show it (a list of sessions, a login record); the fields are
// only what the client claims.
type SessionClientID interface {
	ClientID(id *imap.IDData)
}

// handleID answers ID (RFC 2971) in any state with Options.ID. The
// client's fields are checked against the RFC's bounds; a session that
// implements SessionClientID is given them, and no client gets another
// treatment for what it says it is.
func (c *Conn) handleID(dec *imapwire.Decoder) error {
	if c.server.options.ID == nil {
		return newClientBugError("ID is not supported")
	}
	if !dec.ExpectSP() {
		return dec.Err()
	}
	var n int
	var tooMany bool
	var client imap.IDData
	isList, err := dec.List(func() error {
		var field, value string
		if !dec.ExpectString(&field) || !dec.ExpectSP() || !dec.ExpectNString(&value) {
			return dec.Err()
		}
		n++
		if n > maxIDFields || len(field) > maxIDFieldLen || len(value) > maxIDValueLen {
			tooMany = true
		}
		switch strings.ToLower(field) {
		case "name":
			client.Name = value
		case "version":
			client.Version = value
		case "os":
			client.OS = value
		case "vendor":
			client.Vendor = value
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
	if s, ok := c.session.(SessionClientID); ok && isList {
		s.ClientID(&client)
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
