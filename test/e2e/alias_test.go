package e2e

import (
	"reflect"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

type aliasOut struct {
	Address   string   `json:"address"`
	Targets   []string `json:"targets"`
	CreatedAt string   `json:"created_at"`
}

// TestAliasCLI: aliases and lists through the CLI on both engines: create,
// grow, list, show, remove targets, delete; every refusal is one clear line
// and changes nothing; the catch-all is set, shown and turned off.
func TestAliasCLI(t *testing.T) {
	Engines(t, func(t *testing.T, in *Instance) {
		in.MustRun(t, "domain", "add", "example.com")
		in.MustRun(t, "domain", "add", "example.org")
		for _, m := range []string{"alice@example.com", "bob@example.com", "carol@example.org"} {
			addMember(t, in, m)
		}
		if out := in.MustRun(t, "alias", "add", "Sales@Example.com", "bob@example.com", "alice@example.com"); !strings.Contains(out, "Created the alias sales@example.com") {
			t.Errorf("alias add: %s", out)
		}
		var a aliasOut
		in.RunJSON(t, &a, "alias", "add", "sales@example.com", "carol@example.org", "alice@example.com")
		if want := []string{"alice@example.com", "bob@example.com", "carol@example.org"}; a.Address != "sales@example.com" || !reflect.DeepEqual(a.Targets, want) || a.CreatedAt == "" {
			t.Errorf("alias add --json: %+v", a)
		}
		in.MustRun(t, "alias", "add", "team@example.org", "carol@example.org")

		var list []map[string]any
		in.RunJSON(t, &list, "alias", "list")
		if len(list) != 2 || list[0]["address"] != "sales@example.com" || list[1]["address"] != "team@example.org" || keys(list[0]) != "address,created_at,targets" {
			t.Errorf("alias list: %v", list)
		}
		in.RunJSON(t, &list, "alias", "list", "example.org")
		if len(list) != 1 || list[0]["address"] != "team@example.org" {
			t.Errorf("alias list example.org: %v", list)
		}
		if out := in.MustRun(t, "alias", "list"); !strings.Contains(out, "sales@example.com  alice@example.com, bob@example.com, carol@example.org") {
			t.Errorf("alias list:\n%s", out)
		}
		if out := in.MustRun(t, "alias", "show", "sales@example.com"); !strings.Contains(out, "\n  bob@example.com\n") {
			t.Errorf("alias show:\n%s", out)
		}

		// Refusals: one line each, and nothing changes.
		wantFailLine(t, in.Run(t, "alias", "add", "sales@example.com", "dave@example.com"), "dave@example.com is not a member")
		wantFailLine(t, in.Run(t, "alias", "add", "sales@example.com", "someone@gmail.example"), "never forwards mail elsewhere")
		wantFailLine(t, in.Run(t, "alias", "add", "alice@example.com", "bob@example.com"), "alice@example.com is a member's address")
		wantFailLine(t, in.Run(t, "alias", "add", "sales@foreign.example", "bob@example.com"), "foreign.example is not a domain of this server")
		wantFailLine(t, in.Run(t, "alias", "add", "sales+eu@example.com", "bob@example.com"), "cannot contain +")
		wantFailLine(t, in.RunStdin(t, "main password of sales\n", "user", "add", "sales@example.com", "--password-stdin"), "sales@example.com is the address of an alias")
		wantFailLine(t, in.Run(t, "alias", "delete", "sales@example.com", "bob@example.com", "dave@example.com"), "dave@example.com is not a target")
		wantFailLine(t, in.Run(t, "alias", "show", "nobody@example.com"), "No alias nobody@example.com")
		wantFailLine(t, in.Run(t, "alias", "list", "foreign.example"), "No domain foreign.example")
		wantFail(t, in.Run(t, "alias", "add", "sales@example.com"), 2, "alias add takes")
		in.RunJSON(t, &a, "alias", "show", "sales@example.com")
		if len(a.Targets) != 3 {
			t.Errorf("a refusal changed the alias: %+v", a)
		}
		var members []map[string]any
		in.RunJSON(t, &members, "user", "list")
		if len(members) != 3 {
			t.Errorf("a refusal added a member: %v", members)
		}

		if out := in.MustRun(t, "alias", "delete", "sales@example.com", "bob@example.com", "carol@example.org"); !strings.Contains(out, "mail to it goes to alice@example.com.") {
			t.Errorf("alias delete targets: %s", out)
		}
		if out := in.MustRun(t, "alias", "delete", "sales@example.com", "alice@example.com"); !strings.Contains(out, "no target left") {
			t.Errorf("alias delete the last target: %s", out)
		}
		in.RunJSON(t, &a, "alias", "show", "sales@example.com")
		if a.Targets == nil || len(a.Targets) != 0 {
			t.Errorf("emptied alias: %+v", a)
		}
		in.MustRun(t, "alias", "delete", "sales@example.com")
		wantFailLine(t, in.Run(t, "alias", "delete", "sales@example.com"), "No alias sales@example.com")
		addMember(t, in, "sales@example.com") // the address is free again

		// Catch-all.
		if out := in.MustRun(t, "domain", "catchall", "example.com"); !strings.Contains(out, "no catch-all") {
			t.Errorf("catchall: %s", out)
		}
		var ca map[string]string
		in.RunJSON(t, &ca, "domain", "catchall", "example.com", "bob@example.com")
		if ca["domain"] != "example.com" || ca["catch_all"] != "bob@example.com" {
			t.Errorf("catchall set: %v", ca)
		}
		if out := in.MustRun(t, "domain", "catchall", "example.com"); !strings.Contains(out, "goes to bob@example.com") {
			t.Errorf("catchall: %s", out)
		}
		wantFailLine(t, in.Run(t, "domain", "catchall", "example.com", "dave@example.com"), "dave@example.com is not a member")
		wantFailLine(t, in.Run(t, "domain", "catchall", "foreign.example", "bob@example.com"), "No domain foreign.example")
		wantFail(t, in.Run(t, "domain", "catchall", "example.com", "bob@example.com", "--off"), 2, "not both")
		in.RunJSON(t, &ca, "domain", "catchall", "example.com", "--off")
		if ca["catch_all"] != "" {
			t.Errorf("catchall --off: %v", ca)
		}
	})
}

type dnsOut struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	TTL   int    `json:"ttl"`
	Value string `json:"value"`
	Why   string `json:"why"`
}

// TestDomainDNS: the records of domain dns, as JSON and as a zone file that
// a DNS library reads back to the same records; the DMARC report address
// appears once postmaster@ reaches somebody; an unknown domain and an
// unreachable host name are refused.
func TestDomainDNS(t *testing.T) {
	in := NewSQLite(t)
	in.MustRun(t, "domain", "add", "example.com")
	addMember(t, in, "alice@example.com")
	base := []string{"domain", "dns", "example.com", "--base-url", "https://web.example.net", "--mail-host", "mx.example.net"}

	var recs []dnsOut
	in.RunJSON(t, &recs, base...)
	got := map[string]string{}
	for _, r := range recs {
		if r.TTL != 3600 || r.Why == "" {
			t.Errorf("record %+v", r)
		}
		got[r.Name+" "+r.Type] += r.Value
	}
	for k, v := range map[string]string{
		"example.com MX":                    "10 mx.example.net",
		"example.com TXT":                   "v=spf1 mx -all",
		"_dmarc.example.com TXT":            "v=DMARC1; p=quarantine", // domain add made its DKIM keys
		"autoconfig.example.com CNAME":      "web.example.net",
		"_submissions._tcp.example.com SRV": "0 1 465 mx.example.net",
		"_submission._tcp.example.com SRV":  "10 1 587 mx.example.net",
		"_imaps._tcp.example.com SRV":       "0 1 993 mx.example.net",
		"_imap._tcp.example.com SRV":        "10 1 143 mx.example.net",
		"_pop3s._tcp.example.com SRV":       "20 1 995 mx.example.net",
		"_pop3._tcp.example.com SRV":        "30 1 110 mx.example.net",
		"_caldavs._tcp.example.com SRV":     "0 1 443 web.example.net",
		"_caldavs._tcp.example.com TXT":     "path=/dav/",
		"_carddavs._tcp.example.com SRV":    "0 1 443 web.example.net",
		"_carddavs._tcp.example.com TXT":    "path=/dav/",
	} {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}

	// The text form is a zone file whose records are the JSON's, each after
	// a comment that says why.
	text := in.MustRun(t, base...)
	zp := dns.NewZoneParser(strings.NewReader(text), "", "")
	var n int
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if n >= len(recs) {
			t.Fatalf("more records in the text than in the JSON: %s", rr)
		}
		h, want := rr.Header(), recs[n]
		var value string
		switch x := rr.(type) {
		case *dns.MX:
			value = strings.TrimSuffix(strings.TrimPrefix(x.String(), x.Hdr.String()), ".")
		case *dns.SRV, *dns.CNAME:
			value = strings.TrimSuffix(strings.TrimPrefix(x.String(), h.String()), ".")
		case *dns.TXT:
			value = strings.Join(x.Txt, "")
		}
		if h.Name != want.Name+"." || dns.TypeToString[h.Rrtype] != want.Type || int(h.Ttl) != want.TTL || value != want.Value {
			t.Errorf("zone record %d: %s, want %+v", n, rr, want)
		}
		n++
	}
	if err := zp.Err(); err != nil || n != len(recs) {
		t.Fatalf("zone: %v, %d records of %d\n%s", err, n, len(recs), text)
	}
	if !strings.Contains(text, "; SPF (RFC 7208)") || !strings.Contains(text, "create postmaster@example.com") {
		t.Errorf("text lacks its explanations:\n%s", text)
	}

	in.MustRun(t, "alias", "add", "postmaster@example.com", "alice@example.com")
	in.RunJSON(t, &recs, base...)
	for _, r := range recs {
		if r.Name == "_dmarc.example.com" && r.Value != "v=DMARC1; p=quarantine; rua=mailto:postmaster@example.com" {
			t.Errorf("DMARC with postmaster@: %+v", r)
		}
	}
	// Without --mail-host the web host is the mail host.
	in.RunJSON(t, &recs, "domain", "dns", "example.com", "--base-url", "https://mail.example.com")
	if recs[0].Type != "MX" || recs[0].Value != "10 mail.example.com" {
		t.Errorf("default mail host: %+v", recs[0])
	}

	wantFailLine(t, in.Run(t, "domain", "dns", "unknown.example", "--base-url", "https://mail.example.com"), "No domain unknown.example")
	wantFailLine(t, in.Run(t, "domain", "dns", "example.com"), "set --base-url")
	wantFailLine(t, in.Run(t, "domain", "dns", "example.com", "--base-url", "http://localhost:8080"), "the Internet cannot reach")
	wantFailLine(t, in.Run(t, "domain", "dns", "example.com", "--base-url", "https://mail.example.com", "--mail-host", "192.0.2.1"), "IP address")
}
