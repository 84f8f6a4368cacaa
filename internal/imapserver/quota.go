package imapserver

import (
	"github.com/emersion/go-imap/v2"
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

// AppendFits refuses an APPEND over quota before its literal is sent.
func (s *session) AppendFits(_ string, size int64) error {
	err := s.fitsQuota(size)
	s.fitted, s.fittedOK = size, err == nil
	return err
}

// fitsAppend is fitsQuota for APPEND once size octets are on their way:
// answered without a second read of the store when AppendFits has just
// found room for them (a synchronizing literal), the check being one
// without reservation either way.
func (s *session) fitsAppend(size int64) error {
	checked := s.fittedOK && s.fitted == size
	s.fittedOK = false
	if checked {
		return nil
	}
	return s.fitsQuota(size)
}
