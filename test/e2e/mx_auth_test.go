package e2e

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/postern/postern/internal/mailauth/mailauthtest"
)

// TestMXSenderAuth sends with swaks to the MX listener, which asks a DNS
// server on loopback (--dns-resolver) for SPF, DKIM and DMARC records, and
// reads each message's folder and Authentication-Results over IMAP.
func TestMXSenderAuth(t *testing.T) {
	dns := mailauthtest.Start(t)
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dns.Add(t,
		// Every client here sends from a 127/8 address.
		`pass.test. TXT "v=spf1 ip4:127.0.0.0/8 -all"`,
		`fail.test. TXT "v=spf1 ip4:192.0.2.1 -all"`,
		`soft.test. TXT "v=spf1 ip4:192.0.2.1 ~all"`,
		`_dmarc.bank.test. TXT "v=DMARC1; p=reject"`,
		`_dmarc.shop.test. TXT "v=DMARC1; p=quarantine"`,
	)
	keyRecord := "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)
	dns.TXT(t, "sel._domainkey.bank.test", keyRecord)
	dns.TXT(t, "sel._domainkey.shop.test", keyRecord)

	in := NewSQLite(t)
	in.MustRun(t, "domain", "add", "example.com")
	bob := addMember(t, in, "bob@example.com")
	pw := createAppPass(t, in, bob.Email, "imap")
	srv := in.StartServer(t, "--smtp-addr", "127.0.0.1:0", "--dns-resolver", dns.Addr)
	host, _ := os.Hostname()

	message := func(from, subject string) string {
		return "From: " + from + "\r\nTo: bob@example.com\r\nSubject: " + subject +
			"\r\nDate: Wed, 02 Dec 2026 08:00:00 +0000\r\nMessage-ID: <" + subject + "@e2e.test>\r\n\r\nHello Bob.\r\n"
	}
	signed := func(from, subject, domain string) string {
		var b bytes.Buffer
		if err := dkim.Sign(&b, strings.NewReader(message(from, subject)), &dkim.SignOptions{
			Domain: domain, Selector: "sel", Signer: key,
			HeaderCanonicalization: dkim.CanonicalizationRelaxed, BodyCanonicalization: dkim.CanonicalizationRelaxed,
		}); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}

	for _, tc := range []struct {
		name, mailFrom, msg string
		reply               string // the reply to the message's data
		folder              string // "" when refused
		results             []string
	}{
		{"spf pass", "a@pass.test", message("a@pass.test", "spf-pass"), "250 ", "INBOX",
			[]string{"spf=pass smtp.mailfrom=pass.test", "dkim=none", "dmarc=none header.from=pass.test"}},
		{"spf fail", "a@fail.test", message("a@fail.test", "spf-fail"), "250 ", "INBOX",
			[]string{"spf=fail smtp.mailfrom=fail.test", "dmarc=none"}},
		{"spf softfail", "a@soft.test", message("a@soft.test", "spf-softfail"), "250 ", "INBOX",
			[]string{"spf=softfail smtp.mailfrom=soft.test"}},
		{"dkim valid, dmarc pass despite spf fail", "ceo@fail.test", signed("ceo@bank.test", "dkim-valid", "bank.test"), "250 ", "INBOX",
			[]string{"spf=fail", "dkim=pass header.b=", "header.d=bank.test", "header.s=sel", "dmarc=pass header.from=bank.test"}},
		{"dkim broken, p=quarantine", "a@fail.test",
			strings.Replace(signed("a@shop.test", "dkim-broken", "shop.test"), "Hello Bob.", "Hello Bob, send money.", 1), "250 ", "Junk",
			[]string{"dkim=fail reason=\"dkim: body hash did not verify\"", "dmarc=fail", "header.from=shop.test"}},
		{"dmarc p=reject", "ceo@fail.test", message("ceo@bank.test", "dmarc-reject"), "550 5.7.1 DMARC policy of bank.test", "", nil},
		{"forged results stripped", "a@pass.test",
			"Authentication-Results: " + host + "; dmarc=pass header.from=bank.test\r\n" +
				"authentication-results: mx.fake;\r\n\tdkim=pass\r\n" + message("a@pass.test", "forged"), "250 ", "INBOX",
			[]string{"spf=pass"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "msg.eml")
			if err := os.WriteFile(file, []byte(tc.msg), 0o600); err != nil {
				t.Fatal(err)
			}
			_, out := tool(t, "swaks", "--server", srv.Addr("smtp"), "--local-interface", nextSrc(), "--timeout", "60",
				"--helo", "client.e2e.test", "--from", tc.mailFrom, "--to", bob.Email, "--data", "@"+file)
			if r := dataReply(out); !strings.HasPrefix(r, tc.reply) {
				t.Fatalf("swaks: reply %q to the data, want %q:\n%s", r, tc.reply, out)
			}
			subject := "Subject: " + strings.SplitN(strings.SplitN(tc.msg, "Subject: ", 2)[1], "\r\n", 2)[0]
			got := findMessage(t, srv, bob.Email, pw.Password, subject)
			if tc.folder == "" {
				if len(got) > 0 {
					t.Fatalf("refused message delivered: %v", got)
				}
				return
			}
			raw, ok := got[tc.folder]
			if !ok || len(got) != 1 {
				t.Fatalf("message in %v, want %s only", folderNames(got), tc.folder)
			}
			header := strings.SplitN(raw, "\r\n\r\n", 2)[0]
			if n := strings.Count(strings.ToLower(header), "authentication-results:"); n != 1 {
				t.Fatalf("%d Authentication-Results fields:\n%s", n, header)
			}
			if !strings.Contains(header, "Authentication-Results: "+host+";\r\n\t") {
				t.Errorf("no Authentication-Results of %s:\n%s", host, header)
			}
			unfolded := strings.NewReplacer("\r\n\t", " ", "\r\n ", " ").Replace(header)
			for _, want := range tc.results {
				if !strings.Contains(unfolded, want) {
					t.Errorf("header lacks %q:\n%s", want, header)
				}
			}
		})
	}
}

// A --dns-resolver that is not IP:PORT stops serve before it listens.
func TestMXDNSResolverFlag(t *testing.T) {
	in := NewSQLite(t)
	// Every listener on a free port, should the value be taken after all.
	args := []string{"serve", "--smtp-addr", "127.0.0.1:0"}
	for _, name := range listenerFlags {
		args = append(args, "--"+name+"-addr", "127.0.0.1:0")
	}
	for _, bad := range []string{"dns.example:53", "127.0.0.1:0", "127.0.0.1:x"} {
		r := in.Run(t, append(args, "--dns-resolver", bad)...)
		if r.Code != 2 || !strings.Contains(r.Stderr, "--dns-resolver") || strings.Contains(r.Stdout, "ready") {
			t.Errorf("--dns-resolver %s: %s", bad, r)
		}
	}
}

// dataReply is the server's reply to the end of the data in swaks's
// transcript ("<-  250 ..." or "<** 550 ...").
func dataReply(out string) string {
	_, after, ok := strings.Cut(out, "\n -> .\n")
	if !ok {
		return ""
	}
	line, _, _ := strings.Cut(after, "\n")
	line = strings.TrimSpace(line)
	for _, p := range []string{"<-", "<**"} {
		if strings.HasPrefix(line, p+" ") {
			return strings.TrimSpace(line[len(p):])
		}
	}
	return ""
}

// findMessage returns, for each of INBOX and Junk holding a message with
// the subject line, that message's raw text.
func findMessage(t *testing.T, srv *Server, user, password, subject string) map[string]string {
	t.Helper()
	folders := []string{"INBOX"}
	list := imapSession(t, srv, user, password, []any{"list"})
	if strings.Contains(fmt.Sprint(list[0].Data), `"Junk"`) || strings.Contains(fmt.Sprint(list[0].Data), " Junk") {
		folders = append(folders, "Junk") // made at the first delivery there
	}
	var commands [][]any
	for _, f := range folders {
		commands = append(commands, []any{"select", f}, []any{"uid", "FETCH", "1:*", "(BODY.PEEK[])"})
	}
	res := imapSession(t, srv, user, password, commands...)
	found := map[string]string{}
	for i, f := range folders {
		for _, d := range res[2*i+1].Data {
			part, ok := d.([]any)
			if !ok || len(part) < 2 {
				continue
			}
			if body, _ := part[1].(string); strings.Contains(body, "\r\n"+subject+"\r\n") {
				found[f] = body
			}
		}
	}
	return found
}

func folderNames(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
