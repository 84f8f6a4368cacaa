package web

import (
	"context"

	"github.com/postern/postern/internal/mailstore"
)

// QuotaReader reads a member's mail storage; *sqlstore.Mail implements it.
type QuotaReader interface {
	Quota(ctx context.Context, memberID int64) (mailstore.Quota, error)
}

// storageView is the member's mail storage on the Security page.
type storageView struct {
	Used, Limit int64 // octets; Limit 0: none
	UsedText    string
	LimitText   string
	Percent     int
	High        int64 // where the meter turns to a warning: 90% of the limit
	Full        bool  // nothing more fits: new mail is refused
}

// storage reads the member's usage and the limit that applies (the
// member's own, else the domain's, else the server's); ok is false when the
// server has no mail store to ask.
func (s *Server) storage(ctx context.Context, memberID int64) (used, limit int64, ok bool, err error) {
	if s.cfg.Mail == nil {
		return 0, 0, false, nil
	}
	q, err := s.cfg.Mail.Quota(ctx, memberID)
	if err != nil {
		return 0, 0, false, err
	}
	return q.Used, q.Limit(s.cfg.MailQuota), true, nil
}

func newStorageView(used, limit int64) *storageView {
	v := &storageView{Used: used, Limit: limit, UsedText: mailstore.FormatSize(used), LimitText: mailstore.FormatSize(limit)}
	if limit > 0 {
		v.Percent = int(min(100, used*100/limit))
		v.High = limit / 10 * 9
		v.Full = used >= limit
	}
	return v
}
