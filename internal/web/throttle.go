package web

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/postern/postern/internal/account"
)

// throttle slows down guessing of main passwords on the sign-in and
// re-authentication forms: after a few failures from one client IP, or
// against one address (known or not, so that it tells nothing), each further
// attempt must wait a delay that doubles with every failure, up to a cap
// (OWASP ASVS 5.0 6.3.4; the protocols have their own, in internal/auth).
// A lock refuses without checking the password, so it is no oracle.
// In memory: it restarts with the process, which only gives an attacker back
// a few attempts.
type throttle struct {
	mu      sync.Mutex
	byIP    map[string]*failures
	byAcct  map[string]*failures
	entries int
}

type failures struct {
	n    int
	last time.Time
}

const (
	ipFree       = 10 // failures from one IP before delays begin (offices share NAT)
	accountFree  = 5  // failures against one address before delays begin
	maxDelay     = 15 * time.Minute
	forgetAfter  = time.Hour // a quiet hour forgets the failures
	maxThrottled = 100000    // bound on remembered keys: the oldest are dropped
)

func newThrottle() *throttle {
	return &throttle{byIP: map[string]*failures{}, byAcct: map[string]*failures{}}
}

func delay(f *failures, free int, now time.Time) time.Duration {
	if f == nil || f.n < free || now.Sub(f.last) > forgetAfter {
		return 0
	}
	d := time.Second << min(f.n-free, 20)
	if d > maxDelay {
		d = maxDelay
	}
	return f.last.Add(d).Sub(now)
}

// blocked returns how long the client must still wait, or 0.
func (t *throttle) blocked(ip, email string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return max(delay(t.byIP[ip], ipFree, now), delay(t.byAcct[strings.ToLower(email)], accountFree, now), 0)
}

func (t *throttle) fail(ip, email string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.entries > maxThrottled {
		t.byIP, t.byAcct, t.entries = map[string]*failures{}, map[string]*failures{}, 0
	}
	for _, e := range []struct {
		m   map[string]*failures
		key string
	}{{t.byIP, ip}, {t.byAcct, strings.ToLower(email)}} {
		f := e.m[e.key]
		if f == nil || now.Sub(f.last) > forgetAfter {
			f = &failures{}
			e.m[e.key] = f
			t.entries++
		}
		f.n++
		f.last = now
	}
}

// succeed forgets the failures against the address (the IP keeps its count:
// one right password must not reset the guessing of many).
func (t *throttle) succeed(email string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.byAcct, strings.ToLower(email))
}

// throttledError is the client-safe error for a refused attempt; its code
// maps to 429.
func throttledError(wait time.Duration) error {
	secs := int(wait.Round(time.Second) / time.Second)
	if secs < 1 {
		secs = 1
	}
	return &account.Error{Code: codeThrottled, Message: fmt.Sprintf("Too many failed attempts. Try again in %d seconds.", secs)}
}

// codeThrottled is this package's error code for 429 Too Many Requests.
const codeThrottled = "too_many_attempts"
