package dnsrecords

import (
	"net/url"
	"strings"
	"testing"
)

func web(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// byName indexes records as "NAME TYPE" → value (the TXT of a DAV service
// and its SRV share a name, not a type).
func byName(recs []Record) map[string]string {
	m := map[string]string{}
	for _, r := range recs {
		key := r.Name + " " + r.Type
		if _, dup := m[key]; dup && r.Type != "TXT" {
			key += " dup"
		}
		m[key] += r.Value
	}
	return m
}

func TestRecords(t *testing.T) {
	recs := Records(Config{Domain: "Example.COM.", MailHost: "mx.example.net", Web: web(t, "https://mail.example.com"), ReportTo: "postmaster@example.com"})
	want := map[string]string{
		"example.com MX":                     "10 mx.example.net",
		"_dmarc.example.com TXT":             "v=DMARC1; p=none; rua=mailto:postmaster@example.com",
		"autoconfig.example.com CNAME":       "mail.example.com",
		"autodiscover.example.com CNAME":     "mail.example.com",
		"_autodiscover._tcp.example.com SRV": "0 1 443 mail.example.com",
		"_submissions._tcp.example.com SRV":  "0 1 465 mx.example.net",
		"_submission._tcp.example.com SRV":   "10 1 587 mx.example.net",
		"_imaps._tcp.example.com SRV":        "0 1 993 mx.example.net",
		"_imap._tcp.example.com SRV":         "10 1 143 mx.example.net",
		"_pop3s._tcp.example.com SRV":        "20 1 995 mx.example.net",
		"_pop3._tcp.example.com SRV":         "30 1 110 mx.example.net",
		"_caldavs._tcp.example.com SRV":      "0 1 443 mail.example.com",
		"_caldavs._tcp.example.com TXT":      "path=/dav/",
		"_carddavs._tcp.example.com SRV":     "0 1 443 mail.example.com",
		"_carddavs._tcp.example.com TXT":     "path=/dav/",
		"example.com TXT":                    "v=spf1 mx -all",
	}
	got := byName(recs)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
	if len(recs) != len(want) {
		t.Errorf("%d records, want %d: %+v", len(recs), len(want), recs)
	}
	for _, r := range recs {
		if r.TTL != TTL || r.Why == "" || strings.Contains(r.Name, "_domainkey") || strings.Contains(r.Name, "mta-sts") || strings.Contains(r.Name, "_smtp._tls") {
			t.Errorf("record %+v", r)
		}
	}
}

// The sending side's records appear when their data is there, and DMARC
// then asks for quarantine; without a report address DMARC asks for none.
func TestRecordsSendingSide(t *testing.T) {
	recs := Records(Config{Domain: "example.com", MailHost: "mail.example.com", Web: web(t, "http://mail.example.com:8080/postern/"),
		DKIM:   []DKIMKey{{Selector: "ed1", Value: "v=DKIM1; k=ed25519; p=KEY"}},
		MTASTS: &MTASTS{PolicyID: "20261202", ReportTo: "tls@example.com"}})
	got := byName(recs)
	for k, v := range map[string]string{
		"ed1._domainkey.example.com TXT":     "v=DKIM1; k=ed25519; p=KEY",
		"_dmarc.example.com TXT":             "v=DMARC1; p=quarantine",
		"_mta-sts.example.com TXT":           "v=STSv1; id=20261202",
		"mta-sts.example.com CNAME":          "mail.example.com",
		"_smtp._tls.example.com TXT":         "v=TLSRPTv1; rua=mailto:tls@example.com",
		"_caldav._tcp.example.com SRV":       "0 1 8080 mail.example.com",
		"_autodiscover._tcp.example.com SRV": "0 1 443 mail.example.com", // Outlook asks over https only
		"_caldav._tcp.example.com TXT":       "path=/postern/dav/",
		"_carddav._tcp.example.com SRV":      "0 1 8080 mail.example.com",
	} {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
	if _, ok := got["_caldavs._tcp.example.com SRV"]; ok {
		t.Error("a secure DAV record for a plain http web address")
	}
}

func TestZone(t *testing.T) {
	long := "v=DKIM1; k=rsa; p=" + strings.Repeat("A", 400) + `"\`
	for _, c := range []struct {
		r    Record
		want string
	}{
		{Record{Name: "example.com", Type: "MX", TTL: 3600, Value: "10 mail.example.com"}, "example.com.\t3600\tIN\tMX\t10 mail.example.com."},
		{Record{Name: "_imaps._tcp.example.com", Type: "SRV", TTL: 60, Value: "0 1 993 mail.example.com"}, "_imaps._tcp.example.com.\t60\tIN\tSRV\t0 1 993 mail.example.com."},
		{Record{Name: "example.com", Type: "TXT", TTL: 3600, Value: "v=spf1 mx -all"}, "example.com.\t3600\tIN\tTXT\t\"v=spf1 mx -all\""},
		{Record{Name: "k._domainkey.example.com", Type: "TXT", TTL: 3600, Value: long},
			"k._domainkey.example.com.\t3600\tIN\tTXT\t\"" + long[:255] + "\" \"" + long[255:len(long)-2] + `\"\\"`},
	} {
		if got := c.r.Zone(); got != c.want {
			t.Errorf("Zone:\n got %s\nwant %s", got, c.want)
		}
	}
}

func TestCheck(t *testing.T) {
	for host, ok := range map[string]bool{
		"mail.example.com": true, "MAIL.example.com.": true,
		"": false, "localhost": false, "a.localhost": false, "mail": false, "192.0.2.1": false, "::1": false,
	} {
		if err := Check("--mail-host", host); (err == nil) != ok {
			t.Errorf("%q: %v", host, err)
		}
	}
}

// TestMTASTSPolicy: the policy file of RFC 8461 §3.2, CRLF lines; its id
// changes with the policy and only with it.
func TestMTASTSPolicy(t *testing.T) {
	p := MTASTSPolicy(MTASTSEnforce, "Mail.Example.COM.")
	if p != "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmax_age: 604800\r\n" {
		t.Errorf("policy %q", p)
	}
	id := MTASTSPolicyID(p)
	if len(id) < 1 || len(id) > 32 || strings.Trim(id, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
		t.Errorf("id %q is not 1-32 letters and digits", id)
	}
	if MTASTSPolicyID(MTASTSPolicy(MTASTSEnforce, "mail.example.com")) != id {
		t.Error("the same policy got another id")
	}
	for _, other := range []string{MTASTSPolicy(MTASTSTesting, "mail.example.com"), MTASTSPolicy(MTASTSEnforce, "mx.example.com")} {
		if MTASTSPolicyID(other) == id {
			t.Errorf("another policy, the same id: %q", other)
		}
	}
	recs := byName(Records(Config{Domain: "example.com", MailHost: "mail.example.com", Web: web(t, "https://mail.example.com"),
		MTASTS: &MTASTS{PolicyID: id, Mode: MTASTSTesting}}))
	if recs["_mta-sts.example.com TXT"] != "v=STSv1; id="+id || recs["_smtp._tls.example.com TXT"] != "" {
		t.Errorf("records %v", recs)
	}
}
