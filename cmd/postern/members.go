package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/postern/postern/internal/account"
)

// Administering members from the command line: the same account.Service
// methods as the admin console, over every domain (whoever runs postern
// owns the database).

// importRowJSON is one row of 'user import --json'.
type importRowJSON struct {
	Line            int    `json:"line"`
	Email           string `json:"email"`
	OK              bool   `json:"ok"`
	Error           string `json:"error,omitempty"`
	Code            string `json:"code,omitempty"`
	OneTimePassword string `json:"one_time_password,omitempty"`
}

type importJSON struct {
	DryRun  bool            `json:"dry_run"`
	Created int             `json:"created"` // would be, in a dry run
	Failed  int             `json:"failed"`
	Rows    []importRowJSON `json:"rows"`
}

func userImport(a *app, fs *flag.FlagSet) runFunc {
	dryRun := fs.Bool("dry-run", false, "check every row and report what would happen; change nothing")
	passwords := fs.String("passwords-out", "", "write the generated one-time passwords to this file as CSV (email,one_time_password; created readable by the owner only) instead of printing them")
	asJSON := fs.Bool("json", false, `print {"dry_run","created","failed","rows":[{"line","email","ok","error","code","one_time_password"}]}`)
	return func(ctx context.Context, a *app, args []string) error {
		var in io.Reader = a.stdin
		if args[0] != "-" {
			f, err := os.Open(args[0])
			if err != nil {
				return failf("open %s: %v", args[0], err)
			}
			defer f.Close()
			in = f
		}
		rows, err := account.ReadMembersCSV(in)
		if err != nil {
			return err
		}
		svc, err := a.open(ctx)
		if err != nil {
			return err
		}
		rep, err := svc.ImportMembers(ctx, account.AllDomains, rows, *dryRun, cliActor)
		if err != nil {
			return err
		}
		out := importJSON{DryRun: rep.DryRun, Created: rep.OK, Failed: rep.Failed, Rows: make([]importRowJSON, len(rep.Rows))}
		var generated [][]string
		for i, r := range rep.Rows {
			out.Rows[i] = importRowJSON{Line: r.Line, Email: r.Email, OK: r.Err == nil, OneTimePassword: r.OneTimePassword}
			if r.Err != nil {
				out.Rows[i].Error, out.Rows[i].Code = account.ErrorMessage(r.Err), account.ErrorCode(r.Err)
			}
			if r.OneTimePassword != "" {
				generated = append(generated, []string{r.Email, r.OneTimePassword})
			}
		}
		if *passwords != "" && len(generated) > 0 {
			if err := writePasswordsCSV(*passwords, generated); err != nil {
				return err
			}
			for i := range out.Rows {
				out.Rows[i].OneTimePassword = ""
			}
		}
		if *asJSON {
			if err := writeJSON(a.stdout, out); err != nil {
				return err
			}
		} else {
			printImport(a.stdout, out, generated, *passwords)
		}
		if rep.Failed > 0 {
			return &cliError{msg: fmt.Sprintf("%d of %d rows are in error (listed above).", rep.Failed, len(rep.Rows))}
		}
		return nil
	}
}

func printImport(w io.Writer, out importJSON, generated [][]string, passwordsFile string) {
	for _, r := range out.Rows {
		if !r.OK {
			fmt.Fprintf(w, "line %d: %s: %s\n", r.Line, r.Email, r.Error)
		}
	}
	if out.DryRun {
		fmt.Fprintf(w, "Dry run: %d members would be created, %d rows are in error. Nothing was changed.\n", out.Created, out.Failed)
		return
	}
	fmt.Fprintf(w, "Created %d members; %d rows are in error and were skipped.\n", out.Created, out.Failed)
	switch {
	case len(generated) == 0:
	case passwordsFile != "":
		fmt.Fprintf(w, "The one-time passwords of %d members are in %s: give each to its member, who must change it at the first sign-in to the web.\n", len(generated), passwordsFile)
	default:
		fmt.Fprintln(w, "One-time passwords, shown only this once; each member must change theirs at the first sign-in to the web:")
		rows := [][]string{{"EMAIL", "ONE-TIME PASSWORD"}}
		table(w, append(rows, generated...))
	}
}

// writePasswordsCSV creates path (never over an existing file) readable
// by its owner only, and writes the pairs as CSV.
func writePasswordsCSV(path string, pairs [][]string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return failf("create %s: %v", path, err)
	}
	var b strings.Builder
	b.WriteString("email,one_time_password\n")
	for _, p := range pairs {
		// Addresses and generated passwords hold no comma, quote or newline.
		b.WriteString(p[0] + "," + p[1] + "\n")
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return failf("write %s: %v", path, err)
	}
	if err := f.Close(); err != nil {
		return failf("write %s: %v", path, err)
	}
	return nil
}

func userRename(a *app, fs *flag.FlagSet) runFunc {
	keepAlias := fs.Bool("keep-alias", false, "keep the old address as an alias of the member, so that mail to it still arrives")
	asJSON := fs.Bool("json", false, `print the member as JSON, with "old_email"`)
	return func(ctx context.Context, a *app, args []string) error {
		svc, m, err := a.openMember(ctx, args[0])
		if err != nil {
			return err
		}
		r, err := svc.RenameMember(ctx, account.AllDomains, m, args[1], *keepAlias, cliActor)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(a.stdout, struct {
				memberJSON
				OldEmail  string `json:"old_email"`
				KeptAlias bool   `json:"kept_alias"`
			}{toMemberJSON(r, a.cutoff), m.Email, *keepAlias})
		}
		fmt.Fprintf(a.stdout, "Renamed %s to %s: mail, calendars, contacts, aliases and app passwords follow; apps must now log in as %s. Every session was closed; %s was notified.\n",
			m.Email, r.Email, r.Email, r.Email)
		if *keepAlias {
			fmt.Fprintf(a.stdout, "%s is now an alias of %s.\n", m.Email, r.Email)
		}
		return nil
	}
}

func userResetPassword(a *app, fs *flag.FlagSet) runFunc {
	asJSON := fs.Bool("json", false, `print {"email","one_time_password"}`)
	return func(ctx context.Context, a *app, args []string) error {
		svc, m, err := a.openMember(ctx, args[0])
		if err != nil {
			return err
		}
		pw, err := svc.ResetPassword(ctx, m, cliActor)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(a.stdout, struct {
				Email           string `json:"email"`
				OneTimePassword string `json:"one_time_password"`
			}{m.Email, pw})
		}
		fmt.Fprintf(a.stdout, "One-time password of %s: %s\nIt is shown only this once. It signs in to the web only, where %s must choose a new password first; every session was closed.\n",
			m.Email, pw, m.Email)
		return nil
	}
}

func userDelete(a *app, fs *flag.FlagSet) runFunc {
	yes := fs.Bool("yes", false, "confirm: the member's mail, calendars, contacts and app passwords are deleted for good")
	asJSON := fs.Bool("json", false, `print {"email","deleted":true}`)
	return func(ctx context.Context, a *app, args []string) error {
		if !*yes {
			return usagef(findCmd("user delete"), "deleting %s deletes their mail, calendars, contacts and app passwords for good: add --yes to confirm", args[0])
		}
		svc, m, err := a.openMember(ctx, args[0])
		if err != nil {
			return err
		}
		if err := svc.DeleteMember(ctx, m, cliActor); err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(a.stdout, struct {
				Email   string `json:"email"`
				Deleted bool   `json:"deleted"`
			}{m.Email, true})
		}
		fmt.Fprintf(a.stdout, "Deleted %s with their mail, calendars, contacts and app passwords; every session was closed.\n", m.Email)
		return nil
	}
}

func userUnpause(a *app, fs *flag.FlagSet) runFunc {
	asJSON := fs.Bool("json", false, `print {"email","was_paused"}`)
	return func(ctx context.Context, a *app, args []string) error {
		svc, m, err := a.openMember(ctx, args[0])
		if err != nil {
			return err
		}
		was, err := svc.LiftPause(ctx, m, cliActor)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(a.stdout, struct {
				Email     string `json:"email"`
				WasPaused bool   `json:"was_paused"`
			}{m.Email, was})
		}
		if was {
			fmt.Fprintf(a.stdout, "Lifted the pause of %s: its main password logs in to third-party apps again.\n", m.Email)
		} else {
			fmt.Fprintf(a.stdout, "%s was not paused; its failed logins are forgotten.\n", m.Email)
		}
		return nil
	}
}

type webSessionJSON struct {
	ID         string `json:"id"`
	CreatedAt  string `json:"created_at"`
	LastSeenAt string `json:"last_seen_at"`
	IP         string `json:"ip"`
	UserAgent  string `json:"user_agent"`
}

// appSessionJSON is a live third-party session in user sessions --json.
type appSessionJSON struct {
	Node        string `json:"node"`
	Protocol    string `json:"protocol"`
	StartedAt   string `json:"started_at"`
	IP          string `json:"ip"`
	Client      string `json:"client"`       // the IMAP ID name, "" when the client said nothing
	AppPassword string `json:"app_password"` // its name; "" for the main password
}

func userSessions(a *app, fs *flag.FlagSet) runFunc {
	asJSON := fs.Bool("json", false, `print {"web":[{"id","created_at","last_seen_at","ip","user_agent"}],"apps":[{"node","protocol","started_at","ip","client","app_password"}]}`)
	return func(ctx context.Context, a *app, args []string) error {
		svc, m, err := a.openMember(ctx, args[0])
		if err != nil {
			return err
		}
		list, err := svc.WebSessions(ctx, m)
		if err != nil {
			return err
		}
		live, err := svc.LiveSessions(ctx, m)
		if err != nil {
			return err
		}
		out := struct {
			Web  []webSessionJSON `json:"web"`
			Apps []appSessionJSON `json:"apps"`
		}{Web: make([]webSessionJSON, len(list)), Apps: make([]appSessionJSON, len(live))}
		for i, s := range list {
			out.Web[i] = webSessionJSON{ID: s.PublicID, CreatedAt: rfc3339(s.CreatedAt), LastSeenAt: rfc3339(s.LastSeenAt), IP: s.IP, UserAgent: s.UserAgent}
		}
		for i, s := range live {
			out.Apps[i] = appSessionJSON{Node: s.Node, Protocol: s.Protocol, StartedAt: rfc3339(s.StartedAt), IP: s.IP, Client: s.Client, AppPassword: s.AppName}
		}
		if *asJSON {
			return writeJSON(a.stdout, out)
		}
		rows := [][]string{{"SIGNED IN", "LAST SEEN", "IP", "BROWSER"}}
		for _, s := range out.Web {
			rows = append(rows, []string{s.CreatedAt, s.LastSeenAt, s.IP, s.UserAgent})
		}
		if len(out.Web) == 0 {
			fmt.Fprintf(a.stdout, "%s is not signed in to the web anywhere.\n", m.Email)
		} else if err := table(a.stdout, rows); err != nil {
			return err
		}
		fmt.Fprintln(a.stdout)
		if len(out.Apps) == 0 {
			_, err := fmt.Fprintf(a.stdout, "No app is connected as %s on any server.\n", m.Email)
			return err
		}
		rows = [][]string{{"APP", "PROTOCOL", "SINCE", "IP", "SERVER"}}
		for _, s := range out.Apps {
			app := s.Client
			switch {
			case app == "" && s.AppPassword != "":
				app = s.AppPassword
			case app == "":
				app = "(main password)"
			case s.AppPassword != "":
				app += " (" + s.AppPassword + ")"
			}
			rows = append(rows, []string{app, s.Protocol, s.StartedAt, s.IP, s.Node})
		}
		if err := table(a.stdout, rows); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "Apps' sessions are those of every server, published about once a second. 'postern user end-sessions %s' closes them all, with the web sessions.\n", m.Email)
		return nil
	}
}

func userEndSessions(a *app, fs *flag.FlagSet) runFunc {
	asJSON := fs.Bool("json", false, `print {"email","web_sessions_ended"}`)
	return func(ctx context.Context, a *app, args []string) error {
		svc, m, err := a.openMember(ctx, args[0])
		if err != nil {
			return err
		}
		n, err := svc.EndSessions(ctx, m, cliActor)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(a.stdout, struct {
				Email string `json:"email"`
				Web   int64  `json:"web_sessions_ended"`
			}{m.Email, n})
		}
		fmt.Fprintf(a.stdout, "Signed %s out of %d web sessions; their third-party sessions are closed on every server. Apps log in again with valid credentials.\n", m.Email, n)
		return nil
	}
}

// limitFlag parses --limit: a page size from 1 to account.MaxPageSize.
func limitFlag(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > account.MaxPageSize {
		return 0, fmt.Errorf("--limit must be a number from 1 to %d, not %q", account.MaxPageSize, s)
	}
	return n, nil
}
