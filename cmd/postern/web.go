package main

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/postern/postern/internal/dnsrecords"
	"github.com/postern/postern/internal/web"
)

// setupWeb mounts the member web UI and JSON API on the web listener. It runs
// after the listeners are bound: the "server settings" it shows members carry
// the real ports (port 0 in tests).
func (s *server) setupWeb() {
	host, secure := s.publicHost()
	if s.app.baseURL == "" {
		// Links in notifications point at this web listener (its HTTPS
		// side when there is one) unless --base-url says where members
		// reach it.
		if u := s.webURL(host); u != nil {
			s.svc.Config.BaseURL = u.String()
		}
	}
	settings := web.ServerSettings{
		Host:            host,
		IMAPPort:        s.port("imap"),
		IMAPSPort:       s.port("imaps"),
		POP3Port:        s.port("pop3"),
		POP3SPort:       s.port("pop3s"),
		SubmissionPort:  s.port("submission"),
		SubmissionsPort: s.port("submissions"),
		WebPort:         s.port("web"),
		WebTLS:          secure,
	}
	if secure {
		settings.WebPort = 443 // TLS is terminated in front of the web listener, or by --https-addr
		if u, err := url.Parse(s.app.baseURL); err == nil && u.Port() != "" {
			settings.WebPort, _ = strconv.Atoi(u.Port())
		} else if s.app.baseURL == "" && s.addr("https") != "" {
			settings.WebPort = s.port("https")
		}
	}
	s.web.Handle("/", web.New(web.Config{
		Service:  s.svc,
		Sessions: s.db,
		Auth:     s.gw, // the gateway of the protocols (listeners.go): web failures count and throttle alike
		Log:      s.log,
		Secure:   secure,
		Settings: settings,
		ClientIP: s.clientIP,

		MTASTSPolicy: s.mtaSTSPolicy(host), // dkim.go
		Mail:         s.db.Mail(),
		MailQuota:    s.mailQuota, // --mailbox-quota (mx.go)
		DNSRecords:   s.dnsRecords(host),
	}))
}

// publicHost is the host name apps connect to: the host of --base-url, else
// the web (or HTTPS) listener's host when it is bound to one, else this
// machine's name. secure tells whether members reach the web UI over HTTPS:
// --base-url says so, or --https-addr, to which the web listener redirects.
func (s *server) publicHost() (host string, secure bool) {
	https := s.addr("https") != ""
	if u, err := url.Parse(s.app.baseURL); err == nil && u.Hostname() != "" {
		return u.Hostname(), u.Scheme == "https" || https
	}
	for _, name := range []string{"web", "https"} {
		if h, _, err := net.SplitHostPort(s.addr(name)); err == nil {
			if ip := net.ParseIP(h); ip == nil || !ip.IsUnspecified() {
				return h, https
			}
		}
	}
	h, _ := os.Hostname()
	return h, https
}

// webURL is where this server's own listeners serve the web UI at host:
// HTTPS when it is on (no port for 443), else the web listener; nil when
// both are off.
func (s *server) webURL(host string) *url.URL {
	if p := s.port("https"); p != 0 {
		if p == 443 {
			return &url.URL{Scheme: "https", Host: hostForURL(host)}
		}
		return &url.URL{Scheme: "https", Host: net.JoinHostPort(host, strconv.Itoa(p))}
	}
	if p := s.port("web"); p != 0 {
		return &url.URL{Scheme: "http", Host: net.JoinHostPort(host, strconv.Itoa(p))}
	}
	return nil
}

// hostForURL brackets an IPv6 address for the host part of a URL.
func hostForURL(host string) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]"
	}
	return host
}

// port returns the bound port of a listener, 0 when it is off.
func (s *server) port(name string) int {
	_, p, err := net.SplitHostPort(s.addr(name))
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}

// clientIP is the web client's address as the web UI records it.
func (s *server) clientIP(r *http.Request) string { return web.ClientIP(r) }

// dnsRecords gives the admin console the records `domain dns` prints,
// for the mail host and web address the server is reached at.
func (s *server) dnsRecords(publicHost string) func(ctx context.Context, domain string) ([]dnsrecords.Record, error) {
	base, err := url.Parse(s.app.baseURL)
	if err != nil || base.Hostname() == "" {
		base = s.webURL(publicHost)
		if base == nil { // neither web listener is on: the host alone
			base = &url.URL{Scheme: "https", Host: hostForURL(publicHost)}
		}
	}
	host := s.flags.sending.mailHost
	if host == "" {
		host = base.Hostname()
	}
	return func(ctx context.Context, domain string) ([]dnsrecords.Record, error) {
		recs, _, err := s.app.domainRecords(ctx, s.svc, domain, host, base, s.mtaSTSMode)
		return recs, err
	}
}
