package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// quotaScript drives one member's quota over IMAP with imaplib (STARTTLS)
// and delivery over the MX listener with smtplib: GETQUOTAROOT and
// GETQUOTA, an APPEND that fits and one that does not, SETQUOTA, then a
// RCPT with a SIZE that does not fit. It prints each answer.
const quotaScript = `
import imaplib, json, smtplib, ssl, sys
a = json.load(sys.stdin)
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
out = {}
c = imaplib.IMAP4(a["host"], a["imap"], timeout=30)
c.starttls(ssl_context=ctx)
c.login(a["user"], a["password"])
out["caps"] = c.capability()[1][0].decode().split()
msg = b"Subject: fits\r\n\r\n" + b"x" * 3000 + b"\r\n"
out["append"] = c.append("INBOX", None, None, msg)[0]
typ, data = c.getquotaroot("INBOX")
out["getquotaroot"] = [typ] + [d.decode() for group in data for d in group]
typ, data = c.getquota('""')
out["getquota"] = [typ] + [d.decode() for d in data]
typ, data = c.append("INBOX", None, None, b"Subject: big\r\n\r\n" + b"y" * 6000 + b"\r\n")
out["append_over"] = [typ, data[0].decode()]
try:
    typ, data = c.setquota('""', "(STORAGE 100000)")
    out["setquota"] = [typ, data[0].decode()]
except imaplib.IMAP4.error as e:
    out["setquota"] = ["error", str(e)]
c.logout()
s = smtplib.SMTP(a["host"], a["smtp"], timeout=30)
s.ehlo("mta.elsewhere.test")
s.mail("sender@elsewhere.test", ["SIZE=6000"])
code, text = s.rcpt(a["user"])
out["rcpt_over"] = [code, text.decode()]
s.rset()
s.mail("sender@elsewhere.test", ["SIZE=100"])
code, text = s.rcpt(a["user"])
out["rcpt_fits"] = [code, text.decode()]
s.quit()
json.dump(out, sys.stdout)
`

type quotaAnswers struct {
	Caps         []string `json:"caps"`
	Append       string   `json:"append"`
	GetQuotaRoot []string `json:"getquotaroot"`
	GetQuota     []string `json:"getquota"`
	AppendOver   []string `json:"append_over"`
	SetQuota     []string `json:"setquota"`
	RcptOver     []any    `json:"rcpt_over"`
	RcptFits     []any    `json:"rcpt_fits"`
}

// storageJSON is a member's storage fields in the CLI's JSON.
type storageJSON struct {
	Email        string `json:"email"`
	Quota        *int64 `json:"quota"`
	StorageLimit *int64 `json:"storage_limit"`
	StorageUsed  int64  `json:"storage_used"`
}

func num(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestQuota: a member's own limit (user set --quota), the domain's default
// (domain set --quota) and serve's --mailbox-quota, in that order, on both
// engines: the CLI shows them with the usage; IMAP answers GETQUOTAROOT
// and GETQUOTA in KiB and refuses an APPEND over quota with NO
// [OVERQUOTA] and SETQUOTA with NO [NOPERM]; the MX listener refuses a
// recipient over quota with 452 4.2.2; the Security page and GET
// /api/v1/me show the usage.
func TestQuota(t *testing.T) {
	Engines(t, func(t *testing.T, in *Instance) {
		in.MustRun(t, "domain", "add", "example.com")
		in.MustRun(t, "domain", "add", "other.example")
		alice := addMember(t, in, "alice@example.com")
		addMember(t, in, "bob@example.com")
		carol := addMember(t, in, "carol@other.example")
		alicePass := createAppPass(t, in, alice.Email, "Mail")

		// The CLI: the member's own, the domain's, back to the default.
		var m storageJSON
		in.RunJSON(t, &m, "user", "set", alice.Email, "--quota", "8KiB", "--json")
		if num(m.Quota) != int64(8192) || num(m.StorageLimit) != int64(8192) {
			t.Fatalf("user set --quota 8KiB: %+v", m)
		}
		var d struct {
			Name  string `json:"name"`
			Quota *int64 `json:"quota"`
		}
		in.RunJSON(t, &d, "domain", "set", "example.com", "--quota", "1GiB", "--json")
		if num(d.Quota) != int64(1<<30) {
			t.Fatalf("domain set --quota 1GiB: %+v", d)
		}
		var list []storageJSON
		in.RunJSON(t, &list, "user", "list", "--json")
		got := map[string]storageJSON{}
		for _, m := range list {
			got[m.Email] = m
		}
		if a, b, c := got[alice.Email], got["bob@example.com"], got[carol.Email]; num(a.StorageLimit) != int64(8192) ||
			b.Quota != nil || num(b.StorageLimit) != int64(1<<30) || c.Quota != nil || c.StorageLimit != nil {
			t.Fatalf("user list --json: %+v", list)
		}
		in.MustRun(t, "user", "set", "bob@example.com", "--quota", "0")
		in.RunJSON(t, &m, "user", "set", "bob@example.com", "--quota", "default", "--json")
		if m.Quota != nil || num(m.StorageLimit) != int64(1<<30) {
			t.Fatalf("user set --quota default: %+v", m)
		}
		if r := in.Run(t, "user", "set", alice.Email, "--quota", "lots"); r.Code != 2 || !strings.Contains(r.Stderr, "--quota must be a size") {
			t.Fatalf("user set --quota lots: %s", r)
		}
		if r := in.Run(t, "domain", "set", "nowhere.example", "--quota", "1GiB"); r.Code == 0 {
			t.Fatalf("domain set of an unknown domain: %s", r)
		}

		in.RunJSON(t, &list, "user", "list", "example.com", "--json")
		before := list[0].StorageUsed // the notice of alice's new app password
		if list[0].Email != alice.Email || before == 0 {
			t.Fatalf("user list example.com --json: %+v", list)
		}

		srv := in.StartServer(t, "--smtp-addr", "127.0.0.1:0", "--mailbox-quota", "2MiB")
		host, imapPort := splitAddr(srv.Addr("imap"))
		_, smtpPort := splitAddr(srv.Addr("smtp"))
		var q quotaAnswers
		runPythonScript(t, quotaScript, map[string]any{"host": host, "imap": imapPort, "smtp": smtpPort,
			"user": alice.Email, "password": alicePass.Password}, &q)
		if !strings.Contains(strings.Join(q.Caps, " "), "QUOTA=RES-STORAGE") || q.Append != "OK" {
			t.Fatalf("capabilities, APPEND: %+v", q)
		}
		wantList := func(what string, got []string, want ...string) {
			t.Helper()
			if strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("%s: %q, want %q", what, got, want)
			}
		}
		// The notice and the message appended (3019 octets), in KiB.
		storage := fmt.Sprintf(`"" (STORAGE %d 8)`, (before+3019)/1024)
		wantList("GETQUOTAROOT", q.GetQuotaRoot, "OK", `INBOX ""`, storage)
		wantList("GETQUOTA", q.GetQuota, "OK", storage)
		wantList("APPEND over quota", q.AppendOver, "NO", "[OVERQUOTA] Over quota: the mail storage limit is reached; delete messages and expunge them to make room.")
		wantList("SETQUOTA", q.SetQuota, "NO", "[NOPERM] Quotas are set by the server's administrator.")
		if q.RcptOver[0] != float64(452) || q.RcptOver[1] != "4.2.2 Mailbox full: <alice@example.com> is over its quota" {
			t.Errorf("RCPT over quota: %v", q.RcptOver)
		}
		if q.RcptFits[0] != float64(250) {
			t.Errorf("RCPT that fits: %v", q.RcptFits)
		}

		// carol's domain sets nothing: the server's 2 MiB.
		carolPass := createAppPass(t, in, carol.Email, "Mail")
		res := imapSession(t, srv, carol.Email, carolPass.Password, []any{"getquota", `""`})
		if d := res[0].Data; len(d) != 1 || d[0] != `"" (STORAGE 0 2048)` {
			t.Errorf("carol's GETQUOTA: %v", d)
		}

		// The member's own view, on the web.
		c := newWebClient(t, srv)
		if code, b := c.do("POST", "/api/v1/session", map[string]string{"email": alice.Email, "password": alice.Main}); code != 200 {
			t.Fatalf("sign in: %d %s", code, b)
		}
		code, b := c.do("GET", "/api/v1/me", nil)
		var me struct {
			Storage struct {
				Used  int64  `json:"used"`
				Limit *int64 `json:"limit"`
			} `json:"storage"`
		}
		if err := json.Unmarshal(b, &me); code != 200 || err != nil || me.Storage.Used != before+3019 || num(me.Storage.Limit) != int64(8192) {
			t.Fatalf("GET /api/v1/me: %d %s", code, b)
		}
		code, b = c.do("GET", "/security", nil)
		if page := string(b); code != 200 || !strings.Contains(page, `<meter class="storage" min="0" max="8192"`) || !strings.Contains(page, "KiB of 8 KiB used") {
			t.Fatalf("Security page: %d\n%s", code, b)
		}
	})
}
