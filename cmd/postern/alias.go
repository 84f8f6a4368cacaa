package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"strings"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/dnsrecords"
)

// aliasJSON is an alias as alias list and alias show print it.
type aliasJSON struct {
	Address   string   `json:"address"`
	Targets   []string `json:"targets"` // member addresses; [] when none is left
	CreatedAt string   `json:"created_at"`
}

func toAliasJSON(a account.Alias) aliasJSON {
	j := aliasJSON{Address: a.Address, Targets: []string{}, CreatedAt: rfc3339(a.CreatedAt)}
	for _, m := range a.Targets {
		j.Targets = append(j.Targets, m.Email)
	}
	return j
}

// targetsText is an alias's targets for a person to read.
func targetsText(a aliasJSON) string {
	if len(a.Targets) == 0 {
		return "(none: mail to it is refused)"
	}
	return strings.Join(a.Targets, ", ")
}

func aliasAdd(a *app, fs *flag.FlagSet) runFunc {
	asJSON := fs.Bool("json", false, `print the alias as {"address","targets","created_at"}`)
	return func(ctx context.Context, a *app, args []string) error {
		svc, err := a.open(ctx)
		if err != nil {
			return err
		}
		al, created, err := svc.AddAlias(ctx, args[0], args[1:], cliActor)
		if err != nil {
			return err
		}
		j := toAliasJSON(al)
		if *asJSON {
			return writeJSON(a.stdout, j)
		}
		verb := "Added to the alias"
		if created {
			verb = "Created the alias"
		}
		_, err = fmt.Fprintf(a.stdout, "%s %s: mail to it goes to %s.\n", verb, j.Address, targetsText(j))
		return err
	}
}

func aliasList(a *app, fs *flag.FlagSet) runFunc {
	asJSON := fs.Bool("json", false, `print [{"address","targets","created_at"}]`)
	return func(ctx context.Context, a *app, args []string) error {
		svc, err := a.open(ctx)
		if err != nil {
			return err
		}
		domain := ""
		if len(args) == 1 {
			domain = args[0]
		}
		list, err := svc.Aliases(ctx, domain)
		if err != nil {
			return err
		}
		out := make([]aliasJSON, 0, len(list))
		for _, al := range list {
			out = append(out, toAliasJSON(al))
		}
		if *asJSON {
			return writeJSON(a.stdout, out)
		}
		rows := [][]string{{"ALIAS", "DELIVERS TO"}}
		for _, j := range out {
			rows = append(rows, []string{j.Address, targetsText(j)})
		}
		return table(a.stdout, rows)
	}
}

func aliasShow(a *app, fs *flag.FlagSet) runFunc {
	asJSON := fs.Bool("json", false, `print {"address","targets","created_at"}`)
	return func(ctx context.Context, a *app, args []string) error {
		svc, err := a.open(ctx)
		if err != nil {
			return err
		}
		al, err := svc.Alias(ctx, args[0])
		if err != nil {
			return err
		}
		j := toAliasJSON(al)
		if *asJSON {
			return writeJSON(a.stdout, j)
		}
		fmt.Fprintf(a.stdout, "%s (created %s) delivers to:\n", j.Address, localTime(al.CreatedAt))
		if len(j.Targets) == 0 {
			fmt.Fprintln(a.stdout, "  nobody: mail to it is refused. Add members with 'postern alias add', or delete it.")
		}
		for _, t := range j.Targets {
			fmt.Fprintf(a.stdout, "  %s\n", t)
		}
		return nil
	}
}

func aliasDelete(a *app, fs *flag.FlagSet) runFunc {
	return func(ctx context.Context, a *app, args []string) error {
		svc, err := a.open(ctx)
		if err != nil {
			return err
		}
		if len(args) == 1 {
			if err := svc.DeleteAlias(ctx, args[0], cliActor); err != nil {
				return err
			}
			e, _ := account.ParseEmail(args[0]) // DeleteAlias accepted it
			_, err = fmt.Fprintf(a.stdout, "Deleted the alias %s.\n", e)
			return err
		}
		al, err := svc.RemoveAliasTargets(ctx, args[0], args[1:], cliActor)
		if err != nil {
			return err
		}
		j := toAliasJSON(al)
		if len(j.Targets) == 0 {
			_, err = fmt.Fprintf(a.stdout, "%s has no target left: mail to it is refused until members are added ('postern alias add') or it is deleted ('postern alias delete %s').\n", j.Address, j.Address)
			return err
		}
		_, err = fmt.Fprintf(a.stdout, "Removed from %s; mail to it goes to %s.\n", j.Address, targetsText(j))
		return err
	}
}

func domainCatchall(a *app, fs *flag.FlagSet) runFunc {
	off := fs.Bool("off", false, "turn the catch-all off: mail to unknown addresses of the domain is refused")
	asJSON := fs.Bool("json", false, `print {"domain","catch_all"} ("" when off)`)
	return func(ctx context.Context, a *app, args []string) error {
		if *off && len(args) == 2 {
			return usagef(findCmd("domain catchall"), "give a member or --off, not both")
		}
		svc, err := a.open(ctx)
		if err != nil {
			return err
		}
		var d account.Domain
		switch {
		case len(args) == 2 || *off:
			member := ""
			if len(args) == 2 {
				member = args[1]
			}
			d, err = svc.SetCatchAll(ctx, args[0], member, cliActor)
		default:
			d, err = svc.Domain(ctx, args[0])
		}
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(a.stdout, struct {
				Domain   string `json:"domain"`
				CatchAll string `json:"catch_all"`
			}{d.Name, d.CatchAll})
		}
		if d.CatchAll == "" {
			_, err = fmt.Fprintf(a.stdout, "%s has no catch-all: mail to its unknown addresses is refused (550 5.1.1).\n", d.Name)
		} else {
			_, err = fmt.Fprintf(a.stdout, "Mail to unknown addresses of %s goes to %s.\n", d.Name, d.CatchAll)
		}
		return err
	}
}

func domainDNS(a *app, fs *flag.FlagSet) runFunc {
	var sf sendingFlags
	sf.register(a, fs) // --mail-host, --mta-sts-mode, as serve has them (dkim.go)
	asJSON := fs.Bool("json", false, `print [{"name","type","ttl","value","why"}]`)
	return func(ctx context.Context, a *app, args []string) error {
		return a.printDomainDNS(ctx, findCmd("domain dns"), &sf, args[0], *asJSON)
	}
}

// printDomainDNS prints the DNS records of the domain named name, for the
// --base-url and the sending flags sf: `domain dns` and quickstart print
// them alike.
func (a *app) printDomainDNS(ctx context.Context, cmd *command, sf *sendingFlags, name string, asJSON bool) error {
	if _, err := a.open(ctx); err != nil { // the base URL serve saved, when none is given
		return err
	}
	base := a.baseURL
	if base == "" {
		return failf("set --base-url (or POSTERN_BASE_URL) to the public web address, such as https://mail.example.com: the records name its host")
	}
	web, err := url.Parse(base)
	if err != nil || (web.Scheme != "https" && web.Scheme != "http") {
		return failf("--base-url %q is not an http(s) URL", base)
	}
	if err := dnsrecords.Check("--base-url", web.Hostname()); err != nil {
		return failf("%v", err)
	}
	mode, err := sf.mode(cmd)
	if err != nil {
		return err
	}
	host := sf.mailHost
	if host == "" {
		host = web.Hostname()
	} else if err := dnsrecords.Check("--mail-host", host); err != nil {
		return failf("%v", err)
	}
	svc, err := a.open(ctx)
	if err != nil {
		return err
	}
	d, err := svc.Domain(ctx, name)
	if err != nil {
		return err
	}
	recs, hint, err := a.domainRecords(ctx, svc, d.Name, host, web, mode)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(a.stdout, recs)
	}
	fmt.Fprintf(a.stdout, "; DNS records to publish for %s (mail host %s, web %s).\n", d.Name, host, web.Host)
	fmt.Fprintf(a.stdout, "; Zone-file lines; a line starting with ; says why the record below it is there.\n")
	if hint != "" {
		fmt.Fprintf(a.stdout, "; %s\n", hint)
	}
	for _, r := range recs {
		fmt.Fprintf(a.stdout, "\n; %s\n%s\n", r.Why, r.Zone())
	}
	return nil
}

// domainRecords are the DNS records of the domain named name, as `domain
// dns` prints them and the admin console shows them; hint is a line for
// the operator when the domain has no DKIM keys yet.
func (a *app) domainRecords(ctx context.Context, svc *account.Service, name, host string, web *url.URL, mode string) ([]dnsrecords.Record, string, error) {
	c := dnsrecords.Config{Domain: name, MailHost: host, Web: web}
	if _, err := svc.ResolveRecipient(ctx, "postmaster@"+name); err == nil {
		c.ReportTo = "postmaster@" + name
	}
	hint, err := a.sendingRecords(ctx, &c, mode) // dkim.go: DKIM keys, MTA-STS
	if err != nil {
		return nil, "", err
	}
	return dnsrecords.Records(c), hint, nil
}
