package delivery

import (
	"sync"
	"time"
)

// pool keeps connections idle between messages, keyed by address and TLS
// policy, for a short time: a burst of messages to one destination shares
// connections instead of paying for TCP, TLS and EHLO each time.
type pool struct {
	ttl    time.Duration
	max    int // idle connections kept per key
	mu     sync.Mutex
	idle   map[string][]*idleConn
	closed bool
}

type idleConn struct {
	s     *session
	timer *time.Timer
}

func newPool(ttl time.Duration, max int) *pool {
	return &pool{ttl: ttl, max: max, idle: map[string][]*idleConn{}}
}

// take returns the most recently used idle connection for key, or nil.
// The caller checks it with RSET; the server may have closed it meanwhile.
func (p *pool) take(key string) *session {
	p.mu.Lock()
	defer p.mu.Unlock()
	list := p.idle[key]
	if len(list) == 0 {
		return nil
	}
	ic := list[len(list)-1]
	p.remove(key, ic)
	ic.timer.Stop()
	return ic.s
}

// remove takes ic off key's list; p.mu is held.
func (p *pool) remove(key string, ic *idleConn) bool {
	list := p.idle[key]
	for i, x := range list {
		if x == ic {
			list = append(list[:i], list[i+1:]...)
			if len(list) == 0 {
				delete(p.idle, key)
			} else {
				p.idle[key] = list
			}
			return true
		}
	}
	return false
}

// put keeps s idle for ttl, then says QUIT; a full list or a closed pool
// closes it now.
func (p *pool) put(s *session) {
	p.mu.Lock()
	if p.closed || len(p.idle[s.key]) >= p.max {
		p.mu.Unlock()
		s.quit()
		return
	}
	ic := &idleConn{s: s}
	ic.timer = time.AfterFunc(p.ttl, func() {
		p.mu.Lock()
		ok := p.remove(s.key, ic)
		p.mu.Unlock()
		if ok {
			s.quit()
		}
	})
	p.idle[s.key] = append(p.idle[s.key], ic)
	p.mu.Unlock()
}

// close says QUIT on every idle connection and keeps none from now on.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	var all []*session
	for _, list := range p.idle {
		for _, ic := range list {
			ic.timer.Stop()
			all = append(all, ic.s)
		}
	}
	p.idle = map[string][]*idleConn{}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.quit()
		}()
	}
	wg.Wait()
}
