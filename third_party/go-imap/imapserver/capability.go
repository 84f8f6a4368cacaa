package imapserver

import (
	"strconv"
	"sync"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/internal/imapwire"
)

func (c *Conn) handleCapability(dec *imapwire.Decoder) error {
	if !dec.ExpectCRLF() {
		return dec.Err()
	}

	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("CAPABILITY")
	var buf [capBuf]imap.Cap
	for _, c := range c.availableCaps(buf[:0]) {
		enc.SP().Atom(string(c))
	}
	return enc.CRLF()
}

// availableCaps returns the capabilities supported by the server.
//
// They depend on the connection state.
//
// Some extensions (e.g. SASL-IR, ENABLE) don't require backend support and
// thus are always enabled.
//
// Postern: they are appended to caps, a buffer of the caller's (of capBuf,
// on its stack), and the AUTH= and APPENDLIMIT= capabilities are made once
// (derivedCap): upstream built the list anew on the heap for the greeting
// and for every LOGIN reply, a tenth of a login's allocations.
func (c *Conn) availableCaps(caps []imap.Cap) []imap.Cap {
	available := c.server.options.caps()

	caps = addAvailableCaps(caps, available, []imap.Cap{
		imap.CapIMAP4rev2,
		imap.CapIMAP4rev1,
	})
	if len(caps) == 0 {
		panic("imapserver: must support at least IMAP4rev1 or IMAP4rev2")
	}

	if available.Has(imap.CapIMAP4rev1) {
		caps = append(caps, imap.CapSASLIR)
	}
	// Postern: LITERAL+ in every state, instead of LITERAL-, which it
	// includes (RFC 7888 §4); upstream listed LITERAL+ after login only,
	// beside LITERAL-.
	if available.Has(imap.CapLiteralPlus) {
		caps = append(caps, imap.CapLiteralPlus)
	} else if available.Has(imap.CapIMAP4rev1) {
		caps = append(caps, imap.CapLiteralMinus)
	}
	if c.canStartTLS() {
		caps = append(caps, imap.CapStartTLS)
	}
	if c.server.options.ID != nil {
		caps = append(caps, imap.CapID) // RFC 2971: in every state
	}
	if c.canAuth() {
		mechs := []string{"PLAIN"}
		if authSess, ok := c.session.(SessionSASL); ok {
			mechs = authSess.AuthenticateMechanisms()
		}
		for _, mech := range mechs {
			caps = append(caps, derivedCap("AUTH=", mech))
		}
	} else if c.state == imap.ConnStateNotAuthenticated {
		caps = append(caps, imap.CapLoginDisabled)
	}
	if c.state == imap.ConnStateAuthenticated || c.state == imap.ConnStateSelected {
		if available.Has(imap.CapIMAP4rev1) {
			// IMAP4rev1-specific capabilities that don't require backend
			// support and are not applicable to IMAP4rev2
			caps = append(caps, []imap.Cap{
				imap.CapUnselect,
				imap.CapEnable,
				imap.CapIdle,
				imap.CapUTF8Accept,
			}...)

			// IMAP4rev1-specific capabilities which require backend support
			// and are not applicable to IMAP4rev2
			caps = addAvailableCaps(caps, available, []imap.Cap{
				imap.CapNamespace,
				imap.CapUIDPlus,
				imap.CapESearch,
				imap.CapSearchRes,
				imap.CapListExtended,
				imap.CapListStatus,
				imap.CapMove,
				imap.CapStatusSize,
				imap.CapBinary,
				imap.CapChildren,
			})
		}

		// Capabilities which require backend support and apply to both
		// IMAP4rev1 and IMAP4rev2
		caps = addAvailableCaps(caps, available, []imap.Cap{
			imap.CapSpecialUse,
			imap.CapCreateSpecialUse,
			imap.CapMultiAppend,
			imap.CapUnauthenticate,
			imap.CapCondStore,
			imap.CapQResync,
			imap.CapPreview,
			imap.CapSort,
			imap.CapSortDisplay,
			imap.Cap("THREAD=" + imap.ThreadOrderedSubject),
			imap.Cap("THREAD=" + imap.ThreadReferences),
		})

		// RFC 9208: QUOTA and the resources the server counts.
		if _, ok := c.session.(SessionQuota); ok && available.Has(imap.CapQuota) {
			caps = append(caps, imap.CapQuota)
			caps = addAvailableCaps(caps, available, quotaResCaps)
		}

		if appendLimitSession, ok := c.session.(SessionAppendLimit); ok {
			limit := appendLimitSession.AppendLimit()
			caps = append(caps, derivedCap("APPENDLIMIT=", strconv.FormatUint(uint64(limit), 10)))
		} else {
			caps = addAvailableCaps(caps, available, []imap.Cap{imap.CapAppendLimit})
		}
	}
	return caps
}

func addAvailableCaps(caps []imap.Cap, available imap.CapSet, l []imap.Cap) []imap.Cap {
	for _, c := range l {
		if available.Has(c) {
			caps = append(caps, c)
		}
	}
	return caps
}

// capBuf is the size of the callers' buffers for availableCaps: more than
// any connection state lists.
const capBuf = 32

// derivedCaps holds the capabilities made of a prefix and a value (AUTH=PLAIN,
// APPENDLIMIT=...): a server has a handful, so each is made once (Postern).
var derivedCaps sync.Map // prefix+value -> imap.Cap

func derivedCap(prefix, value string) imap.Cap {
	if v, ok := derivedCaps.Load(struct{ p, v string }{prefix, value}); ok {
		return v.(imap.Cap)
	}
	c := imap.Cap(prefix + value)
	derivedCaps.Store(struct{ p, v string }{prefix, value}, c)
	return c
}
