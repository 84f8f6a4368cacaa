package imapserver

import "sync"

// mailboxNames remembers which mailbox a member's SELECT of a name opened
// last, so that SELECT reads the mailbox and its listing at once (one round
// trip on PostgreSQL) instead of looking the name up first. It is a hint,
// never trusted: the read returns the mailbox's owner and name from the same
// snapshot as its listing, and a mailbox renamed, deleted or made again
// since shows there (Select then looks the name up).
type mailboxNames struct {
	mu sync.Mutex
	m  map[nameKey]nameHint
}

type nameKey struct {
	memberID int64
	name     string // as the client gave it
}

type nameHint struct {
	mailboxID int64
	name      string // the mailbox's name, as the store has it
}

// maxNames bounds the names remembered; past it all are forgotten at once
// (each costs one lookup to learn again).
const maxNames = 8192

func (c *mailboxNames) get(memberID int64, name string) (nameHint, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h, ok := c.m[nameKey{memberID, name}]
	return h, ok
}

func (c *mailboxNames) put(memberID int64, name string, h nameHint) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxNames {
		c.m = map[nameKey]nameHint{}
	}
	c.m[nameKey{memberID, name}] = h
}

func (c *mailboxNames) drop(memberID int64, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, nameKey{memberID, name})
}
