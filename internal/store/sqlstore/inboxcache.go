package sqlstore

import (
	"slices"
	"sync"
	"sync/atomic"

	"github.com/postern/postern/internal/mailstore"
)

// inboxCache keeps what Open read of members' INBOXes, so that a POP3 login
// (which takes a snapshot of INBOX, RFC 1939 §4) reads no database when the
// mailbox has not changed since the last one: a phone polling every few
// minutes. Like the credential cache it is exact: an entry is used only while
// the member's mail counter in the generation file has not moved since it was
// read, and every change to the member's mailboxes moves it before and after
// its commit (mailboxChanged, SetSubscribed), in any process on the machine.
// SQLite only, for the same reason as the credential cache.
type inboxCache struct {
	mu    sync.Mutex
	m     map[int64]*inboxEntry // by member
	total int                   // messages held

	hits, misses atomic.Uint64
}

type inboxEntry struct {
	gen  uint64
	mb   mailstore.Mailbox
	msgs []mailstore.MessageInfo
}

// Bounds of the INBOX cache: a listing longer than inboxMaxListing is not
// kept (it is read rarely and costs memory), and past inboxMaxEntries
// mailboxes or inboxMaxTotal messages in all (about 50 MiB) entries are
// evicted at random.
const (
	inboxMaxListing = 5_000
	inboxMaxEntries = 100_000
	inboxMaxTotal   = 500_000
)

// InboxCacheStats returns the INBOX cache's counters, for metrics.
func (db *DB) InboxCacheStats() CacheStats {
	c := db.inboxes.Load()
	if c == nil {
		return CacheStats{}
	}
	c.mu.Lock()
	n := len(c.m)
	c.mu.Unlock()
	return CacheStats{Enabled: true, Entries: n, Hits: c.hits.Load(), Misses: c.misses.Load()}
}

// MailChanged moves member id's mail counter (see mailboxChanged); postern
// serve also calls it for every mailbox event the outbox brings, as
// CredentialsChanged.
func (db *DB) MailChanged(id int64) {
	if db.gen != nil {
		db.gen.bump(db.gen.mailSlot(id))
	}
}

// get returns the member's INBOX if it is current, and the counter to keep
// with a fresh read (taken before the read).
func (c *inboxCache) get(db *DB, memberID int64) (e *inboxEntry, gen uint64) {
	gen = db.gen.load(db.gen.mailSlot(memberID))
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.m[memberID]; e != nil && e.gen == gen {
		c.hits.Add(1)
		return e, gen
	}
	c.misses.Add(1)
	return nil, gen
}

func (c *inboxCache) put(memberID int64, e *inboxEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[memberID]; old != nil {
		c.total -= len(old.msgs)
		delete(c.m, memberID)
	}
	if len(e.msgs) > inboxMaxListing {
		return
	}
	for k, v := range c.m { // random victims: map order is randomised
		if c.total+len(e.msgs) <= inboxMaxTotal && len(c.m) < inboxMaxEntries {
			break
		}
		c.total -= len(v.msgs)
		delete(c.m, k)
	}
	c.m[memberID] = e
	c.total += len(e.msgs)
}

// openInbox is Open for INBOX through the cache.
func (db *DB) openInbox(c *inboxCache, memberID int64, read func() (mailstore.Mailbox, []mailstore.MessageInfo, error)) (mailstore.Mailbox, []mailstore.MessageInfo, error) {
	e, gen := c.get(db, memberID)
	if e != nil {
		return e.mb, cloneInfos(e.msgs), nil
	}
	mb, msgs, err := read()
	if err == nil {
		c.put(memberID, &inboxEntry{gen: gen, mb: mb, msgs: cloneInfos(msgs)})
	}
	return mb, msgs, err
}

// cloneInfos copies a listing, flags included: callers may change theirs.
func cloneInfos(in []mailstore.MessageInfo) []mailstore.MessageInfo {
	out := slices.Clone(in)
	for i := range out {
		out[i].Flags = slices.Clone(out[i].Flags)
	}
	return out
}
