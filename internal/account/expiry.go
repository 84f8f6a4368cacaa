package account

import (
	"context"
	"fmt"
	"time"
)

// ExpiryWarning is how long before an unused app password expires its
// member is told.
const ExpiryWarning = 7 * 24 * time.Hour

// UnusedAppPassword is an app password unused since LastUse (its last use,
// or its creation when never used), with its member.
type UnusedAppPassword struct {
	AppPassword
	Member  Member
	LastUse time.Time
	Warned  bool // the member was told since LastUse
}

// ExpiryStore finds and expires unused app passwords; *sqlstore.DB
// implements it.
type ExpiryStore interface {
	// UnusedAppPasswords lists the app passwords of the domain's members
	// unused since before since.
	UnusedAppPasswords(ctx context.Context, domainID int64, since time.Time) ([]UnusedAppPassword, error)
	// WarnAppPasswordExpiry records at at that the member was told, and
	// writes fx, unless the password was used or warned about after
	// unusedSince or is gone; told says whether it did. Atomic: nodes
	// racing tell once.
	WarnAppPasswordExpiry(ctx context.Context, id string, unusedSince, at time.Time, fx Effects) (told bool, err error)
	// ExpireAppPassword deletes the app password, and writes fx, unless it
	// was used after unusedSince or is gone.
	ExpireAppPassword(ctx context.Context, memberID int64, id string, unusedSince time.Time, fx Effects) (deleted bool, err error)
}

// ExpiryResult counts what ExpireAppPasswords did.
type ExpiryResult struct{ Warned, Expired int }

// ExpireAppPasswords applies every domain's auto-expiry at now: app
// passwords unused for the domain's ExpireUnusedDays are deleted (their
// sessions closed, the member told), and those a week from it are warned
// about, once. It is safe to run on several nodes at once: each change is
// conditional, so a password is warned about and deleted once.
func (s *Service) ExpireAppPasswords(ctx context.Context, now time.Time) (ExpiryResult, error) {
	var res ExpiryResult
	domains, err := s.store.Domains(ctx)
	if err != nil {
		return res, err
	}
	for _, d := range domains {
		days := d.Security.ExpireUnusedDays
		if days <= 0 {
			continue
		}
		limit := time.Duration(days) * 24 * time.Hour
		expireBefore := now.Add(-limit)
		list, err := s.store.UnusedAppPasswords(ctx, d.ID, now.Add(-max(limit-ExpiryWarning, 0)))
		if err != nil {
			return res, err
		}
		for _, p := range list {
			if p.LastUse.Before(expireBefore) {
				fx := Effects{
					Events:   []Event{{Kind: EventAppPasswordDeleted, MemberID: p.Member.ID, AppPasswordID: p.ID}},
					Messages: []Message{s.expiredMessage(p, days, now)},
					Audit: []AuditEntry{s.Audit(AuditAppPasswordExpired, p.Member, Actor{Via: "system"},
						fmt.Sprintf("“%s” (%s), unused for %d days", p.Name, p.ID, days))},
				}
				ok, err := s.store.ExpireAppPassword(ctx, p.Member.ID, p.ID, expireBefore, fx)
				if err != nil {
					return res, err
				}
				if ok {
					res.Expired++
					s.Log.Info("unused app password expired", "member", p.Member.Email, "id", p.ID, "days", days)
				}
				continue
			}
			if p.Warned {
				continue
			}
			fx := Effects{Messages: []Message{s.expiringMessage(p, p.LastUse.Add(limit), days, now)}}
			ok, err := s.store.WarnAppPasswordExpiry(ctx, p.ID, p.LastUse, now, fx)
			if err != nil {
				return res, err
			}
			if ok {
				res.Warned++
			}
		}
	}
	return res, nil
}

func (s *Service) expiringMessage(p UnusedAppPassword, at time.Time, days int, now time.Time) Message {
	m := p.Member
	body := fmt.Sprintf(`The third-party app password "%s" of your account %s has not been used for
a while. Your domain deletes app passwords unused for %d days: this one will be deleted on %s.

Using it once (an app logging in with it) keeps it. If you no longer need it, there is
nothing to do. Your app passwords: %s
`, p.Name, m.Email, days, at.UTC().Format(time.RFC1123), s.link("/security/app-passwords"))
	return s.message(m, MsgAppPasswordExpiring, "A third-party app password will be deleted soon: "+p.Name, body, now,
		params(m, Actor{}, now, "app", p.Name, "days", fmt.Sprint(days), "at", at.UTC().Format(time.RFC3339),
			"link_apps", s.link("/security/app-passwords")))
}

func (s *Service) expiredMessage(p UnusedAppPassword, days int, now time.Time) Message {
	m := p.Member
	body := fmt.Sprintf(`The third-party app password "%s" of your account %s was deleted: it had not
been used for %d days, the limit your domain sets.

An app that still needs it must get a new app password: %s
`, p.Name, m.Email, days, s.link("/security/app-passwords"))
	return s.message(m, MsgAppPasswordExpired, "An unused third-party app password was deleted: "+p.Name, body, now,
		params(m, Actor{}, now, "app", p.Name, "days", fmt.Sprint(days), "link_apps", s.link("/security/app-passwords")))
}
