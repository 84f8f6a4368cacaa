package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/postern/postern/internal/tlsconf"
)

// acmeChallengePrefix is where ACME's HTTP-01 challenge is fetched (RFC 8555
// §8.3): over plain HTTP on port 80, before any certificate exists. A
// handler mounted on s.web under it answers on the web listener even when
// --https-addr redirects everything else there.
const acmeChallengePrefix = "/.well-known/acme-challenge/"

// plainHTTPPaths stay on plain HTTP when --https-addr sends the rest of the
// web listener to HTTPS. Thunderbird fetches autoconfig over http:// too
// (from autoconfig.DOMAIN, where a certificate for the name may not exist),
// and Outlook's Autodiscover starts with a plain-HTTP request; both answer
// the same public settings to anyone. The health checks stay for the probes
// that do not follow redirects. MTA-STS is not here: senders fetch the
// policy over HTTPS only (RFC 8461 §3.3), so its redirect changes nothing.
var plainHTTPPaths = []string{
	acmeChallengePrefix,
	"/.well-known/autoconfig/mail/config-v1.1.xml",
	"/mail/config-v1.1.xml",
	"/autodiscover/autodiscover.xml",
	"/Autodiscover/Autodiscover.xml",
	"/healthz",
	"/readyz",
}

// setupCertificates opens the certificate every TLS listener presents:
// --tls-cert and --tls-key, or the self-signed pair of the data folder.
// Both are files, read again when they change and on SIGHUP
// (watchCertificates).
func (s *server) setupCertificates() error {
	f := s.flags
	files, err := tlsconf.Open(f.tlsCert, f.tlsKey, s.app.data, hostnames(s.app.baseURL), s.log)
	if err != nil {
		return err
	}
	if f.tlsCert == "" {
		s.log.Info("using the self-signed TLS certificate of the data folder; give --tls-cert and --tls-key in production", "dir", filepath.Join(s.app.data, "tls"))
	}
	s.certFiles = files
	s.certs = files
	s.tls = tlsconf.ServerConfig(s.certs)
	s.tasks = append(s.tasks, task{"certificates", s.watchCertificates})
	return nil
}

// watchCertificates reads the certificate files again when they change
// (checked every tlsconf.PollInterval) and at once on SIGHUP, until ctx
// ends. A pair that does not load leaves the previous one in use; the
// source logs why. Connections already open keep their certificate.
// SIGHUP is taken even without files: its default would end the process,
// and `systemctl reload` must never do that.
func (s *server) watchCertificates(ctx context.Context) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if s.certFiles != nil {
		go s.certFiles.Watch(ctx.Done(), tlsconf.PollInterval)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			if s.certFiles == nil {
				s.log.Info("SIGHUP: no certificate files to read again")
				continue
			}
			s.log.Info("SIGHUP: reading the TLS certificate files again")
			s.certFiles.Reload()
		}
	}
}

// webHandlers returns the handlers of the web and HTTPS listeners: the same
// routes (s.web) behind the same trusted-proxy rules. With --https-addr the
// web listener redirects to HTTPS, and HTTPS responses carry HSTS.
func (s *server) webHandlers() (web, https http.Handler) {
	if s.flags.https == "" {
		return s.forwarded(s.web), nil
	}
	redirect := &httpsRedirect{next: s.web, port: func() int { return s.port("https") }}
	return s.forwarded(redirect), hsts(s.forwarded(s.web))
}

// httpsNextProtos are offered in ALPN on the HTTPS listener: HTTP/2 first.
var httpsNextProtos = []string{"h2", "http/1.1"}

// hsts marks every HTTPS response with Strict-Transport-Security
// (tlsconf.HSTS): a browser that saw it goes to HTTPS by itself for a year.
func hsts(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil {
			w.Header().Set("Strict-Transport-Security", tlsconf.HSTS)
		}
		h.ServeHTTP(w, r)
	})
}

// httpsRedirect is the plain-HTTP web listener's handler when HTTPS is on:
// a permanent redirect to the same host and path on the HTTPS port, except
// for plainHTTPPaths, and for a request a trusted load balancer received
// over TLS (it is already on HTTPS), which next serves.
type httpsRedirect struct {
	next http.Handler
	port func() int // the HTTPS listener's bound port
}

func (h *httpsRedirect) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if tlsconf.RequestTLS(r) || stayPlain(r.URL.Path) {
		h.next.ServeHTTP(w, r)
		return
	}
	host := r.Host
	if hn, _, err := net.SplitHostPort(host); err == nil {
		host = hn
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" {
		http.Error(w, "Use HTTPS.", http.StatusBadRequest)
		return
	}
	if p := h.port(); p != 443 {
		host = net.JoinHostPort(host, strconv.Itoa(p))
	} else {
		host = hostForURL(host)
	}
	path := r.URL.RequestURI()
	if !strings.HasPrefix(path, "/") { // OPTIONS *
		path = "/"
	}
	// 301 is what every client follows for GET and HEAD; 308 keeps the
	// method and body of anything else (RFC 9110 §15.4.9), where a 301
	// would let an old client turn a POST into a GET.
	code := http.StatusPermanentRedirect
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		code = http.StatusMovedPermanently
	}
	http.Redirect(w, r, "https://"+host+path, code)
}

func stayPlain(path string) bool {
	for _, p := range plainHTTPPaths {
		if path == p || strings.HasSuffix(p, "/") && strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}
