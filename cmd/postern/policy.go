package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/postern/postern/internal/account"
)

type policyJSON struct {
	Domain string `json:"domain"`
	Policy string `json:"policy"`
	// Protocols third-party apps may use; null: every one.
	Protocols []string `json:"protocols"`
	// AllowCIDRs third-party logins may come from; empty: any address.
	AllowCIDRs       []string `json:"allow_cidrs"`
	ExpireUnusedDays int      `json:"expire_unused_days"`
	ForceSetting     bool     `json:"force_setting"`
	Quota            *int64   `json:"quota"`
}

func domainPolicy(a *app, fs *flag.FlagSet) runFunc {
	protocols := fs.String("protocols", "", "protocols third-party apps may use, comma-separated ("+strings.Join(account.ThirdPartyProtocols, ",")+"), or all")
	var cidrs listFlag
	fs.Var(&cidrs, "allow-cidr", "networks third-party logins may come from (repeat, or separate with commas); any allows every address")
	expire := fs.String("expire-unused-days", "", "delete app passwords unused for this many days (the member is told a week before and when it happens); 0: never")
	force := fs.String("force-setting", "", `on: "Use a third-party app password" is on for every member (optional domains); off: each member decides`)
	quota := fs.String("quota", "", "default mail storage limit of the members: a size such as 2GiB, 0 for no limit, or default")
	asJSON := fs.Bool("json", false, `print {"domain","policy","protocols","allow_cidrs","expire_unused_days","force_setting","quota"}`)
	return func(ctx context.Context, a *app, args []string) error {
		cmd := findCmd("domain policy")
		svc, err := a.open(ctx)
		if err != nil {
			return err
		}
		d, err := svc.Domain(ctx, args[0])
		if err != nil {
			return err
		}
		p, changed := d.Security, false
		if *protocols != "" {
			if p.Protocols, err = account.ParseProtocols(*protocols); err != nil {
				return usagef(cmd, "--protocols: %s", account.ErrorMessage(err))
			}
			changed = true
		}
		if len(cidrs) > 0 {
			if p.Networks, err = account.ParseNetworks(strings.Join(cidrs, ",")); err != nil {
				return usagef(cmd, "--allow-cidr: %s", account.ErrorMessage(err))
			}
			changed = true
		}
		if *expire != "" {
			n, err := strconv.Atoi(strings.TrimSpace(*expire))
			if err != nil || n < 0 {
				return usagef(cmd, "--expire-unused-days must be a number of days, or 0 for never, not %q", *expire)
			}
			p.ExpireUnusedDays, changed = n, true
		}
		switch strings.ToLower(*force) {
		case "":
		case "on":
			p.ForceAppPasswords, changed = true, true
		case "off":
			p.ForceAppPasswords, changed = false, true
		default:
			return usagef(cmd, "--force-setting must be on or off, not %q", *force)
		}
		if *quota != "" {
			limit, err := parseQuota(*quota)
			if err != nil {
				return usagef(cmd, "--quota must be a size such as 500MiB or 2GiB, 0 for no limit, or default, not %q", *quota)
			}
			if d, err = svc.SetDomainMailQuota(ctx, d.Name, limit, cliActor); err != nil {
				return err
			}
		}
		if changed {
			if d, err = svc.SetSecurityPolicy(ctx, d.Name, p, cliActor); err != nil {
				return err
			}
		}
		j := toPolicyJSON(d, a)
		if *asJSON {
			return writeJSON(a.stdout, j)
		}
		return printPolicy(a, j)
	}
}

func toPolicyJSON(d account.Domain, a *app) policyJSON {
	j := policyJSON{Domain: d.Name, Policy: string(d.Policy(a.cutoff)), Protocols: d.Security.Protocols,
		AllowCIDRs: []string{}, ExpireUnusedDays: d.Security.ExpireUnusedDays, ForceSetting: d.Security.ForceAppPasswords, Quota: d.MailQuota}
	for _, n := range d.Security.Networks {
		j.AllowCIDRs = append(j.AllowCIDRs, n.String())
	}
	return j
}

func printPolicy(a *app, j policyJSON) error {
	protocols := "all"
	if j.Protocols != nil {
		protocols = strings.Join(j.Protocols, ", ")
		if protocols == "" {
			protocols = "none"
		}
	}
	nets := strings.Join(j.AllowCIDRs, ", ")
	if nets == "" {
		nets = "any"
	}
	expire := "never"
	if j.ExpireUnusedDays > 0 {
		expire = fmt.Sprintf("after %d days unused", j.ExpireUnusedDays)
	}
	force := "off (each member decides, in optional domains)"
	if j.ForceSetting {
		force = "on for every member"
	}
	return table(a.stdout, [][]string{
		{"Domain", j.Domain},
		{"Policy", j.Policy},
		{"Protocols", protocols},
		{"Allowed networks", nets},
		{"App passwords expire", expire},
		{"Use a third-party app password", force},
		{"Default mail storage", describeLimit(j.Quota, "the server's")},
	})
}

// domainDeleteJSON is domain delete --json.
type domainDeleteJSON struct {
	Domain         string `json:"domain"`
	MembersDeleted int    `json:"members_deleted"`
	Aliases        int    `json:"aliases"`
	Messages       int64  `json:"messages"`
}

func domainDelete(a *app, fs *flag.FlagSet) runFunc {
	withMembers := fs.Bool("with-members", false, "also delete every member of the domain with their mail, calendars, contacts and third-party app passwords (their sessions end on every node)")
	asJSON := fs.Bool("json", false, `print {"domain","members_deleted","aliases","messages"}`)
	return func(ctx context.Context, a *app, args []string) error {
		svc, err := a.open(ctx)
		if err != nil {
			return err
		}
		d, err := svc.Domain(ctx, args[0])
		if err != nil {
			return err
		}
		c, err := svc.DomainContents(ctx, d)
		if err != nil {
			return err
		}
		out := domainDeleteJSON{Domain: d.Name, Aliases: c.Aliases, Messages: c.Messages}
		if *withMembers {
			out.MembersDeleted, err = svc.DeleteDomainWithMembers(ctx, d.Name, cliActor)
		} else {
			err = svc.DeleteDomain(ctx, d.Name, cliActor)
			if account.ErrorCode(err) == account.ECONFLICT {
				return failf("%s still has %d members: delete them first, or give --with-members to delete them with the domain (%d messages)", d.Name, c.Members, c.Messages)
			}
		}
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(a.stdout, out)
		}
		if *withMembers {
			_, err = fmt.Fprintf(a.stdout, "Deleted the domain %s with its %d members and their %d messages, its aliases and DKIM keys.\n", d.Name, out.MembersDeleted, out.Messages)
			return err
		}
		_, err = fmt.Fprintf(a.stdout, "Deleted the domain %s, its aliases and DKIM keys.\n", d.Name)
		return err
	}
}
