package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/dnsrecords"
	"github.com/postern/postern/packaging/systemd"
)

// quickstart sets up a new installation for one real domain: the
// configuration file, the domain, its first member as the organisation
// admin, then prints what the operator needs once: the admin's one-time
// password, the DNS records, the systemd unit and the next steps.

// unitData and unitBinary are the data folder and the binary the packaged
// unit names (packaging/systemd/postern.service).
const (
	unitData   = "/var/lib/postern"
	unitBinary = "/usr/local/bin/postern"
)

// quickstartListeners are the production listeners quickstart writes unless
// a flag or variable gives another address: mail on the standard ports of
// every address, the web listener (plain HTTP) and metrics on loopback, as
// the packaged unit has them.
var quickstartListeners = []struct{ flag, addr string }{
	{"web-addr", "127.0.0.1:8080"},
	{"metrics-addr", "127.0.0.1:9465"},
	{"smtp-addr", ":25"},
	{"imap-addr", ":143"},
	{"imaps-addr", ":993"},
	{"pop3-addr", ":110"},
	{"pop3s-addr", ":995"},
	{"submission-addr", ":587"},
	{"submissions-addr", ":465"},
}

// quickstartHints are settings written commented out, unless given, for
// the operator to fill in.
var quickstartHints = []struct{ comment, key, value string }{
	{"The certificate of the mail host; without it a self-signed one is made in DATA/tls.", "tls-cert", "/etc/postern/tls/fullchain.pem"},
	{"", "tls-key", "/etc/postern/tls/privkey.pem"},
	{"The TLS proxy in front of the web listener, whose X-Forwarded-For Postern believes.", "trusted-proxies", "127.0.0.1"},
}

func quickstartSetup(a *app, fs *flag.FlagSet) runFunc {
	var f serveFlags
	f.register(a, fs) // every setting of serve may be given, and is written to the file
	for _, l := range quickstartListeners {
		fl := fs.Lookup(l.flag)
		fl.Value.Set(l.addr)
		fl.DefValue = l.addr
	}
	return func(ctx context.Context, a *app, args []string) error {
		return quickstart(ctx, a, fs, &f, args[0], args[1])
	}
}

func quickstart(ctx context.Context, a *app, fs *flag.FlagSet, f *serveFlags, mailHost, adminEmail string) error {
	cmd := quickstartCommand
	mailHost = strings.TrimSuffix(strings.ToLower(mailHost), ".")
	if err := dnsrecords.Check("the mail host", mailHost); err != nil {
		return usagef(cmd, "%v", err)
	}
	at := strings.LastIndexByte(adminEmail, '@')
	if at <= 0 || at == len(adminEmail)-1 {
		return usagef(cmd, "%q is not an email address: give the admin's, such as admin@example.com", adminEmail)
	}
	domain := strings.ToLower(adminEmail[at+1:])
	if !a.given["base-url"] {
		a.baseURL = "https://" + mailHost
		fs.Set("base-url", a.baseURL)
	}
	if err := account.CheckBaseURL(a.baseURL); err != nil {
		return usagef(cmd, "--base-url: %v", err)
	}
	if !a.given["mail-host"] {
		f.sending.mailHost = mailHost
		fs.Set("mail-host", mailHost)
	}
	if _, err := f.sending.mode(cmd); err != nil {
		return err
	}
	data, err := filepath.Abs(a.data)
	if err != nil {
		return err
	}
	a.data = data
	fs.Set("data", data)
	configPath := a.configPath
	if configPath == "" {
		if v, ok := a.lookupEnv(configEnv); ok && v != "" {
			configPath = v
		}
	}
	defaultPlace := configPath == ""
	if defaultPlace {
		configPath = filepath.Join(data, configFileName)
	}
	if configPath, err = filepath.Abs(configPath); err != nil {
		return err
	}

	// Never over an installation: a file in the data folder is one's.
	if entries, err := os.ReadDir(data); err == nil && len(entries) > 0 {
		return failf("the data folder %s is not empty: quickstart sets up a new installation and never changes one; give an empty or new folder with --data", data)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if _, err := os.Stat(configPath); err == nil {
		return failf("%s exists: quickstart never overwrites a configuration file", configPath)
	}
	text, err := quickstartConfig(a, fs, time.Now())
	if err != nil {
		return err
	}

	svc, err := a.open(ctx)
	if err != nil {
		return err
	}
	if ds, err := svc.DomainNames(ctx); err != nil {
		return err
	} else if len(ds) > 0 {
		return failf("the database already has domains (%s, …): quickstart sets up a new installation and never changes one", ds[0])
	}
	// As `domain add`: through the keyring, the domain is created with its
	// DKIM keys, so the records printed below hold them.
	if _, err := a.keyring(ctx, cliActor); err != nil {
		return err
	}
	d, err := svc.AddDomainBy(ctx, domain, time.Time{}, cliActor)
	if err != nil {
		return err
	}
	m, oneTime, err := svc.AddMemberOneTime(ctx, account.AdminAccess{Org: true}, adminEmail, "", cliActor)
	if err != nil {
		return err
	}
	if _, err := svc.GrantAdmin(ctx, m.Email, nil, cliActor); err != nil {
		return err
	}
	if err := svc.SaveBaseURL(ctx, a.baseURL); err != nil {
		return err
	}
	if err := writeNewFile(configPath, text); err != nil {
		return err
	}

	w := a.stdout
	fmt.Fprintf(w, "Postern is set up in %s.\n\n", data)
	fmt.Fprintf(w, "Settings   %s\n", configPath)
	fmt.Fprintf(w, "Domain     %s (created %s, policy %s)\n", d.Name, d.CreatedAt.In(a.cutoff.Location()).Format(dateLayout), d.Policy(a.cutoff))
	fmt.Fprintf(w, "Admin      %s, administrator of every domain\n\n", m.Email)
	fmt.Fprintf(w, "One-time password of %s: %s\n", m.Email, oneTime)
	fmt.Fprintf(w, "It is shown only this once. It signs in to the web only, where a new password\nmust be chosen first.\n\n")

	fmt.Fprintf(w, "== DNS records (postern domain dns %s prints them again) ==\n\n", d.Name)
	if err := a.printDomainDNS(ctx, cmd, &f.sending, d.Name, false); err != nil {
		return err
	}

	fmt.Fprintf(w, "\n== systemd unit: /etc/systemd/system/postern.service ==\n\n")
	io.WriteString(w, quickstartUnit(data, configPath, defaultPlace))

	fmt.Fprintf(w, "\n== Next steps ==\n\n")
	quickstartNext(a, fs, w, d.Name, m.Email, configPath)
	return nil
}

func (a *app) lookupEnv(name string) (string, bool) {
	if a.getenv != nil {
		return a.getenv(name)
	}
	return os.LookupEnv(name)
}

// writeNewFile creates path with text, never over an existing file.
func writeNewFile(path, text string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write the configuration file: %w", err)
	}
	if _, err := io.WriteString(f, text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// quickstartConfig is the configuration file: the data folder, the web and
// mail host names, the listeners, then every other configuration flag given
// to quickstart (by a flag or a variable), as fs holds them. It is read back
// before it is used, so that quickstart never writes a file serve refuses.
func quickstartConfig(a *app, fs *flag.FlagSet, now time.Time) (string, error) {
	var b strings.Builder
	written := map[string]bool{}
	put := func(name string) {
		fmt.Fprintf(&b, "%s = %s\n", name, tomlString(fs.Lookup(name).Value.String()))
		written[name] = true
	}
	fmt.Fprintf(&b, "# Postern's settings, written by postern quickstart on %s.\n", now.Format(dateLayout))
	b.WriteString("# Each key is a flag of postern without its dashes (postern serve --help lists\n")
	b.WriteString("# them); a flag or a POSTERN_ variable wins over this file. Restart postern\n")
	b.WriteString("# after a change.\n\n")
	put("data")
	b.WriteString("# The public address of the web UI, and the host of the MX, IMAP, POP3 and\n# submission, which the DNS records name.\n")
	put("base-url")
	put("mail-host")
	b.WriteString("\n# The web UI, API and CalDAV/CardDAV: plain HTTP, for a TLS proxy in front.\n")
	b.WriteString("# Prometheus metrics. Then the mail listeners; \"\" turns one off.\n")
	for _, l := range quickstartListeners {
		put(l.flag)
	}
	var others []string
	for name := range a.envOK {
		if a.given[name] && !written[name] {
			others = append(others, name)
		}
	}
	sort.Strings(others)
	if len(others) > 0 {
		b.WriteString("\n# Given to quickstart.\n")
		for _, name := range others {
			put(name)
		}
	}
	b.WriteString("\n")
	for _, h := range quickstartHints {
		if written[h.key] {
			continue
		}
		if h.comment != "" {
			b.WriteString("# " + h.comment + "\n")
		}
		fmt.Fprintf(&b, "#%s = %s\n", h.key, tomlString(h.value))
	}
	text := b.String()
	// Read back: every key a setting, every value as written.
	tmp, err := os.CreateTemp("", "postern-quickstart-*.toml")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	tmp.WriteString(text)
	tmp.Close()
	cf, err := readConfigFile(tmp.Name())
	if err != nil {
		return "", fmt.Errorf("the configuration file quickstart made is wrong: %w", err)
	}
	for name := range written {
		if cf.values[name] != fs.Lookup(name).Value.String() {
			return "", fmt.Errorf("the configuration file quickstart made reads %s = %q, not %q", name, cf.values[name], fs.Lookup(name).Value.String())
		}
	}
	return text, nil
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\u%04X", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// quickstartUnit is the packaged unit with the command line that leaves the
// settings to the configuration file: the listener flags of the packaged
// ExecStart would win over the file's. A data folder other than the
// unit's own is made writable for the service.
func quickstartUnit(data, configPath string, defaultPlace bool) string {
	execStart := "ExecStart=" + unitBinary + " serve --data " + data
	if !defaultPlace {
		execStart += " --config " + configPath
	}
	lines := strings.Split(systemd.Unit, "\n")
	var out []string
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if strings.HasPrefix(l, "ExecStart=") {
			// The comment above it described the flags it had.
			for len(out) > 0 && strings.HasPrefix(out[len(out)-1], "#") {
				out = out[:len(out)-1]
			}
			out = append(out, "# Every setting, the listeners too, is in "+configPath+".", execStart)
			for strings.HasSuffix(strings.TrimSpace(lines[i]), `\`) && i+1 < len(lines) {
				i++
			}
			continue
		}
		out = append(out, l)
		if strings.HasPrefix(l, "StateDirectoryMode=") && data != unitData {
			out = append(out, "# The data folder quickstart was given, writable despite ProtectSystem=strict.", "ReadWritePaths="+data)
		}
	}
	return strings.Join(out, "\n")
}

// quickstartNext says what is left to do, in order.
func quickstartNext(a *app, fs *flag.FlagSet, w io.Writer, domain, admin, configPath string) {
	var ports []string
	for _, l := range quickstartListeners {
		host, port, err := net.SplitHostPort(fs.Lookup(l.flag).Value.String())
		if err != nil || port == "0" {
			continue
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() || host == "localhost" {
			continue
		}
		ports = append(ports, port)
	}
	ports = append(ports, "80", "443") // the TLS proxy's
	sort.Slice(ports, func(i, j int) bool {
		pi, _ := strconv.Atoi(ports[i])
		pj, _ := strconv.Atoi(ports[j])
		return pi < pj
	})
	base := strings.TrimSuffix(a.baseURL, "/")
	root := os.Geteuid() == 0
	var steps []string
	steps = append(steps, "Publish the DNS records above at the DNS provider of "+domain+", with the A/AAAA records of the mail host, and ask the hosting provider for a reverse DNS (PTR) record naming it.")
	if fs.Lookup("tls-cert").Value.String() == "" {
		steps = append(steps, "Get a certificate for the mail host and set tls-cert and tls-key in "+configPath+" (docs/install.md §4); until then mail apps see a self-signed one.")
	}
	steps = append(steps,
		"Put a TLS proxy for "+base+" in front of the web listener, on ports 80 and 443, and set trusted-proxies to its address (docs/install.md §4).",
		"Open the TCP ports "+strings.Join(ports, ", ")+" in the firewall.")
	start := "Save the unit above as /etc/systemd/system/postern.service, then: systemctl daemon-reload && systemctl enable --now postern"
	if root {
		owned := a.data
		if filepath.Dir(configPath) != a.data {
			owned += " " + configPath
		}
		start = "Save the unit above as /etc/systemd/system/postern.service, give the files to the service's user (this ran as root): chown -R postern:postern " + owned + ", then: systemctl daemon-reload && systemctl enable --now postern"
	}
	steps = append(steps, start,
		"Sign in at "+base+"/ as "+admin+" with the one-time password above, and choose your own.",
		"Mail apps sign in with third-party app passwords: create them in the web UI (profile picture → Security), or with:")
	for i, s := range steps {
		for j, l := range wrapWords(s, demoWidth-4) {
			prefix := "    "
			if j == 0 {
				prefix = fmt.Sprintf("%d.  ", i+1)
			}
			fmt.Fprintln(w, prefix+l)
		}
	}
	for _, l := range shellLines(a.selfCommand("apppass", "create", admin, "--name", "Thunderbird"), "    ", demoWidth) {
		fmt.Fprintln(w, l)
	}
}
