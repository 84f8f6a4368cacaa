// Package acme obtains and renews the server's certificates from an ACME
// certificate authority (RFC 8555) such as Let's Encrypt, with certmagic.
//
// Certificates, account keys and challenge tokens are kept through a Store
// (the database), so that the nodes of a cluster share them: one node
// obtains, every node serves; any node answers a challenge of another's
// order. Leases in the Store keep two nodes from ordering the same
// certificate at once.
//
// The names come from a function asked at start, every Refresh, and soon
// after a handshake names one that may be new (a domain added since the last
// refresh): Names and Maybe in Config. Handshakes never wait for the CA.
package acme

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3"
)

// LetsEncrypt is the production directory of Let's Encrypt; LetsEncryptStaging
// issues untrusted certificates under far higher rate limits, for trying.
const (
	LetsEncrypt        = certmagic.LetsEncryptProductionCA
	LetsEncryptStaging = certmagic.LetsEncryptStagingCA
)

// ALPNProto is the TLS-ALPN-01 challenge's protocol (RFC 8737): the HTTPS
// listener's tls.Config must offer it in NextProtos.
const ALPNProto = acmez.ACMETLS1Protocol

// Config is what a Manager needs.
type Config struct {
	Email     string         // the ACME account's contact; the CA writes about expiring certificates and incidents
	Directory string         // the CA's directory URL (LetsEncrypt, LetsEncryptStaging, a test CA's)
	Roots     *x509.CertPool // trusted for the connection to Directory; nil for the system's
	Store     Store

	// Names returns every name that should have a certificate now; asked at
	// Start and every Refresh.
	Names func(ctx context.Context) ([]string, error)
	// Maybe reports, without a database query, whether a name a handshake
	// asks for and Names did not return last may be one of its names now
	// (autoconfig.DOMAIN of a domain just added): Names is then asked again
	// within seconds. nil: only every Refresh.
	Maybe func(name string) bool
	// DefaultName is the certificate of handshakes without a server name
	// (clients configured with an IP address, old ones): the mail host's.
	DefaultName string

	Refresh     time.Duration // how often Names is asked again; 0: 10 minutes
	RenewCheck  time.Duration // how often certificates are checked for renewal; 0: certmagic's 10 minutes
	Log         *slog.Logger
	EventLogger func(event string, data map[string]any) // optional: certmagic's events (cert_obtained, …), for tests and metrics
}

// Manager holds the certificates of Config's names.
type Manager struct {
	cfg    Config
	cache  *certmagic.Cache
	magic  *certmagic.Config
	issuer *certmagic.ACMEIssuer
	kick   chan struct{} // a handshake asked for a name that may be new

	mu      sync.Mutex
	managed map[string]bool // the names handed to certmagic
}

// New returns a Manager; Start begins obtaining.
func New(cfg Config) (*Manager, error) {
	if cfg.Store == nil || cfg.Names == nil {
		return nil, errors.New("acme: Store and Names are required")
	}
	if cfg.Directory == "" {
		cfg.Directory = LetsEncrypt
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = 10 * time.Minute
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	m := &Manager{cfg: cfg, managed: map[string]bool{}, kick: make(chan struct{}, 1)}
	zl := zapLogger(cfg.Log)
	var magic *certmagic.Config
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return magic, nil },
		RenewCheckInterval: cfg.RenewCheck,
		Logger:             zl,
	})
	base := certmagic.Config{
		Storage:           newStorage(cfg.Store),
		DefaultServerName: cfg.DefaultName,
		Logger:            zl,
		OnEvent: func(ctx context.Context, event string, data map[string]any) error {
			if cfg.EventLogger != nil {
				cfg.EventLogger(event, data)
			}
			return nil
		},
	}
	magic = certmagic.New(m.cache, base)
	m.issuer = certmagic.NewACMEIssuer(magic, certmagic.ACMEIssuer{
		CA:           cfg.Directory,
		Email:        cfg.Email,
		Agreed:       true,
		TrustedRoots: cfg.Roots,
		Logger:       zl,
	})
	magic.Issuers = []certmagic.Issuer{m.issuer}
	m.magic = magic
	return m, nil
}

// Challenges says where the CA's validation requests arrive: httpAddr is
// the plain HTTP listener's bound address (HTTP-01 on /.well-known/acme-challenge/),
// tlsAddr the HTTPS listener's (TLS-ALPN-01). An empty address turns its
// challenge off. Call before Start.
//
// certmagic binds a challenge port itself when nothing listens on it; given
// the addresses the server already holds, it finds them taken and leaves
// the challenges to HTTPHandler and GetCertificate.
func (m *Manager) Challenges(httpAddr, tlsAddr string) error {
	if httpAddr == "" && tlsAddr == "" {
		return errors.New("ACME needs a plain HTTP listener (HTTP-01 challenge, port 80) or an HTTPS one (TLS-ALPN-01, port 443)")
	}
	set := func(addr string, host *string, port *int, off *bool) error {
		if addr == "" {
			*off = true
			return nil
		}
		h, p, err := net.SplitHostPort(addr)
		if err != nil {
			return err
		}
		n, err := strconv.Atoi(p)
		if err != nil {
			return err
		}
		*host, *port = h, n
		return nil
	}
	var hostHTTP, hostTLS string
	if err := set(httpAddr, &hostHTTP, &m.issuer.AltHTTPPort, &m.issuer.DisableHTTPChallenge); err != nil {
		return fmt.Errorf("HTTP challenge address %q: %w", httpAddr, err)
	}
	if err := set(tlsAddr, &hostTLS, &m.issuer.AltTLSALPNPort, &m.issuer.DisableTLSALPNChallenge); err != nil {
		return fmt.Errorf("TLS-ALPN challenge address %q: %w", tlsAddr, err)
	}
	// One ListenHost serves both; the HTTP listener's wins, which is the
	// usual case of both on the same (wildcard) address.
	m.issuer.ListenHost = hostTLS
	if httpAddr != "" {
		m.issuer.ListenHost = hostHTTP
	}
	return nil
}

// kickPause is the least time between two listings of the names.
const kickPause = 2 * time.Second

// Start obtains (or loads from the Store) the certificates of Names in the
// background and refreshes the names until ctx ends; certmagic renews them
// in the background, and new handshakes get the renewed certificate.
func (m *Manager) Start(ctx context.Context) error {
	if err := m.refresh(ctx); err != nil {
		return err
	}
	go func() {
		t := time.NewTicker(m.cfg.Refresh)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				m.cache.Stop()
				return
			case <-t.C:
			case <-m.kick:
			}
			if err := m.refresh(ctx); err != nil && ctx.Err() == nil {
				m.cfg.Log.Error("acme: listing the certificate names failed; trying again later", "err", err)
			}
			// Handshakes naming new names (or a scanner's made-up ones)
			// cost one listing every kickPause at most.
			select {
			case <-ctx.Done():
			case <-time.After(kickPause):
			}
		}
	}()
	return nil
}

// refresh hands the new names to certmagic and stops maintaining those no
// longer wanted (a deleted domain's).
func (m *Manager) refresh(ctx context.Context) error {
	names, err := m.names(ctx)
	if err != nil {
		return err
	}
	m.mu.Lock()
	var add []string
	var gone []certmagic.SubjectIssuer
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
		if !m.managed[n] {
			add = append(add, n)
		}
	}
	for n := range m.managed {
		if !want[n] {
			gone = append(gone, certmagic.SubjectIssuer{Subject: n})
		}
	}
	m.managed = want
	m.mu.Unlock()
	if len(gone) > 0 {
		m.cache.RemoveManaged(gone)
	}
	if len(add) == 0 {
		return nil
	}
	m.cfg.Log.Info("acme: managing certificates", "names", strings.Join(add, " "))
	return m.magic.ManageAsync(ctx, add)
}

func (m *Manager) names(ctx context.Context) ([]string, error) {
	raw, err := m.cfg.Names(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range raw {
		n = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(n), "."))
		if Eligible(n) && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// Eligible reports whether a public CA could issue for name: a DNS name
// with a dot, not an IP address, not localhost or a name under a
// special-use top-level domain.
func Eligible(name string) bool {
	if name == "" || net.ParseIP(name) != nil || !strings.Contains(name, ".") {
		return false
	}
	for _, tld := range []string{".localhost", ".local", ".internal", ".invalid", ".home.arpa"} {
		if strings.HasSuffix(name, tld) {
			return false
		}
	}
	return certmagic.SubjectQualifiesForPublicCert(name)
}

// GetCertificate is the tls.Config hook of every listener: the managed
// certificate of the handshake's server name, a TLS-ALPN-01 challenge's
// certificate, or else fallback's (the self-signed certificate): for
// localhost and IP addresses, names not served here, and names whose
// certificate is still being obtained, so that a handshake never waits for
// the CA. A name Maybe recognises makes the names be listed again.
func (m *Manager) GetCertificate(fallback func(*tls.ClientHelloInfo) (*tls.Certificate, error)) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		cert, err := m.magic.GetCertificate(hello)
		if err == nil || slices.Contains(hello.SupportedProtos, ALPNProto) {
			return cert, err
		}
		if name := strings.ToLower(hello.ServerName); name != "" && m.cfg.Maybe != nil && Eligible(name) {
			m.mu.Lock()
			known := m.managed[name]
			m.mu.Unlock()
			if !known && m.cfg.Maybe(name) {
				select {
				case m.kick <- struct{}{}:
				default: // a listing is already due
				}
			}
		}
		if fallback == nil {
			return nil, err
		}
		return fallback(hello)
	}
}

// Status says how the certificates stand, for monitoring: how many of the
// names have none in use, and the earliest expiry among those that have
// one (zero when none has). A renewal that keeps failing shows as an
// expiry coming closer.
func (m *Manager) Status() (missing int, earliest time.Time) {
	m.mu.Lock()
	names := make([]string, 0, len(m.managed))
	for n := range m.managed {
		names = append(names, n)
	}
	m.mu.Unlock()
	for _, n := range names {
		var newest time.Time
		for _, c := range m.cache.AllMatchingCertificates(n) {
			if c.Leaf != nil && c.Leaf.NotAfter.After(newest) {
				newest = c.Leaf.NotAfter
			}
		}
		if newest.IsZero() {
			missing++
			continue
		}
		if earliest.IsZero() || newest.Before(earliest) {
			earliest = newest
		}
	}
	return missing, earliest
}

// HTTPHandler answers the HTTP-01 challenges at /.well-known/acme-challenge/
// (this node's and, from the Store, any other node's) and passes every
// other request to next.
func (m *Manager) HTTPHandler(next http.Handler) http.Handler {
	return m.issuer.HTTPChallengeHandler(next)
}
