package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/postern/postern/internal/account"
)

// auditJSON is an audit entry as --json prints it.
type auditJSON struct {
	Time       time.Time `json:"time"`
	Action     string    `json:"action"`
	Actor      string    `json:"actor"`
	ActorEmail string    `json:"actor_email,omitempty"`
	Member     string    `json:"member,omitempty"`
	Domain     string    `json:"domain,omitempty"`
	IP         string    `json:"ip,omitempty"`
	Client     string    `json:"client,omitempty"`
	Protocol   string    `json:"protocol,omitempty"`
	Result     string    `json:"result,omitempty"`
	Detail     string    `json:"detail,omitempty"`
	Cursor     string    `json:"cursor"`
}

func auditList(a *app, fs *flag.FlagSet) runFunc {
	member := fs.String("member", "", "only entries about the member EMAIL")
	action := fs.String("action", "", "only the action A, or every action under a prefix (apppass, login, signin.fail)")
	since := fs.String("since", "", "from T: YYYY-MM-DD, RFC 3339, or an age (36h, 7d)")
	until := fs.String("until", "", "before T (same forms)")
	limit := fs.Int("limit", account.DefaultAuditPage, fmt.Sprintf("at most N entries, newest first (up to %d)", account.MaxAuditPage))
	before := fs.String("before", "", "the entries after CURSOR (the last entry's \"cursor\" in --json): the next page")
	asJSON := fs.Bool("json", false, `print [{"time","action","actor","actor_email","member","domain","ip","client","protocol","result","detail","cursor"}]`)
	asCSV := fs.Bool("csv", false, "print CSV with a header line: "+fmt.Sprint(account.AuditCSVHeader))
	return func(ctx context.Context, a *app, args []string) error {
		if *asJSON && *asCSV {
			return usagef(findCmd("audit"), "give --json or --csv, not both")
		}
		q := account.AuditQuery{Member: *member, Action: *action, Limit: *limit}
		now := time.Now()
		var err error
		if *since != "" {
			if q.Since, err = account.ParseAuditTime(*since, now, time.Local); err != nil {
				return err
			}
		}
		if *until != "" {
			if q.Until, err = account.ParseAuditTime(*until, now, time.Local); err != nil {
				return err
			}
		}
		if *before != "" {
			c, err := account.ParseAuditCursor(*before)
			if err != nil {
				return err
			}
			q.Before = &c
		}
		svc, err := a.open(ctx)
		if err != nil {
			return err
		}
		list, err := svc.AuditLog(ctx, q)
		if err != nil {
			return err
		}
		switch {
		case *asCSV:
			return account.WriteAuditCSV(a.stdout, list, true)
		case *asJSON:
			out := make([]auditJSON, len(list))
			for i, e := range list {
				out[i] = auditJSON{Time: e.At, Action: e.Action, Actor: e.Actor, ActorEmail: e.ActorEmail, Member: e.MemberEmail,
					Domain: e.Domain, IP: e.IP, Client: e.Client, Protocol: e.Protocol, Result: e.Result, Detail: e.Detail,
					Cursor: e.Cursor().String()}
			}
			return writeJSON(a.stdout, out)
		}
		rows := [][]string{{"TIME", "ACTION", "ACTOR", "MEMBER", "IP", "CLIENT", "DETAIL"}}
		for _, e := range list {
			actor := e.Actor
			if e.ActorEmail != "" && e.ActorEmail != e.MemberEmail {
				actor += " " + e.ActorEmail
			}
			rows = append(rows, []string{localTime(e.At), e.Action, actor, e.MemberEmail, e.IP, clipText(e.Client, 40), clipText(e.Detail, 60)})
		}
		return table(a.stdout, rows)
	}
}

func auditRetention(a *app, fs *flag.FlagSet) runFunc {
	asJSON := fs.Bool("json", false, `print {"days"}`)
	return func(ctx context.Context, a *app, args []string) error {
		svc, err := a.open(ctx)
		if err != nil {
			return err
		}
		if len(args) == 1 {
			days, err := strconv.Atoi(args[0])
			if err != nil {
				return usagef(findCmd("audit retention"), "DAYS must be a whole number of days")
			}
			if err := svc.SetAuditRetention(ctx, days, cliActor); err != nil {
				return err
			}
		}
		keep, stored, err := svc.AuditRetention(ctx, 0)
		if err != nil {
			return err
		}
		days := int(keep / (24 * time.Hour))
		if *asJSON {
			return writeJSON(a.stdout, struct {
				Days   int  `json:"days"`
				Stored bool `json:"stored"`
			}{days, stored})
		}
		if !stored {
			fmt.Fprintf(a.stdout, "No retention is set: 'postern serve' keeps audit entries --audit-retention days (default %d).\n", days)
			return nil
		}
		fmt.Fprintf(a.stdout, "Audit entries are kept %d days; 'postern serve' deletes older ones every hour.\n", days)
		return nil
	}
}

// auditFlags are serve's audit log settings.
type auditFlags struct {
	retention string // days
}

func (f *auditFlags) register(a *app, fs *flag.FlagSet) {
	a.configVar(fs, &f.retention, "audit-retention", "", fmt.Sprintf("days audit entries are kept unless 'postern audit retention' set it (default %d)",
		int(account.DefaultAuditRetention/(24*time.Hour))))
}

// setupAudit prunes the audit log past its retention, at start and hourly.
func (s *server) setupAudit() error {
	var def time.Duration
	if v := s.flags.audit.retention; v != "" {
		days, err := strconv.Atoi(v)
		if err != nil || days < 1 || days > account.MaxAuditRetentionDays {
			return usagef(serveCommand, "--audit-retention takes 1 to %d days", account.MaxAuditRetentionDays)
		}
		def = time.Duration(days) * 24 * time.Hour
	}
	s.tasks = append(s.tasks, task{"audit-retention", func(ctx context.Context) error {
		t := time.NewTicker(time.Hour)
		defer t.Stop()
		for {
			if n, err := s.svc.PruneAudit(ctx, def); err != nil && ctx.Err() == nil {
				s.log.Warn("pruning the audit log", "err", err)
			} else if n > 0 {
				s.log.Info("pruned the audit log", "entries", n)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.C:
			}
		}
	}})
	return nil
}
