package imapserver

import (
	"container/list"
	"sync"

	"github.com/postern/postern/internal/mailstore"
)

// msgCache keeps what FETCH reads of a message by its id, for every
// session of the server: the items of the message index (ENVELOPE, BODY,
// BODYSTRUCTURE and PREVIEW, encoded when the message was stored) in one,
// raw messages (BODY[] and its sections) in another. A client that fetches
// the same messages again (a second device, a reconnection, a list
// scrolled back, the sessions of one member's phone and desktop after
// each arrival) is answered without a read of the store, which on
// PostgreSQL is a round trip and the decoding of every row. Dovecot keeps
// the items in its per-mailbox cache file, and its raw messages sit in the
// operating system's page cache.
//
// An entry never goes stale: a message's id is never reused (SQLite's
// AUTOINCREMENT, PostgreSQL's sequence), its body never changes, and a
// MOVE that keeps the id keeps the body. A message expunged meanwhile may
// still be answered from here while a session's view holds it, which RFC
// 9051 §7.5.1 allows (its sequence number stays until the EXPUNGE is
// reported). The least recently used entries go once the entries held
// pass max octets. Cached values are shared: nobody changes them.
type msgCache[T any] struct {
	max  int
	size func(T) int // an entry's octets, its own memory included

	mu    sync.Mutex
	used  int
	items map[int64]*list.Element // of *cached[T]
	lru   list.List               // front: most recently used
}

type cached[T any] struct {
	id   int64
	v    T
	size int
}

// itemCacheBytes bounds the cache of index items: at 0.5–1 KiB of items
// per message, the last 16,000–32,000 messages fetched.
const itemCacheBytes = 16 << 20

// bodyCacheBytes bounds the cache of raw messages: the last few thousand
// messages of a typical size fetched; a message over bodyCacheBytes/16 is
// never kept, so that one large attachment cannot empty it.
const bodyCacheBytes = 32 << 20

// cachedOverhead approximates an entry's own memory (list element, map
// slot, the MessageIndex): counted so that a cache of tiny items stays
// bounded too.
const cachedOverhead = 400

func newMsgCache[T any](max int, size func(T) int) *msgCache[T] {
	return &msgCache[T]{max: max, size: size, items: map[int64]*list.Element{}}
}

// newItemCache is the cache of index items.
func newItemCache(max int) *msgCache[*mailstore.MessageIndex] {
	return newMsgCache(max, func(x *mailstore.MessageIndex) int {
		return cachedOverhead + len(x.Envelope) + len(x.EnvelopeUTF8) + len(x.Body) + len(x.BodyUTF8) +
			len(x.BodyStructure) + len(x.BodyStructureUTF8) + len(x.Preview)
	})
}

// newBodyCache is the cache of raw messages.
func newBodyCache(max int) *msgCache[[]byte] {
	return newMsgCache(max, func(b []byte) int {
		if len(b) > max/16 {
			return max + 1 // not kept
		}
		return cachedOverhead + len(b)
	})
}

// get puts into out the cached entries of ids and returns the ids it
// lacks, in ids's order.
func (c *msgCache[T]) get(ids []int64, out map[int64]T) []int64 {
	var missing []int64
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		if e, ok := c.items[id]; ok {
			c.lru.MoveToFront(e)
			out[id] = e.Value.(*cached[T]).v
		} else {
			missing = append(missing, id)
		}
	}
	return missing
}

// put keeps v for message id.
func (c *msgCache[T]) put(id int64, v T) {
	size := c.size(v)
	if size > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[id]; ok {
		c.lru.MoveToFront(e)
		return
	}
	c.items[id] = c.lru.PushFront(&cached[T]{id: id, v: v, size: size})
	c.used += size
	for c.used > c.max {
		e := c.lru.Back()
		old := e.Value.(*cached[T])
		c.lru.Remove(e)
		delete(c.items, old.id)
		c.used -= old.size
	}
}

// keepItems returns the FETCH items of x (a copy of them: an index built
// just now holds the search texts too), kept in c for message id.
func keepItems(c *msgCache[*mailstore.MessageIndex], id int64, x *mailstore.MessageIndex) *mailstore.MessageIndex {
	x = &mailstore.MessageIndex{Envelope: x.Envelope, EnvelopeUTF8: x.EnvelopeUTF8, Body: x.Body, BodyUTF8: x.BodyUTF8,
		BodyStructure: x.BodyStructure, BodyStructureUTF8: x.BodyStructureUTF8, Preview: x.Preview}
	c.put(id, x)
	return x
}
