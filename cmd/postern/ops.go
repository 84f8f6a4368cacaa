package main

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// routeOps mounts the operations endpoints of the web listener.
func (s *server) routeOps() {
	s.web.HandleFunc("GET /healthz", s.healthz)
}

// metricsHandler serves /metrics on a listener of its own (--metrics-addr,
// loopback by default), never on the web listener that members and
// strangers reach: counters such as the credential cache's misses or the
// accounts paused follow what logins tried, and whoever can watch them
// while guessing learns more than the login's reply says
// (docs/security.md).
func (s *server) metricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{
		ErrorLog: slogErrorLog{s},
		Registry: s.reg, // counts its own scrape errors
	}))
	mux.HandleFunc("GET /healthz", s.healthz)
	return mux
}

// healthz is liveness: 200 while the process serves HTTP. It does not look
// at the database, so that a supervisor does not restart every node during a
// database outage they recover from by themselves; /readyz (scaleout.go) is
// the check that follows the database, for load balancers.
func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte("ok"))
}

// slogErrorLog lets promhttp report through the server's logger.
type slogErrorLog struct{ s *server }

func (l slogErrorLog) Println(v ...any) { l.s.log.Warn("metrics", "err", v) }
