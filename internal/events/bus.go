// Package events carries the outbox's events to the parts of this process
// that react to them: the session registry (close revoked sessions) and IMAP
// IDLE (new mail). A Tailer reads the outbox, shared by every process and node
// on the database, and publishes each event on a Bus.
package events

import (
	"sync"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/multimap"
)

// Bus fans events out to subscribers, by member or to all.
type Bus struct {
	mu   sync.RWMutex
	subs multimap.Multimap[int64, *sub] // by member; 0: every event
}

type sub struct{ fn func(account.Event) }

// NewBus returns an empty Bus.
func NewBus() *Bus { return &Bus{} }

// Subscribe calls fn for every event of the member (memberID 0: every event)
// until cancel is called. fn runs on the publisher's goroutine and must not block.
func (b *Bus) Subscribe(memberID int64, fn func(account.Event)) (cancel func()) {
	s := &sub{fn}
	b.mu.Lock()
	b.subs.Add(memberID, s)
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		b.subs.Remove(memberID, s)
		b.mu.Unlock()
	}
}

// Publish delivers e to its subscribers.
func (b *Bus) Publish(e account.Event) {
	b.mu.RLock()
	all, mine := b.subs.Get(0), []*sub(nil)
	if e.MemberID != 0 {
		mine = b.subs.Get(e.MemberID)
	}
	fns := make([]func(account.Event), 0, len(all)+len(mine))
	for _, s := range all {
		fns = append(fns, s.fn)
	}
	for _, s := range mine {
		fns = append(fns, s.fn)
	}
	b.mu.RUnlock()
	for _, fn := range fns {
		fn(e)
	}
}
