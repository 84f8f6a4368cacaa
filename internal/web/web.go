// Package web serves the member web UI (server-rendered html/template pages,
// assets embedded in the binary) and the member JSON API of SPEC §6. Both
// apply every rule through account.Service, so a page and an API call can
// never disagree; this package adds only sessions, re-authentication, CSRF
// and cross-origin protection, and rendering; main-password checks (sign-in,
// re-authentication) go through the authentication gateway (Authenticator).
//
// Wiring (cmd/postern):
//
//	h := web.New(web.Config{Service: svc, Sessions: db, Auth: gw, Log: logger,
//		Secure: tlsInFront, Settings: web.ServerSettings{Host: "mail.example.com", IMAPSPort: 993, ...}})
//	mux.Handle("/", h) // next to /healthz, /metrics and /dav/
package web

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/auth"
	"github.com/postern/postern/internal/dnsrecords"
	"github.com/postern/postern/internal/web/websession"
)

// SessionStore keeps web sessions; *sqlstore.DB implements it.
type SessionStore = websession.Store

// Authenticator checks main passwords for the sign-in, re-authentication and
// password-change forms; *auth.Gateway implements it (Gateway.SignIn). It
// throttles per client IP and per account (shared between nodes on
// PostgreSQL), keeps login records, and counts failures toward the account's
// consecutive-failure limit like every third-party protocol. Errors are
// account.Errors: EUNAUTHORIZED for every failure, auth.CodeThrottled (429),
// EUNAVAILABLE.
//
// RememberDevice returns the device cookie's new value after a successful
// sign-in (auth.Gateway.RememberDevice): the browser's token for the member,
// which later sign-ins carry (auth.Attempt.Devices) so that strangers'
// failures against the address never queue the member's own browser.
type Authenticator interface {
	SignIn(ctx context.Context, a auth.Attempt) (account.Member, error)
	RememberDevice(email, tokens string) string
}

// ServerSettings are what a mail or calendar app needs to connect: shown
// after an app password is created, and put into the Thunderbird autoconfig
// document and the Apple configuration profile. A zero port is a listener
// that is off.
type ServerSettings struct {
	Host            string // the name apps connect to, e.g. mail.example.com
	IMAPPort        int    // STARTTLS
	IMAPSPort       int    // implicit TLS (RFC 8314)
	POP3Port        int    // STLS
	POP3SPort       int    // implicit TLS
	SubmissionPort  int    // STARTTLS
	SubmissionsPort int    // implicit TLS
	WebPort         int    // the web listener, where CalDAV/CardDAV live under /dav/
	WebTLS          bool   // whether the web listener is reached over HTTPS
}

// Config of the web UI and API.
type Config struct {
	Service  *account.Service
	Sessions SessionStore
	Auth     Authenticator // required
	Log      *slog.Logger
	Now      func() time.Time // time.Now when nil; tests move it forward
	// Secure: TLS is in front of the web listener. Cookies get Secure and the
	// __Host- prefix, and responses carry HSTS. On plain-HTTP loopback
	// development it is false (browsers refuse __Host- cookies without Secure).
	Secure   bool
	Settings ServerSettings
	// ClientIP overrides how the client's address is found (behind a trusted
	// reverse proxy); ClientIP(r) when nil.
	ClientIP func(r *http.Request) string
	// MTASTSPolicy is the MTA-STS policy file (RFC 8461 §3.2) served at
	// mta-sts.DOMAIN/.well-known/mta-sts.txt for each local DOMAIN; "" serves none.
	MTASTSPolicy string

	// Mail gives the member's mail storage, shown on the Security page and
	// in GET /api/v1/me; nil leaves it out. MailQuota is the server's limit
	// for members whose own setting and domain set none (0: none).
	Mail      QuotaReader
	MailQuota int64

	// DNSRecords are the DNS records a domain publishes (postern domain
	// dns), shown in the admin console; nil shows none.
	DNSRecords func(ctx context.Context, domain string) ([]dnsrecords.Record, error)

	IdleTimeout     time.Duration // 1 h when zero (NIST SP 800-63B-4 §2.2.3, AAL2)
	AbsoluteTimeout time.Duration // 24 h when zero
	ReauthWindow    time.Duration // 10 min when zero: sensitive actions need a fresher password
}

// Server is the web UI and API handler.
type Server struct {
	cfg      Config
	svc      *account.Service
	sessions SessionStore
	log      *slog.Logger
	now      func() time.Time
	mux      *http.ServeMux
	cop      *http.CrossOriginProtection
	auth     Authenticator

	// adminPatterns are the console's routes (handleAdmin), which the
	// tests walk to check every one's authorisation.
	adminPatterns []string

	pruneMu   sync.Mutex
	lastPrune time.Time
}

// New returns the handler of the web UI and the JSON API.
func New(cfg Config) *Server {
	if cfg.Auth == nil {
		panic("web: Config.Auth is required: main passwords are checked by the authentication gateway")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ClientIP == nil {
		cfg.ClientIP = ClientIP
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = time.Hour
	}
	if cfg.AbsoluteTimeout == 0 {
		cfg.AbsoluteTimeout = 24 * time.Hour
	}
	if cfg.ReauthWindow == 0 {
		cfg.ReauthWindow = 10 * time.Minute
	}
	s := &Server{
		cfg: cfg, svc: cfg.Service, sessions: cfg.Sessions, log: cfg.Log, now: cfg.Now,
		mux:  http.NewServeMux(),
		cop:  http.NewCrossOriginProtection(),
		auth: cfg.Auth,
	}
	s.routes()
	return s
}

func (s *Server) routes() {
	m := s.mux
	// Assets and public documents.
	m.Handle("GET /static/", http.StripPrefix("/static/", staticHandler()))
	m.HandleFunc("GET /.well-known/autoconfig/mail/config-v1.1.xml", s.autoconfig)
	m.HandleFunc("GET /mail/config-v1.1.xml", s.autoconfig) // autoconfig.<domain> host form
	// Outlook's Autodiscover, in the two spellings clients use.
	m.HandleFunc("/autodiscover/autodiscover.xml", s.autodiscover)
	m.HandleFunc("/Autodiscover/Autodiscover.xml", s.autodiscover)
	m.HandleFunc("GET /.well-known/mta-sts.txt", s.mtaSTS)
	m.HandleFunc("GET /lang/{lang}", s.setLang)

	// Pages.
	m.HandleFunc("GET /{$}", s.home)
	m.HandleFunc("GET /signin", s.signinPage)
	m.HandleFunc("POST /signin", s.signin)
	m.HandleFunc("POST /signout", s.page(s.signout))
	m.HandleFunc("GET /reauth", s.page(s.reauthPage))
	m.HandleFunc("POST /reauth", s.page(s.reauth))
	m.HandleFunc("GET /security", s.page(s.securityPage))
	m.HandleFunc("POST /security/setting", s.page(s.setting))
	m.HandleFunc("GET /security/password", s.page(s.passwordPage))
	m.HandleFunc("POST /security/password", s.page(s.changePassword))
	m.HandleFunc("GET /security/app-passwords", s.page(s.appPasswordsPage))
	m.HandleFunc("GET /security/app-passwords/new", s.page(s.newAppPasswordPage))
	m.HandleFunc("POST /security/app-passwords", s.page(s.createAppPassword))
	m.HandleFunc("GET /security/app-passwords/{id}/delete", s.page(s.deleteAppPasswordPage))
	m.HandleFunc("POST /security/app-passwords/{id}/delete", s.page(s.deleteAppPassword))
	m.HandleFunc("POST /security/app-passwords/profile", s.page(s.downloadProfile))
	m.HandleFunc("GET /messages", s.page(s.messagesPage))
	m.HandleFunc("POST /security/sessions/others/signout", s.page(s.signOutOthersPage))
	m.HandleFunc("POST /security/sessions/{id}/signout", s.page(s.signOutSessionPage))

	// JSON API (SPEC §6).
	m.HandleFunc("POST /api/v1/session", s.apiSignin)
	m.HandleFunc("DELETE /api/v1/session", s.api(s.apiSignout))
	m.HandleFunc("GET /api/v1/me", s.api(s.apiMe))
	m.HandleFunc("PUT /api/v1/me/settings", s.api(s.apiSettings))
	m.HandleFunc("GET /api/v1/me/app-passwords", s.api(s.apiAppPasswords))
	m.HandleFunc("POST /api/v1/me/app-passwords", s.api(s.apiCreateAppPassword))
	m.HandleFunc("DELETE /api/v1/me/app-passwords/{id}", s.api(s.apiDeleteAppPassword))
	m.HandleFunc("GET /api/v1/me/messages", s.api(s.apiMessages))
	m.HandleFunc("POST /api/v1/me/messages/read", s.api(s.apiMarkRead))
	m.HandleFunc("PUT /api/v1/me/password", s.api(s.apiPassword))
	m.HandleFunc("GET /api/v1/me/sessions", s.api(s.apiSessions))
	m.HandleFunc("DELETE /api/v1/me/sessions", s.api(s.apiDeleteOtherSessions))
	m.HandleFunc("DELETE /api/v1/me/sessions/{id}", s.api(s.apiDeleteSession))
	s.adminRoutes()
	m.HandleFunc("/api/", s.apiNotFound)
	m.HandleFunc("/", s.notFound)
}

// ServeHTTP applies the security headers and the cross-origin checks to
// every request, then routes it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.securityHeaders(w)
	if err := s.cop.Check(r); err != nil {
		s.log.Warn("cross-origin request refused", "method", r.Method, "path", r.URL.Path, "ip", s.cfg.ClientIP(r),
			"origin", clipHeader(r.Header.Get("Origin")), "sec_fetch_site", clipHeader(r.Header.Get("Sec-Fetch-Site")))
		s.forbiddenCrossOrigin(w, r)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// ClientIP returns the address of the peer of r (RemoteAddr without its
// port), with IPv4-mapped IPv6 addresses unmapped. It trusts no header: a
// deployment behind a reverse proxy sets Config.ClientIP.
func ClientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap().WithZone("").String()
	}
	return host
}

// clipHeader keeps a client-supplied header short and printable for logs.
func clipHeader(v string) string {
	b := make([]rune, 0, 64)
	for _, r := range v {
		if len(b) == 64 {
			break
		}
		if r >= 0x20 && r != 0x7f {
			b = append(b, r)
		}
	}
	return string(b)
}
