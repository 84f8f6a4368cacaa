package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/postern/postern/internal/account"
)

// The JSON shapes of SPEC §6. apppass list gives the same objects as the
// member API (GET /api/v1/me/app-passwords).

type domainJSON struct {
	Name      string `json:"name"`
	CreatedAt string `json:"created_at"`
	Policy    string `json:"policy"`
	// Quota is the members' default mail storage limit in octets (0:
	// none); null: serve's --mailbox-quota.
	Quota *int64 `json:"quota"`
}

type memberJSON struct {
	Email           string `json:"email"`
	Name            string `json:"name"`
	Domain          string `json:"domain"`
	Policy          string `json:"policy"`
	UseAppPasswords bool   `json:"use_app_passwords"` // effective: true for enforced domains
	State           string `json:"state"`
}

type appPasswordJSON struct {
	ID               string  `json:"id"`
	Name             string  `json:"name"`
	CreatedAt        string  `json:"created_at"`
	LastUsedAt       *string `json:"last_used_at"` // null when never used
	LastUsedProtocol string  `json:"last_used_protocol"`
	LastUsedIP       string  `json:"last_used_ip"`
	Active           bool    `json:"active"`
}

type createdAppPasswordJSON struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Password  string `json:"password"`
	CreatedAt string `json:"created_at"`
}

// rfc3339 formats t in UTC to the second, as every JSON time of the CLI.
func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func toDomainJSON(d account.Domain, cutoff time.Time) domainJSON {
	return domainJSON{Name: d.Name, CreatedAt: rfc3339(d.CreatedAt), Policy: string(d.Policy(cutoff)), Quota: d.MailQuota}
}

func toMemberJSON(m account.Member, cutoff time.Time) memberJSON {
	return memberJSON{
		Email:           m.Email,
		Name:            m.Name,
		Domain:          m.Domain(),
		Policy:          string(m.Policy(cutoff)),
		UseAppPasswords: m.AppPasswordsOnly(cutoff),
		State:           string(m.State),
	}
}

func toAppPasswordJSON(p account.AppPasswordView) appPasswordJSON {
	j := appPasswordJSON{
		ID:               p.ID,
		Name:             p.Name,
		CreatedAt:        rfc3339(p.CreatedAt),
		LastUsedProtocol: p.LastUsedProtocol,
		LastUsedIP:       p.LastUsedIP,
		Active:           p.Active,
	}
	if !p.LastUsedAt.IsZero() {
		s := rfc3339(p.LastUsedAt)
		j.LastUsedAt = &s
	}
	return j
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes rows aligned in columns; the first row is the header.
func table(w io.Writer, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range rows {
		for i, c := range r {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, c)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// localTime shows a time to an operator: local zone, to the minute.
func localTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Local().Format("2006-01-02 15:04")
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
