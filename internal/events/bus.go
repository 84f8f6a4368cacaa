// Package events carries the outbox's events to the parts of this process
// that react to them: the session registry (close revoked sessions) and IMAP
// IDLE (new mail). A Tailer reads the outbox, shared by every process and node
// on the database, and publishes each event on a Bus.
package events

import (
	"sync"

	"github.com/postern/postern/internal/account"
)

// Bus fans events out to subscribers, by member or to all.
type Bus struct {
	mu     sync.RWMutex
	next   int
	all    map[int]func(account.Event)
	member map[int64]map[int]func(account.Event)
}

// NewBus returns an empty Bus.
func NewBus() *Bus {
	return &Bus{all: map[int]func(account.Event){}, member: map[int64]map[int]func(account.Event){}}
}

// Subscribe calls fn for every event of the member (memberID 0: every event)
// until cancel is called. fn runs on the publisher's goroutine and must not block.
func (b *Bus) Subscribe(memberID int64, fn func(account.Event)) (cancel func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.next++
	id := b.next
	if memberID == 0 {
		b.all[id] = fn
		return func() { b.mu.Lock(); delete(b.all, id); b.mu.Unlock() }
	}
	m := b.member[memberID]
	if m == nil {
		m = map[int]func(account.Event){}
		b.member[memberID] = m
	}
	m[id] = fn
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		delete(b.member[memberID], id)
		if len(b.member[memberID]) == 0 {
			delete(b.member, memberID)
		}
	}
}

// Publish delivers e to its subscribers.
func (b *Bus) Publish(e account.Event) {
	b.mu.RLock()
	fns := make([]func(account.Event), 0, len(b.all)+len(b.member[e.MemberID]))
	for _, fn := range b.all {
		fns = append(fns, fn)
	}
	for _, fn := range b.member[e.MemberID] {
		fns = append(fns, fn)
	}
	b.mu.RUnlock()
	for _, fn := range fns {
		fn(e)
	}
}
