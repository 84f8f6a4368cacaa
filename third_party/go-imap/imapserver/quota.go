package imapserver

import (
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/internal/imapwire"
)

// SessionQuota is a session with quotas (QUOTA, RFC 9208). The server
// advertises QUOTA and the QUOTA=RES-* capabilities of Options.Caps when the
// session implements it.
type SessionQuota interface {
	Session
	// GetQuotaRoot returns the quota roots of a mailbox with their
	// resources, for GETQUOTAROOT (RFC 9208 §4.1.2).
	GetQuotaRoot(mailbox string) ([]imap.QuotaData, error)
	// GetQuota returns a quota root's resources (GETQUOTA, §4.1.1).
	GetQuota(root string) (*imap.QuotaData, error)
	// SetQuota changes a quota root's limits (SETQUOTA, §4.1.3) and returns
	// the root as it now is; a server that does not let the client set
	// them returns an error, such as NO [NOPERM].
	SetQuota(root string, limits []imap.QuotaResource) (*imap.QuotaData, error)
	// AppendFits says whether messages of size octets in all (the one
	// announced and those before it in the same command, MULTIAPPEND) may be
	// appended to mailbox; APPEND asks it before the continuation request
	// of a synchronizing literal, so that a message over quota is refused
	// (NO [OVERQUOTA], RFC 9208 §4.2) before it is sent. Append must check
	// again: the check is advisory, and non-synchronizing literals skip it.
	// lit is the message's literal, not to be read here: Append (or
	// AppendReader.Next) hands the same reader over, by which the session
	// knows which message, of which command, it answered for.
	AppendFits(mailbox string, size int64, lit imap.LiteralReader) error
}

// quotaResCaps are the QUOTA=RES-* capabilities, in the order advertised.
var quotaResCaps = []imap.Cap{"QUOTA=RES-STORAGE", "QUOTA=RES-MESSAGE", "QUOTA=RES-MAILBOX", "QUOTA=RES-ANNOTATION-STORAGE"}

// quotaSession returns the session's SessionQuota once authenticated.
func (c *Conn) quotaSession() (SessionQuota, error) {
	if err := c.checkState(imap.ConnStateAuthenticated); err != nil {
		return nil, err
	}
	session, ok := c.session.(SessionQuota)
	if !ok || !c.server.options.caps().Has(imap.CapQuota) {
		return nil, newClientBugError("QUOTA is not supported")
	}
	return session, nil
}

func (c *Conn) handleGetQuotaRoot(dec *imapwire.Decoder) error {
	var mailbox string
	if !dec.ExpectSP() || !dec.ExpectMailbox(&mailbox) || !dec.ExpectCRLF() {
		return dec.Err()
	}
	session, err := c.quotaSession()
	if err != nil {
		return err
	}
	roots, err := session.GetQuotaRoot(mailbox)
	if err != nil {
		return err
	}
	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("QUOTAROOT").SP().Mailbox(mailbox)
	for _, r := range roots {
		enc.SP().String(r.Root)
	}
	if err := enc.CRLF(); err != nil {
		return err
	}
	for i := range roots {
		if err := writeQuota(enc, &roots[i]); err != nil {
			return err
		}
	}
	return nil
}

func (c *Conn) handleGetQuota(dec *imapwire.Decoder) error {
	var root string
	if !dec.ExpectSP() || !dec.ExpectAString(&root) || !dec.ExpectCRLF() {
		return dec.Err()
	}
	session, err := c.quotaSession()
	if err != nil {
		return err
	}
	data, err := session.GetQuota(root)
	if err != nil {
		return err
	}
	enc := newResponseEncoder(c)
	defer enc.end()
	return writeQuota(enc, data)
}

func (c *Conn) handleSetQuota(dec *imapwire.Decoder) error {
	var root string
	var limits []imap.QuotaResource
	if !dec.ExpectSP() || !dec.ExpectAString(&root) || !dec.ExpectSP() {
		return dec.Err()
	}
	err := dec.ExpectList(func() error {
		var name string
		var limit int64
		if !dec.ExpectAtom(&name) || !dec.ExpectSP() || !dec.ExpectNumber64(&limit) {
			return dec.Err()
		}
		limits = append(limits, imap.QuotaResource{Type: imap.QuotaResourceType(strings.ToUpper(name)), Limit: limit})
		return nil
	})
	if err != nil {
		return err
	}
	if !dec.ExpectCRLF() {
		return dec.Err()
	}
	session, err := c.quotaSession()
	if err != nil {
		return err
	}
	data, err := session.SetQuota(root, limits)
	if err != nil {
		return err
	}
	enc := newResponseEncoder(c)
	defer enc.end()
	return writeQuota(enc, data)
}

// writeQuota writes `* QUOTA root (NAME usage limit ...)`.
func writeQuota(enc *responseEncoder, data *imap.QuotaData) error {
	enc.Atom("*").SP().Atom("QUOTA").SP().String(data.Root).SP()
	enc.List(len(data.Resources), func(i int) {
		r := data.Resources[i]
		enc.Atom(string(r.Type)).SP().Number64(r.Usage).SP().Number64(r.Limit)
	})
	return enc.CRLF()
}
