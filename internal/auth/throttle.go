package auth

import (
	"container/list"
	"crypto/subtle"
	"net/netip"
	"sync"
	"time"
)

// Tags identify what a failed attempt tried, without holding its secret.
type Tags struct {
	// Pair is the user and secret: a pair repeating one of an address's
	// last failures (a phone retrying a stale password) does not count again.
	Pair PairTag
	// Account is the user alone: a success forgives the failures against
	// that account from the address, and only those, so that an attacker's
	// own working login does not reset the address's count of guesses at
	// other members.
	Account PairTag
}

// Outcome of an attempt, as reported to a Throttle.
type Outcome int

const (
	// Succeeded: the secret was right; the address's failures against that
	// account are forgiven (never those against others).
	Succeeded Outcome = iota
	// Failed: the login failed; the penalty grows unless the pair repeats.
	Failed
	// Abandoned: nothing was decided (client gone, store down).
	Abandoned
)

// Throttle delays the attempts of clients that keep failing, per client IP
// block: in memory (MemThrottle) or shared between nodes (SharedThrottle).
// The gateway asks it only about attempts that a cheap check could not
// accept (see Gateway.Authenticate): a correct app password never waits here.
type Throttle interface {
	// Begin registers an attempt from ip at now and returns how long it must
	// wait before it is checked. ok is false when the client is so far behind
	// that the attempt is refused unchecked after waiting; such an attempt is
	// not reported to End.
	Begin(ip netip.Addr, now time.Time) (wait time.Duration, ok bool)
	// End reports the outcome of an attempt that Begin admitted, with the
	// tags of what it tried (Pair is used for Failed, Account for Failed and
	// Succeeded).
	End(ip netip.Addr, o Outcome, t Tags, now time.Time)
}

// maxAttributed is how many accounts an IP block's failures are attributed
// to, for forgiving them one account at a time. Failures beyond (a spray
// over many accounts) stay counted and are forgiven by no success.
const maxAttributed = 32

// IPKey returns the throttling key of ip: the IPv4 address (IPv4-mapped IPv6
// addresses count as IPv4, so they cannot bypass the limit) or the IPv6 /56,
// the smallest block an ISP commonly hands one customer (Nextcloud does the same).
func IPKey(ip netip.Addr) netip.Prefix {
	ip = ip.Unmap().WithZone("")
	switch {
	case !ip.IsValid():
		return netip.Prefix{} // unknown peers share one key
	case ip.Is4():
		return netip.PrefixFrom(ip, 32)
	default:
		p, _ := ip.Prefix(56)
		return p
	}
}

// MemThrottle is the in-memory Throttle of one process. Its entries are
// keyed by string: IPKey for the per-IP throttle, other keys for the web's
// per-account schedule (keyThrottle).
//
// Parallel connections from one IP block share one entry. Once the block
// has a failure on record, each admitted attempt is scheduled after the
// previous one (next) plus the delay of the failures so far, counting
// attempts still in flight as failures: N parallel attempts are spaced out
// as N sequential failures would be, so opening many connections at once
// buys nothing (Dovecot documents that gap in its own penalty). A block with
// no failure on record is not slowed at all, however many attempts it has in
// flight: an office behind one NAT address logs in together at 9:00, and
// what bounds a burst there is the listeners' per-address connection cap and
// the hasher's concurrency, not the throttle. An attacker gains one such
// burst, once: its failures are then on record and every attempt in flight
// counts.
type MemThrottle struct {
	cfg ThrottleConfig

	mu      sync.Mutex
	entries map[string]*list.Element // of *throttleEntry
	lru     list.List                // front: most recently used
}

type throttleEntry struct {
	key         string
	failures    int       // penalised failures
	inflight    int       // admitted attempts not yet ended
	next        time.Time // the last admitted attempt's start: the next one starts after it
	lastFailure time.Time
	recent      []PairTag       // last failed pairs, oldest first
	byAccount   map[PairTag]int // failures per account tag, for forgiving one account's
}

// NewMemThrottle returns an empty in-memory throttle.
func NewMemThrottle(cfg ThrottleConfig) *MemThrottle {
	return &MemThrottle{cfg: cfg.WithDefaults(), entries: map[string]*list.Element{}}
}

// Len returns the number of IP blocks held.
func (t *MemThrottle) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries)
}

// Begin implements Throttle.
func (t *MemThrottle) Begin(ip netip.Addr, now time.Time) (time.Duration, bool) {
	return t.beginKey(penaltyKey(IPKey(ip)), now)
}

// End implements Throttle.
func (t *MemThrottle) End(ip netip.Addr, o Outcome, tags Tags, now time.Time) {
	t.endKey(penaltyKey(IPKey(ip)), o, tags, now)
}

func (t *MemThrottle) beginKey(key string, now time.Time) (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entry(key, now)
	if e.failures == 0 {
		// Nothing on record: no delay, and no place in a queue.
		e.inflight++
		return 0, true
	}
	d := t.cfg.Delay(e.failures + e.inflight)
	start := now
	if e.next.After(start) {
		start = e.next
	}
	start = start.Add(d)
	if start.Sub(now) > t.cfg.Backlog {
		// Queueing further would only hold more goroutines and connections:
		// refuse, after the longest single delay so that the refusal is no
		// faster than an answer.
		return t.cfg.Max, false
	}
	e.inflight++
	e.next = start
	return start.Sub(now), true
}

func (t *MemThrottle) endKey(key string, o Outcome, tags Tags, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entry(key, now)
	if e.inflight > 0 {
		e.inflight--
	}
	switch o {
	case Succeeded:
		// The client knows this account's secret: forgive the failures
		// against this account, which were its own typos; those against
		// other accounts stay.
		if n, ok := e.byAccount[tags.Account]; ok {
			e.failures = max(0, e.failures-n)
			delete(e.byAccount, tags.Account)
		}
		if e.failures == 0 {
			e.recent, e.next, e.byAccount = nil, time.Time{}, nil
			if e.inflight == 0 {
				t.lru.Remove(t.entries[e.key])
				delete(t.entries, e.key)
			}
		}
	case Failed:
		e.lastFailure = now
		for _, p := range e.recent {
			if subtle.ConstantTimeCompare(p[:], tags.Pair[:]) == 1 {
				// A client retrying a stale password (Dovecot: the penalty
				// does not rise when the pair repeats a recent attempt).
				return
			}
		}
		e.failures++
		e.recent = append(e.recent, tags.Pair)
		if len(e.recent) > t.cfg.Recent {
			e.recent = e.recent[len(e.recent)-t.cfg.Recent:]
		}
		if _, ok := e.byAccount[tags.Account]; ok || len(e.byAccount) < maxAttributed {
			if e.byAccount == nil {
				e.byAccount = map[PairTag]int{}
			}
			e.byAccount[tags.Account]++
		}
	}
}

// entry returns the entry of key, created or refreshed, and evicts the least
// recently used beyond the cap. The caller holds mu.
func (t *MemThrottle) entry(key string, now time.Time) *throttleEntry {
	if el, ok := t.entries[key]; ok {
		t.lru.MoveToFront(el)
		e := el.Value.(*throttleEntry)
		if e.inflight == 0 && !e.lastFailure.IsZero() && now.Sub(e.lastFailure) > t.cfg.Forget {
			e.failures, e.recent, e.byAccount = 0, nil, nil
		}
		return e
	}
	e := &throttleEntry{key: key}
	t.entries[key] = t.lru.PushFront(e)
	for len(t.entries) > t.cfg.Entries {
		old := t.lru.Back()
		t.lru.Remove(old)
		delete(t.entries, old.Value.(*throttleEntry).key)
	}
	return e
}
