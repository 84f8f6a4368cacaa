package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/postern/postern/internal/account"
)

// listFlag is a flag that may be repeated and holds comma-separated values.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

type adminRoleJSON struct {
	Email     string    `json:"email"`
	Role      string    `json:"role"`             // "organisation" or "domain"
	Domain    string    `json:"domain,omitempty"` // for "domain"
	CreatedAt time.Time `json:"created_at"`
}

func adminGrant(a *app, fs *flag.FlagSet) runFunc {
	org := fs.Bool("org", false, "make the member an organisation admin: every domain")
	var domains listFlag
	fs.Var(&domains, "domain", "make the member an admin of this domain (repeat, or separate with commas)")
	asJSON := fs.Bool("json", false, "print the member's roles as JSON")
	return func(ctx context.Context, a *app, args []string) error {
		if *org == (len(domains) > 0) {
			return usagef(findCmd("admin grant"), "give either --org or --domain")
		}
		svc, err := a.open(ctx)
		if err != nil {
			return err
		}
		roles, err := svc.GrantAdmin(ctx, args[0], domains)
		if err != nil {
			return err
		}
		out := toAdminRolesJSON(roles)
		if *asJSON {
			return writeJSON(a.stdout, out)
		}
		for _, r := range out {
			fmt.Fprintf(a.stdout, "%s is an admin of %s.\n", r.Email, roleScope(r))
		}
		return nil
	}
}

func toAdminRolesJSON(roles []account.AdminRole) []adminRoleJSON {
	out := make([]adminRoleJSON, 0, len(roles))
	for _, r := range roles {
		j := adminRoleJSON{Email: r.Email, Role: "organisation", Domain: r.Domain, CreatedAt: r.CreatedAt}
		if r.Domain != "" {
			j.Role = "domain"
		}
		out = append(out, j)
	}
	return out
}

func roleScope(r adminRoleJSON) string {
	if r.Domain == "" {
		return "every domain (organisation)"
	}
	return r.Domain
}

func adminRevoke(a *app, fs *flag.FlagSet) runFunc {
	domain := fs.String("domain", "", "remove only the role over this domain (default: every role)")
	return func(ctx context.Context, a *app, args []string) error {
		svc, err := a.open(ctx)
		if err != nil {
			return err
		}
		if err := svc.RevokeAdmin(ctx, args[0], *domain); err != nil {
			return err
		}
		if *domain != "" {
			_, err = fmt.Fprintf(a.stdout, "%s is no longer an admin of %s.\n", args[0], *domain)
		} else {
			_, err = fmt.Fprintf(a.stdout, "%s is no longer an admin.\n", args[0])
		}
		return err
	}
}

func adminList(a *app, fs *flag.FlagSet) runFunc {
	asJSON := fs.Bool("json", false, `print [{"email","role","domain","created_at"}]`)
	return func(ctx context.Context, a *app, args []string) error {
		svc, err := a.open(ctx)
		if err != nil {
			return err
		}
		roles, err := svc.AdminRoles(ctx)
		if err != nil {
			return err
		}
		out := toAdminRolesJSON(roles)
		if *asJSON {
			return writeJSON(a.stdout, out)
		}
		rows := [][]string{{"MEMBER", "ROLE", "DOMAIN", "SINCE"}}
		for _, r := range out {
			d := r.Domain
			if d == "" {
				d = "(every domain)"
			}
			rows = append(rows, []string{r.Email, r.Role, d, r.CreatedAt.In(a.cutoff.Location()).Format(dateLayout)})
		}
		return table(a.stdout, rows)
	}
}
