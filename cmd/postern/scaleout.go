package main

import (
	"context"
	"flag"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/postern/postern/internal/auth"
	"github.com/postern/postern/internal/proxyproto"
	"github.com/postern/postern/internal/store/sqlstore"
	"github.com/postern/postern/internal/tlsconf"
)

// Several stateless nodes on one PostgreSQL behind a load balancer (see
// docs/deploy.md): the load balancers' addresses, whose PROXY headers and
// X-Forwarded-For are believed; the per-IP login delay, shared by every node
// on PostgreSQL; and /readyz.

// scaleoutFlags are the serve flags of a deployment behind load balancers.
type scaleoutFlags struct {
	trustedProxies string
	authMaxDelay   string

	// Parsed by setupScaleout.
	trusted  proxyproto.Trusted
	maxDelay time.Duration
}

func (f *scaleoutFlags) register(a *app, fs *flag.FlagSet) {
	a.configVar(fs, &f.trustedProxies, "trusted-proxies", "",
		"load balancers (CIDR or address, comma-separated) whose PROXY protocol header (IMAP, POP3, SMTP) and X-Forwarded-For (web) give the client's address; connections from them must carry it")
	a.configVar(fs, &f.authMaxDelay, "auth-max-delay", "15s",
		"longest per-IP delay after failed third-party logins (2s, 4s, 8s… up to this); 0 turns the per-IP delay off")
}

// setupScaleout checks the flags and mounts /readyz. It runs before the
// gateway and the listeners are built.
func (s *server) setupScaleout() error {
	f := &s.flags.scaleout
	trusted, err := proxyproto.ParseTrusted(f.trustedProxies)
	if err != nil {
		return usagef(serveCommand, "--trusted-proxies: %v", err)
	}
	d, err := time.ParseDuration(strings.TrimSpace(f.authMaxDelay))
	if err != nil || d < 0 {
		return usagef(serveCommand, "--auth-max-delay must be a duration such as 15s, or 0, not %q", f.authMaxDelay)
	}
	f.trusted, f.maxDelay = trusted, d
	if len(trusted) > 0 {
		s.log.Info("trusting client addresses from load balancers", "trusted_proxies", trusted.String())
	}
	s.web.HandleFunc("GET /readyz", s.readyz)
	return nil
}

// authThrottle is the per-IP throttle of the gateway: shared by every node
// on PostgreSQL (a client spreading guesses over nodes gains nothing), in
// memory on SQLite (one node), none with --auth-max-delay 0.
func (s *server) authThrottle() auth.Throttle {
	d := s.flags.scaleout.maxDelay
	if d == 0 {
		return noDelay{}
	}
	cfg := auth.ThrottleConfig{Max: d}
	if s.db.Dialect == sqlstore.Postgres {
		return auth.NewSharedThrottle(s.db, cfg, s.log)
	}
	return auth.NewMemThrottle(cfg)
}

// noDelay is the throttle of --auth-max-delay 0: no per-IP delay. The
// per-account failure limit still applies.
type noDelay struct{}

func (noDelay) Begin(netip.Addr, time.Time) (time.Duration, bool)  { return 0, true }
func (noDelay) End(netip.Addr, auth.Outcome, auth.Tags, time.Time) {}

// proxied wraps a protocol listener so that connections from the trusted
// load balancers take their client address from the PROXY header.
func (s *server) proxied(name string, ln net.Listener) net.Listener {
	if len(s.flags.scaleout.trusted) == 0 {
		return ln
	}
	return proxyproto.NewListener(ln, s.flags.scaleout.trusted, 0, s.log.With("listener", name))
}

// forwarded makes a request that came through a trusted load balancer carry
// the client's address in RemoteAddr (port 0: the client's port is not
// forwarded), so that the web UI, the API and DAV see the client, and
// marks its context when the balancer says it ended TLS
// (tlsconf.WithForwardedTLS, read by --plaintext-auth). Both are decided on
// the real peer, before RemoteAddr is replaced.
func (s *server) forwarded(h http.Handler) http.Handler {
	trusted := s.flags.scaleout.trusted
	if len(trusted) == 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if forwardedTLS(r.RemoteAddr, r.Header.Values("X-Forwarded-Proto"), trusted) {
			r = r.WithContext(tlsconf.WithForwardedTLS(r.Context()))
		}
		if ip, ok := forwardedClient(r.RemoteAddr, r.Header.Values("X-Forwarded-For"), trusted); ok {
			r = r.WithContext(r.Context()) // a shallow copy: the server's request stays as it was
			r.RemoteAddr = net.JoinHostPort(ip.String(), "0")
		}
		h.ServeHTTP(w, r)
	})
}

// forwardedTLS reports whether a request from peer reached a trusted load
// balancer over TLS: the peer is trusted and every X-Forwarded-Proto entry
// is https (balancers set the header; an entry a client slipped in before
// them, or a hop without TLS, makes it not count).
func forwardedTLS(peer string, proto []string, trusted proxyproto.Trusted) bool {
	ap, err := netip.ParseAddrPort(peer)
	if err != nil || !trusted.Contains(ap.Addr()) {
		return false
	}
	n := 0
	for _, v := range proto {
		for _, p := range strings.Split(v, ",") {
			if !strings.EqualFold(strings.TrimSpace(p), "https") {
				return false
			}
			n++
		}
	}
	return n > 0
}

// forwardedClient returns the client of a request from peer with the given
// X-Forwarded-For headers: the rightmost address that is not a trusted
// proxy (each proxy appends the address it received from, so everything to
// the left of that one was written by the client and proves nothing), or the
// leftmost when all are trusted. ok is false when peer is not trusted, there
// is no header, or the entry to use is not an address.
func forwardedClient(peer string, xff []string, trusted proxyproto.Trusted) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(peer)
	if err != nil || !trusted.Contains(ap.Addr()) {
		return netip.Addr{}, false
	}
	var hops []string
	for _, v := range xff {
		hops = append(hops, strings.Split(v, ",")...)
	}
	var last netip.Addr
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(strings.TrimSpace(hops[i]))
		if !ok {
			return netip.Addr{}, false
		}
		if !trusted.Contains(a) {
			return a, true
		}
		last = a
	}
	return last, last.IsValid()
}

// parseHop reads one X-Forwarded-For entry: an address, possibly with a
// port ("192.0.2.1:4711", "[2001:db8::1]:4711").
func parseHop(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Addr().Zone() == "" {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

// readyz answers 200 while the database answers and 503 while it does not,
// for a load balancer's health check: a node without its database refuses
// every login (fails closed), so it should get no new connections. It comes
// back by itself when the database does. /healthz is the process's liveness.
func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := s.db.SQL.PingContext(ctx); err != nil {
		s.log.Warn("readyz: database unavailable", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("database unavailable\n"))
		return
	}
	w.Write([]byte("ready\n"))
}
