package imapserver

import (
	"errors"

	"github.com/emersion/go-imap/v2"

	"github.com/postern/postern/internal/account"
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
	known bool // answered from s.known, without a read
}

// knownTarget is what the session learned of its last APPEND's mailbox:
// the mailbox called name, the member's usage as it left it and the limit
// then (0: none). It decides nothing: the store checks the mailbox and the
// quota again as it stores (Store.AppendIf), so that a message over the
// limit of now, or a mailbox renamed or deleted since, is refused there;
// what it spares is the read before the "+" of the next APPEND to the same
// mailbox, a round trip to the store, when the message fits by it.
type knownTarget struct {
	name        string
	mb          mailstore.Mailbox
	used, limit int64
}

// learn keeps what a read of the store found for an APPEND to name.
func (s *session) learn(name string, mb mailstore.Mailbox, found bool, q mailstore.Quota) {
	s.known = nil
	if found {
		s.known = &knownTarget{name: name, mb: mb, used: q.Used, limit: q.Limit(s.srv.cfg.Quota)}
	}
}

// AppendFits refuses an APPEND over quota before its literal is sent. The
// destination is read with the quota (Store.AppendTarget), in the same
// round trip, for the APPEND to store into once the literal has come;
// when the session's last APPEND went to the same mailbox and the message
// fits by what it learned, that is the answer, without a read (the store
// checks as it stores).
func (s *session) AppendFits(name string, size int64, lit imap.LiteralReader) error {
	s.fitted = appendCheck{}
	if k := s.known; k != nil && k.name == name && (k.limit == 0 || k.used+size <= k.limit) {
		s.fitted = appendCheck{lit: lit, size: size, mb: k.mb, found: true, known: true}
		return nil
	}
	mb, found, q, err := s.srv.cfg.Mail.AppendTarget(s.ctx, s.memberID, name)
	if err != nil {
		return s.storeErr("quota", err)
	}
	s.learn(name, mb, found, q)
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
// refusal. known says that the answer came from what an earlier APPEND
// learned (knownTarget), not from a read.
func (s *session) appendTarget(name string, lit imap.LiteralReader, size int64) (mb mailstore.Mailbox, known bool, err error) {
	c, ok := s.checked(lit, size)
	if k := s.known; !ok && k != nil && k.name == name {
		// A non-synchronizing literal, to the mailbox of the last APPEND:
		// what it learned stands for the read, AppendIf checking both.
		c, ok = appendCheck{mb: k.mb, found: true, known: true}, true
	}
	var q mailstore.Quota
	if !ok {
		if c.mb, c.found, q, err = s.srv.cfg.Mail.AppendTarget(s.ctx, s.memberID, name); err != nil {
			return c.mb, false, s.storeErr("append", err)
		}
		s.learn(name, c.mb, c.found, q)
	}
	if !c.found {
		// Mailbox tells why: no such mailbox, or a member whose default
		// mailboxes are made on first use.
		if c.mb, err = s.destination("append", name); err != nil {
			return c.mb, false, err
		}
	}
	if !ok && !q.Fits(size, s.srv.cfg.Quota) {
		return c.mb, false, errOverQuota
	}
	return c.mb, c.known, nil
}

// appendOne stores an APPEND's one message into mb, the mailbox called
// name that appendTarget returned, with the checks made again as it is
// stored (Store.AppendIf), and returns the mailbox it went to: looked up
// again when mb was deleted or renamed since.
func (s *session) appendOne(name string, mb mailstore.Mailbox, msg mailstore.NewMessage) (mailstore.Mailbox, uint32, error) {
	mail := s.srv.cfg.Mail
	uid, err := mail.AppendIf(s.ctx, s.memberID, mb.ID, name, s.srv.cfg.Quota, msg.Flags, msg.Date, msg.Body)
	if account.ErrorCode(err) == account.ENOTFOUND {
		s.known = nil
		if mb, err = s.destination("append", name); err != nil {
			return mb, 0, err
		}
		uid, err = mail.AppendIf(s.ctx, s.memberID, mb.ID, name, s.srv.cfg.Quota, msg.Flags, msg.Date, msg.Body)
	}
	if err != nil {
		s.known = nil
		if errors.Is(err, mailstore.ErrOverQuota) {
			return mb, 0, errOverQuota
		}
		return mb, 0, s.storeErr("append", err)
	}
	if k := s.known; k != nil && k.mb.ID == mb.ID {
		k.used += int64(len(msg.Body))
	}
	return mb, uid, nil
}

// fitsAppend is fitsQuota for a later message of a MULTIAPPEND, the
// command's size octets being on their way: answered without a second
// read of the store when AppendFits has just found room for them (a
// synchronizing literal), the check being one without reservation either
// way. known is appendTarget's.
func (s *session) fitsAppend(lit imap.LiteralReader, size int64) (known bool, err error) {
	if c, ok := s.checked(lit, size); ok {
		return c.known, nil
	}
	return false, s.fitsQuota(size)
}
