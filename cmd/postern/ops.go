package main

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// routeOps mounts the operations endpoints on the web listener.
func (s *server) routeOps() {
	s.web.HandleFunc("GET /healthz", s.healthz)
	s.web.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{
		ErrorLog: slogErrorLog{s},
		Registry: s.reg, // counts its own scrape errors
	}))
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
