package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/store/sqlstore"
)

// Sending caps of SMTP submission (account.SendLimits): per member and per
// app password, on messages and on recipients, each over a sliding hour and
// day. Defaults: account.DefaultSendLimits, argued there.

type sendLimitFlags struct {
	memberMessages, memberRecipients, appMessages, appRecipients string
}

func (f *sendLimitFlags) register(a *app, fs *flag.FlagSet) {
	d := account.DefaultSendLimits
	a.configVar(fs, &f.memberMessages, "send-limit-member-messages", formatCaps(d.Member.MessagesPerHour, d.Member.MessagesPerDay),
		"messages a member may submit per sliding hour and day, every app and the main password together: N/h,N/d; 0 or a window left out: no cap")
	a.configVar(fs, &f.memberRecipients, "send-limit-member-recipients", formatCaps(d.Member.RecipientsPerHour, d.Member.RecipientsPerDay),
		"envelope recipients a member may submit per sliding hour and day (an alias counts once): N/h,N/d")
	a.configVar(fs, &f.appMessages, "send-limit-app-password-messages", formatCaps(d.AppPassword.MessagesPerHour, d.AppPassword.MessagesPerDay),
		"messages one app password may submit per sliding hour and day: N/h,N/d")
	a.configVar(fs, &f.appRecipients, "send-limit-app-password-recipients", formatCaps(d.AppPassword.RecipientsPerHour, d.AppPassword.RecipientsPerDay),
		"envelope recipients one app password may submit per sliding hour and day: N/h,N/d")
}

// limits reads the four flags.
func (f *sendLimitFlags) limits() (account.SendLimits, error) {
	var l account.SendLimits
	for _, c := range []struct {
		name, value string
		hour, day   *int
	}{
		{"send-limit-member-messages", f.memberMessages, &l.Member.MessagesPerHour, &l.Member.MessagesPerDay},
		{"send-limit-member-recipients", f.memberRecipients, &l.Member.RecipientsPerHour, &l.Member.RecipientsPerDay},
		{"send-limit-app-password-messages", f.appMessages, &l.AppPassword.MessagesPerHour, &l.AppPassword.MessagesPerDay},
		{"send-limit-app-password-recipients", f.appRecipients, &l.AppPassword.RecipientsPerHour, &l.AppPassword.RecipientsPerDay},
	} {
		h, d, err := parseCaps(c.value)
		if err != nil {
			return account.SendLimits{}, usagef(serveCommand, "--%s must be counts per hour and per day such as 200/h,1000/d (0: no cap), not %q", c.name, c.value)
		}
		*c.hour, *c.day = h, d
	}
	return l, nil
}

func formatCaps(hour, day int) string { return fmt.Sprintf("%d/h,%d/d", hour, day) }

// parseCaps reads "N/h,N/d" (either order, spaces allowed, "hour" and
// "day" spelt out too); a window left out, and "0" alone, mean no cap.
func parseCaps(v string) (hour, day int, err error) {
	v = strings.TrimSpace(v)
	if v == "0" || v == "" {
		return 0, 0, nil
	}
	seen := map[string]bool{}
	for _, part := range strings.Split(v, ",") {
		n, unit, ok := strings.Cut(strings.TrimSpace(part), "/")
		c, cerr := strconv.Atoi(strings.TrimSpace(n))
		if !ok || cerr != nil || c < 0 {
			return 0, 0, errors.New("not N/h or N/d")
		}
		window := ""
		switch strings.ToLower(strings.TrimSpace(unit)) {
		case "h", "hour":
			window, hour = "h", c
		case "d", "day":
			window, day = "d", c
		default:
			return 0, 0, errors.New("unknown window")
		}
		if seen[window] {
			return 0, 0, errors.New("a window twice")
		}
		seen[window] = true
	}
	return hour, day, nil
}

// setupSendLimits gives the account service the caps of the flags, which
// submission enforces (smtpserver.Config.Sending), and prunes the send log.
func (s *server) setupSendLimits() error {
	l, err := s.flags.sendLimits.limits()
	if err != nil {
		return err
	}
	s.svc.Config.SendLimits = &l
	s.tasks = append(s.tasks, task{"send-log", func(ctx context.Context) error {
		return pruneSendLog(ctx, s.db, s.log.Warn)
	}})
	return nil
}

// pruneSendLog deletes what no window reaches any more, at start and every
// hour: every node does, and deleting what another already deleted costs
// nothing.
func pruneSendLog(ctx context.Context, db *sqlstore.DB, warn func(string, ...any)) error {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if _, err := db.PruneSendLog(ctx, time.Now().Add(-sqlstore.SendLogRetention)); err != nil && ctx.Err() == nil {
			warn("pruning the send log", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
