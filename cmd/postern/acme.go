package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/postern/postern/internal/acme"
	"github.com/postern/postern/internal/tlsconf"
)

// Automatic certificates (internal/acme): with --acme-email, serve obtains
// the certificates of the mail host and of every domain's autoconfig and
// mta-sts names from an ACME CA, keeps them in the database (shared by the
// nodes of a PostgreSQL cluster) and renews them while running.

type acmeFlags struct {
	email, directory, caRoot, renewCheck string
}

func (f *acmeFlags) register(a *app, fs *flag.FlagSet) {
	a.configVar(fs, &f.email, "acme-email", "", "turns automatic certificates (ACME) on: the account's contact address at the CA; needs port 80 (--web-addr) or 443 (--https-addr) reachable for the host names")
	a.configVar(fs, &f.directory, "acme-directory", acme.LetsEncrypt, "the ACME CA's directory URL; Let's Encrypt's staging one for trying: "+acme.LetsEncryptStaging)
	a.configVar(fs, &f.caRoot, "acme-ca-root", "", "PEM file of a root certificate to trust for the connection to --acme-directory besides the system's (a private or test CA)")
	a.configVar(fs, &f.renewCheck, "acme-renew-check", "10m", "how often the certificates are checked for renewal (they are renewed when a third of their lifetime is left, or when the CA says so)")
}

// acmeRefresh is how often the domains are listed again for their
// certificates; a domain added in between gets its certificates soon after
// the first handshake that names them (acmeMaybe).
const acmeRefresh = 10 * time.Minute

// setupACME makes the ACME manager the certificate source of every TLS
// listener when --acme-email is given. Names it holds no certificate for
// (localhost, an IP address, a name not served here) and every name until
// its certificate is obtained get the self-signed certificate of the data
// folder.
func (s *server) setupACME() error {
	f := &s.flags.acme
	if f.email == "" {
		return nil
	}
	if s.flags.tlsCert != "" {
		return usagef(serveCommand, "--acme-email and --tls-cert exclude each other: the certificates come from the CA or from the files")
	}
	renew, err := time.ParseDuration(f.renewCheck)
	if err != nil || renew <= 0 {
		return usagef(serveCommand, "--acme-renew-check must be a duration such as 10m, not %q", f.renewCheck)
	}
	var roots *x509.CertPool
	if f.caRoot != "" {
		pem, err := os.ReadFile(f.caRoot)
		if err != nil {
			return failf("--acme-ca-root: %v", err)
		}
		if roots, err = x509.SystemCertPool(); err != nil {
			roots = x509.NewCertPool()
		}
		if !roots.AppendCertsFromPEM(pem) {
			return failf("--acme-ca-root %s holds no PEM certificate", f.caRoot)
		}
	}
	static := s.acmeHostNames()
	if len(static) == 0 {
		// Only the domains' autoconfig and mta-sts names would have
		// certificates: mail apps would get the self-signed one.
		s.log.Warn("automatic certificates: no public host name for the mail ports; give --mail-host or --base-url")
	}
	m, err := acme.New(acme.Config{
		Email:       f.email,
		Directory:   f.directory,
		Roots:       roots,
		Store:       s.db,
		Names:       func(ctx context.Context) ([]string, error) { return s.acmeNames(ctx, static) },
		Maybe:       acmeMaybe,
		DefaultName: firstOr(static, ""),
		Refresh:     acmeRefresh,
		RenewCheck:  renew,
		Log:         s.log,
	})
	if err != nil {
		return err
	}
	s.acme = m
	s.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "postern_acme_certificates_missing",
			Help: "Names that should have a certificate from the ACME CA and have none in use (they get the self-signed one)."},
			func() float64 { n, _ := m.Status(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "postern_acme_certificate_expiry_timestamp_seconds",
			Help: "The earliest expiry (Unix time) among the certificates from the ACME CA in use; renewal moves it on, so alert when it comes within a few days."},
			func() float64 {
				if _, t := m.Status(); !t.IsZero() {
					return float64(t.Unix())
				}
				return 0
			}),
	)
	s.certs = acmeSource{m.GetCertificate(s.certs.GetCertificate)}
	s.tls = tlsconf.ServerConfig(s.certs)
	// HTTP-01: the CA fetches the token over plain HTTP from the web
	// listener, which keeps this path on HTTP when HTTPS is on (https.go).
	s.web.Handle(acmeChallengePrefix, m.HTTPHandler(http.NotFoundHandler()))
	s.log.Info("automatic certificates on", "directory", f.directory, "names", strings.Join(static, " "))
	return nil
}

// acmeSource is the ACME manager as the listeners' tlsconf.Source.
type acmeSource struct {
	get func(*tls.ClientHelloInfo) (*tls.Certificate, error)
}

func (a acmeSource) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return a.get(hello)
}

// startACME tells the manager where the challenges arrive (the bound web
// and HTTPS listeners) and starts obtaining; start calls it once the
// listeners are bound and before they serve.
func (s *server) startACME() error {
	if s.acme == nil {
		return nil
	}
	if err := s.acme.Challenges(s.addr("web"), s.addr("https")); err != nil {
		return failf("automatic certificates: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.tasks = append(s.tasks, task{"acme", func(tctx context.Context) error {
		<-tctx.Done()
		cancel()
		return nil
	}})
	if err := s.acme.Start(ctx); err != nil {
		cancel()
		return failf("automatic certificates: %v", err)
	}
	return nil
}

// acmeHostNames are the names every node serves whatever the domains: the
// mail host (--mail-host, else the --base-url host), which IMAP, POP3 and
// SMTP clients and MX senders connect to, and the web UI's host.
func (s *server) acmeHostNames() []string {
	var out []string
	add := func(h string) {
		h = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(h), "."))
		if acme.Eligible(h) && !contains(out, h) {
			out = append(out, h)
		}
	}
	add(s.flags.sending.mailHost)
	if u, err := url.Parse(s.app.baseURL); err == nil {
		add(u.Hostname())
	}
	return out
}

// acmePrefixes are the per-domain names served here: Thunderbird's
// autoconfig and the MTA-STS policy host (`postern domain dns`).
var acmePrefixes = []string{"autoconfig.", "mta-sts."}

// acmeNames is every name that should have a certificate now.
func (s *server) acmeNames(ctx context.Context, static []string) ([]string, error) {
	domains, err := s.svc.DomainNames(ctx)
	if err != nil {
		return nil, fmt.Errorf("list the domains: %w", err)
	}
	out := append([]string(nil), static...)
	for _, d := range domains {
		for _, p := range acmePrefixes {
			out = append(out, p+d)
		}
	}
	return out, nil
}

// acmeMaybe says whether a handshake's server name may be a per-domain
// name of a domain added since the names were last listed.
func acmeMaybe(name string) bool {
	for _, p := range acmePrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func firstOr(list []string, def string) string {
	if len(list) > 0 {
		return list[0]
	}
	return def
}
