package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/mailstore"
)

// Locking. Every change to a mailbox's messages first locks the mailbox row
// (FOR UPDATE on PostgreSQL; SQLite transactions hold the write lock from
// BEGIN IMMEDIATE), so the UID allocation and the read-then-write of flags are
// serialised per mailbox. Changes to a member's set of mailboxes lock the
// member's mail_accounts row first. On PostgreSQL, inserting a row that
// refers to a member (a body, a mailbox) takes a share lock on the member's
// row, which account transactions lock FOR UPDATE before they deliver a
// notification. Locks are therefore always taken in the order: member row
// (share), mail_accounts, mailboxes (by id), the member's mail_usage row
// (addUsage, after the messages changed), so transactions cannot deadlock
// on each other; a transaction that reaches several members (DeliverAll)
// takes them one member at a time, in member ID order. Message rows are
// locked after their mailbox's (the optimistic STORE locks the rows it
// writes, storeFlagsIfQueryPG). The \Recent claim locks no mailbox: it
// writes mailbox_recent only.

// chunk bounds the parameters of one IN (...) list, far below the limits of
// both engines (SQLite 32766, PostgreSQL 65535).
const chunk = 500

// forUpdate is the row-locking suffix of a SELECT on engines that lock rows.
func (db *DB) forUpdate() string {
	if db.Dialect == Postgres {
		return " FOR UPDATE"
	}
	return ""
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

// missingMember reports whether err is the foreign-key violation of a row
// that refers to a member that does not exist.
func missingMember(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "SQLSTATE 23503") || strings.Contains(s, "FOREIGN KEY constraint failed")
}

// ensureAccountTx creates the member's mail account and default mailboxes on
// first use. INSERT ... ON CONFLICT DO NOTHING makes concurrent first uses
// safe on both engines: exactly one transaction inserts the row and creates
// the defaults; the others wait for it (PostgreSQL) or run after it (SQLite).
func (db *DB) ensureAccountTx(ctx context.Context, tx *sql.Tx, memberID int64) error {
	res, err := tx.ExecContext(ctx, db.q(`INSERT INTO mail_accounts (member_id, last_uid_validity) VALUES (?, 0) ON CONFLICT (member_id) DO NOTHING`), memberID)
	if missingMember(err) {
		return account.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("create mail account: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return err
	}
	for _, d := range mailstore.DefaultMailboxes {
		if _, err := db.insertMailbox(ctx, tx, memberID, d.Name, d.SpecialUse, true); err != nil {
			return fmt.Errorf("create mailbox %s: %w", d.Name, err)
		}
	}
	return nil
}

// ensureAccount is ensureAccountTx in a transaction of its own, skipped (a
// read, no write lock) when the account exists.
func (db *DB) ensureAccount(ctx context.Context, memberID int64) error {
	var one int
	stmt, err := db.prepared(ctx, db.q(`SELECT 1 FROM mail_accounts WHERE member_id = ?`)) // every POP3 login and SELECT
	if err != nil {
		return err
	}
	err = stmt.QueryRowContext(ctx, memberID).Scan(&one)
	if err == nil {
		return nil
	}
	if !notFound(err) {
		return err
	}
	return db.tx(ctx, func(tx *sql.Tx) error { return db.ensureAccountTx(ctx, tx, memberID) })
}

// lockAccount locks the member's mail account row (see Locking); the account
// must exist.
func (db *DB) lockAccount(ctx context.Context, tx *sql.Tx, memberID int64) (lastValidity int64, err error) {
	err = tx.QueryRowContext(ctx, db.q(`SELECT last_uid_validity FROM mail_accounts WHERE member_id = ?`+db.forUpdate()), memberID).Scan(&lastValidity)
	if notFound(err) {
		return 0, account.ErrNotFound
	}
	return lastValidity, err
}

// newUIDValidity hands out the member's next UIDVALIDITY: the creation time
// in seconds, as most servers use, but always above every value the member
// has had, so that a mailbox deleted and created again within a second gets a
// new one (RFC 3501 §2.3.1.1).
func (db *DB) newUIDValidity(ctx context.Context, tx *sql.Tx, memberID int64) (uint32, error) {
	last, err := db.lockAccount(ctx, tx, memberID)
	if err != nil {
		return 0, err
	}
	v := max(last+1, time.Now().Unix())
	if v > math.MaxUint32 {
		return 0, fmt.Errorf("member %d: UIDVALIDITY exhausted", memberID)
	}
	if _, err := tx.ExecContext(ctx, db.q(`UPDATE mail_accounts SET last_uid_validity = ? WHERE member_id = ?`), v, memberID); err != nil {
		return 0, err
	}
	return uint32(v), nil
}

// insertMailbox creates a mailbox with a new UIDVALIDITY. The mailboxes
// Postern makes (the defaults, Junk) start subscribed, so that clients that
// show only subscribed mailboxes (RFC 3501 §6.3.6) show them; a client's
// CREATE or RENAME does not subscribe (RFC 3501 has SUBSCRIBE for that, and
// clients that create folders subscribe them; imaptest's LSUB test expects
// a created parent of a subscribed mailbox to be listed \Noselect).
func (db *DB) insertMailbox(ctx context.Context, tx *sql.Tx, memberID int64, name, specialUse string, subscribed bool) (mailstore.Mailbox, error) {
	v, err := db.newUIDValidity(ctx, tx, memberID)
	if err != nil {
		return mailstore.Mailbox{}, err
	}
	mb := mailstore.Mailbox{MemberID: memberID, Name: name, SpecialUse: specialUse, UIDValidity: v, UIDNext: 1, Subscribed: subscribed, HighestModSeq: 1, RecentUID: 1}
	err = tx.QueryRowContext(ctx, db.q(`INSERT INTO mailboxes (member_id, name, name_key, special_use, uid_validity, uid_next, subscribed) VALUES (?, ?, ?, ?, ?, 1, ?) RETURNING id`),
		memberID, name, name, specialUse, int64(v), subscribed).Scan(&mb.ID)
	if isUnique(err) {
		return mailstore.Mailbox{}, account.Errorf(account.ECONFLICT, "A mailbox with this name exists.")
	}
	if err != nil {
		return mb, err
	}
	// A mailbox made again under a subscribed name takes the subscription
	// back from mail_subscribed_names.
	res, err := tx.ExecContext(ctx, db.q(`DELETE FROM mail_subscribed_names WHERE member_id = ? AND name = ?`), memberID, name)
	if err != nil {
		return mb, err
	}
	if n, _ := res.RowsAffected(); n > 0 && !mb.Subscribed {
		mb.Subscribed = true
		_, err = tx.ExecContext(ctx, db.q(`UPDATE mailboxes SET subscribed = TRUE WHERE id = ?`), mb.ID)
	}
	return mb, err
}

// lockedMailbox is a mailbox row locked by lockMailboxes.
type lockedMailbox struct {
	id, memberID int64
	uidValidity  uint32
	uidNext      int64
	// highestModSeq is the mailbox's HIGHESTMODSEQ; modseq is the one this
	// transaction took (nextModSeq), 0 until it takes one.
	highestModSeq, modseq int64
	modseqWritten         bool // modseq is in the mailbox row
}

// lockMailboxes locks the mailboxes ids, in id order (see Locking), and
// returns them by id; account.ErrNotFound when one is missing.
func (db *DB) lockMailboxes(ctx context.Context, tx *sql.Tx, ids ...int64) (map[int64]*lockedMailbox, error) {
	rows, err := tx.QueryContext(ctx, db.q(`SELECT id, member_id, uid_validity, uid_next, highest_modseq FROM mailboxes WHERE id IN (`+placeholders(len(ids))+`) ORDER BY id`+db.forUpdate()), int64Args(ids)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[int64]*lockedMailbox, len(ids))
	for rows.Next() {
		var m lockedMailbox
		var v int64
		if err := rows.Scan(&m.id, &m.memberID, &v, &m.uidNext, &m.highestModSeq); err != nil {
			return nil, err
		}
		m.uidValidity = uint32(v)
		out[m.id] = &m
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, id := range ids {
		if out[id] == nil {
			return nil, account.ErrNotFound
		}
	}
	return out, nil
}

// allocUIDs reserves n UIDs of a locked mailbox and returns the first. UIDs
// only grow and are never handed out twice (RFC 3501 §2.3.1.1), expunged or
// not. The messages that get them arrive with the transaction's mod-sequence
// (mb.modseq), taken in the same UPDATE.
func (db *DB) allocUIDs(ctx context.Context, tx *sql.Tx, mb *lockedMailbox, n int) (uint32, error) {
	first := mb.uidNext
	if first+int64(n) > math.MaxUint32 {
		return 0, account.Errorf(account.ECONFLICT, "The mailbox has run out of message UIDs; copy its messages to a new mailbox.")
	}
	mb.uidNext += int64(n)
	mb.takeModSeq()
	if _, err := tx.ExecContext(ctx, db.q(`UPDATE mailboxes SET uid_next = ?, highest_modseq = ? WHERE id = ?`), mb.uidNext, mb.highestModSeq, mb.id); err != nil {
		return 0, err
	}
	mb.modseqWritten = true
	return uint32(first), nil
}

// nextModSeq returns the mod-sequence of this transaction's changes to a
// locked mailbox (RFC 7162): the first call takes the mailbox's next one,
// later calls return the same. The mailbox lock makes them grow in commit
// order, so a client that saw one has seen every change below it.
func (db *DB) nextModSeq(ctx context.Context, tx *sql.Tx, mb *lockedMailbox) (int64, error) {
	if mb.modseq != 0 && mb.modseqWritten {
		return mb.modseq, nil
	}
	modseq := mb.takeModSeq()
	if _, err := tx.ExecContext(ctx, db.q(`UPDATE mailboxes SET highest_modseq = ? WHERE id = ?`), modseq, mb.id); err != nil {
		return 0, err
	}
	mb.modseqWritten = true
	return modseq, nil
}

// takeModSeq is nextModSeq without writing it: the caller writes
// highest_modseq itself.
func (mb *lockedMailbox) takeModSeq() int64 {
	if mb.modseq == 0 {
		mb.highestModSeq++
		mb.modseq = mb.highestModSeq
	}
	return mb.modseq
}

// maxTombstones bounds the expunged UIDs remembered per mailbox for
// QRESYNC (mail_vanished): a mailbox where a client deletes ten thousand
// messages a week keeps a week or so. Beyond it the oldest expunges are
// forgotten, whole mod-sequences at a time, and pruned_modseq says up to
// where: Vanished is then incomplete for older mod-sequences.
var maxTombstones int64 = 10_000

// bury records uids, expunged from a locked mailbox, as vanished at this
// transaction's mod-sequence, and prunes the oldest tombstones past
// maxTombstones.
func (db *DB) bury(ctx context.Context, tx *sql.Tx, mb *lockedMailbox, uids []uint32) error {
	if len(uids) == 0 {
		return nil
	}
	modseq, err := db.nextModSeq(ctx, tx, mb)
	if err != nil {
		return err
	}
	for len(uids) > 0 {
		part := uids[:min(chunk, len(uids))]
		uids = uids[len(part):]
		args := make([]any, 0, 3*len(part))
		for _, u := range part {
			args = append(args, mb.id, int64(u), modseq)
		}
		// A UID is never reused, so it is buried once; ON CONFLICT only
		// covers a row left by a mailbox of the same id (SQLite reuses
		// none: AUTOINCREMENT).
		values := strings.TrimSuffix(strings.Repeat("(?, ?, ?),", len(part)), ",")
		if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO mail_vanished (mailbox_id, uid, modseq) VALUES `+values+
			` ON CONFLICT (mailbox_id, uid) DO UPDATE SET modseq = excluded.modseq`), args...); err != nil {
			return err
		}
	}
	var n int64
	if err := tx.QueryRowContext(ctx, db.q(`SELECT COUNT(*) FROM mail_vanished WHERE mailbox_id = ?`), mb.id).Scan(&n); err != nil {
		return err
	}
	return db.pruneTombstones(ctx, tx, mb, n)
}

// pruneTombstones prunes the oldest tombstones of a locked mailbox that
// holds n of them, past maxTombstones.
func (db *DB) pruneTombstones(ctx context.Context, tx *sql.Tx, mb *lockedMailbox, n int64) error {
	if n <= maxTombstones {
		return nil
	}
	// The mod-sequence of the oldest tombstone to keep: everything at or
	// below the one before it goes.
	var cut int64
	err := tx.QueryRowContext(ctx, db.q(`SELECT modseq FROM mail_vanished WHERE mailbox_id = ? ORDER BY modseq DESC LIMIT 1 OFFSET ?`), mb.id, maxTombstones).Scan(&cut)
	if notFound(err) {
		return nil // n was counted before another session's prune: none over the bound now
	}
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM mail_vanished WHERE mailbox_id = ? AND modseq <= ?`), mb.id, cut); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, db.q(`UPDATE mailboxes SET pruned_modseq = ? WHERE id = ? AND pruned_modseq < ?`), cut, mb.id, cut)
	return err
}

// pruneMailboxTombstones is pruneTombstones in a transaction of its own,
// with the mailbox locked: after an expunge committed without it.
func (db *DB) pruneMailboxTombstones(ctx context.Context, mailboxID, n int64) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		locked, err := db.lockMailboxes(ctx, tx, mailboxID)
		if err != nil {
			return err
		}
		return db.pruneTombstones(ctx, tx, locked[mailboxID], n)
	})
}

// mailboxChanged writes the event that tells IMAP IDLE on every node that
// the mailboxes' messages changed, and moves the member's mail counter
// before and after the commit (inboxcache.go): the move after the commit is
// what keeps the INBOX cache exact; the one before narrows what a process
// dying between its commit and that move could leave stale.
func (db *DB) mailboxChanged(ctx context.Context, tx *sql.Tx, memberID int64, mailboxIDs ...int64) error {
	db.noteMailChanged(tx, memberID)
	fx := account.Effects{Events: make([]account.Event, 0, len(mailboxIDs))}
	for _, id := range mailboxIDs {
		fx.Events = append(fx.Events, account.Event{Kind: account.EventMailboxChanged, MemberID: memberID, MailboxID: id})
	}
	return db.writeEffects(ctx, tx, fx)
}

// noteMailChanged moves the member's mail counter now and after tx commits
// (see mailboxChanged).
func (db *DB) noteMailChanged(tx *sql.Tx, memberID int64) {
	db.MailChanged(memberID)
	db.afterCommit(tx, func() { db.MailChanged(memberID) })
}

// msgRow is a message's row.
type msgRow struct {
	id, bodyID int64
	uid        uint32
	flags      []string
	date, size int64
	modseq     int64
}

func (r msgRow) info(mailboxID int64) mailstore.MessageInfo {
	return mailstore.MessageInfo{ID: r.id, MailboxID: mailboxID, UID: r.uid, Flags: r.flags, InternalDate: fromMicros(r.date), Size: r.size, ModSeq: uint64(r.modseq)}
}

const msgCols = `id, uid, flags, internal_date, size, body_id, modseq`

func scanMsgs(rows *sql.Rows, out []msgRow) ([]msgRow, error) {
	defer rows.Close()
	sets := flagSets{}
	var flags sql.RawBytes
	for rows.Next() {
		var r msgRow
		var uid int64
		if err := rows.Scan(&r.id, &uid, &flags, &r.date, &r.size, &r.bodyID, &r.modseq); err != nil {
			return nil, err
		}
		r.uid, r.flags = uint32(uid), sets.split(flags)
		out = append(out, r)
	}
	return out, rows.Err()
}

// selectMsgs returns the messages of the mailbox, all of them when uids is
// nil, else those among uids that exist, in UID order.
func (db *DB) selectMsgs(ctx context.Context, q queryer, mailboxID int64, uids []uint32) ([]msgRow, error) {
	if uids == nil {
		rows, err := db.queryEachPlan(ctx, q, db.q(`SELECT `+msgCols+` FROM mail_messages WHERE mailbox_id = ? ORDER BY uid`), mailboxID)
		if err != nil {
			return nil, err
		}
		return scanMsgs(rows, nil)
	}
	if db.Dialect == Postgres {
		// One array parameter, one statement, whatever the number.
		rows, err := db.queryEachPlan(ctx, q, `SELECT `+msgCols+` FROM mail_messages WHERE mailbox_id = $1 AND uid = ANY($2) ORDER BY uid`, mailboxID, uidArray(uids))
		if err != nil {
			return nil, err
		}
		return scanMsgs(rows, nil)
	}
	uniq := make(map[uint32]bool, len(uids))
	list := make([]uint32, 0, len(uids))
	for _, u := range uids {
		if !uniq[u] {
			uniq[u] = true
			list = append(list, u)
		}
	}
	var out []msgRow
	for len(list) > 0 {
		part := list[:min(chunk, len(list))]
		list = list[len(part):]
		args := make([]any, 0, len(part)+1)
		args = append(args, mailboxID)
		for _, u := range part {
			args = append(args, int64(u))
		}
		rows, err := q.QueryContext(ctx, db.q(`SELECT `+msgCols+` FROM mail_messages WHERE mailbox_id = ? AND uid IN (`+placeholders(len(part))+`)`), args...)
		if err != nil {
			return nil, err
		}
		if out, err = scanMsgs(rows, out); err != nil {
			return nil, err
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].uid < out[j].uid })
	return out, nil
}

// uidArray is uids as a PostgreSQL bigint[] argument.
func uidArray(uids []uint32) []int64 {
	out := make([]int64, len(uids))
	for i, u := range uids {
		out[i] = int64(u)
	}
	return out
}

// queryer is a *sql.DB or a *sql.Tx.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// deleteMsgs deletes the rows and then the bodies no other message shares.
func (db *DB) deleteMsgs(ctx context.Context, tx *sql.Tx, rows []msgRow) error {
	ids := make([]int64, len(rows))
	bodies := make([]int64, len(rows))
	for i, r := range rows {
		ids[i], bodies[i] = r.id, r.bodyID
	}
	if err := db.execIn(ctx, tx, `DELETE FROM mail_messages WHERE id IN (%s)`, ids); err != nil {
		return err
	}
	return db.dropBodies(ctx, tx, bodies)
}

// dropBodies deletes those of the bodies that no message refers to any more
// (copies share bodies).
func (db *DB) dropBodies(ctx context.Context, tx *sql.Tx, bodies []int64) error {
	return db.execIn(ctx, tx, `DELETE FROM mail_bodies WHERE id IN (%s) AND NOT EXISTS (SELECT 1 FROM mail_messages WHERE body_id = mail_bodies.id)`, bodies)
}

// execIn runs query, whose %s is an IN list, over ids in chunks.
func (db *DB) execIn(ctx context.Context, tx *sql.Tx, query string, ids []int64) error {
	for len(ids) > 0 {
		part := ids[:min(chunk, len(ids))]
		ids = ids[len(part):]
		if _, err := tx.ExecContext(ctx, db.q(fmt.Sprintf(query, placeholders(len(part)))), int64Args(part)...); err != nil {
			return err
		}
	}
	return nil
}

// mailErr gives a failed mail store operation context unless it is an
// *account.Error, whose message is meant for the client as it is.
func mailErr(op string, err error) error {
	var e *account.Error
	if err == nil || errors.As(err, &e) {
		return err
	}
	return fmt.Errorf("mail store: %s: %w", op, err)
}
