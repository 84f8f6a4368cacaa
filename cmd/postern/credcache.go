package main

import (
	"context"
	"flag"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/postern/postern/internal/store/sqlstore"
)

// The caches of a SQLite deployment (internal/store/sqlstore, credcache.go
// and inboxcache.go): the credential cache's size, warm-up at start and the
// outbox as a second source of its invalidations, and both caches' metrics.

func registerCredentialCache(a *app, fs *flag.FlagSet, p *string) {
	a.configVar(fs, p, "credential-cache", strconv.Itoa(sqlstore.DefaultCredentialCache),
		"members whose credentials are kept in memory on SQLite, read at start (about 1 KiB each); every change invalidates at once, on any process; 0 turns it off")
}

func (s *server) setupCredentialCache() error {
	n, err := strconv.Atoi(strings.TrimSpace(s.flags.credCache))
	if err != nil || n < 0 {
		return usagef(serveCommand, "--credential-cache must be a number of members, or 0, not %q", s.flags.credCache)
	}
	s.db.SetCredentialCache(n)
	for _, c := range []struct {
		name, what string
		stats      func() sqlstore.CacheStats
	}{
		{"credential", "Third-party logins whose credentials", s.db.CredentialCacheStats},
		{"inbox", "POP3 logins whose INBOX listing", s.db.InboxCacheStats},
	} {
		if !c.stats().Enabled {
			continue
		}
		stat := func(f func(sqlstore.CacheStats) float64) func() float64 {
			return func() float64 { return f(c.stats()) }
		}
		s.reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "postern_" + c.name + "_cache_entries",
				Help: "Members with an entry in the " + c.name + " cache."},
				stat(func(c sqlstore.CacheStats) float64 { return float64(c.Entries) })),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "postern_" + c.name + "_cache_hits_total",
				Help: c.what + " came from the cache."},
				stat(func(c sqlstore.CacheStats) float64 { return float64(c.Hits) })),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "postern_" + c.name + "_cache_misses_total",
				Help: c.what + " were read from the database."},
				stat(func(c sqlstore.CacheStats) float64 { return float64(c.Misses) })),
		)
	}
	// Every store write moves the member's counters itself; the outbox's
	// events also do, which covers a writer that died between its commit and
	// its second move of a counter.
	s.bus.Subscribe(0, s.db.HandleEvent)
	if !s.db.CredentialCacheStats().Enabled {
		return nil
	}
	s.tasks = append(s.tasks, task{"credential cache", func(ctx context.Context) error {
		start := time.Now()
		n, err := s.db.WarmCredentials(ctx)
		if err != nil {
			// Logins read the database until the cache fills by itself.
			s.log.Warn("reading credentials into the cache", "err", err)
			return nil
		}
		s.log.Info("credential cache warmed", "members", n, "took", time.Since(start).Round(time.Millisecond))
		return nil
	}})
	return nil
}
