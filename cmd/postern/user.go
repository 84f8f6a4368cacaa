package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/mailstore"
)

// cliActor marks changes made with this command in notifications and logs.
var cliActor = account.Actor{Via: "cli"}

// openMember opens the service and finds the member a command names.
func (a *app) openMember(ctx context.Context, email string) (*account.Service, account.Member, error) {
	svc, err := a.open(ctx)
	if err != nil {
		return nil, account.Member{}, err
	}
	m, err := svc.Member(ctx, email)
	if err != nil {
		return nil, account.Member{}, err
	}
	return svc, m, nil
}

func userAdd(a *app, fs *flag.FlagSet) runFunc {
	name := fs.String("name", "", "display name (default: the part before the @)")
	fromStdin := fs.Bool("password-stdin", false, "read the main password from the first line of standard input")
	asJSON := fs.Bool("json", false, "print the member as JSON (with \"password\" when it was generated)")
	return func(ctx context.Context, a *app, args []string) error {
		pw, generated := "", false
		if *fromStdin {
			var err error
			if pw, err = readPassword(a.stdin); err != nil {
				return err
			}
		} else {
			pw, generated = strongPassword(), true
		}
		svc, err := a.open(ctx)
		if err != nil {
			return err
		}
		m, err := svc.AddMemberBy(ctx, args[0], *name, pw, cliActor)
		if err != nil {
			return err
		}
		j := toMemberJSON(m, a.cutoff)
		if *asJSON {
			out := struct {
				memberJSON
				Password string `json:"password,omitempty"`
			}{memberJSON: j}
			if generated {
				out.Password = pw
			}
			return writeJSON(a.stdout, out)
		}
		fmt.Fprintf(a.stdout, "Added %s (%s, policy %s).\n", m.Email, m.Domain(), j.Policy)
		if generated {
			fmt.Fprintf(a.stdout, "Main password: %s\nIt is shown only this once; give it to the member.\n", pw)
		}
		return nil
	}
}

// strongPassword generates a main password: 20 characters of the app
// password alphabet (116 bits from crypto/rand), grouped with dashes to be
// copied by hand.
func strongPassword() string {
	return strings.ReplaceAll(account.GroupAppPassword(account.GenerateAppPassword()), " ", "-")
}

// readPassword reads one line of standard input; only the line ending is
// removed, because everything else is part of the password.
func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReaderSize(r, 4096).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the password from standard input: %w", err)
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return "", failf("no password on standard input")
	}
	return line, nil
}

func userList(a *app, fs *flag.FlagSet) runFunc {
	domainFlag := fs.String("domain", "", "only the members of this domain (as the DOMAIN argument)")
	query := fs.String("query", "", "only the members whose address or display name starts with this")
	after := fs.String("after", "", "the members after this address: the last one of the previous page")
	limit := fs.String("limit", "", fmt.Sprintf("print one page of at most this many members (1 to %d); the last address printed is the --after of the next page", account.MaxPageSize))
	asJSON := fs.Bool("json", false, `print [{"email","name","domain","policy","use_app_passwords","state","quota","storage_limit","storage_used"}]`)
	return func(ctx context.Context, a *app, args []string) error {
		domain := *domainFlag
		if len(args) == 1 {
			if domain != "" && !strings.EqualFold(domain, args[0]) {
				return usagef(findCmd("user list"), "give the domain once: as DOMAIN or as --domain")
			}
			domain = args[0]
		}
		pageSize, all := account.MaxPageSize, *limit == ""
		if !all {
			var err error
			if pageSize, err = limitFlag(*limit); err != nil {
				return usagef(findCmd("user list"), "%v", err)
			}
		}
		svc, err := a.open(ctx)
		if err != nil {
			return err
		}
		var list []account.Member
		next := *after
		for {
			p, err := svc.SearchMembers(ctx, account.AllDomains, domain, *query, next, pageSize)
			if err != nil {
				return err
			}
			list, next = append(list, p.Members...), p.Next
			if next == "" || !all {
				break
			}
		}
		out := make([]memberWithStorage, 0, len(list))
		quotas := make([]mailstore.Quota, 0, len(list))
		for _, m := range list {
			j, q, err := a.memberStorage(ctx, m)
			if err != nil {
				return err
			}
			out, quotas = append(out, j), append(quotas, q)
		}
		if *asJSON {
			return writeJSON(a.stdout, out)
		}
		rows := [][]string{{"EMAIL", "NAME", "POLICY", "APP PASSWORDS ONLY", "STATE", "MAIL STORAGE"}}
		for i, m := range out {
			rows = append(rows, []string{m.Email, m.Name, m.Policy, onOff(m.UseAppPasswords), m.State, storageText(quotas[i])})
		}
		if err := table(a.stdout, rows); err != nil {
			return err
		}
		if next != "" {
			fmt.Fprintf(a.stdout, "More members follow: add --after %s\n", next)
		}
		return nil
	}
}

func userPasswd(a *app, fs *flag.FlagSet) runFunc {
	fromStdin := fs.Bool("password-stdin", false, "read the new main password from the first line of standard input (required)")
	deleteAll := fs.Bool("delete-app-passwords", false, "also delete all the member's third-party app passwords (after a hijack)")
	asJSON := fs.Bool("json", false, "print the member as JSON")
	return func(ctx context.Context, a *app, args []string) error {
		if !*fromStdin {
			return usagef(findCmd("user passwd"), "give the new password on standard input with --password-stdin")
		}
		pw, err := readPassword(a.stdin)
		if err != nil {
			return err
		}
		svc, m, err := a.openMember(ctx, args[0])
		if err != nil {
			return err
		}
		// An administrator reset: no current password; the member is told.
		if err := svc.ChangePassword(ctx, m, "", pw, true, *deleteAll, cliActor); err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(a.stdout, toMemberJSON(m, a.cutoff))
		}
		fmt.Fprintf(a.stdout, "Changed the main password of %s. Third-party sessions that used the old one are closed.\n", m.Email)
		if *deleteAll {
			fmt.Fprintln(a.stdout, "All the member's third-party app passwords were deleted.")
		}
		return nil
	}
}

func userSet(a *app, fs *flag.FlagSet) runFunc {
	value := fs.String("use-app-passwords", "", "on: third-party apps log in only with third-party app passwords; off: with the main password")
	quota := fs.String("quota", "", "the member's mail storage limit, every folder together: a size such as 500MiB or 2GiB, 0 for no limit, or default (the domain's)")
	asJSON := fs.Bool("json", false, "print the member as JSON, with \"quota\", \"storage_limit\" and \"storage_used\"")
	return func(ctx context.Context, a *app, args []string) error {
		var on bool
		switch strings.ToLower(*value) {
		case "on", "true", "yes":
			on = true
		case "off", "false", "no":
		case "":
			if *quota == "" {
				return usagef(findCmd("user set"), "give --use-app-passwords on or off, or --quota")
			}
		default:
			return usagef(findCmd("user set"), "--use-app-passwords must be on or off, not %q", *value)
		}
		if *quota != "" {
			if _, err := parseQuota(*quota); err != nil {
				return usagef(findCmd("user set"), "--quota must be a size such as 500MiB or 2GiB, 0 for no limit, or default, not %q", *quota)
			}
		}
		svc, m, err := a.openMember(ctx, args[0])
		if err != nil {
			return err
		}
		var said []string
		if *value != "" {
			if svc.Policy(m) == account.PolicyEnforced {
				return failf("%s is an enforced domain (created on or after the cut-off, %s): its members always log in to third-party apps with third-party app passwords, so the setting cannot be changed.",
					m.Domain(), a.cutoff.Format(dateLayout))
			}
			changed := m.UseAppPasswords != on
			if err := svc.SetUseAppPasswords(ctx, m, on, cliActor); err != nil {
				return err
			}
			m.UseAppPasswords = on
			switch {
			case !changed:
				said = append(said, fmt.Sprintf("\"Use a third-party app password\" was already %s for %s.", onOff(on), m.Email))
			case on:
				said = append(said, fmt.Sprintf("\"Use a third-party app password\" is now on for %s: third-party apps log in only with third-party app passwords; live third-party sessions were ended.", m.Email))
			default:
				said = append(said, fmt.Sprintf("\"Use a third-party app password\" is now off for %s: third-party apps log in with the main password; third-party app passwords are kept but inactive; live third-party sessions were ended.", m.Email))
			}
		}
		if *quota != "" {
			if err := a.setMemberQuota(ctx, svc, m, *quota); err != nil {
				return err
			}
		}
		j, q, err := a.memberStorage(ctx, m)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(a.stdout, j)
		}
		if *quota != "" {
			said = append(said, fmt.Sprintf("Mail storage of %s: %s.", m.Email, storageText(q)))
		}
		_, err = fmt.Fprintln(a.stdout, strings.Join(said, "\n"))
		return err
	}
}

func userState(st account.State) func(a *app, fs *flag.FlagSet) runFunc {
	return func(a *app, fs *flag.FlagSet) runFunc {
		asJSON := fs.Bool("json", false, "print the member as JSON")
		return func(ctx context.Context, a *app, args []string) error {
			svc, m, err := a.openMember(ctx, args[0])
			if err != nil {
				return err
			}
			if err := svc.SetState(ctx, m, st, cliActor); err != nil {
				return err
			}
			m.State = st
			if *asJSON {
				return writeJSON(a.stdout, toMemberJSON(m, a.cutoff))
			}
			if st == account.StateSuspended {
				fmt.Fprintf(a.stdout, "Suspended %s: every session is closed and logins fail until 'postern user resume'.\n", m.Email)
			} else {
				fmt.Fprintf(a.stdout, "%s is active again.\n", m.Email)
			}
			return nil
		}
	}
}
