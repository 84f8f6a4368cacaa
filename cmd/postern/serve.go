package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/acme"
	"github.com/postern/postern/internal/auth"
	"github.com/postern/postern/internal/davserver"
	"github.com/postern/postern/internal/dkim"
	"github.com/postern/postern/internal/events"
	"github.com/postern/postern/internal/netserver"
	"github.com/postern/postern/internal/store/sqlstore"
	"github.com/postern/postern/internal/tlsconf"
)

// serveFlags are the flags of serve and demo (SPEC §6). An empty address
// turns its listener off.
type serveFlags struct {
	web, metrics, imap, imaps, pop3, pop3s, submission, submissions string
	https                                                           string // --https-addr (https.go)
	tlsCert, tlsKey                                                 string
	plaintext                                                       string
	imapCompress                                                    string         // --imap-compress (listeners.go)
	mailFsync                                                       string         // --mail-fsync (sqlstore.DB.LazyMailChanges)
	credCache                                                       string         // --credential-cache (credcache.go)
	scaleout                                                        scaleoutFlags  // --trusted-proxies, --auth-max-delay (scaleout.go)
	connLimits                                                      connLimitFlags // --max-connections-per-ip, --max-connections (connlimits.go)
	mail                                                            mailFlags      // --smtp-addr, --lmtp-addr, --mailbox-quota, --smtp-rate-limit (mx.go)
	inspect                                                         inspectFlags   // --dns-resolver, --rspamd-* (inspect.go)
	outbound                                                        outboundFlags  // --outbound, --smarthost*, --queue-* (outbound.go)
	sending                                                         sendingFlags   // --mail-host, --mta-sts-mode (dkim.go)
	sendLimits                                                      sendLimitFlags // --send-limit-* (sendlimits.go)
	audit                                                           auditFlags     // --audit-retention (audit.go)
	acme                                                            acmeFlags      // --acme-* (acme.go)
}

func (f *serveFlags) register(a *app, fs *flag.FlagSet) {
	a.configVar(fs, &f.web, "web-addr", "127.0.0.1:8080", "web UI, JSON API, CalDAV/CardDAV, /healthz and /readyz (HTTP)")
	a.configVar(fs, &f.https, "https-addr", "", "the web listener's routes over HTTPS, with HTTP/2 and HSTS; --web-addr then redirects there")
	a.configVar(fs, &f.metrics, "metrics-addr", "127.0.0.1:9465", "Prometheus /metrics (HTTP), for operators only: keep it off the Internet")
	a.configVar(fs, &f.imap, "imap-addr", "127.0.0.1:1143", "IMAP with STARTTLS")
	a.configVar(fs, &f.imaps, "imaps-addr", "127.0.0.1:1993", "IMAP over implicit TLS")
	a.configVar(fs, &f.pop3, "pop3-addr", "127.0.0.1:1110", "POP3 with STLS")
	a.configVar(fs, &f.pop3s, "pop3s-addr", "127.0.0.1:1995", "POP3 over implicit TLS")
	a.configVar(fs, &f.submission, "submission-addr", "127.0.0.1:1587", "SMTP submission with STARTTLS")
	a.configVar(fs, &f.submissions, "submissions-addr", "127.0.0.1:1465", "SMTP submission over implicit TLS")
	a.configVar(fs, &f.tlsCert, "tls-cert", "", "PEM certificate chain; default: a self-signed certificate in DATA/tls")
	a.configVar(fs, &f.tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	a.configVar(fs, &f.plaintext, "plaintext-auth", "loopback", "passwords before TLS: never, loopback or always")
	a.configVar(fs, &f.imapCompress, "imap-compress", "on", "IMAP COMPRESS=DEFLATE: on, or off to save the ~39 KiB a compressed connection holds")
	a.configVar(fs, &f.mailFsync, "mail-fsync", "optimized", "SQLite: optimized (flag changes and expunges reach the disk within a second, as Dovecot's mail_fsync) or always (every change before its reply)")
	f.scaleout.register(a, fs)   // scaleout.go
	f.connLimits.register(a, fs) // connlimits.go
	f.mail.register(a, fs)       // mx.go
	f.inspect.register(a, fs)    // inspect.go
	f.outbound.register(a, fs)   // outbound.go
	f.sending.register(a, fs)    // dkim.go
	f.sendLimits.register(a, fs) // sendlimits.go
	f.audit.register(a, fs)      // audit.go
	f.acme.register(a, fs)       // acme.go
	registerCredentialCache(a, fs, &f.credCache)
}

func serveSetup(a *app, fs *flag.FlagSet) runFunc {
	var f serveFlags
	f.register(a, fs)
	return func(ctx context.Context, a *app, args []string) error {
		defer startGCFloor(gcHeapFloor).stop()
		s, err := newServer(ctx, a, &f)
		if err != nil {
			return err
		}
		if err := s.start(); err != nil {
			return err
		}
		s.ready()
		return s.wait(ctx)
	}
}

// parseMailFsync reads --mail-fsync: whether flag changes and expunges may
// commit without waiting for the disk (sqlstore.DB.LazyMailChanges).
func parseMailFsync(v string) (lazy bool, err error) {
	switch v {
	case "optimized":
		return true, nil
	case "always":
		return false, nil
	}
	return false, usagef(serveCommand, "--mail-fsync: %q is neither optimized nor always", v)
}

// server holds what serve opened, for the listeners to share. Protocol
// servers are built from these pieces in setupListeners.
type server struct {
	app       *app
	flags     *serveFlags
	log       *slog.Logger
	db        *sqlstore.DB
	svc       *account.Service
	tls       *tls.Config         // of the mail listeners: s.certs, no ALPN
	certs     tlsconf.Source      // the certificate of every TLS listener (https.go)
	certFiles *tlsconf.FileSource // s.certs when read from files: reloaded on change and SIGHUP
	acme      *acme.Manager       // with --acme-email: s.certs, falling back to certFiles (acme.go)
	plaintext tlsconf.Plaintext
	reg       *prometheus.Registry
	bus       *events.Bus      // the outbox's events, fed by tailer; listeners subscribe
	tailer    *events.Tailer   // started by start, before the listeners serve
	web       *http.ServeMux   // routes of the web listener
	gw        *auth.Gateway    // the authentication gateway of every third-party protocol
	limits    netserver.Limits // each server's connection caps (connlimits.go)
	mailQuota int64            // --mailbox-quota: the limit of members whose own setting and domain set none (mx.go)

	signer     *dkim.Signer // DKIM signatures of outgoing mail (dkim.go)
	mtaSTSMode string       // --mta-sts-mode, checked (dkim.go)

	listeners []*listener
	tasks     []task             // background work that runs while serving
	stopTasks context.CancelFunc // set by start
	tasksDone sync.WaitGroup
	errc      chan error // a listener or task that stopped on its own
}

// task is background work of the server (the event tailer, pruning, …): run
// until ctx is cancelled at shutdown.
type task struct {
	name string
	run  func(ctx context.Context) error
}

// listener is one socket and the protocol server behind it.
type listener struct {
	name string // "web", "imap", "imaps", …: in the ready line and logs
	addr string // host:port as configured; "" turns it off
	// serve runs the protocol on ln (the protocol servers do TLS themselves:
	// STARTTLS, or implicit TLS from the first byte, RFC 8314 §3);
	// serve runs the protocol on ln until stop is called.
	serve func(ln net.Listener) error
	// stop closes the listener and ends its connections, waiting for them
	// until ctx is done.
	stop func(ctx context.Context) error
	ln   net.Listener
}

// newServer opens the store, the key and the TLS configuration, and declares
// the listeners; start binds them.
func newServer(ctx context.Context, a *app, f *serveFlags) (*server, error) {
	plaintext, err := tlsconf.ParsePlaintext(f.plaintext)
	if err != nil {
		return nil, usagef(serveCommand, "%v", err)
	}
	lazy, err := parseMailFsync(f.mailFsync)
	if err != nil {
		return nil, err
	}
	svc, err := a.open(ctx)
	if err != nil {
		return nil, err
	}
	if lazy {
		if err := a.db.LazyMailChanges(ctx); err != nil {
			return nil, err
		}
	}
	if a.baseURLGiven {
		if err := svc.SaveBaseURL(ctx, a.baseURL); err != nil {
			return nil, usagef(serveCommand, "--base-url: %v", err)
		}
	}
	s := &server{
		app: a, flags: f, log: a.log, db: a.db, svc: svc, plaintext: plaintext,
		reg:  prometheus.NewRegistry(),
		bus:  events.NewBus(),
		web:  http.NewServeMux(),
		errc: make(chan error, 16),
	}
	s.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(),
		collectors.NewDBStatsCollector(s.db.SQL, s.db.Dialect.String()),
	)
	if lazy && s.db.Dialect == sqlstore.SQLite {
		s.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "postern_mail_lazy_commits_total",
			Help: "Flag changes and expunges committed without waiting for the disk (--mail-fsync optimized)."},
			func() float64 { return float64(s.db.LazyCommits()) }))
	}
	if err := s.setupCredentialCache(); err != nil {
		return nil, err
	}
	if err := s.setupCertificates(); err != nil { // https.go
		return nil, err
	}
	if err := s.setupACME(); err != nil { // acme.go: after setupCertificates, whose certificate it falls back to
		return nil, err
	}
	s.tailer = &events.Tailer{Store: s.db, Bus: s.bus, Log: s.log}
	s.tasks = append(s.tasks, task{"events", func(ctx context.Context) error {
		// Wake on LISTEN/NOTIFY (PostgreSQL: every node's commits) or on
		// this process's commits (SQLite); the tailer also polls.
		s.tailer.Wake = s.db.Listen(ctx)
		return s.tailer.Run(ctx)
	}})
	if err := s.setupSending(ctx); err != nil { // dkim.go
		return nil, err
	}
	if err := s.setupAudit(); err != nil { // audit.go
		return nil, err
	}
	s.setupExpiry() // expiry.go
	if err := s.setupListeners(); err != nil {
		return nil, err
	}
	return s, nil
}

// setupListeners declares every listener. The IMAP, POP3, SMTP submission
// and DAV servers are built here from s.svc, s.bus, s.tls, s.plaintext and
// s.reg, each with its address from s.flags; DAV and the web UI mount on s.web.
func (s *server) setupListeners() error {
	s.routeOps()
	if err := s.setupScaleout(); err != nil { // scaleout.go: load balancers, throttle, /readyz
		return err
	}
	if err := s.setupConnLimits(); err != nil { // connlimits.go: after setupScaleout, which reads the trusted proxies
		return err
	}
	if err := s.setupSendLimits(); err != nil { // sendlimits.go: before setupProtocols, which hands s.svc to submission
		return err
	}
	if err := s.setupProtocols(); err != nil {
		return err
	}
	s.routeDAV()
	web, https := s.webHandlers() // https.go; forwarded: X-Forwarded-For from --trusted-proxies
	s.add(s.httpListener("web", s.flags.web, web, nil))
	if https != nil {
		protos := httpsNextProtos
		if s.acme != nil {
			protos = append(protos[:len(protos):len(protos)], acme.ALPNProto) // TLS-ALPN-01 (acme.go)
		}
		s.add(s.httpListener("https", s.flags.https, https, tlsconf.ServerConfig(s.certs, protos...)))
	}
	s.add(s.httpListener("metrics", s.flags.metrics, s.metricsHandler(), nil))
	return nil
}

// routeDAV mounts CalDAV/CardDAV on the web listener, behind the same
// authentication gateway as IMAP (s.gw, built by setupProtocols) and the
// same --plaintext-auth rule: the web listener speaks plain HTTP, so a
// password counts as sent over TLS only through a trusted load balancer
// that says so (forwarded).
func (s *server) routeDAV() {
	dav := davserver.New(davserver.Config{Auth: s.gw, Store: s.db.DAV(), Log: s.log, Plaintext: s.plaintext})
	s.web.Handle(davserver.Prefix, dav)
	s.web.Handle("/.well-known/caldav", dav)
	s.web.Handle("/.well-known/carddav", dav)
}

// add declares l unless its address is empty.
func (s *server) add(l *listener) {
	if l.addr == "" {
		s.log.Info("listener off", "listener", l.name)
		return
	}
	s.listeners = append(s.listeners, l)
}

// start binds every listener (all or none: a port in use stops the start
// before anything is served), then serves them and prints one line per
// listener on stdout, "listening NAME ADDR" with the bound address (so port
// 0 works).
func (s *server) start() error {
	if len(s.listeners) == 0 {
		return failf("every listener is off; give at least one address such as --web-addr 127.0.0.1:8080")
	}
	for _, l := range s.listeners {
		lc := net.ListenConfig{}
		if l.name != "web" && l.name != "https" {
			// No TCP keepalive probes on mail connections: Go's default
			// probes every 15 s, which on 10,000 phones idling in IMAP IDLE
			// is 700 packets a second and radios woken up for nothing, and
			// its four setsockopt calls were a few per cent of a login. A
			// vanished client is cut by the protocols' own timeouts (IMAP's
			// 35 minutes after login, RFC 9051 §5.4).
			lc.KeepAlive = -1
		}
		var ln net.Listener
		var err error
		if path, ok := strings.CutPrefix(l.addr, "unix:"); ok {
			ln, err = listenUnix(path) // mx.go: --lmtp-addr unix:/path
		} else {
			ln, err = lc.Listen(context.Background(), "tcp", l.addr)
		}
		if err != nil {
			s.closeListeners()
			return failf("cannot listen for %s: %v", l.name, err)
		}
		l.ln = ln
	}
	// The web UI shows members the bound ports, known only now.
	s.setupWeb()
	// ACME's challenges arrive on the bound web and HTTPS ports.
	if err := s.startACME(); err != nil { // acme.go
		s.closeListeners()
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stopTasks = cancel
	for _, t := range s.tasks {
		s.tasksDone.Add(1)
		go func(t task) {
			defer s.tasksDone.Done()
			if err := t.run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				s.errc <- fmt.Errorf("%s: %w", t.name, err)
			}
		}(t)
	}
	// Sessions must not start before the tailer knows where the outbox ends,
	// or a revocation committed in between would not reach them.
	select {
	case <-s.tailer.Ready():
	case err := <-s.errc:
		cancel()
		s.closeListeners()
		return err
	}
	for _, l := range s.listeners {
		go func(l *listener) {
			err := l.serve(l.ln)
			if err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, http.ErrServerClosed) {
				s.errc <- fmt.Errorf("%s listener: %w", l.name, err)
			}
		}(l)
		s.log.Info("listening", "listener", l.name, "addr", l.ln.Addr().String())
		fmt.Fprintf(s.app.stdout, "listening %s %s\n", l.name, l.ln.Addr())
	}
	return nil
}

// ready prints "ready" on stdout, after everything else serve or demo prints
// at start: tests and scripts wait for it.
func (s *server) ready() { fmt.Fprintln(s.app.stdout, "ready") }

func (s *server) closeListeners() {
	for _, l := range s.listeners {
		if l.ln != nil {
			l.ln.Close()
		}
	}
}

// addr returns the bound address of the listener named name, "" when it is off.
func (s *server) addr(name string) string {
	for _, l := range s.listeners {
		if l.name == name && l.ln != nil {
			return l.ln.Addr().String()
		}
	}
	return ""
}

// wait serves until ctx is cancelled (SIGINT, SIGTERM) or a listener fails,
// then stops every listener, giving open connections a moment to finish.
func (s *server) wait(ctx context.Context) error {
	var err error
	select {
	case <-ctx.Done():
		s.log.Info("shutting down")
	case err = <-s.errc:
		s.log.Error("a listener failed; shutting down", "err", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, l := range s.listeners {
		wg.Add(1)
		go func(l *listener) {
			defer wg.Done()
			if serr := l.stop(sctx); serr != nil && !errors.Is(serr, net.ErrClosed) {
				s.log.Warn("stop listener", "listener", l.name, "err", serr)
			}
		}(l)
	}
	wg.Wait()
	s.stopTasks()
	s.tasksDone.Wait()
	if s.gw != nil {
		s.gw.Close() // writes the queued login records
	}
	s.log.Info("stopped")
	return err
}

// httpListener serves h over HTTP on addr, under s.limits (a count of its
// own) and with request bodies and responses under webRate (connlimits.go);
// over TLS with tlsCfg (HTTP/2 when its NextProtos offer h2), else plain.
func (s *server) httpListener(name, addr string, h http.Handler, tlsCfg *tls.Config) *listener {
	hs := &http.Server{
		Handler:           webRate.guard(h),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	limit := netserver.NewLimiter(name, s.limits, s.log)
	serve := func(ln net.Listener) error { return hs.Serve(limit.Listener(ln, webRefusal)) }
	if tlsCfg != nil {
		hs.TLSConfig = tlsCfg
		// No refusal written: before the handshake, plain HTTP is noise to
		// a TLS client; the close says enough.
		serve = func(ln net.Listener) error { return hs.ServeTLS(limit.Listener(ln, netserver.Refusal{}), "", "") }
	}
	return &listener{name: name, addr: addr, serve: serve, stop: hs.Shutdown}
}

// hostnames are the names a generated certificate is valid for, besides the
// loopback names: this machine's name and the host of --base-url.
func hostnames(baseURL string) []string {
	var out []string
	if h, err := os.Hostname(); err == nil {
		out = append(out, h)
	}
	if u, err := url.Parse(baseURL); err == nil && u.Hostname() != "" {
		out = append(out, u.Hostname())
	}
	return out
}
