package main

import (
	"context"
	"net/http"
	"time"

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

// healthz answers 200 when the database answers a ping, 503 otherwise, so a
// load balancer takes a node whose database is unreachable out of rotation
// (it would fail every login anyway: fail closed).
func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := s.db.SQL.PingContext(ctx); err != nil {
		s.log.Warn("healthz: database unavailable", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("database unavailable\n"))
		return
	}
	w.Write([]byte("ok"))
}

// slogErrorLog lets promhttp report through the server's logger.
type slogErrorLog struct{ s *server }

func (l slogErrorLog) Println(v ...any) { l.s.log.Warn("metrics", "err", v) }
