package sqlstore

import (
	"context"
	"fmt"

	"github.com/postern/postern/internal/account"
)

// SetMailQuota sets the member's own storage limit in octets (0: none);
// nil leaves the member to the domain's default.
func (db *DB) SetMailQuota(ctx context.Context, memberID int64, limit *int64, fx ...account.Effects) error {
	return wrap("set quota", db.execWithEffects(ctx, memberMissing(memberID), fx,
		`UPDATE members SET mail_quota = ? WHERE id = ?`, quotaArg(limit), memberID))
}

// SetDomainMailQuota sets the default storage limit of the domain's
// members in octets (0: none); nil leaves them to the server's.
func (db *DB) SetDomainMailQuota(ctx context.Context, domainID int64, limit *int64, fx ...account.Effects) error {
	return wrap("set domain quota", db.execWithEffects(ctx, fmt.Errorf("domain %d: %w", domainID, account.ErrNotFound), fx,
		`UPDATE domains SET mail_quota = ? WHERE id = ?`, quotaArg(limit), domainID))
}

func quotaArg(limit *int64) any {
	if limit == nil {
		return nil
	}
	return *limit
}
