package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"strings"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/dkim"
	"github.com/postern/postern/internal/dnsrecords"
)

// What receivers check of the mail Postern sends: the DKIM keys of each
// domain (`postern domain dkim …`, made at `domain add` and at serve's
// start for a domain without any) and the MTA-STS policy on the web
// listener, with the flags serve and `domain dns` share.

// sendingFlags are the flags of serve and `domain dns` that must agree:
// the MX host the policy names and the policy's mode, whose hash is the
// policy id that `domain dns` prints. Both come from the environment too
// (POSTERN_MAIL_HOST, POSTERN_MTA_STS_MODE), which keeps them in step.
type sendingFlags struct {
	mailHost, mtaSTSMode string
}

func (f *sendingFlags) register(a *app, fs *flag.FlagSet) {
	a.configVar(fs, &f.mailHost, "mail-host", "", "host name of the MX and of IMAP, POP3 and submission, named by the DNS records and the MTA-STS policy (default: the --base-url host)")
	a.configVar(fs, &f.mtaSTSMode, "mta-sts-mode", dnsrecords.MTASTSTesting,
		"the MTA-STS policy's mode: testing (senders report TLS failures but deliver), enforce (they refuse to deliver without valid TLS) or none (the policy is withdrawn); start with testing")
}

// mode checks --mta-sts-mode.
func (f *sendingFlags) mode(cmd *command) (string, error) {
	switch m := strings.ToLower(strings.TrimSpace(f.mtaSTSMode)); m {
	case dnsrecords.MTASTSEnforce, dnsrecords.MTASTSTesting, dnsrecords.MTASTSNone:
		return m, nil
	}
	return "", usagef(cmd, "--mta-sts-mode must be enforce, testing or none, not %q", f.mtaSTSMode)
}

// keyring opens the store and returns the DKIM keyring, sealing with the
// secret key file; from then on a domain created by this process is
// created with its keys, in the same transaction. Every key it makes or
// retires is in the audit log, in the change's transaction, as by's.
func (a *app) keyring(ctx context.Context, by account.Actor) (*dkim.Keyring, error) {
	svc, err := a.open(ctx)
	if err != nil {
		return nil, err
	}
	audited := a.db.DKIMAudited(func(action, domain, detail string) account.Effects {
		return svc.DomainAudit(action, domain, by, detail)
	})
	ring, err := dkim.NewKeyring(audited, svc.Config.Key)
	if err != nil {
		return nil, err
	}
	a.db.SetDomainKeys(ring.NewDomainKeys)
	return ring, nil
}

// setupSending checks the sending flags, makes the DKIM signer, gives
// every domain without keys its first pair in the background (logged),
// and returns the MTA-STS policy's mode for setupWeb.
func (s *server) setupSending(ctx context.Context) error {
	mode, err := s.flags.sending.mode(serveCommand)
	if err != nil {
		return err
	}
	s.mtaSTSMode = mode
	ring, err := s.app.keyring(ctx, account.Actor{Via: "system"})
	if err != nil {
		return err
	}
	s.signer = dkim.NewSigner(ring)
	s.tasks = append(s.tasks, task{"dkim-keys", func(ctx context.Context) error {
		err := ring.EnsureKeys(ctx, func(domain string, keys []dkim.StoredKey) {
			s.log.Info("made the DKIM keys of a domain that had none; publish their records (postern domain dns)",
				"domain", domain, "selectors", selectorList(keys))
		})
		if err != nil && ctx.Err() == nil {
			// Mail of those domains goes unsigned until the next start or
			// a rotation; serving goes on.
			s.log.Error("making DKIM keys failed; run 'postern domain dkim rotate DOMAIN' for the domains without keys", "err", err)
		}
		return nil
	}})
	return nil
}

// mtaSTSPolicy is the policy served for every local domain: it names the
// mail host as `domain dns` does (--mail-host, else the --base-url host),
// else the host apps are told.
func (s *server) mtaSTSPolicy(publicHost string) string {
	host := s.flags.sending.mailHost
	if host == "" {
		if u, err := url.Parse(s.app.baseURL); err == nil && u.Hostname() != "" {
			host = u.Hostname()
		} else {
			host = publicHost
		}
	}
	return dnsrecords.MTASTSPolicy(s.mtaSTSMode, host)
}

// sendingRecords fills in the DKIM records of the domain's published keys
// and the MTA-STS policy's id for `domain dns`; the TLS reports go where
// DMARC's do. hint is a line for the operator when the domain has no keys.
func (a *app) sendingRecords(ctx context.Context, c *dnsrecords.Config, mode string) (hint string, err error) {
	ring, err := a.keyring(ctx, cliActor)
	if err != nil {
		return "", err
	}
	keys, err := ring.Keys(ctx, c.Domain)
	if err != nil {
		return "", err
	}
	for _, k := range keys {
		if k.Published() {
			c.DKIM = append(c.DKIM, dnsrecords.DKIMKey{Selector: k.Selector, Value: k.Public})
		}
	}
	if len(c.DKIM) == 0 {
		hint = fmt.Sprintf("%s has no DKIM keys yet: 'postern domain dkim rotate %s' makes them (serve also does at start); then run this again.", c.Domain, c.Domain)
	}
	c.MTASTS = &dnsrecords.MTASTS{PolicyID: dnsrecords.MTASTSPolicyID(dnsrecords.MTASTSPolicy(mode, c.MailHost)), Mode: mode, ReportTo: c.ReportTo}
	return hint, nil
}

// dkimKeyJSON is a DKIM key as domain dkim list and rotate print it.
type dkimKeyJSON struct {
	Selector  string  `json:"selector"`
	Algorithm string  `json:"algorithm"`
	CreatedAt string  `json:"created_at"`
	Active    bool    `json:"active"`
	State     string  `json:"state"`      // active, published (inactive, record still needed) or retired
	RetiredAt *string `json:"retired_at"` // null while published
	Name      string  `json:"name"`       // SELECTOR._domainkey.DOMAIN
	TXT       string  `json:"txt"`        // the TXT record's value
}

func toDKIMKeyJSON(k dkim.StoredKey) dkimKeyJSON {
	j := dkimKeyJSON{Selector: k.Selector, Algorithm: k.Algorithm, CreatedAt: rfc3339(k.CreatedAt), Active: k.Active,
		State: k.State(), Name: k.Selector + "._domainkey." + k.Domain, TXT: k.Public}
	if !k.Published() {
		s := rfc3339(k.RetiredAt)
		j.RetiredAt = &s
	}
	return j
}

// dkimZone is the key's record as a zone-file line.
func dkimZone(k dkim.StoredKey) string {
	return dnsrecords.Record{Name: k.Selector + "._domainkey." + k.Domain, Type: "TXT", TTL: dnsrecords.TTL, Value: k.Public}.Zone()
}

func selectorList(keys []dkim.StoredKey) string {
	var s []string
	for _, k := range keys {
		s = append(s, k.Selector)
	}
	return strings.Join(s, ", ")
}

// dkimDomain returns the keyring and the domain's name as stored, or the
// error for an unknown domain.
func dkimDomain(ctx context.Context, a *app, name string) (*dkim.Keyring, string, error) {
	ring, err := a.keyring(ctx, cliActor)
	if err != nil {
		return nil, "", err
	}
	d, err := a.svc.Domain(ctx, name)
	if err != nil {
		return nil, "", err
	}
	return ring, d.Name, nil
}

func domainDKIMList(a *app, fs *flag.FlagSet) runFunc {
	asJSON := fs.Bool("json", false, `print [{"selector","algorithm","created_at","active","state","retired_at","name","txt"}], oldest first`)
	return func(ctx context.Context, a *app, args []string) error {
		ring, domain, err := dkimDomain(ctx, a, args[0])
		if err != nil {
			return err
		}
		keys, err := ring.Keys(ctx, domain)
		if err != nil {
			return err
		}
		out := make([]dkimKeyJSON, 0, len(keys))
		for _, k := range keys {
			out = append(out, toDKIMKeyJSON(k))
		}
		if *asJSON {
			return writeJSON(a.stdout, out)
		}
		if len(keys) == 0 {
			_, err := fmt.Fprintf(a.stdout, "%s has no DKIM keys: its mail is not signed. Make them with 'postern domain dkim rotate %s' (serve also does at start).\n", domain, domain)
			return err
		}
		rows := [][]string{{"SELECTOR", "ALGORITHM", "CREATED", "STATE"}}
		for _, k := range keys {
			rows = append(rows, []string{k.Selector, k.Algorithm, localTime(k.CreatedAt), k.State()})
		}
		if err := table(a.stdout, rows); err != nil {
			return err
		}
		fmt.Fprintln(a.stdout, "\n; Records to keep published: the active keys sign, the other published ones verify mail sent before the last rotation.")
		for _, k := range keys {
			if k.Published() {
				fmt.Fprintln(a.stdout, dkimZone(k))
			}
		}
		return nil
	}
}

func domainDKIMRotate(a *app, fs *flag.FlagSet) runFunc {
	asJSON := fs.Bool("json", false, `print the new keys as [{"selector","algorithm","created_at","active","state","retired_at","name","txt"}]`)
	return func(ctx context.Context, a *app, args []string) error {
		ring, domain, err := dkimDomain(ctx, a, args[0])
		if err != nil {
			return err
		}
		fresh, err := ring.Rotate(ctx, domain)
		if err != nil {
			return err
		}
		if *asJSON {
			out := make([]dkimKeyJSON, 0, len(fresh))
			for _, k := range fresh {
				out = append(out, toDKIMKeyJSON(k))
			}
			return writeJSON(a.stdout, out)
		}
		all, err := ring.Keys(ctx, domain)
		if err != nil {
			return err
		}
		var old []dkim.StoredKey
		for _, k := range all {
			if !k.Active && k.Published() {
				old = append(old, k)
			}
		}
		w := a.stdout
		fmt.Fprintf(w, "New DKIM keys for %s: %s. Every node signs with them within a minute.\n", domain, selectorList(fresh))
		fmt.Fprintf(w, "Publish their records now (until then receivers cannot check the new signatures):\n")
		for _, k := range fresh {
			fmt.Fprintln(w, dkimZone(k))
		}
		if len(old) > 0 {
			fmt.Fprintf(w, "\nKeep the records of %s published for a week: mail signed with them may still be on its way. Then remove them from DNS and retire the keys:\n", selectorList(old))
			for _, k := range old {
				fmt.Fprintf(w, "  postern domain dkim retire %s %s\n", domain, k.Selector)
			}
		}
		return nil
	}
}

func domainDKIMRetire(a *app, fs *flag.FlagSet) runFunc {
	return func(ctx context.Context, a *app, args []string) error {
		ring, domain, err := dkimDomain(ctx, a, args[0])
		if err != nil {
			return err
		}
		sel := strings.TrimSpace(args[1])
		if err := ring.Retire(ctx, domain, sel); err != nil {
			return err
		}
		_, err = fmt.Fprintf(a.stdout, "Retired the DKIM key %s of %s and erased its private key. Remove its record %s._domainkey.%s from DNS.\n", sel, domain, sel, domain)
		return err
	}
}
