package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/postern/postern/internal/account"
)

// The demo's domains and members: one enforced domain, and an optional one
// with a member of each setting, so every case of the policy can be tried.
var demoDomains = []struct {
	name    string
	created time.Time // zero: today
}{
	{"example.com", time.Time{}},
	{"legacy.example", time.Date(2020, 4, 1, 0, 0, 0, 0, account.DefaultCutoff.Location())},
}

var demoMembers = []struct {
	email, name string
	useAppPw    bool // the setting, for members of the optional domain
}{
	{"alice@example.com", "Alice Example", false},
	{"bob@legacy.example", "Bob Legacy", false},
	{"carol@legacy.example", "Carol Legacy", true},
}

// demoPasswordFile keeps the demo members' main passwords in the data folder,
// so a second run shows the same ones. Random per installation rather than
// fixed: a demo reachable from a network is not an open door.
const demoPasswordFile = "demo-passwords.txt"

func demoSetup(a *app, fs *flag.FlagSet) runFunc {
	var f serveFlags
	f.register(a, fs)
	// The MX listener is on in the demo, on a port that needs no root.
	f.mail.smtp = demoSMTPAddr
	fs.Lookup("smtp-addr").DefValue = demoSMTPAddr
	return func(ctx context.Context, a *app, args []string) error {
		s, err := newServer(ctx, a, &f)
		if err != nil {
			return err
		}
		passwords, err := seedDemo(ctx, a)
		if err != nil {
			return fmt.Errorf("seed the demo: %w", err)
		}
		if err := s.start(); err != nil {
			return err
		}
		if err := printDemoBox(ctx, a.stdout, s, passwords); err != nil {
			return err
		}
		s.ready()
		return s.wait(ctx)
	}
}

// seedDemo creates what is missing of the demo data, and returns the main
// password of each demo member. Running it again changes nothing, except that
// a member whose password is not in the file (the file was deleted) gets a
// new one.
func seedDemo(ctx context.Context, a *app) (map[string]string, error) {
	svc := a.svc
	path := filepath.Join(a.data, demoPasswordFile)
	passwords, err := readDemoPasswords(path)
	if err != nil {
		return nil, err
	}
	for _, d := range demoDomains {
		if _, err := svc.AddDomainBy(ctx, d.name, d.created, cliActor); err != nil && account.ErrorCode(err) != account.ECONFLICT {
			return nil, err
		}
	}
	changed := false
	for _, dm := range demoMembers {
		pw, known := passwords[dm.email]
		if !known {
			pw = strongPassword()
			passwords[dm.email] = pw
			changed = true
		}
		m, err := svc.Member(ctx, dm.email)
		switch {
		case account.ErrorCode(err) == account.ENOTFOUND:
			if m, err = svc.AddMemberBy(ctx, dm.email, dm.name, pw, cliActor); err != nil {
				return nil, err
			}
			if dm.useAppPw {
				if err := svc.SetUseAppPasswords(ctx, m, true, cliActor); err != nil {
					return nil, err
				}
			}
		case err != nil:
			return nil, err
		case !known:
			if err := svc.ChangePassword(ctx, m, "", pw, true, false, cliActor); err != nil {
				return nil, err
			}
		}
	}
	if changed {
		if err := writeDemoPasswords(path, passwords); err != nil {
			return nil, err
		}
	}
	return passwords, nil
}

func readDemoPasswords(path string) (map[string]string, error) {
	out := map[string]string{}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	} else if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if email, pw, ok := strings.Cut(strings.TrimSpace(sc.Text()), " "); ok && !strings.HasPrefix(email, "#") {
			out[email] = pw
		}
	}
	return out, sc.Err()
}

func writeDemoPasswords(path string, passwords map[string]string) error {
	var b strings.Builder
	b.WriteString("# Main passwords of the demo members (postern demo). Delete this file to get new ones.\n")
	emails := make([]string, 0, len(passwords))
	for e := range passwords {
		emails = append(emails, e)
	}
	sort.Strings(emails)
	for _, e := range emails {
		fmt.Fprintf(&b, "%s %s\n", e, passwords[e])
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("save the demo passwords: %w", err)
	}
	return nil
}

// listenerLabels describe the listeners in the demo box.
var listenerLabels = map[string]string{
	"imap":        "IMAP, STARTTLS",
	"imaps":       "IMAP, TLS",
	"pop3":        "POP3, STLS",
	"pop3s":       "POP3, TLS",
	"submission":  "SMTP submission, STARTTLS",
	"submissions": "SMTP submission, TLS",
	"smtp":        "incoming mail (MX), no AUTH",
	"lmtp":        "LMTP",
}

// demoWidth is the widest line the demo prints: a terminal's 80 columns.
const demoWidth = 80

func printDemoBox(ctx context.Context, w io.Writer, s *server, passwords map[string]string) error {
	web := ""
	if addr := s.addr("https"); addr != "" {
		web = "https://" + browsable(addr) + "/" // --web-addr redirects there
	} else if addr := s.addr("web"); addr != "" {
		web = "http://" + browsable(addr) + "/"
	}
	lines := []string{"Postern demo is running. Stop it with Ctrl-C.", ""}
	if web != "" {
		lines = append(lines, "Web UI and API   "+web, "CalDAV/CardDAV   "+web+"dav/ (Basic auth)")
	}
	for _, l := range s.listeners {
		if label, ok := listenerLabels[l.name]; ok {
			lines = append(lines, fmt.Sprintf("%-16s %s (%s)", strings.ToUpper(l.name), browsable(l.ln.Addr().String()), label))
		}
	}
	lines = append(lines, "", fmt.Sprintf("%-22s %s", "Member", "Main password"))
	for _, dm := range demoMembers {
		m, err := s.svc.Member(ctx, dm.email)
		if err != nil {
			return err
		}
		how := "the main password (setting off)"
		switch {
		case s.svc.Policy(m) == account.PolicyEnforced:
			how = "third-party app passwords only (enforced domain)"
		case m.UseAppPasswords:
			how = "third-party app passwords only (setting on)"
		}
		lines = append(lines, fmt.Sprintf("%-22s %s", m.Email, passwords[dm.email]), "  Apps log in with "+how)
	}
	lines = append(lines, "")
	lines = append(lines, wrapWords("The main password signs in to the web UI. Create third-party app passwords there (profile picture → Security) or on the command line, as below. The TLS certificate is self-signed unless --tls-cert is given.", demoWidth-4)...)
	lines = append(lines, wrapWords("Passwords are kept in "+filepath.Join(s.app.data, demoPasswordFile)+".", demoWidth-4)...)
	width := 0
	for _, l := range lines {
		width = max(width, utf8.RuneCountInString(l))
	}
	var b strings.Builder
	b.WriteString("┌" + strings.Repeat("─", width+2) + "┐\n")
	for _, l := range lines {
		b.WriteString("│ " + l + strings.Repeat(" ", width-utf8.RuneCountInString(l)) + " │\n")
	}
	b.WriteString("└" + strings.Repeat("─", width+2) + "┘\n")
	// The commands go below the box, where they can be copied whole.
	b.WriteString("A third-party app password from the command line:\n")
	for _, l := range shellLines(s.app.selfCommand("apppass", "create", "alice@example.com", "--name", "Thunderbird"), "  ", demoWidth) {
		b.WriteString(l + "\n")
	}
	if addr := s.addr("smtp"); addr != "" {
		b.WriteString("Mail from outside arrives on SMTP, e.g. with swaks:\n")
		for _, l := range shellLines([]string{"swaks", "--server", browsable(addr), "--from", "someone@elsewhere.test", "--to", "alice@example.com"}, "  ", demoWidth) {
			b.WriteString(l + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// wrapWords breaks text into lines of at most width runes at spaces; a
// word longer than width (a long path) gets a line of its own.
func wrapWords(text string, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(text) {
		switch {
		case line == "":
			line = w
		case utf8.RuneCountInString(line)+1+utf8.RuneCountInString(w) > width:
			lines = append(lines, line)
			line = w
		default:
			line += " " + w
		}
	}
	return append(lines, line)
}

// browsable turns a wildcard listen address into one a browser can open.
func browsable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
