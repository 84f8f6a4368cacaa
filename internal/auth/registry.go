package auth

import (
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
	revoked  map[int64][]revocation             // recent revocations, by member
	closeFn  func(list []*session, kind string) // calls the close funcs, outside mu
	pruneAt  time.Time                          // next sweep of revoked
	gauges   map[string]prometheus.Gauge        // live sessions by protocol (gauge)
	now      func() time.Time
}

type session struct {
	memberID int64
	cred     account.Credential // what revokes checks; not the whole Login (a login's allocations)
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
}

// revocationMemory is how long revocations are remembered for the
// check-then-track race; a login is tracked right after it is checked.
const revocationMemory = 5 * time.Minute

func newRegistry(m *metrics, now func() time.Time) *Registry {
	// gen starts at 1 so that 0 in a Login means "not from Authenticate".
	r := &Registry{gen: 1, m: m, now: now, revoked: map[int64][]revocation{}, gauges: map[string]prometheus.Gauge{}}
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

// revokes reports whether an event of kind (for app password apID) ends the
// session s.
func revokes(kind account.EventKind, apID string, s *session) bool {
	switch kind {
	case account.EventAppPasswordDeleted:
		return apID != "" && s.cred.AppPasswordID == apID
	case account.EventSettingChanged, account.EventMemberSuspended,
		account.EventMemberRenamed, account.EventMemberDeleted, account.EventSessionsEnded:
		return true
	case account.EventPasswordChanged:
		return s.cred.IsMain()
	}
	return false
}

// HandleEvent closes the sessions that e revokes. Subscribe it on the bus.
func (r *Registry) HandleEvent(e account.Event) {
	switch e.Kind {
	case account.EventAppPasswordDeleted, account.EventSettingChanged,
		account.EventMemberSuspended, account.EventPasswordChanged,
		account.EventMemberRenamed, account.EventMemberDeleted, account.EventSessionsEnded:
	default:
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
		if revokes(e.Kind, e.AppPasswordID, s) {
			list = append(list, s)
		}
	}
	r.mu.Unlock()
	if len(list) > 0 {
		r.closeFn(list, string(e.Kind))
	}
}

// pruneRevoked forgets old revocations; the caller holds mu.
func (r *Registry) pruneRevoked(now time.Time) {
	r.pruneAt = now.Add(time.Minute)
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
	s := &session{memberID: l.Member.ID, cred: l.Credential, protocol: protocol, close: close}
	r.mu.Lock()
	r.sessions.Add(l.Member.ID, s)
	// A revocation published after the login was checked but before this
	// call found no session to close: close it now.
	var hit *revocation
	if l.gen != 0 {
		for i, rv := range r.revoked[l.Member.ID] {
			if rv.gen > l.gen && revokes(rv.kind, rv.apID, s) {
				hit = &r.revoked[l.Member.ID][i]
				break
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
	gauge := r.gauge(s.protocol)
	r.mu.Unlock()
	gauge.Dec()
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

// MemberSessions counts the member's live sessions on this node, by
// protocol: what an administrator sees of them (each node has its own; an
// event closes them on every node).
func (r *Registry) MemberSessions(memberID int64) map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for _, s := range r.sessions.Get(memberID) {
		out[s.protocol]++
	}
	return out
}
