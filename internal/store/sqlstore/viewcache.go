package sqlstore

import (
	"container/list"
	"context"
	"database/sql"
	"math"
	"sync"
	"sync/atomic"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/mailstore"
)

// viewCache keeps the last message listing State read of each recently used
// mailbox, so that SELECT and the re-read after a change read only what
// changed since. It is exact on every node that shares the database, because
// it trusts nothing but the database: a view is labelled with the mailbox's
// HIGHESTMODSEQ in the snapshot it was read from, and every change to a
// mailbox's messages (arrival, flags, expunge, move) takes a new, higher
// mod-sequence under the mailbox lock, stamped on the changed rows and, for
// removals, on the tombstones in mail_vanished. So a view at mod-sequence c
// becomes the listing at h > c by replacing the rows with modseq > c and
// dropping the UIDs buried above c, read in one snapshot together with h;
// when tombstones above c were pruned (pruned_modseq > c) the view is read
// whole instead. A view is keyed by mailbox id, member and UIDVALIDITY, so a
// mailbox made again never inherits one.
//
// The listings are shared: State returns the cached slice itself, which
// callers must not change (mailstore.Store.State says so).
type viewCache struct {
	mu     sync.Mutex
	m      map[int64]*list.Element // of *view, by mailbox id
	lru    list.List               // most recently used first
	total  int                     // messages held
	budget int

	hits, patches, misses atomic.Uint64
}

type view struct {
	mailboxID, memberID int64
	uidValidity         uint32
	highest             uint64
	msgs                []mailstore.MessageInfo
}

// viewBudget bounds the messages the view cache holds in all, least
// recently used views going first: about 100 bytes each, so some 50 MiB.
// A mailbox larger than the budget is read whole every time.
const viewBudget = 500_000

func newViewCache(budget int) *viewCache {
	return &viewCache{m: map[int64]*list.Element{}, budget: budget}
}

// get returns the view of the mailbox, if any, and marks it used.
func (c *viewCache) get(id int64) *view {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[id]
	if e == nil {
		return nil
	}
	c.lru.MoveToFront(e)
	return e.Value.(*view)
}

// put keeps v unless the cache already holds a later view of the same
// mailbox (a State whose snapshot is older may finish last).
func (c *viewCache) put(v *view) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.m[v.mailboxID]; e != nil {
		old := e.Value.(*view)
		if old.memberID == v.memberID && old.uidValidity == v.uidValidity && old.highest > v.highest {
			return
		}
		c.removeLocked(e)
	}
	if len(v.msgs) > c.budget {
		return
	}
	for c.total+len(v.msgs) > c.budget {
		c.removeLocked(c.lru.Back())
	}
	c.m[v.mailboxID] = c.lru.PushFront(v)
	c.total += len(v.msgs)
}

// drop forgets the mailbox's view (it no longer exists).
func (c *viewCache) drop(id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.m[id]; e != nil {
		c.removeLocked(e)
	}
}

func (c *viewCache) removeLocked(e *list.Element) {
	v := c.lru.Remove(e).(*view)
	delete(c.m, v.mailboxID)
	c.total -= len(v.msgs)
}

// state is State through the view cache: the mailbox row and what changed
// since the cached view, in one read snapshot.
func (db *DB) state(ctx context.Context, mailboxID int64) (mb mailstore.Mailbox, msgs []mailstore.MessageInfo, err error) {
	c := db.views
	var fresh *view
	err = db.readTx(ctx, func(tx *sql.Tx) error {
		var pruned int64
		row := tx.QueryRowContext(ctx, db.q(`SELECT pruned_modseq, `+mailboxCols+` FROM mailboxes WHERE id = ?`), mailboxID)
		mb, err = scanMailbox(scanAfter{row, &pruned})
		if notFound(err) {
			c.drop(mailboxID)
			return account.ErrNotFound
		}
		if err != nil {
			return err
		}
		v := c.get(mailboxID)
		if v != nil && (v.memberID != mb.MemberID || v.uidValidity != mb.UIDValidity) {
			v = nil
		}
		switch {
		case v != nil && v.highest == mb.HighestModSeq:
			c.hits.Add(1)
			msgs = v.msgs
			return nil
		case v != nil && v.highest < mb.HighestModSeq && uint64(pruned) <= v.highest:
			c.patches.Add(1)
			msgs, err = db.patchView(ctx, tx, v, mailboxID)
		default:
			c.misses.Add(1)
			var rows []msgRow
			rows, err = db.selectMsgs(ctx, tx, mailboxID, nil)
			msgs = make([]mailstore.MessageInfo, len(rows))
			for i, r := range rows {
				msgs[i] = r.info(mailboxID)
			}
		}
		if err != nil {
			return err
		}
		fresh = &view{mailboxID: mailboxID, memberID: mb.MemberID, uidValidity: mb.UIDValidity, highest: mb.HighestModSeq, msgs: msgs}
		return nil
	})
	if err != nil {
		return mailstore.Mailbox{}, nil, err
	}
	if fresh != nil {
		c.put(fresh)
	}
	return mb, msgs, nil
}

// scanAfter scans its first column into first and the others as asked.
type scanAfter struct {
	row   *sql.Row
	first any
}

func (s scanAfter) Scan(dest ...any) error {
	return s.row.Scan(append([]any{s.first}, dest...)...)
}

// patchView returns v's listing as of tx's snapshot: v's messages less those
// buried or changed after v.highest, merged in UID order with the rows
// changed (or arrived) after it. v.msgs is left as it is.
func (db *DB) patchView(ctx context.Context, tx *sql.Tx, v *view, mailboxID int64) ([]mailstore.MessageInfo, error) {
	since := int64(min(v.highest, math.MaxInt64))
	rows, err := tx.QueryContext(ctx, db.q(`SELECT `+msgCols+` FROM mail_messages WHERE mailbox_id = ? AND modseq > ? ORDER BY uid`), mailboxID, since)
	if err != nil {
		return nil, err
	}
	changed, err := scanMsgs(rows, nil)
	if err != nil {
		return nil, err
	}
	gone := map[uint32]bool{}
	vrows, err := tx.QueryContext(ctx, db.q(`SELECT uid FROM mail_vanished WHERE mailbox_id = ? AND modseq > ?`), mailboxID, since)
	if err != nil {
		return nil, err
	}
	defer vrows.Close()
	for vrows.Next() {
		var u int64
		if err := vrows.Scan(&u); err != nil {
			return nil, err
		}
		gone[uint32(u)] = true
	}
	if err := vrows.Err(); err != nil {
		return nil, err
	}
	out := make([]mailstore.MessageInfo, 0, len(v.msgs)+len(changed))
	i := 0
	for _, m := range v.msgs {
		for ; i < len(changed) && changed[i].uid < m.UID; i++ {
			out = append(out, changed[i].info(mailboxID))
		}
		if i < len(changed) && changed[i].uid == m.UID {
			out = append(out, changed[i].info(mailboxID))
			i++
			continue
		}
		if !gone[m.UID] {
			out = append(out, m)
		}
	}
	for ; i < len(changed); i++ {
		out = append(out, changed[i].info(mailboxID))
	}
	return out, nil
}
