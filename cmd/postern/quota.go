package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/mailstore"
)

// Mail storage quotas: a member's own limit (user set --quota), the
// domain's default (domain set --quota), and serve's --mailbox-quota for
// members whose own setting and domain set none.

// parseQuota reads --quota: a size (0: no limit) or "default" (nil: the
// next level decides).
func parseQuota(v string) (*int64, error) {
	if strings.EqualFold(strings.TrimSpace(v), "default") {
		return nil, nil
	}
	n, err := mailstore.ParseSize(v)
	if err != nil {
		return nil, err
	}
	return &n, nil
}

// describeLimit says what a limit setting is: a size, none, or left to the next level.
func describeLimit(limit *int64, next string) string {
	switch {
	case limit == nil:
		return next
	case *limit == 0:
		return "no limit"
	}
	return mailstore.FormatSize(*limit)
}

// storageJSON is a member's mail storage in the CLI's JSON.
type storageJSON struct {
	// Quota is the member's own limit in octets (0: none); null: the
	// domain's default.
	Quota *int64 `json:"quota"`
	// StorageLimit is the limit from the member or the domain; null when
	// neither sets one and serve's --mailbox-quota applies.
	StorageLimit *int64 `json:"storage_limit"`
	StorageUsed  int64  `json:"storage_used"` // octets, every mailbox together
}

func toStorageJSON(q mailstore.Quota) storageJSON {
	j := storageJSON{Quota: q.Member, StorageUsed: q.Used, StorageLimit: q.Domain}
	if q.Member != nil {
		j.StorageLimit = q.Member
	}
	return j
}

// memberWithStorage is a member in the JSON of the user commands.
type memberWithStorage struct {
	memberJSON
	storageJSON
}

func (a *app) memberStorage(ctx context.Context, m account.Member) (memberWithStorage, mailstore.Quota, error) {
	q, err := a.db.Mail().Quota(ctx, m.ID)
	if err != nil {
		return memberWithStorage{}, q, err
	}
	return memberWithStorage{toMemberJSON(m, a.cutoff), toStorageJSON(q)}, q, nil
}

// storageText is a member's storage for a person: "1.2 MiB of 2 GiB
// (the domain's default)".
func storageText(q mailstore.Quota) string {
	used := mailstore.FormatSize(q.Used)
	switch {
	case q.Member != nil && *q.Member == 0:
		return used + ", no limit (the member's own)"
	case q.Member != nil:
		return used + " of " + mailstore.FormatSize(*q.Member) + " (the member's own limit)"
	case q.Domain != nil && *q.Domain == 0:
		return used + ", no limit (the domain's default)"
	case q.Domain != nil:
		return used + " of " + mailstore.FormatSize(*q.Domain) + " (the domain's default)"
	}
	return used + " (the server's --mailbox-quota applies)"
}

// setMemberQuota is user set --quota.
func (a *app) setMemberQuota(ctx context.Context, svc *account.Service, m account.Member, v string) error {
	limit, err := parseQuota(v)
	if err != nil {
		return usagef(findCmd("user set"), "--quota must be a size such as 500MiB or 2GiB, 0 for no limit, or default, not %q", v)
	}
	return svc.SetMailQuota(ctx, m, limit, cliActor)
}

func domainSet(a *app, fs *flag.FlagSet) runFunc {
	quota := fs.String("quota", "", "default mail storage limit of the domain's members who set none: a size such as 500MiB or 2GiB, 0 for no limit, or default (serve's --mailbox-quota)")
	asJSON := fs.Bool("json", false, `print {"name","created_at","policy","quota"}`)
	return func(ctx context.Context, a *app, args []string) error {
		if *quota == "" {
			return usagef(findCmd("domain set"), "give --quota")
		}
		limit, err := parseQuota(*quota)
		if err != nil {
			return usagef(findCmd("domain set"), "--quota must be a size such as 500MiB or 2GiB, 0 for no limit, or default, not %q", *quota)
		}
		svc, err := a.open(ctx)
		if err != nil {
			return err
		}
		d, err := svc.SetDomainMailQuota(ctx, args[0], limit, cliActor)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(a.stdout, toDomainJSON(d, a.cutoff))
		}
		_, err = fmt.Fprintf(a.stdout, "Members of %s who set no quota of their own now have: %s.\n", d.Name, describeLimit(limit, "the server's --mailbox-quota"))
		return err
	}
}
