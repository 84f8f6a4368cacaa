package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/postern/postern/internal/account"
)

func apppassCreate(a *app, fs *flag.FlagSet) runFunc {
	name := fs.String("name", "", "name of the third-party app, e.g. \"Thunderbird on my laptop\" (required)")
	asJSON := fs.Bool("json", false, `print {"id","name","password","created_at"}`)
	return func(ctx context.Context, a *app, args []string) error {
		if *name == "" {
			return usagef(findCmd("apppass create"), "give the app's name with --name")
		}
		svc, m, err := a.openMember(ctx, args[0])
		if err != nil {
			return err
		}
		if !m.AppPasswordsOnly(a.cutoff) {
			// The service's message speaks to the member in the web UI; an
			// operator needs the command that fixes it.
			return failf("%s has \"Use a third-party app password\" off, so third-party app passwords would not work; turn it on first with 'postern user set %s --use-app-passwords on'.", m.Email, m.Email)
		}
		p, plain, err := svc.CreateAppPassword(ctx, m, *name, cliActor)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(a.stdout, createdAppPasswordJSON{ID: p.ID, Name: p.Name, Password: plain, CreatedAt: rfc3339(p.CreatedAt)})
		}
		// The password alone on stdout, so that scripts can capture it; the
		// explanation on stderr.
		fmt.Fprintln(a.stdout, plain)
		fmt.Fprintf(a.stderr, "Created the third-party app password %q (id %s) for %s. It is shown only this once (grouped: %s); %s was notified.\n",
			p.Name, p.ID, m.Email, account.GroupAppPassword(plain), m.Email)
		return nil
	}
}

func apppassList(a *app, fs *flag.FlagSet) runFunc {
	asJSON := fs.Bool("json", false, `print [{"id","name","created_at","last_used_at","last_used_protocol","last_used_ip","active"}]`)
	return func(ctx context.Context, a *app, args []string) error {
		svc, m, err := a.openMember(ctx, args[0])
		if err != nil {
			return err
		}
		list, err := svc.AppPasswords(ctx, m)
		if err != nil {
			return err
		}
		out := make([]appPasswordJSON, 0, len(list))
		for _, p := range list {
			out = append(out, toAppPasswordJSON(p))
		}
		if *asJSON {
			return writeJSON(a.stdout, out)
		}
		rows := [][]string{{"ID", "NAME", "CREATED", "LAST USED", "PROTOCOL", "IP", "STATE"}}
		for _, p := range list {
			state := "active"
			if !p.Active {
				state = "inactive"
			}
			rows = append(rows, []string{p.ID, p.Name, localTime(p.CreatedAt), localTime(p.LastUsedAt), p.LastUsedProtocol, p.LastUsedIP, state})
		}
		return table(a.stdout, rows)
	}
}

func apppassDelete(a *app, fs *flag.FlagSet) runFunc {
	all := fs.Bool("all", false, "delete every app password of the member (instead of one ID)")
	asJSON := fs.Bool("json", false, `print {"id","deleted":true}; with --all {"email","deleted":N}`)
	return func(ctx context.Context, a *app, args []string) error {
		if *all == (len(args) == 2) {
			return usagef(findCmd("apppass delete"), "give either an app password ID or --all")
		}
		svc, m, err := a.openMember(ctx, args[0])
		if err != nil {
			return err
		}
		if *all {
			n, err := svc.DeleteAllAppPasswords(ctx, m, cliActor)
			if err != nil {
				return err
			}
			if *asJSON {
				return writeJSON(a.stdout, struct {
					Email   string `json:"email"`
					Deleted int    `json:"deleted"`
				}{m.Email, n})
			}
			if n == 0 {
				fmt.Fprintf(a.stdout, "%s has no app passwords.\n", m.Email)
				return nil
			}
			fmt.Fprintf(a.stdout, "Deleted %d app passwords of %s; apps that logged in with them are logged out. %s was notified.\n", n, m.Email, m.Email)
			return nil
		}
		if err := svc.DeleteAppPassword(ctx, m, args[1], cliActor); err != nil {
			if account.ErrorCode(err) == account.ENOTFOUND {
				return failf("%s has no third-party app password with id %.40q; see 'postern apppass list %s'.", m.Email, args[1], m.Email)
			}
			return err
		}
		if *asJSON {
			return writeJSON(a.stdout, struct {
				ID      string `json:"id"`
				Deleted bool   `json:"deleted"`
			}{args[1], true})
		}
		fmt.Fprintf(a.stdout, "Deleted third-party app password %s of %s; apps that logged in with it are logged out. %s was notified.\n", args[1], m.Email, m.Email)
		return nil
	}
}
