package sqlstore

import (
	"cmp"
	"container/list"
	"context"
	"database/sql"
	"math"
	"slices"
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
// whole instead. (On PostgreSQL the rows with modseq > c are found without
// an index on modseq: see stateChangesQueryPG.) A view is keyed by mailbox
// id, member and UIDVALIDITY, so a mailbox made again never inherits one.
// On PostgreSQL a STORE is also planned on the view (storeFlagsFromViewPG).
//
// The listings are shared: State returns the cached slice itself, which
// callers must not change (mailstore.Store.State says so).
type viewCache struct {
	mu     sync.Mutex
	m      map[int64]*list.Element // of *view, by mailbox id
	lru    list.List               // most recently used first
	total  int                     // messages held
	budget int

	// changed is, by mailbox, the count of notes (noteChanged) at its
	// last change heard of: a mailbox.changed event read, or an arrival
	// or expunge this process committed. A view read before that may
	// lack the change, and is patched without asking first.
	changed map[int64]uint64
	notes   atomic.Uint64

	hits, patches, misses atomic.Uint64
	checks                atomic.Uint64 // PostgreSQL: reads of the mailbox row alone (state)
	stores                atomic.Uint64 // STOREs planned on a view (storeFlagsFromViewPG)
}

type view struct {
	// mb is the mailbox row as read with the listing (its ID is the
	// view's key): its UIDNext is where later arrivals take UIDs from,
	// its HighestModSeq (the view's highest) covers exactly the listing. Its RecentUID may have moved
	// on since (claims take no mod-sequence): ClaimRecent moves it here.
	mb mailstore.Mailbox
	// heard is DB.heard when the mailbox was read (or found unchanged):
	// every change whose event this process had heard of by then is in
	// the view (see Mail.StateHeard). notes is viewCache.notes then.
	heard, notes uint64
	list         mailstore.Listing
}

// highest is the view's mod-sequence.
func (v *view) highest() uint64 { return v.mb.HighestModSeq }

// sameMailbox reports whether mb is the mailbox of the view: a mailbox
// made again has another UIDVALIDITY.
func (v *view) sameMailbox(mb mailstore.Mailbox) bool {
	return v.mb.MemberID == mb.MemberID && v.mb.UIDValidity == mb.UIDValidity
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
	if e := c.m[v.mb.ID]; e != nil {
		old := e.Value.(*view)
		if old.sameMailbox(v.mb) && (old.highest() > v.highest() || old.highest() == v.highest() && old.heard > v.heard) {
			return
		}
		c.removeLocked(e)
	}
	if v.list.Len() > c.budget {
		return
	}
	for c.total+v.list.Len() > c.budget {
		c.removeLocked(c.lru.Back())
	}
	c.m[v.mb.ID] = c.lru.PushFront(v)
	c.total += v.list.Len()
}

// claimed notes in the mailbox's view that its messages below next are no
// longer \Recent to claim (ClaimRecent): the sessions that take the view
// without reading the mailbox then make no claim that must fail.
func (c *viewCache) claimed(id int64, next uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[id]
	if e == nil {
		return
	}
	v := *e.Value.(*view) // views are shared: a new one replaces it
	if v.mb.RecentUID >= next {
		return
	}
	v.mb.RecentUID = next
	e.Value = &v
}

// recentUID is the RecentUID of mb's mailbox in its view, 0 when there is
// no view of that mailbox.
func (c *viewCache) recentUID(mb mailstore.Mailbox) uint32 {
	v := c.get(mb.ID)
	if v == nil || !v.sameMailbox(mb) {
		return 0
	}
	return v.mb.RecentUID
}

// noteChanged records that the mailbox has changed: an event says so, or
// this process has just committed an arrival or an expunge there (which
// leave its view as it was).
func (c *viewCache) noteChanged(id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.changed == nil || len(c.changed) >= maxMarks {
		c.changed = map[int64]uint64{} // forgetting costs a lookup each
	}
	c.changed[id] = c.notes.Add(1)
}

// changedSince reports whether a change to the mailbox was noted after
// notes (viewCache.notes when a view's read began): the view is then
// likely behind.
func (c *viewCache) changedSince(id int64, notes uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed[id] > notes
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
	delete(c.m, v.mb.ID)
	c.total -= v.list.Len()
}

// rows returns the view's messages of the given UIDs, in UID order, as
// planStore takes them (without their body ids).
func (v *view) rows(uids []uint32) []msgRow {
	if !slices.IsSorted(uids) {
		uids = slices.Sorted(slices.Values(uids)) // repeats are skipped below
	}
	out := make([]msgRow, 0, min(len(uids), v.list.Len()))
	var last uint32
	for i, u := range uids {
		if i > 0 && u == last {
			continue
		}
		last = u
		j, ok := v.list.Search(u)
		if !ok {
			continue
		}
		m := v.list.At(j)
		out = append(out, msgRow{id: m.ID, uid: m.UID, flags: m.Flags, date: micros(m.InternalDate), size: m.Size, modseq: int64(m.ModSeq)})
	}
	return out
}

// with returns a new view of the mailbox at mod-sequence highest: v's
// listing with infos (messages of v, in UID order) in place of those of
// the same UIDs. v is left as it is.
func (v *view) with(infos []mailstore.MessageInfo, highest uint64) *view {
	list, _ := v.list.Replace(infos)
	w := &view{mb: v.mb, heard: v.heard, notes: v.notes, list: list}
	w.mb.HighestModSeq = highest
	return w
}

// stateChangesQuery reads, in one statement (one snapshot, one round trip), the
// mailbox row (kind 0), its messages changed after the first mod-sequence
// argument (kind 1) and the UIDs buried after the second (kind 2). The
// three kinds share columns: i1..i7, t1, t2 and b are the mailbox's
// id, member_id, uid_validity, uid_next, highest_modseq, recent_uid,
// pruned_modseq, name, special_use and subscribed, and a message's id,
// uid, internal_date, size, body_id, modseq, -, flags; a tombstone has its
// UID in i2.
const stateChangesQuery = `SELECT 0, b.id, b.member_id, b.uid_validity, b.uid_next, b.highest_modseq, COALESCE(r.recent_uid, 1), b.pruned_modseq, b.name, b.special_use, b.subscribed
	FROM mailboxes b LEFT JOIN mailbox_recent r ON r.mailbox_id = b.id WHERE b.id = ?
UNION ALL SELECT 1, id, uid, internal_date, size, body_id, modseq, NULL, flags, NULL, NULL
	FROM mail_messages WHERE mailbox_id = ? AND modseq > ?
UNION ALL SELECT 2, NULL, uid, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
	FROM mail_vanished WHERE mailbox_id = ? AND modseq > ?`

// stateChangesQueryPG is stateChangesQuery on PostgreSQL, where no index
// holds mail_messages.modseq (migration 0032: flag changes are then HOT
// updates): the messages changed after the mod-sequence are those that
// arrived since, at or above the view's UIDNEXT (the third argument: 0 for
// a whole read), and those below it whose UIDs mail_changes logged after
// it (the fifth: none for a whole read), each looked up alone by its UID.
// The lookup is fenced (LATERAL ... LIMIT 1) so that no plan can scan the
// mailbox instead: the statement is planned on every execution, and a
// mailbox filled since the table's statistics were made is estimated at a
// row or two, for which a scan of the mailbox testing each message against
// the logged UIDs looks cheap: a mailbox of 10,000 messages filled at once
// took 3 ms per re-read that way with nothing changed, and 0.66 s to bring
// a view 18 STOREs on 1,000 messages behind up to date. The mailbox's pruned_modseq (i7) is raised to where that log
// begins and to its changes_from (a change logged without UIDs): the
// re-read of an older view reads the mailbox whole, as when its tombstones
// were pruned.
const stateChangesQueryPG = `SELECT 0, b.id, b.member_id, b.uid_validity, b.uid_next, b.highest_modseq, COALESCE(r.recent_uid, 1),
		GREATEST(b.pruned_modseq, b.highest_modseq - mail_changes_kept(), b.changes_from), b.name, b.special_use, b.subscribed
	FROM mailboxes b LEFT JOIN mailbox_recent r ON r.mailbox_id = b.id WHERE b.id = ?
UNION ALL SELECT 1, id, uid, internal_date, size, body_id, modseq, NULL, flags, NULL, NULL
	FROM mail_messages WHERE mailbox_id = ? AND uid >= ?
UNION ALL SELECT 1, m.id, m.uid, m.internal_date, m.size, m.body_id, m.modseq, NULL, m.flags, NULL, NULL
	FROM (SELECT DISTINCT unnest(c.uids) AS uid FROM mail_changes c WHERE c.mailbox_id = ? AND c.modseq > ?) u
	CROSS JOIN LATERAL (SELECT id, uid, internal_date, size, body_id, modseq, flags FROM mail_messages
		WHERE mailbox_id = ? AND uid = u.uid LIMIT 1) m
	WHERE u.uid < ?
UNION ALL SELECT 2, NULL, uid, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
	FROM mail_vanished WHERE mailbox_id = ? AND modseq > ?`

// state is State through the view cache: the mailbox row and what changed
// since the cached view, read by one statement. On PostgreSQL every
// statement is a round trip, and every session of a mailbox re-reads it
// after each change to it.
func (db *DB) state(ctx context.Context, mailboxID int64) (mailstore.Mailbox, mailstore.Listing, error) {
	c := db.views
	heard, notes := db.heard.Load(), c.notes.Load() // before the read: see view
	v := c.get(mailboxID)
	since, uidNext := int64(-1), uint32(0) // no view: every message
	if v != nil {
		since, uidNext = int64(min(v.highest(), math.MaxInt64)), v.mb.UIDNext
		if db.Dialect == Postgres && !c.changedSince(mailboxID, v.notes) {
			// The mailbox row alone first: when the view is current, as it
			// is after this process's own changes and for every SELECT of
			// an unchanged mailbox, that fixed-shape lookup is all, where
			// the changes' statement costs its planning at every run. A
			// view this process has heard is behind is patched at once.
			c.checks.Add(1)
			mb, err := db.stateMailboxPG(ctx, mailboxID)
			if err == nil && v.sameMailbox(mb) && v.highest() == mb.HighestModSeq {
				c.hits.Add(1)
				c.put(&view{mb: mb, heard: heard, notes: notes, list: v.list})
				return mb, v.list, nil
			}
			if notFound(err) {
				c.drop(mailboxID)
				return mailstore.Mailbox{}, mailstore.Listing{}, account.ErrNotFound
			}
			if err != nil {
				return mailstore.Mailbox{}, mailstore.Listing{}, err
			}
		}
	}
	r, err := db.readState(ctx, mailboxID, since, uidNext)
	if notFound(err) {
		c.drop(mailboxID)
		return mailstore.Mailbox{}, mailstore.Listing{}, account.ErrNotFound
	}
	if err != nil {
		return mailstore.Mailbox{}, mailstore.Listing{}, err
	}
	mb := r.mb
	var msgs mailstore.Listing
	switch {
	case v == nil:
		c.misses.Add(1)
		msgs = r.infos(mailboxID)
	case !v.sameMailbox(mb) || v.highest() > mb.HighestModSeq ||
		v.highest() < mb.HighestModSeq && uint64(r.pruned) > v.highest():
		// Another mailbox of the same id, or the tombstones the view
		// needs are pruned: read whole.
		c.misses.Add(1)
		if r, err = db.readState(ctx, mailboxID, -1, 0); notFound(err) {
			c.drop(mailboxID)
			return mailstore.Mailbox{}, mailstore.Listing{}, account.ErrNotFound
		} else if err != nil {
			return mailstore.Mailbox{}, mailstore.Listing{}, err
		}
		mb, msgs = r.mb, r.infos(mailboxID)
	case v.highest() == mb.HighestModSeq:
		c.hits.Add(1)
		msgs = v.list
	default:
		c.patches.Add(1)
		msgs = patchView(v, r.changed, r.gone, mailboxID)
	}
	c.put(&view{mb: mb, heard: heard, notes: notes, list: msgs})
	return mb, msgs, nil
}

// heardState is the mailbox's cached view when it holds every change this
// process had heard of at heard (DB.heard's value then; 0: none) and is at
// mod-sequence atLeast or later, ok false otherwise.
func (db *DB) heardState(mailboxID int64, heard, atLeast uint64) (mb mailstore.Mailbox, list mailstore.Listing, ok bool) {
	if heard == 0 {
		return mb, list, false
	}
	v := db.views.get(mailboxID)
	if v == nil || v.heard < heard || v.highest() < atLeast {
		return mb, list, false
	}
	return v.mb, v.list, true
}

// stateMailboxPG reads the mailbox row as State reports it; errNoRows when
// the mailbox does not exist.
func (db *DB) stateMailboxPG(ctx context.Context, mailboxID int64) (mailstore.Mailbox, error) {
	stmt, err := db.prepared(ctx, `SELECT `+mailboxCols+` FROM `+mailboxFrom+` WHERE b.id = $1`)
	if err != nil {
		return mailstore.Mailbox{}, err
	}
	return scanMailbox(stmt.QueryRowContext(ctx, mailboxID))
}

// stateRead is what stateChangesQuery returned.
type stateRead struct {
	mb      mailstore.Mailbox
	pruned  int64
	changed []msgRow // in UID order
	gone    map[uint32]bool
}

func (r *stateRead) infos(mailboxID int64) mailstore.Listing {
	return mailstore.NewListing(rowInfos(r.changed, mailboxID))
}

func rowInfos(rows []msgRow, mailboxID int64) []mailstore.MessageInfo {
	out := make([]mailstore.MessageInfo, len(rows))
	for i, m := range rows {
		out[i] = m.info(mailboxID)
	}
	return out
}

// readState runs stateChangesQuery: the messages changed after since (all when
// it is negative) and, with a view to patch, the UIDs buried after it;
// uidNext is the view's UIDNEXT. errNoRows when the mailbox does not exist.
func (db *DB) readState(ctx context.Context, mailboxID, since int64, uidNext uint32) (*stateRead, error) {
	buriedSince := since
	if since < 0 {
		buriedSince = math.MaxInt64 // a whole read needs no tombstones
	}
	query, args := stateChangesQuery, []any{mailboxID, mailboxID, since, mailboxID, buriedSince}
	if db.Dialect == Postgres {
		if since < 0 {
			uidNext = 0
		}
		query = stateChangesQueryPG
		args = []any{mailboxID, mailboxID, int64(uidNext), mailboxID, buriedSince, mailboxID, int64(uidNext), mailboxID, buriedSince}
	}
	// Planned for its arguments on PostgreSQL (queryEachPlan); kept
	// prepared on SQLite, which plans every run.
	var rows *sql.Rows
	var err error
	if db.Dialect == Postgres {
		rows, err = db.queryEachPlan(ctx, db.SQL, db.q(query), args...)
	} else {
		stmt, perr := db.prepared(ctx, db.q(query))
		if perr != nil {
			return nil, perr
		}
		rows, err = stmt.QueryContext(ctx, args...)
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	r := &stateRead{}
	found, sorted := false, true
	sets := flagSets{}
	var kind int
	var i1, i3, i4, i5, i6, i7 sql.NullInt64
	var i2 int64
	var t1, t2 sql.RawBytes
	var b sql.NullBool
	for rows.Next() {
		if err := rows.Scan(&kind, &i1, &i2, &i3, &i4, &i5, &i6, &i7, &t1, &t2, &b); err != nil {
			return nil, err
		}
		switch kind {
		case 0:
			found = true
			r.mb = mailstore.Mailbox{ID: i1.Int64, MemberID: i2, UIDValidity: uint32(i3.Int64), UIDNext: uint32(i4.Int64),
				HighestModSeq: uint64(i5.Int64), RecentUID: uint32(i6.Int64), Name: string(t1), SpecialUse: string(t2), Subscribed: b.Bool}
			r.pruned = i7.Int64
		case 1:
			m := msgRow{id: i1.Int64, uid: uint32(i2), date: i3.Int64, size: i4.Int64, bodyID: i5.Int64, modseq: i6.Int64, flags: sets.split(t1)}
			if n := len(r.changed); n > 0 && r.changed[n-1].uid > m.uid {
				sorted = false
			}
			r.changed = append(r.changed, m)
		case 2:
			if r.gone == nil {
				r.gone = map[uint32]bool{}
			}
			r.gone[uint32(i2)] = true
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if !found {
		return nil, errNoRows
	}
	if !sorted {
		slices.SortFunc(r.changed, func(a, b msgRow) int { return cmp.Compare(a.uid, b.uid) })
	}
	return r, nil
}

// patchView returns v's listing brought up to date: v's messages less
// those buried (gone) or changed, merged in UID order with the rows changed
// (or arrived) since v, in UID order. v's listing is left as it is. When
// nothing was buried, the rows are changes to messages of v and arrivals
// above them: the new listing then shares every chunk of v's they do not
// touch (mailstore.Listing), so that a STORE on a few messages of a large
// mailbox does not copy all of it for every session.
func patchView(v *view, changed []msgRow, gone map[uint32]bool, mailboxID int64) mailstore.Listing {
	if len(gone) == 0 {
		last := v.list.LastUID()
		split, _ := slices.BinarySearchFunc(changed, last+1, func(r msgRow, u uint32) int { return cmp.Compare(r.uid, u) })
		if list, found := v.list.Replace(rowInfos(changed[:split], mailboxID)); found {
			return list.Append(rowInfos(changed[split:], mailboxID))
		}
	}
	out := make([]mailstore.MessageInfo, 0, v.list.Len()+len(changed))
	i := 0
	for k := range v.list.Len() {
		m := v.list.At(k)
		for ; i < len(changed) && changed[i].uid < m.UID; i++ {
			out = append(out, changed[i].info(mailboxID))
		}
		if i < len(changed) && changed[i].uid == m.UID {
			out = append(out, changed[i].info(mailboxID))
			i++
			continue
		}
		if !gone[m.UID] {
			out = append(out, *m)
		}
	}
	for ; i < len(changed); i++ {
		out = append(out, changed[i].info(mailboxID))
	}
	return mailstore.NewListing(out)
}
