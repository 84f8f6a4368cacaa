package auth

import (
	"context"
	"encoding/hex"
	"log/slog"
	"net/netip"
	"sync"
	"time"
)

// SharedThrottle is the Throttle of several nodes on one database: the
// failures of an IP block count on every node, so spreading guesses over
// nodes buys nothing once the block has failed. A node keeps a MemThrottle
// as well, which spaces out the parallel attempts it receives from a block
// that has no shared penalty yet (the shared table is written only on
// failure, to keep a successful login at one small read).
//
// When the database does not answer, the local throttle alone decides: the
// login itself then fails closed, because the credential check needs the
// database too.
type SharedThrottle struct {
	local   *MemThrottle
	store   PenaltyStore
	cfg     ThrottleConfig
	log     *slog.Logger
	timeout time.Duration

	mu        sync.Mutex
	counted   map[string]int // attempts in flight that this node counted in the store, by key
	nextPrune time.Time
	lastErr   time.Time // last logged store error, to keep an outage from flooding the log
}

var _ Throttle = (*SharedThrottle)(nil)

// NewSharedThrottle returns a throttle over store with cfg's delays. log nil
// means slog.Default().
func NewSharedThrottle(store PenaltyStore, cfg ThrottleConfig, log *slog.Logger) *SharedThrottle {
	if log == nil {
		log = slog.Default()
	}
	cfg = cfg.WithDefaults()
	return &SharedThrottle{local: NewMemThrottle(cfg), store: store, cfg: cfg, log: log,
		timeout: 2 * time.Second, counted: map[string]int{}}
}

func penaltyKey(p netip.Prefix) string {
	if !p.IsValid() {
		return ""
	}
	return p.String()
}

// Begin implements Throttle.
func (s *SharedThrottle) Begin(ip netip.Addr, now time.Time) (time.Duration, bool) {
	return s.beginKey(penaltyKey(IPKey(ip)), now)
}

// End implements Throttle. A failure is written before the login's reply
// goes out, so the next attempt, on any node, sees it.
func (s *SharedThrottle) End(ip netip.Addr, o Outcome, tags Tags, now time.Time) {
	s.endKey(penaltyKey(IPKey(ip)), o, tags, now)
}

// accountKey is the store key of a block's failures against one account.
func accountKey(key string, account PairTag) string {
	return key + " " + hex.EncodeToString(account[:])
}

func (s *SharedThrottle) beginKey(key string, now time.Time) (time.Duration, bool) {
	wait, ok := s.local.beginKey(key, now)
	if !ok {
		return wait, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	res, err := s.store.BeginPenalty(ctx, key, now, s.cfg)
	cancel()
	if err != nil {
		s.storeError("reading the shared login penalty", err, now)
		return wait, true
	}
	if !res.Found {
		return wait, true
	}
	if !res.Admitted {
		s.local.endKey(key, Abandoned, Tags{}, now)
		return s.cfg.Max, false
	}
	s.mu.Lock()
	s.counted[key]++
	s.mu.Unlock()
	return max(wait, res.Start.Sub(now)), true
}

func (s *SharedThrottle) endKey(key string, o Outcome, tags Tags, now time.Time) {
	// The local throttle only spaces out attempts in flight: failures count
	// in the store alone, so that a success on any node forgives them.
	lo := o
	if lo == Failed {
		lo = Abandoned
	}
	s.local.endKey(key, lo, tags, now)
	s.mu.Lock()
	release := s.counted[key] > 0
	if release {
		if s.counted[key]--; s.counted[key] == 0 {
			delete(s.counted, key)
		}
	}
	prune := !now.Before(s.nextPrune)
	if prune {
		s.nextPrune = now.Add(10 * time.Minute)
	}
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	var err error
	switch {
	case o == Failed:
		err = s.store.FailPenalty(ctx, key, accountKey(key, tags.Account), tags.Pair, release, now, s.cfg)
	case o == Succeeded && release:
		// Only a block that had a penalty when the attempt began costs a
		// write: a clean success stays at the one read of Begin.
		err = s.store.ForgivePenalty(ctx, key, accountKey(key, tags.Account))
	case release:
		err = s.store.ReleasePenalty(ctx, key)
	}
	if err != nil {
		s.storeError("writing the shared login penalty", err, now)
	}
	if prune {
		go s.prune(now)
	}
}

func (s *SharedThrottle) prune(now time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if n, err := s.store.PrunePenalties(ctx, now, s.cfg); err != nil {
		s.storeError("pruning login penalties", err, now)
	} else if n > 0 {
		s.log.Debug("pruned login penalties", "count", n)
	}
}

// storeError logs at most one store error every 10 s.
func (s *SharedThrottle) storeError(what string, err error, now time.Time) {
	s.mu.Lock()
	quiet := now.Sub(s.lastErr) < 10*time.Second
	if !quiet {
		s.lastErr = now
	}
	s.mu.Unlock()
	if !quiet {
		s.log.Warn(what+"; using this node's throttle alone", "err", err)
	}
}
