package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/store/sqlstore"
)

// expiryEvery is how often serve applies the domains' app password expiry:
// expiry is counted in days.
const expiryEvery = time.Hour

// setupExpiry runs the app password expiry at start and every hour, on one
// PostgreSQL node at a time.
func (s *server) setupExpiry() {
	s.tasks = append(s.tasks, task{"app-password-expiry", func(ctx context.Context) error {
		t := time.NewTicker(expiryEvery)
		defer t.Stop()
		for {
			if _, err := runExpiry(ctx, s.db, s.svc, time.Now(), s.log); err != nil && ctx.Err() == nil {
				s.log.Warn("expiring unused app passwords", "err", err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.C:
			}
		}
	}})
}

// runExpiry applies the expiry at now unless another node is doing it.
func runExpiry(ctx context.Context, db *sqlstore.DB, svc *account.Service, now time.Time, log *slog.Logger) (account.ExpiryResult, error) {
	var res account.ExpiryResult
	ran, err := db.Exclusive(ctx, sqlstore.ExpiryLock, func(ctx context.Context) error {
		var err error
		res, err = svc.ExpireAppPasswords(ctx, now)
		return err
	})
	if ran && err == nil && (res.Warned > 0 || res.Expired > 0) {
		log.Info("unused app passwords", "warned", res.Warned, "expired", res.Expired)
	}
	return res, err
}

func apppassExpire(a *app, fs *flag.FlagSet) runFunc {
	at := fs.String("at", "", "apply the expiry as at this time (RFC 3339, or YYYY-MM-DD in Asia/Tokyo) instead of now")
	asJSON := fs.Bool("json", false, `print {"warned","expired"}`)
	return func(ctx context.Context, a *app, args []string) error {
		now := time.Now()
		if *at != "" {
			t, err := time.Parse(time.RFC3339, *at)
			if err != nil {
				if t, err = parseDate(*at); err != nil {
					return usagef(findCmd("apppass expire"), "--at must be an RFC 3339 time or YYYY-MM-DD, not %q", *at)
				}
			}
			now = t
		}
		svc, err := a.open(ctx)
		if err != nil {
			return err
		}
		res, err := runExpiry(ctx, a.db, svc, now, a.logger())
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(a.stdout, map[string]int{"warned": res.Warned, "expired": res.Expired})
		}
		_, err = fmt.Fprintf(a.stdout, "Warned about %d app passwords; deleted %d unused ones.\n", res.Warned, res.Expired)
		return err
	}
}
