package imapserver

import (
	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/internal"
	"github.com/emersion/go-imap/v2/internal/imapwire"
)

func (c *Conn) handleEnable(dec *imapwire.Decoder) error {
	var requested []imap.Cap
	for dec.SP() {
		cap, err := internal.ExpectCap(dec)
		if err != nil {
			return err
		}
		requested = append(requested, cap)
	}
	if !dec.ExpectCRLF() {
		return dec.Err()
	}

	if err := c.checkState(imap.ConnStateAuthenticated); err != nil {
		return err
	}

	var enabled []imap.Cap
	for _, req := range requested {
		switch req {
		case imap.CapIMAP4rev2, imap.CapUTF8Accept:
			enabled = append(enabled, req)
		case imap.CapCondStore, imap.CapQResync:
			// Postern: RFC 7162 §3.2.3, QRESYNC implies CONDSTORE (CapSet.Has).
			if c.server.options.caps().Has(req) && !containsCap(enabled, req) {
				enabled = append(enabled, req)
			}
		}
	}

	c.mutex.Lock()
	hadCondStore := c.enabled.Has(imap.CapCondStore)
	for _, e := range enabled {
		c.enabled[e] = struct{}{}
	}
	nowCondStore := c.enabled.Has(imap.CapCondStore)
	c.mutex.Unlock()

	if err := c.writeEnabled(enabled); err != nil {
		return err
	}
	if !hadCondStore && nowCondStore {
		return c.condStoreEnabledSelected()
	}
	return nil
}

func (c *Conn) writeEnabled(enabled []imap.Cap) error {
	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("ENABLED")
	for _, c := range enabled {
		enc.SP().Atom(string(c))
	}
	return enc.CRLF()
}

func containsCap(l []imap.Cap, c imap.Cap) bool {
	for _, x := range l {
		if x == c {
			return true
		}
	}
	return false
}
