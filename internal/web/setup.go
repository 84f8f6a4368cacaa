package web

import (
	"bytes"
	"crypto/rand"
	"encoding/xml"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/postern/postern/internal/account"
)

// profileWindow is how long after its creation the Apple configuration
// profile of an app password can be downloaded. The browser sends the
// password back for it (the server keeps no copy), so any node can serve it.
const profileWindow = 10 * time.Minute

// serverSettings are the configured settings, with the host (and the web
// port) taken from the request when the operator left them empty.
func (s *Server) serverSettings(r *http.Request) ServerSettings {
	set := s.cfg.Settings
	if set.Host == "" || set.WebPort == 0 {
		host, port, err := net.SplitHostPort(r.Host)
		if err != nil {
			host, port = r.Host, ""
		}
		if set.Host == "" {
			set.Host = host
		}
		if set.WebPort == 0 {
			set.WebTLS = s.cfg.Secure
			set.WebPort, _ = strconv.Atoi(port)
			if set.WebPort == 0 {
				set.WebPort = map[bool]int{true: 443, false: 80}[set.WebTLS]
			}
		}
	}
	return set
}

type serverRow struct {
	Service, Host, Security string
	Port                    int
}

// rows lists the listeners that are on, implicit TLS first (RFC 8314 §3
// recommends it over STARTTLS).
func (set ServerSettings) rows(l string) []serverRow {
	var out []serverRow
	add := func(svc string, port int, tls string) {
		if port != 0 {
			out = append(out, serverRow{Service: tr(l, svc), Host: set.Host, Port: port, Security: tr(l, tls)})
		}
	}
	add("svc.imap", set.IMAPSPort, "tls.implicit")
	add("svc.imap", set.IMAPPort, "tls.starttls")
	add("svc.smtp", set.SubmissionsPort, "tls.implicit")
	add("svc.smtp", set.SubmissionPort, "tls.starttls")
	add("svc.pop3", set.POP3SPort, "tls.implicit")
	add("svc.pop3", set.POP3Port, "tls.starttls")
	return out
}

func (set ServerSettings) davURL() string {
	scheme, def := "http", 80
	if set.WebTLS {
		scheme, def = "https", 443
	}
	host := set.Host
	if set.WebPort != 0 && set.WebPort != def {
		host = net.JoinHostPort(set.Host, strconv.Itoa(set.WebPort))
	} else if net.ParseIP(host) != nil && net.ParseIP(host).To4() == nil {
		host = "[" + host + "]"
	}
	return scheme + "://" + host + "/dav/"
}

func xmlText(s string) string {
	var b bytes.Buffer
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// autoconfig serves the Thunderbird autoconfiguration document
// (https://wiki.mozilla.org/Thunderbird:Autoconfiguration:ConfigFileFormat).
// It holds no secret: the username placeholder is filled in by Thunderbird.
func (s *Server) autoconfig(w http.ResponseWriter, r *http.Request) {
	set := s.serverSettings(r)
	domain := set.Host
	if e, err := account.ParseEmail(r.URL.Query().Get("emailaddress")); err == nil {
		_, domain, _ = strings.Cut(e, "@")
	}
	var b bytes.Buffer
	b.WriteString("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<clientConfig version=\"1.1\">\n")
	fmt.Fprintf(&b, "  <emailProvider id=\"%s\">\n    <domain>%s</domain>\n    <displayName>%s</displayName>\n    <displayShortName>%s</displayShortName>\n",
		xmlText(domain), xmlText(domain), xmlText("Postern ("+domain+")"), "Postern")
	server := func(kind, typ string, port int, socket string) {
		if port == 0 {
			return
		}
		fmt.Fprintf(&b, "    <%s type=\"%s\">\n      <hostname>%s</hostname>\n      <port>%d</port>\n      <socketType>%s</socketType>\n"+
			"      <username>%%EMAILADDRESS%%</username>\n      <authentication>password-cleartext</authentication>\n    </%s>\n",
			kind, typ, xmlText(set.Host), port, socket, kind)
	}
	server("incomingServer", "imap", set.IMAPSPort, "SSL")
	server("incomingServer", "imap", set.IMAPPort, "STARTTLS")
	server("incomingServer", "pop3", set.POP3SPort, "SSL")
	server("incomingServer", "pop3", set.POP3Port, "STARTTLS")
	server("outgoingServer", "smtp", set.SubmissionsPort, "SSL")
	server("outgoingServer", "smtp", set.SubmissionPort, "STARTTLS")
	b.WriteString("  </emailProvider>\n")
	dav := set.davURL()
	for _, kind := range []string{"addressBook|carddav", "calendar|caldav"} {
		tag, typ, _ := strings.Cut(kind, "|")
		fmt.Fprintf(&b, "  <%s type=\"%s\">\n    <username>%%EMAILADDRESS%%</username>\n    <authentication system=\"http\">password-cleartext</authentication>\n    <serverURL>%s</serverURL>\n  </%s>\n",
			tag, typ, xmlText(dav), tag)
	}
	b.WriteString("</clientConfig>\n")
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Write(b.Bytes())
}

func uuid4() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%X-%X-%X-%X-%X", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// plist is an ordered property-list dictionary.
type plist []any // key string, value, key, value, ...

func writePlistValue(b *bytes.Buffer, v any, indent string) {
	switch x := v.(type) {
	case string:
		fmt.Fprintf(b, "%s<string>%s</string>\n", indent, xmlText(x))
	case int:
		fmt.Fprintf(b, "%s<integer>%d</integer>\n", indent, x)
	case bool:
		fmt.Fprintf(b, "%s<%t/>\n", indent, x)
	case []plist:
		fmt.Fprintf(b, "%s<array>\n", indent)
		for _, d := range x {
			writePlistValue(b, d, indent+"\t")
		}
		fmt.Fprintf(b, "%s</array>\n", indent)
	case plist:
		fmt.Fprintf(b, "%s<dict>\n", indent)
		for i := 0; i+1 < len(x); i += 2 {
			fmt.Fprintf(b, "%s\t<key>%s</key>\n", indent, xmlText(x[i].(string)))
			writePlistValue(b, x[i+1], indent+"\t")
		}
		fmt.Fprintf(b, "%s</dict>\n", indent)
	}
}

// mobileconfig renders an Apple configuration profile with mail (IMAP and
// SMTP), CalDAV and CardDAV accounts that log in with the new app password
// (Apple's Configuration Profile Reference: com.apple.mail.managed,
// com.apple.caldav.account, com.apple.carddav.account).
func mobileconfig(set ServerSettings, m account.Member, appName, password string) []byte {
	id := "org.postern." + m.Domain() + "." + m.Local()
	desc := "Postern: " + m.Email + " (" + appName + ")"
	var payloads []plist
	imapPort, imapTLS := set.IMAPSPort, true
	if imapPort == 0 {
		imapPort = set.IMAPPort
	}
	smtpPort := set.SubmissionsPort
	if smtpPort == 0 {
		smtpPort = set.SubmissionPort
	}
	if imapPort != 0 && smtpPort != 0 {
		payloads = append(payloads, plist{
			"PayloadType", "com.apple.mail.managed", "PayloadVersion", 1,
			"PayloadIdentifier", id + ".mail", "PayloadUUID", uuid4(), "PayloadDisplayName", "Mail",
			"EmailAccountDescription", m.Email, "EmailAccountName", m.Name, "EmailAccountType", "EmailTypeIMAP",
			"EmailAddress", m.Email,
			"IncomingMailServerAuthentication", "EmailAuthPassword", "IncomingMailServerHostName", set.Host,
			"IncomingMailServerPortNumber", imapPort, "IncomingMailServerUseSSL", imapTLS,
			"IncomingMailServerUsername", m.Email, "IncomingPassword", password,
			"OutgoingMailServerAuthentication", "EmailAuthPassword", "OutgoingMailServerHostName", set.Host,
			"OutgoingMailServerPortNumber", smtpPort, "OutgoingMailServerUseSSL", true,
			"OutgoingMailServerUsername", m.Email, "OutgoingPassword", password,
			"OutgoingPasswordSameAsIncomingPassword", true,
		})
	}
	if set.WebPort != 0 {
		for _, k := range []string{"CalDAV", "CardDAV"} {
			typ := map[string]string{"CalDAV": "com.apple.caldav.account", "CardDAV": "com.apple.carddav.account"}[k]
			payloads = append(payloads, plist{
				"PayloadType", typ, "PayloadVersion", 1,
				"PayloadIdentifier", id + "." + k, "PayloadUUID", uuid4(), "PayloadDisplayName", k,
				k + "AccountDescription", m.Email, k + "HostName", set.Host, k + "Port", set.WebPort,
				k + "UseSSL", set.WebTLS, k + "Username", m.Email, k + "Password", password,
			})
		}
	}
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">` + "\n" +
		`<plist version="1.0">` + "\n")
	writePlistValue(&b, plist{
		"PayloadType", "Configuration", "PayloadVersion", 1,
		"PayloadIdentifier", id, "PayloadUUID", uuid4(),
		"PayloadDisplayName", desc, "PayloadDescription", "Mail, calendar and contacts for " + m.Email,
		"PayloadRemovalDisallowed", false,
		"PayloadContent", payloads,
	}, "")
	b.WriteString("</plist>\n")
	return b.Bytes()
}

// profileFilename is built from the checked address only (never the app
// name, which is free text), so it needs no quoting in the header.
func profileFilename(m account.Member) string {
	return "postern-" + m.Local() + "-" + m.Domain() + ".mobileconfig"
}
