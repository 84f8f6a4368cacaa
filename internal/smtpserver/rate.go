package smtpserver

import (
	"net/netip"
	"sync"
	"time"

	"github.com/postern/postern/internal/auth"
)

// rateLimiter is a token bucket per client address (auth.IPKey: an IPv4
// address or an IPv6 /56, as the connection caps count them): n tokens per
// period, at most n saved up. It lives in memory, per process: each node of
// a cluster limits on its own, which only makes the limit n per node.
type rateLimiter struct {
	n      float64
	period time.Duration
	now    func() time.Time

	mu      sync.Mutex
	buckets map[netip.Prefix]*bucket
	sweep   time.Time // next pruning of full buckets
}

// maxBuckets bounds the addresses tracked at once: about 6 MiB.
const maxBuckets = 1 << 16

type bucket struct {
	tokens float64
	at     time.Time
}

func newRateLimiter(n int, period time.Duration, now func() time.Time) *rateLimiter {
	return &rateLimiter{n: float64(n), period: period, now: now, buckets: map[netip.Prefix]*bucket{}}
}

// allow takes one token of ip's bucket, or says there is none left.
func (l *rateLimiter) allow(ip netip.Addr) bool {
	key := auth.IPKey(ip)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.After(l.sweep) || len(l.buckets) >= maxBuckets {
		// A bucket refilled to the brim says nothing a new one would not:
		// forgetting them keeps the map as small as the recent senders.
		for k, b := range l.buckets {
			if l.fill(b, now) >= l.n {
				delete(l.buckets, k)
			}
		}
		l.sweep = now.Add(l.period)
	}
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= maxBuckets {
			// Senders from this many addresses at once are a botnet, which
			// a limit per address does not stop: memory stays bounded
			// instead, and the new address goes unlimited.
			return true
		}
		b = &bucket{tokens: l.n, at: now}
		l.buckets[key] = b
	}
	if l.fill(b, now) < 1 {
		return false
	}
	b.tokens--
	return true
}

// fill adds the tokens earned since b was last seen.
func (l *rateLimiter) fill(b *bucket, now time.Time) float64 {
	if d := now.Sub(b.at); d > 0 {
		b.tokens = min(l.n, b.tokens+l.n*float64(d)/float64(l.period))
		b.at = now
	}
	return b.tokens
}
