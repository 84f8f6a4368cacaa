package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/postern/postern/internal/account"
)

func domainAdd(a *app, fs *flag.FlagSet) runFunc {
	created := fs.String("created", "", "creation date YYYY-MM-DD (Asia/Tokyo); decides the policy against --cutoff. Default: now")
	asJSON := fs.Bool("json", false, "print the domain as JSON")
	return func(ctx context.Context, a *app, args []string) error {
		var at time.Time
		if *created != "" {
			t, err := parseDate(*created)
			if err != nil {
				return usagef(findCmd("domain add"), "--created: %v", err)
			}
			at = t
		}
		// Through the keyring: the domain is created with its DKIM keys.
		ring, err := a.keyring(ctx, cliActor) // dkim.go
		if err != nil {
			return err
		}
		d, err := a.svc.AddDomainBy(ctx, args[0], at, cliActor)
		if err != nil {
			return err
		}
		j := toDomainJSON(d, a.cutoff)
		if *asJSON {
			return writeJSON(a.stdout, j)
		}
		_, err = fmt.Fprintf(a.stdout, "Added domain %s (created %s, policy %s).\n", j.Name, d.CreatedAt.In(a.cutoff.Location()).Format(dateLayout), j.Policy)
		if keys, kerr := ring.Keys(ctx, d.Name); kerr == nil && len(keys) > 0 && err == nil {
			_, err = fmt.Fprintf(a.stdout, "Its mail is signed with the DKIM keys %s; 'postern domain dns %s' prints the records to publish.\n", selectorList(keys), d.Name)
		}
		return err
	}
}

func domainList(a *app, fs *flag.FlagSet) runFunc {
	asJSON := fs.Bool("json", false, `print [{"name","created_at","policy","quota"}]`)
	return func(ctx context.Context, a *app, args []string) error {
		svc, err := a.open(ctx)
		if err != nil {
			return err
		}
		list, err := svc.AdminDomains(ctx, account.AllDomains)
		if err != nil {
			return err
		}
		out := make([]domainJSON, 0, len(list))
		for _, d := range list {
			out = append(out, toDomainJSON(d, a.cutoff))
		}
		if *asJSON {
			return writeJSON(a.stdout, out)
		}
		rows := [][]string{{"DOMAIN", "CREATED", "POLICY", "MAIL QUOTA"}}
		for i, d := range out {
			rows = append(rows, []string{d.Name, list[i].CreatedAt.In(a.cutoff.Location()).Format(dateLayout), d.Policy, describeLimit(d.Quota, "server's")})
		}
		return table(a.stdout, rows)
	}
}

// findCmd returns the command named name, for usage errors raised while running.
func findCmd(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}
