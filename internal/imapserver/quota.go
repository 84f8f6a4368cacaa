package imapserver

import (
	"github.com/emersion/go-imap/v2"

	"github.com/postern/postern/internal/mailstore"
)

// Quotas (RFC 9208). Every mailbox of a member is under one quota root,
// "", whose one resource is STORAGE: the octets of all the member's
// messages, shown in units of 1024 octets, against the limit that applies
// (the member's own, else the domain's, else Config.Quota). A member
// without a limit has the root with no resources. Members cannot set
// their own limits: SETQUOTA is refused and QUOTASET not advertised.

// quotaRoot is the name of the members' one quota root.
const quotaRoot = ""

var errOverQuota = &imap.Error{
	Type: imap.StatusResponseTypeNo,
	Code: imap.ResponseCodeOverQuota,
	Text: "Over quota: the mail storage limit is reached; delete messages and expunge them to make room.",
}

// fitsQuota refuses with NO [OVERQUOTA] when size more octets do not fit
// under the member's limit: APPEND and COPY check it before they store.
// As on SMTP, it checks without reserving: two commands at once may pass
// the limit by one message each.
func (s *session) fitsQuota(size int64) error {
	q, err := s.srv.cfg.Mail.Quota(s.ctx, s.memberID)
	if err != nil {
		return s.storeErr("quota", err)
	}
	if !q.Fits(size, s.srv.cfg.Quota) {
		return errOverQuota
	}
	return nil
}

// quota returns the root with the member's usage and limit.
func (s *session) quota() (*imap.QuotaData, error) {
	q, err := s.srv.cfg.Mail.Quota(s.ctx, s.memberID)
	if err != nil {
		return nil, s.storeErr("quota", err)
	}
	data := &imap.QuotaData{Root: quotaRoot}
	if limit := q.Limit(s.srv.cfg.Quota); limit > 0 {
		data.Resources = []imap.QuotaResource{{Type: imap.QuotaResourceStorage, Usage: q.Used / 1024, Limit: limit / 1024}}
	}
	return data, nil
}

// GetQuotaRoot is GETQUOTAROOT (RFC 9208 §4.1.2): every mailbox is under "".
func (s *session) GetQuotaRoot(mailbox string) ([]imap.QuotaData, error) {
	if _, err := s.srv.cfg.Mail.Mailbox(s.ctx, s.memberID, mailbox); err != nil {
		return nil, s.storeErr("getquotaroot", err)
	}
	data, err := s.quota()
	if err != nil {
		return nil, err
	}
	return []imap.QuotaData{*data}, nil
}

// GetQuota is GETQUOTA (RFC 9208 §4.1.1).
func (s *session) GetQuota(root string) (*imap.QuotaData, error) {
	if root != quotaRoot {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent, Text: `No such quota root; every mailbox is under "".`}
	}
	return s.quota()
}

// SetQuota is SETQUOTA (RFC 9208 §4.1.3): limits are the administrator's
// (postern user set --quota), never the member's.
func (s *session) SetQuota(string, []imap.QuotaResource) (*imap.QuotaData, error) {
	return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNoPerm, Text: "Quotas are set by the server's administrator."}
}

// appendCheck is what AppendFits found for one literal: room for size
// octets, and the destination mailbox (found false when it has none yet).
type appendCheck struct {
	lit   imap.LiteralReader // nil: nothing checked
	size  int64
	mb    mailstore.Mailbox
	found bool
}

// AppendFits refuses an APPEND over quota before its literal is sent. The
// destination is read with the quota (Store.AppendTarget), in the same
// round trip, for the APPEND to store into once the literal has come.
func (s *session) AppendFits(name string, size int64, lit imap.LiteralReader) error {
	s.fitted = appendCheck{}
	mb, found, q, err := s.srv.cfg.Mail.AppendTarget(s.ctx, s.memberID, name)
	if err != nil {
		return s.storeErr("quota", err)
	}
	if !q.Fits(size, s.srv.cfg.Quota) {
		return errOverQuota
	}
	s.fitted = appendCheck{lit: lit, size: size, mb: mb, found: found}
	return nil
}

// checked returns, and forgets, what AppendFits found for lit with size
// octets; ok is false when it checked something else (a non-synchronizing
// literal skips it).
func (s *session) checked(lit imap.LiteralReader, size int64) (c appendCheck, ok bool) {
	c, s.fitted = s.fitted, appendCheck{}
	return c, c.lit != nil && c.lit == lit && c.size == size
}

// appendTarget returns the mailbox an APPEND stores lit into, having
// checked that the command's size octets fit under the quota: from
// AppendFits when it has just read both, else with one read of the store.
// A missing mailbox is [TRYCREATE] (destination), before any quota
// refusal.
func (s *session) appendTarget(name string, lit imap.LiteralReader, size int64) (mailstore.Mailbox, error) {
	c, ok := s.checked(lit, size)
	var q mailstore.Quota
	if !ok {
		var err error
		if c.mb, c.found, q, err = s.srv.cfg.Mail.AppendTarget(s.ctx, s.memberID, name); err != nil {
			return c.mb, s.storeErr("append", err)
		}
	}
	if !c.found {
		// Mailbox tells why: no such mailbox, or a member whose default
		// mailboxes are made on first use.
		mb, err := s.destination("append", name)
		if err != nil {
			return mb, err
		}
		c.mb = mb
	}
	if !ok && !q.Fits(size, s.srv.cfg.Quota) {
		return c.mb, errOverQuota
	}
	return c.mb, nil
}

// fitsAppend is fitsQuota for a later message of a MULTIAPPEND, the
// command's size octets being on their way: answered without a second
// read of the store when AppendFits has just found room for them (a
// synchronizing literal), the check being one without reservation either
// way.
func (s *session) fitsAppend(lit imap.LiteralReader, size int64) error {
	if _, ok := s.checked(lit, size); ok {
		return nil
	}
	return s.fitsQuota(size)
}
