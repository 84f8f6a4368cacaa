// Package dnsrecords says which DNS records a mail domain served by Postern
// should publish, and why each: what `postern domain dns` prints. Postern
// runs no DNS server; the operator copies these into the domain's zone.
// Standard library only.
package dnsrecords

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// TTL of every record: an hour, short enough to correct a mistake the same
// day, long enough not to matter to resolvers.
const TTL = 3600

// Record is one DNS record. Names are absolute, written without the final
// dot; Value is the record's data as a zone file has it, except that a TXT
// value is the text itself (unquoted, unsplit) and names in it carry no
// final dot either.
type Record struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	TTL   int    `json:"ttl"`
	Value string `json:"value"`
	Why   string `json:"why"`
}

// Config is what the records are made from.
type Config struct {
	Domain   string   // the mail domain, example.com
	MailHost string   // the MX, IMAP, POP3 and submission host, mail.example.com
	Web      *url.URL // the public web address (--base-url): autoconfig, CalDAV/CardDAV
	// ReportTo receives DMARC aggregate reports (an address of the domain
	// that reaches somebody); "" asks for none.
	ReportTo string

	// What the sending side publishes; empty while Postern signs nothing
	// and sends nothing, and then no record of theirs is printed.
	DKIM   []DKIMKey // one TXT record per selector
	MTASTS *MTASTS   // MTA-STS (RFC 8461) and SMTP TLS reporting (RFC 8460)
}

// DKIMKey is one DKIM public key (RFC 6376 §3.6.1), published at
// SELECTOR._domainkey.DOMAIN.
type DKIMKey struct {
	Selector string
	Value    string // "v=DKIM1; k=ed25519; p=…"
}

// MTASTS is the published MTA-STS policy's id (changed with each policy),
// its mode, and the address TLS failure reports go to.
type MTASTS struct {
	PolicyID string
	Mode     string // MTASTSEnforce, MTASTSTesting or MTASTSNone
	ReportTo string
}

// MTA-STS policy modes (RFC 8461 §5): enforce refuses delivery over a
// connection that fails the checks, testing delivers anyway and reports,
// none withdraws a policy.
const (
	MTASTSEnforce = "enforce"
	MTASTSTesting = "testing"
	MTASTSNone    = "none"
)

// MTASTSMaxAge is how long senders keep the policy, in seconds: a week.
const MTASTSMaxAge = 604800

// MTASTSPolicy returns the policy file served at
// https://mta-sts.DOMAIN/.well-known/mta-sts.txt (RFC 8461 §3.2): the same
// for every domain, since they all have the one MX host.
func MTASTSPolicy(mode, mailHost string) string {
	return "version: STSv1\r\nmode: " + mode + "\r\nmx: " + strings.TrimSuffix(strings.ToLower(mailHost), ".") +
		"\r\nmax_age: " + strconv.Itoa(MTASTSMaxAge) + "\r\n"
}

// MTASTSPolicyID is the id of a policy for its TXT record: a hash of the
// policy, so that it changes exactly when the policy does (RFC 8461 §3.1
// allows 1-32 letters and digits).
func MTASTSPolicyID(policy string) string {
	sum := sha256.Sum256([]byte(policy))
	return hex.EncodeToString(sum[:10])
}

// sections are the records in the order printed. The DKIM and MTA-STS
// sections belong to the sending side: they print records only once
// Config.DKIM and Config.MTASTS are filled in.
var sections = []func(Config) []Record{
	mx,
	spf,
	dkim,
	dmarc,
	mtaSTS,
	autoconfig,
	autodiscover,
	mailSRV,
	davSRV,
}

// Check says whether host can be named by these records: a DNS name (not
// an address, not localhost), for the flag that set it.
func Check(flag, host string) error {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	switch {
	case h == "":
		return fmt.Errorf("%s names no host", flag)
	case net.ParseIP(h) != nil:
		return fmt.Errorf("%s is an IP address (%s); MX, CNAME and SRV records need a host name such as mail.example.com", flag, h)
	case h == "localhost" || strings.HasSuffix(h, ".localhost") || !strings.Contains(h, "."):
		return fmt.Errorf("%s is %s, which the Internet cannot reach; give the public host name, such as mail.example.com", flag, h)
	}
	return nil
}

// Records returns the records to publish for c, in order.
func Records(c Config) []Record {
	c.Domain = strings.TrimSuffix(strings.ToLower(c.Domain), ".")
	c.MailHost = strings.TrimSuffix(strings.ToLower(c.MailHost), ".")
	var out []Record
	for _, s := range sections {
		for _, r := range s(c) {
			r.TTL = TTL
			out = append(out, r)
		}
	}
	return out
}

func mx(c Config) []Record {
	return []Record{{Name: c.Domain, Type: "MX", Value: "10 " + c.MailHost,
		Why: "Mail for " + c.Domain + " is delivered to " + c.MailHost + " on port 25 (Postern's --smtp-addr, or the MTA in front of it). " +
			c.MailHost + " needs its own A/AAAA records and a certificate naming it."}}
}

func spf(c Config) []Record {
	return []Record{{Name: c.Domain, Type: "TXT", Value: "v=spf1 mx -all",
		Why: "SPF (RFC 7208): only the hosts of the MX record send mail from @" + c.Domain + "; receivers may refuse any other sender (-all). " +
			"Add include: terms before -all for other services that send as the domain (a newsletter, a ticketing system)."}}
}

func dkim(c Config) []Record {
	var out []Record
	for _, k := range c.DKIM {
		out = append(out, Record{Name: k.Selector + "._domainkey." + c.Domain, Type: "TXT", Value: k.Value,
			Why: "DKIM (RFC 6376): the public key of selector " + k.Selector + ", with which receivers check the signature of mail from @" + c.Domain + "."})
	}
	return out
}

func dmarc(c Config) []Record {
	v, why := "v=DMARC1; p=none", "DMARC (RFC 7489): p=none asks receivers to deliver mail that fails SPF and DKIM alignment as usual: "+
		c.Domain+" has no DKIM key yet, so mail forwarded by others (mailing lists, forwarding) would fail; "+
		"make its keys ('postern domain dkim rotate "+c.Domain+"', or start serve, which makes them) and this command proposes p=quarantine with their records."
	if len(c.DKIM) > 0 {
		v, why = "v=DMARC1; p=quarantine", "DMARC (RFC 7489): p=quarantine asks receivers to put mail from @"+c.Domain+
			" that passes neither aligned SPF nor aligned DKIM into spam."
	}
	if c.ReportTo != "" {
		v += "; rua=mailto:" + c.ReportTo
		why += " Daily aggregate reports of who sends as the domain go to " + c.ReportTo + "."
	} else {
		why += " No reports are asked for: create postmaster@" + c.Domain + " (an alias will do) and run this again to get rua=."
	}
	return []Record{{Name: "_dmarc." + c.Domain, Type: "TXT", Value: v, Why: why}}
}

func mtaSTS(c Config) []Record {
	if c.MTASTS == nil || c.Web == nil {
		return nil
	}
	mode := map[string]string{
		MTASTSEnforce: "senders must reach " + c.MailHost + " over TLS with a valid certificate naming it, or keep the mail and retry (mode enforce)",
		MTASTSTesting: "senders check that they reach " + c.MailHost + " over TLS with a valid certificate naming it, and report failures but deliver anyway " +
			"(mode testing); once the reports show no failure, switch to enforce (serve --mta-sts-mode enforce) and publish the new id this command then prints",
		MTASTSNone: "the policy is withdrawn (mode none): senders forget it; keep these records until max_age (a week) has passed, then remove them",
	}[c.MTASTS.Mode]
	if mode == "" {
		mode = "senders must reach " + c.MailHost + " over verified TLS"
	}
	fetch := "MTA-STS: the policy is fetched from https://mta-sts." + c.Domain + "/.well-known/mta-sts.txt, which Postern's web server answers; the web certificate must name mta-sts." + c.Domain + "."
	if c.Web.Scheme != "https" {
		fetch = "MTA-STS: the policy is fetched from https://mta-sts." + c.Domain + "/.well-known/mta-sts.txt only over https, and the web address is http: " +
			"serve it behind TLS on port 443 with a certificate naming mta-sts." + c.Domain + " (until then senders find no policy and deliver as before)."
	}
	out := []Record{
		{Name: "_mta-sts." + c.Domain, Type: "TXT", Value: "v=STSv1; id=" + c.MTASTS.PolicyID,
			Why: "MTA-STS (RFC 8461): " + mode + ". The id changes with each policy."},
		{Name: "mta-sts." + c.Domain, Type: "CNAME", Value: c.Web.Hostname(), Why: fetch},
	}
	if c.MTASTS.ReportTo != "" {
		out = append(out, Record{Name: "_smtp._tls." + c.Domain, Type: "TXT", Value: "v=TLSRPTv1; rua=mailto:" + c.MTASTS.ReportTo,
			Why: "SMTP TLS reporting (RFC 8460): senders report TLS failures reaching the MX to " + c.MTASTS.ReportTo + "."})
	}
	return out
}

func autoconfig(c Config) []Record {
	return []Record{{Name: "autoconfig." + c.Domain, Type: "CNAME", Value: c.Web.Hostname(),
		Why: "Thunderbird (and apps using its format) fetch the IMAP/SMTP/CalDAV settings from autoconfig." + c.Domain +
			"/mail/config-v1.1.xml, which Postern's web server answers; over https the web certificate must name autoconfig." + c.Domain + "."}}
}

// autodiscover points Outlook's Autodiscover at the web address: first by
// the autodiscover.DOMAIN name, then by the SRV record ([MS-OXDSCLI]
// §3.1.5.3, after which Outlook asks the member to confirm the host).
// Outlook fetches it over https only.
func autodiscover(c Config) []Record {
	host, port := c.Web.Hostname(), 443
	if p, err := strconv.Atoi(c.Web.Port()); err == nil && c.Web.Scheme == "https" {
		port = p
	}
	tls := "; the web certificate must name autodiscover." + c.Domain + "."
	if c.Web.Scheme != "https" {
		tls = "; Outlook asks over https only, and the web address is http: serve it behind TLS on port 443 with a certificate naming autodiscover." + c.Domain + "."
	}
	return []Record{
		{Name: "autodiscover." + c.Domain, Type: "CNAME", Value: host,
			Why: "Outlook (and eM Client) fetch the IMAP/POP3/SMTP settings from https://autodiscover." + c.Domain +
				"/autodiscover/autodiscover.xml, which Postern's web server answers" + tls},
		{Name: "_autodiscover._tcp." + c.Domain, Type: "SRV", Value: fmt.Sprintf("0 1 %d %s", port, host),
			Why: "Outlook's Autodiscover by SRV record, where the autodiscover." + c.Domain + " name does not answer."},
	}
}

// mailSRV are RFC 6186 records with the standard ports, implicit TLS
// preferred (lower priority, RFC 8314 §5.1) and IMAP before POP3.
func mailSRV(c Config) []Record {
	var out []Record
	for _, s := range []struct {
		service string
		prio    int
		port    int
		what    string
	}{
		{"_submissions", 0, 465, "Sending (SMTP submission) with implicit TLS"},
		{"_submission", 10, 587, "Sending (SMTP submission) with STARTTLS"},
		{"_imaps", 0, 993, "IMAP with implicit TLS"},
		{"_imap", 10, 143, "IMAP with STARTTLS"},
		{"_pop3s", 20, 995, "POP3 with implicit TLS, after IMAP"},
		{"_pop3", 30, 110, "POP3 with STARTTLS, after IMAP"},
	} {
		out = append(out, Record{Name: s.service + "._tcp." + c.Domain, Type: "SRV",
			Value: fmt.Sprintf("%d 1 %d %s", s.prio, s.port, c.MailHost),
			Why:   s.what + " (RFC 6186): mail apps that look up SRV records find " + c.MailHost + " port " + strconv.Itoa(s.port) + "."})
	}
	return out
}

// davSRV are RFC 6764 records for CalDAV and CardDAV at the web address:
// the secure services over https, the plain ones over http.
func davSRV(c Config) []Record {
	sfx, port := "s", 443
	if c.Web.Scheme == "http" {
		sfx, port = "", 80
	}
	if p, err := strconv.Atoi(c.Web.Port()); err == nil {
		port = p
	}
	path := strings.TrimSuffix(c.Web.Path, "/") + "/dav/"
	var out []Record
	for _, s := range []string{"caldav", "carddav"} {
		name := "_" + s + sfx + "._tcp." + c.Domain
		what := map[string]string{"caldav": "Calendars (CalDAV", "carddav": "Contacts (CardDAV"}[s]
		out = append(out,
			Record{Name: name, Type: "SRV", Value: fmt.Sprintf("0 1 %d %s", port, c.Web.Hostname()),
				Why: what + ", RFC 6764): apps given only the address find the server " + c.Web.Hostname() + " port " + strconv.Itoa(port) + "."},
			Record{Name: name, Type: "TXT", Value: "path=" + path,
				Why: what + ", RFC 6764): the path where the server answers, " + path + "."})
	}
	return out
}

// Zone writes r as a zone-file line: absolute names end with a dot, TXT
// text is quoted and split in strings of at most 255 bytes (RFC 1035
// §3.3.14; DKIM RSA keys are longer).
func (r Record) Zone() string {
	v := r.Value
	switch r.Type {
	case "TXT":
		var parts []string
		for s := v; ; {
			n := min(len(s), 255)
			parts = append(parts, `"`+strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s[:n])+`"`)
			if s = s[n:]; s == "" {
				break
			}
		}
		v = strings.Join(parts, " ")
	case "MX", "SRV", "CNAME":
		v += "."
	}
	return fmt.Sprintf("%s.\t%d\tIN\t%s\t%s", r.Name, r.TTL, r.Type, v)
}
