package auth

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/multimap"
)

// Registry holds the live third-party sessions of this process and closes
// them when the outbox says their credential was revoked. Every node runs a
// tailer that publishes every event, so a revocation anywhere closes the
// sessions everywhere.
type Registry struct {
	m *metrics

	mu       sync.Mutex
	gen      uint64                             // counts revocations seen
	sessions multimap.Multimap[int64, *session] // by member
	byDomain multimap.Multimap[int64, *session] // by the member's domain
	revoked  map[int64][]revocation             // recent revocations, by member
	policies []revocation                       // recent policy changes (domainID set)
	closeFn  func(list []*session, kind string) // calls the close funcs, outside mu
	pruneAt  time.Time                          // next sweep of revoked
	gauges   map[string]prometheus.Gauge        // live sessions by protocol (gauge)
	now      func() time.Time

	// domain reads a domain's current security policy when it changes
	// (account.Service.DomainByID); cutoff decides its policy.
	domain func(ctx context.Context, id int64) (account.Domain, error)
	cutoff time.Time
	log    *slog.Logger

	lastID int64      // numbers the sessions; guarded by mu
	pub    *publisher // nil: sessions are not published for other nodes
}

type session struct {
	id       int64
	memberID int64
	domainID int64
	cred     account.Credential // what Event.Revokes checks; not the whole Login (a login's allocations)
	ip       netip.Addr
	protocol string
	close    func()
	once     sync.Once
	ended    bool // done called; guarded by Registry.mu
}

// revocation is remembered for a while so that a session whose login was
// checked before the revocation but tracked after it is closed at once.
type revocation struct {
	gen  uint64
	at   time.Time
	kind account.EventKind
	apID string
	// domainID: a policy change of the domain, which closes at once a
	// session tracked after it but checked before (it reconnects under
	// the new policy).
	domainID int64
}

// revocationMemory is how long revocations are remembered for the
// check-then-track race; a login is tracked right after it is checked.
const revocationMemory = 5 * time.Minute

func newRegistry(m *metrics, now func() time.Time) *Registry {
	// gen starts at 1 so that 0 in a Login means "not from Authenticate".
	r := &Registry{gen: 1, m: m, now: now, revoked: map[int64][]revocation{}, gauges: map[string]prometheus.Gauge{}, log: slog.Default()}
	r.closeFn = func(list []*session, kind string) {
		// The bus calls us on the tailer's goroutine, which must not block;
		// closing a connection may.
		go func() {
			for _, s := range list {
				s.once.Do(func() {
					r.m.sessionsClosed.WithLabelValues(kind).Inc()
					s.close()
				})
			}
		}()
	}
	return r
}

// generation returns the revocation counter, taken before a login is checked.
func (r *Registry) generation() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gen
}

// HandleEvent closes the sessions that e revokes. Subscribe it on the bus.
func (r *Registry) HandleEvent(e account.Event) {
	if e.Kind.RevokesByPolicy() {
		r.policyChanged(e.DomainID)
		return
	}
	if !e.Kind.Revoking() {
		return
	}
	r.mu.Lock()
	r.gen++
	now := r.now()
	r.revoked[e.MemberID] = append(r.revoked[e.MemberID], revocation{gen: r.gen, at: now, kind: e.Kind, apID: e.AppPasswordID})
	if now.After(r.pruneAt) {
		r.pruneRevoked(now)
	}
	var list []*session
	for _, s := range r.sessions.Get(e.MemberID) {
		if e.Revokes(s.cred) {
			list = append(list, s)
		}
	}
	r.mu.Unlock()
	if len(list) > 0 {
		r.closeFn(list, string(e.Kind))
	}
}

// policyChanged checks the live sessions of the domain's members against
// its new security policy and closes those it refuses: a protocol no
// longer allowed, an address outside the allowlist, the main password
// where app passwords became required.
func (r *Registry) policyChanged(domainID int64) {
	r.mu.Lock()
	r.gen++
	now := r.now()
	r.policies = append(r.policies, revocation{gen: r.gen, at: now, kind: account.EventPolicyChanged, domainID: domainID})
	if now.After(r.pruneAt) {
		r.pruneRevoked(now)
	}
	list := append([]*session(nil), r.byDomain.Get(domainID)...)
	r.mu.Unlock()
	if len(list) == 0 || r.domain == nil {
		return
	}
	// Reading the policy may block; the bus's goroutine must not.
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		d, err := r.domain(ctx, domainID)
		if err != nil {
			// Fail closed: the sessions reconnect under the policy in force.
			r.log.Warn("reading a changed security policy; closing the domain's sessions", "domain_id", domainID, "err", err)
			r.closeFn(list, string(account.EventPolicyChanged))
			return
		}
		var refused []*session
		for _, s := range list {
			if reason := policyRefuses(d, r.cutoff, s); reason != "" {
				refused = append(refused, s)
				r.log.Info("session closed by the domain's security policy", "domain", d.Name, "member_id", s.memberID,
					"protocol", s.protocol, "ip", s.ip.String(), "reason", reason)
			}
		}
		if len(refused) > 0 {
			r.closeFn(refused, string(account.EventPolicyChanged))
		}
	}()
}

// policyRefuses says why the domain's policy refuses the session s, "" when
// it does not: the same rules as a login's (Gateway.Authenticate).
func policyRefuses(d account.Domain, cutoff time.Time, s *session) string {
	if reason := d.Security.Refusal(s.protocol, s.ip); reason != "" {
		return reason
	}
	if s.cred.IsMain() && d.Policy(cutoff) == account.PolicyEnforced {
		return "policy"
	}
	return ""
}

// pruneRevoked forgets old revocations; the caller holds mu.
func (r *Registry) pruneRevoked(now time.Time) {
	r.pruneAt = now.Add(time.Minute)
	i := 0
	for i < len(r.policies) && now.Sub(r.policies[i].at) > revocationMemory {
		i++
	}
	r.policies = r.policies[i:]
	for id, list := range r.revoked {
		i := 0
		for i < len(list) && now.Sub(list[i].at) > revocationMemory {
			i++
		}
		if i == len(list) {
			delete(r.revoked, id)
		} else {
			r.revoked[id] = list[i:]
		}
	}
}

// Track registers a live session; see Authenticator.
func (r *Registry) Track(l Login, protocol string, close func()) (done func()) {
	s := &session{memberID: l.Member.ID, domainID: l.Member.DomainID, cred: l.Credential, ip: l.ip, protocol: protocol, close: close}
	r.mu.Lock()
	r.lastID++
	s.id = r.lastID
	r.sessions.Add(l.Member.ID, s)
	r.byDomain.Add(s.domainID, s)
	// A revocation published after the login was checked but before this
	// call found no session to close: close it now.
	var hit *revocation
	if l.gen != 0 {
		for i, rv := range r.revoked[l.Member.ID] {
			if rv.gen > l.gen && (account.Event{Kind: rv.kind, AppPasswordID: rv.apID}).Revokes(s.cred) {
				hit = &r.revoked[l.Member.ID][i]
				break
			}
		}
		for i, rv := range r.policies {
			if hit == nil && rv.gen > l.gen && rv.domainID == s.domainID {
				hit = &r.policies[i]
			}
		}
	}
	var kind string
	if hit != nil {
		kind = string(hit.kind)
	}
	gauge := r.gauge(protocol)
	r.mu.Unlock()
	gauge.Inc()
	if r.pub != nil {
		ls := account.LiveSession{ID: s.id, MemberID: s.memberID, Protocol: protocol, Client: l.client,
			AppPasswordID: s.cred.AppPasswordID, StartedAt: r.now().UTC()}
		if s.ip.IsValid() {
			ls.IP = s.ip.Unmap().String()
		}
		r.pub.open(ls)
	}
	if hit != nil {
		r.closeFn([]*session{s}, kind)
	}
	return func() { r.end(s) }
}

// end removes s, once.
func (r *Registry) end(s *session) {
	r.mu.Lock()
	if s.ended {
		r.mu.Unlock()
		return
	}
	s.ended = true
	r.sessions.Remove(s.memberID, s)
	r.byDomain.Remove(s.domainID, s)
	gauge := r.gauge(s.protocol)
	r.mu.Unlock()
	gauge.Dec()
	if r.pub != nil {
		r.pub.close(s.id)
	}
}

// gauge returns the live-sessions gauge of protocol, looked up once (a
// lookup hashes the label); the caller holds mu.
func (r *Registry) gauge(protocol string) prometheus.Gauge {
	g, ok := r.gauges[protocol]
	if !ok {
		g = r.m.sessions.WithLabelValues(protocol)
		r.gauges[protocol] = g
	}
	return g
}

// Len returns the number of live sessions.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sessions.Len()
}
