package imapserver

import (
	"container/list"
	"sync"

	"github.com/postern/postern/internal/mailstore"
)

// itemCache keeps the FETCH items of the message index (ENVELOPE, BODY,
// BODYSTRUCTURE and PREVIEW, encoded when the message was stored) by
// message id, for every session of the server: a client that fetches the
// same messages again (a second device, a reconnection, a list scrolled
// back) is answered without a read of the store, which on PostgreSQL is
// a round trip and the decoding of every row. Dovecot keeps the same
// items in its per-mailbox cache file.
//
// An entry never goes stale: a message's id is never reused (SQLite's
// AUTOINCREMENT, PostgreSQL's sequence), its body never changes, and a
// MOVE that keeps the id keeps the body. A message expunged meanwhile may
// still be answered from here while a session's view holds it, which RFC
// 9051 §7.5.1 allows (its sequence number stays until the EXPUNGE is
// reported). The least recently used entries go once the items held pass
// max octets.
type itemCache struct {
	max int

	mu    sync.Mutex
	size  int
	items map[int64]*list.Element // of *cachedItems
	lru   list.List               // front: most recently used
}

type cachedItems struct {
	id   int64
	x    *mailstore.MessageIndex
	size int
}

// itemCacheBytes bounds the cache: at 0.5–1 KiB of items per message, the
// last 16,000–32,000 messages fetched.
const itemCacheBytes = 16 << 20

// cachedOverhead approximates an entry's own memory (list element, map
// slot, the MessageIndex): counted so that a cache of tiny items stays
// bounded too.
const cachedOverhead = 400

func newItemCache(max int) *itemCache {
	return &itemCache{max: max, items: map[int64]*list.Element{}}
}

// get puts into out the cached items of ids and returns the ids it lacks,
// in ids's order.
func (c *itemCache) get(ids []int64, out map[int64]*mailstore.MessageIndex) []int64 {
	var missing []int64
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		if e, ok := c.items[id]; ok {
			c.lru.MoveToFront(e)
			out[id] = e.Value.(*cachedItems).x
		} else {
			missing = append(missing, id)
		}
	}
	return missing
}

// put keeps the FETCH items of x for message id (a copy of them: an index
// built just now holds the search texts too) and returns them.
func (c *itemCache) put(id int64, x *mailstore.MessageIndex) *mailstore.MessageIndex {
	x = &mailstore.MessageIndex{Envelope: x.Envelope, EnvelopeUTF8: x.EnvelopeUTF8, Body: x.Body, BodyUTF8: x.BodyUTF8,
		BodyStructure: x.BodyStructure, BodyStructureUTF8: x.BodyStructureUTF8, Preview: x.Preview}
	size := cachedOverhead + len(x.Envelope) + len(x.EnvelopeUTF8) + len(x.Body) + len(x.BodyUTF8) +
		len(x.BodyStructure) + len(x.BodyStructureUTF8) + len(x.Preview)
	if size > c.max {
		return x
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[id]; ok {
		c.lru.MoveToFront(e)
		return x
	}
	c.items[id] = c.lru.PushFront(&cachedItems{id: id, x: x, size: size})
	c.size += size
	for c.size > c.max {
		e := c.lru.Back()
		old := e.Value.(*cachedItems)
		c.lru.Remove(e)
		delete(c.items, old.id)
		c.size -= old.size
	}
	return x
}
