package sqlstore

import (
	"context"
	"sync"
)

// claimLocks lets this process's sessions claim a mailbox's \Recent
// messages one at a time (Mail.ClaimRecent). Every session of a mailbox
// re-reads it after each arrival, and all would try to claim the same
// UIDs at once: one wins, and each of the others spends a write that
// writes nothing and a read to learn so. Taking turns here, the later
// ones find the claim made in the mailbox's view and ask the database
// nothing. (Sessions on other nodes still meet in the database.)
type claimLocks struct {
	mu sync.Mutex
	m  map[int64]*claimLock
}

type claimLock struct {
	turn  chan struct{} // holds a value while a session claims
	users int           // sessions holding or waiting, under claimLocks.mu
}

// lock waits for the mailbox's turn; unlock gives it back.
func (l *claimLocks) lock(ctx context.Context, mailboxID int64) (unlock func(), err error) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[int64]*claimLock{}
	}
	c := l.m[mailboxID]
	if c == nil {
		c = &claimLock{turn: make(chan struct{}, 1)}
		l.m[mailboxID] = c
	}
	c.users++
	l.mu.Unlock()
	release := func() {
		l.mu.Lock()
		if c.users--; c.users == 0 {
			delete(l.m, mailboxID)
		}
		l.mu.Unlock()
	}
	select {
	case c.turn <- struct{}{}:
		return func() { <-c.turn; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}
