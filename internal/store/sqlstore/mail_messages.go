package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/mailstore"
	"github.com/postern/postern/internal/msgindex"
)

// Append stores a message in mailboxID and returns its UID. A zero date
// means now.
func (s *Mail) Append(ctx context.Context, mailboxID int64, flags []string, date time.Time, body []byte) (uint32, error) {
	if err := checkSize(body); err != nil {
		return 0, err
	}
	flags, err := cleanFlags(flags)
	if err != nil {
		return 0, err
	}
	if date.IsZero() {
		date = time.Now()
	}
	db := s.db
	if db.Dialect == Postgres {
		uid, done, err := db.appendPG(ctx, mailboxID, flags, date, body)
		if done || err != nil {
			return uid, mailErr("append", err)
		}
	}
	var uid uint32
	err = db.tx(ctx, func(tx *sql.Tx) error {
		uid, err = db.appendTx(ctx, tx, mailboxID, flags, date, body)
		return err
	})
	return uid, mailErr("append", err)
}

// errOverQuota is AppendIf's refusal of a message over quota.
var errOverQuota = &account.Error{Code: account.ELIMIT, Message: "Over quota.", Err: mailstore.ErrOverQuota}

// AppendIf implements mailstore.Store: on PostgreSQL one statement,
// appendIfPG, whose checks are part of the write; on SQLite the checks and
// the append in one transaction, which holds the write lock.
func (s *Mail) AppendIf(ctx context.Context, memberID, mailboxID int64, name string, quotaDefault int64, flags []string, date time.Time, body []byte) (uint32, error) {
	if err := checkSize(body); err != nil {
		return 0, err
	}
	flags, err := cleanFlags(flags)
	if err != nil {
		return 0, err
	}
	key, err := cleanMailboxName(name)
	if err != nil {
		return 0, account.ErrNotFound
	}
	if date.IsZero() {
		date = time.Now()
	}
	db := s.db
	if db.Dialect == Postgres {
		uid, done, err := db.appendIfPG(ctx, memberID, mailboxID, key, quotaDefault, flags, date, body)
		if done || err != nil {
			return uid, mailErr("append", err)
		}
		// Nothing written: the checks below say why (or, when they pass,
		// the mailbox's UIDs ran out, which appendTx reports).
	}
	var uid uint32
	err = db.tx(ctx, func(tx *sql.Tx) error {
		mb, found, q, err := scanAppendTarget(tx.QueryRowContext(ctx, db.q(appendTargetQuery), key, memberID), memberID)
		if err != nil {
			return err
		}
		if !found || mb.ID != mailboxID {
			return account.ErrNotFound
		}
		if !q.Fits(int64(len(body)), quotaDefault) {
			return errOverQuota
		}
		uid, err = db.appendTx(ctx, tx, mailboxID, flags, date, body)
		return err
	})
	return uid, mailErr("append", err)
}

// AppendMany stores every message in mailboxID in one transaction: a
// refused one (too big, a bad flag) leaves none behind.
func (s *Mail) AppendMany(ctx context.Context, mailboxID int64, msgs []mailstore.NewMessage) ([]uint32, error) {
	clean := make([]mailstore.NewMessage, len(msgs))
	now := time.Now()
	for i, m := range msgs {
		if err := checkSize(m.Body); err != nil {
			return nil, err
		}
		flags, err := cleanFlags(m.Flags)
		if err != nil {
			return nil, err
		}
		if m.Date.IsZero() {
			m.Date = now
		}
		clean[i] = mailstore.NewMessage{Flags: flags, Date: m.Date, Body: m.Body}
	}
	db := s.db
	uids := make([]uint32, len(clean))
	err := db.tx(ctx, func(tx *sql.Tx) error {
		for i, m := range clean {
			uid, err := db.appendTx(ctx, tx, mailboxID, m.Flags, m.Date, m.Body)
			if err != nil {
				return err
			}
			uids[i] = uid
		}
		return nil
	})
	if err != nil {
		return nil, mailErr("append", err)
	}
	return uids, nil
}

// appendTx stores a message in a mailbox and writes the event. The body is
// inserted before the mailbox is locked: its foreign key takes a share lock
// on the member's row, and account transactions lock that row (FOR UPDATE)
// before they deliver a notification to INBOX, so a mailbox lock taken first
// could deadlock with them.
func (db *DB) appendTx(ctx context.Context, tx *sql.Tx, mailboxID int64, flags []string, date time.Time, body []byte) (uint32, error) {
	var bodyID int64
	err := tx.QueryRowContext(ctx, db.q(`INSERT INTO mail_bodies (member_id, body) SELECT member_id, ? FROM mailboxes WHERE id = ? RETURNING id`), body, mailboxID).Scan(&bodyID)
	if notFound(err) {
		return 0, account.ErrNotFound
	}
	if err != nil {
		return 0, err
	}
	if err := db.insertIndex(ctx, tx, bodyID, msgindex.Build(body)); err != nil {
		return 0, err
	}
	locked, err := db.lockMailboxes(ctx, tx, mailboxID)
	if err != nil {
		return 0, err
	}
	mb := locked[mailboxID]
	uid, err := db.allocUIDs(ctx, tx, mb, 1)
	if err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO mail_messages (mailbox_id, uid, flags, internal_date, size, body_id, modseq) VALUES (?, ?, ?, ?, ?, ?, ?)`),
		mb.id, int64(uid), joinFlags(flags), micros(date), int64(len(body)), bodyID, mb.modseq); err != nil {
		return 0, err
	}
	if err := db.addUsage(ctx, tx, mb.memberID, int64(len(body))); err != nil {
		return 0, err
	}
	return uid, db.mailboxChanged(ctx, tx, mb.memberID, mb.id)
}

// Deliver appends body to the member's INBOX with the current time.
func (s *Mail) Deliver(ctx context.Context, memberID int64, body []byte) error {
	if err := checkSize(body); err != nil {
		return err
	}
	db := s.db
	return mailErr("deliver", db.tx(ctx, func(tx *sql.Tx) error { return db.deliverTx(ctx, tx, memberID, body) }))
}

// DeliverAll appends every delivery in one transaction.
func (s *Mail) DeliverAll(ctx context.Context, ds []mailstore.Delivery) error {
	for _, d := range ds {
		if err := checkLen(len(d.Header) + len(d.Body)); err != nil {
			return err
		}
	}
	db := s.db
	return mailErr("deliver", db.tx(ctx, func(tx *sql.Tx) error { return db.deliverAllTx(ctx, tx, ds) }))
}

// deliverAllTx stores every delivery inside tx, member by member in ID
// order: each member's mailbox and usage rows are locked together, so two
// deliveries to the same members lock them in the same order and cannot
// deadlock (see Locking).
func (db *DB) deliverAllTx(ctx context.Context, tx *sql.Tx, ds []mailstore.Delivery) error {
	ds = slices.Clone(ds)
	slices.SortStableFunc(ds, func(a, b mailstore.Delivery) int { return cmp.Compare(a.MemberID, b.MemberID) })
	for _, d := range ds {
		// One copy's bytes at a time: a message to many members never
		// holds them all in memory.
		body := append(d.Header[:len(d.Header):len(d.Header)], d.Body...)
		deliver := db.deliverTx
		if d.Junk {
			deliver = db.deliverJunkTx
		}
		if err := deliver(ctx, tx, d.MemberID, body); err != nil {
			return err
		}
	}
	return nil
}

// deliverJunkTx appends body to the member's \Junk mailbox inside tx. A
// member who deleted it gets a new one named "Junk" (or the mailbox already
// named so, when it lost its special use): a filter's verdict must not put
// spam in INBOX because a folder is missing.
func (db *DB) deliverJunkTx(ctx context.Context, tx *sql.Tx, memberID int64, body []byte) error {
	if err := db.ensureAccountTx(ctx, tx, memberID); err != nil {
		return err
	}
	var id int64
	err := tx.QueryRowContext(ctx, db.q(`SELECT id FROM mailboxes WHERE member_id = ? AND (special_use = ? OR name_key = ?) ORDER BY special_use DESC, id LIMIT 1`),
		memberID, mailstore.Junk, "Junk").Scan(&id)
	if notFound(err) {
		var mb mailstore.Mailbox
		mb, err = db.insertMailbox(ctx, tx, memberID, "Junk", mailstore.Junk, true)
		id = mb.ID
	}
	if err != nil {
		return err
	}
	_, err = db.appendTx(ctx, tx, id, nil, time.Now(), body)
	return err
}

// quotaQuery reads a member's usage counter and the limits set for the
// member and the domain: three rows by primary key.
const quotaQuery = `SELECT COALESCE(u.bytes, 0), m.mail_quota, d.mail_quota
	FROM members m JOIN domains d ON d.id = m.domain_id LEFT JOIN mail_usage u ON u.member_id = m.id
	WHERE m.id = ?`

// Quota implements mailstore.Store.
func (s *Mail) Quota(ctx context.Context, memberID int64) (mailstore.Quota, error) {
	stmt, err := s.db.prepared(ctx, s.db.q(quotaQuery)) // every RCPT and APPEND
	if err != nil {
		return mailstore.Quota{}, mailErr("quota", err)
	}
	var q mailstore.Quota
	var member, domain sql.NullInt64
	err = stmt.QueryRowContext(ctx, memberID).Scan(&q.Used, &member, &domain)
	if notFound(err) {
		return mailstore.Quota{}, account.ErrNotFound
	}
	if err != nil {
		return mailstore.Quota{}, mailErr("quota", err)
	}
	q.Member, q.Domain = nullInt(member), nullInt(domain)
	return q, nil
}

// appendTargetQuery is quotaQuery with the mailbox an APPEND names ($1, its
// name key), when the member has one: one round trip where Quota and
// Mailbox take two.
const appendTargetQuery = `SELECT COALESCE(u.bytes, 0), m.mail_quota, d.mail_quota,
		b.id, b.name, b.special_use, b.uid_validity, b.uid_next, b.subscribed, b.highest_modseq, COALESCE(r.recent_uid, 1)
	FROM members m JOIN domains d ON d.id = m.domain_id LEFT JOIN mail_usage u ON u.member_id = m.id
		LEFT JOIN mailboxes b ON b.member_id = m.id AND b.name_key = ? LEFT JOIN mailbox_recent r ON r.mailbox_id = b.id
	WHERE m.id = ?`

// AppendTarget implements mailstore.Store. Unlike Mailbox it neither
// creates the default mailboxes nor waits for the mailbox's changes to be
// durable (shown): it reports no UID or mod-sequence of them.
func (s *Mail) AppendTarget(ctx context.Context, memberID int64, name string) (mailstore.Mailbox, bool, mailstore.Quota, error) {
	key, err := cleanMailboxName(name)
	if err != nil {
		key = "" // no mailbox has it: found is false, and Mailbox says why
	}
	stmt, err := s.db.prepared(ctx, s.db.q(appendTargetQuery)) // every APPEND
	if err != nil {
		return mailstore.Mailbox{}, false, mailstore.Quota{}, mailErr("append target", err)
	}
	mb, found, q, err := scanAppendTarget(stmt.QueryRowContext(ctx, key, memberID), memberID)
	if err != nil && !errors.Is(err, account.ErrNotFound) {
		err = mailErr("append target", err)
	}
	return mb, found, q, err
}

// scanAppendTarget reads appendTargetQuery's row: the member's quota and,
// found, the mailbox. account.ErrNotFound when the member does not exist.
func scanAppendTarget(row *sql.Row, memberID int64) (mailstore.Mailbox, bool, mailstore.Quota, error) {
	var q mailstore.Quota
	var member, domain sql.NullInt64
	var id, validity, next, highest, recent sql.NullInt64
	var mbName, specialUse sql.NullString
	var subscribed sql.NullBool
	err := row.Scan(&q.Used, &member, &domain, &id, &mbName, &specialUse, &validity, &next, &subscribed, &highest, &recent)
	if notFound(err) {
		return mailstore.Mailbox{}, false, mailstore.Quota{}, account.ErrNotFound
	}
	if err != nil {
		return mailstore.Mailbox{}, false, mailstore.Quota{}, err
	}
	q.Member, q.Domain = nullInt(member), nullInt(domain)
	if !id.Valid {
		return mailstore.Mailbox{}, false, q, nil
	}
	mb := mailstore.Mailbox{ID: id.Int64, MemberID: memberID, Name: mbName.String, SpecialUse: specialUse.String,
		UIDValidity: uint32(validity.Int64), UIDNext: uint32(next.Int64), Subscribed: subscribed.Bool,
		HighestModSeq: uint64(highest.Int64), RecentUID: uint32(recent.Int64)}
	return mb, true, q, nil
}

func nullInt(n sql.NullInt64) *int64 {
	if !n.Valid {
		return nil
	}
	return &n.Int64
}

// addUsageQuery moves a member's usage counter. The row is made on the
// member's first message; later ones update it, which locks that row alone
// (no foreign key is checked on an update that keeps the key).
const addUsageQuery = `INSERT INTO mail_usage (member_id, bytes) VALUES (?, ?)
	ON CONFLICT (member_id) DO UPDATE SET bytes = mail_usage.bytes + excluded.bytes`

// addUsage adds delta octets to the member's usage inside tx: every
// transaction that adds or removes messages calls it, so the counter is
// exactly the sum of the member's message sizes once it commits.
func (db *DB) addUsage(ctx context.Context, tx *sql.Tx, memberID, delta int64) error {
	if delta == 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, db.q(addUsageQuery), memberID, delta)
	return err
}

// deliverTx appends body to the member's INBOX inside tx, creating the
// default mailboxes when needed: writeEffects delivers notifications this way,
// in the transaction of the change they report.
func (db *DB) deliverTx(ctx context.Context, tx *sql.Tx, memberID int64, body []byte) error {
	if err := checkSize(body); err != nil {
		return err
	}
	if db.Dialect == Postgres {
		if done, err := db.deliverInboxPG(ctx, tx, memberID, body); done || err != nil {
			return err
		}
	}
	if err := db.ensureAccountTx(ctx, tx, memberID); err != nil {
		return err
	}
	var id int64
	err := tx.QueryRowContext(ctx, db.q(`SELECT id FROM mailboxes WHERE member_id = ? AND name_key = ?`), memberID, inbox).Scan(&id)
	if notFound(err) {
		return account.ErrNotFound
	}
	if err != nil {
		return err
	}
	_, err = db.appendTx(ctx, tx, id, nil, time.Now(), body)
	return err
}

// appendQueryPG returns appendTx as one statement: on PostgreSQL every
// statement is a round trip, and an APPEND or a delivery is otherwise
// seven of them. target defines the CTEs mem and mb with the parameters
// $1..$n: mem locks the member's row (KEY SHARE, as the body's foreign key
// takes it), then mb updates the mailbox row, which locks it, taking the
// next UID and the next mod-sequence, and returns the mailbox's id and
// member_id, the uid and the modseq: appendTx's lock order. The other
// parameters follow: the body, the flags, the internal date, the size,
// the event's kind and time, the index columns after body_id, then the
// bulk index columns after body_id. The
// statement returns the uid, the member and the modseq, or no row when mb updated none
// (no such mailbox, or its UIDs ran out), and then has written nothing.
func appendQueryPG(target string, n int) string {
	p := func(i int, typ string) string { return "$" + strconv.Itoa(n+i) + "::" + typ }
	body, flags, date, size, kind, now := p(1, "bytea"), p(2, "text"), p(3, "bigint"), p(4, "bigint"), p(5, "text"), p(6, "bigint")
	return `WITH ` + target + `, b AS (
	INSERT INTO mail_bodies (member_id, body) SELECT mb.member_id, ` + body + ` FROM mb RETURNING id
), m AS (
	INSERT INTO mail_messages (mailbox_id, uid, flags, internal_date, size, body_id, modseq)
	SELECT mb.id, mb.uid, ` + flags + `, ` + date + `, ` + size + `, b.id, mb.modseq FROM mb, b
), e AS (
	INSERT INTO events (kind, member_id, mailbox_id, created_at) SELECT ` + kind + `, mb.member_id, mb.id, ` + now + ` FROM mb
), u AS (
	INSERT INTO mail_usage (member_id, bytes) SELECT mb.member_id, ` + size + ` FROM mb
	ON CONFLICT (member_id) DO UPDATE SET bytes = mail_usage.bytes + excluded.bytes
), x AS (
	INSERT INTO mail_index (` + indexCols + `) SELECT b.id, ` + valuesPG(indexTypesPG, n+7) + ` FROM b
), y AS (
	INSERT INTO mail_index_bulk (` + bulkCols + `) SELECT b.id, ` + valuesPG(bulkTypesPG, n+7+len(strings.Fields(indexTypesPG))) + ` FROM b
)
SELECT uid, member_id, modseq FROM mb`
}

// takeUIDPG is the UPDATE of mb in appendQueryPG's targets, FROM mem.
const takeUIDPG = `UPDATE mailboxes SET uid_next = mailboxes.uid_next + 1, highest_modseq = mailboxes.highest_modseq + 1 FROM mem
	WHERE mailboxes.member_id = mem.id AND mailboxes.uid_next < 4294967295 AND `

const takeUIDReturningPG = ` RETURNING mailboxes.id, mailboxes.member_id, mailboxes.uid_next - 1 AS uid, mailboxes.highest_modseq AS modseq`

var (
	// appendQueryPG into a mailbox by id ($1).
	appendByIDPG = appendQueryPG(`mem AS (
	SELECT m.id FROM members m JOIN mailboxes x ON x.member_id = m.id WHERE x.id = $1 FOR KEY SHARE OF m
), mb AS (`+takeUIDPG+`mailboxes.id = $1`+takeUIDReturningPG+`)`, 1)
	// appendQueryPG into a mailbox by id ($1) while it is the member's ($4)
	// with the name key $2, and while the message (its size, $8) fits under
	// the member's quota, $3 being the limit when neither the member nor
	// the domain has one (0: none; as Quota.Fits).
	appendIfPG = appendQueryPG(`mem AS (
	SELECT m.id FROM members m JOIN domains d ON d.id = m.domain_id JOIN mailboxes x ON x.member_id = m.id
		LEFT JOIN mail_usage u ON u.member_id = m.id
	WHERE x.id = $1 AND x.name_key = $2 AND m.id = $4 AND (COALESCE(m.mail_quota, d.mail_quota, $3::bigint) = 0
		OR COALESCE(u.bytes, 0) + $8::bigint <= COALESCE(m.mail_quota, d.mail_quota, $3::bigint))
	FOR KEY SHARE OF m
), mb AS (`+takeUIDPG+`mailboxes.id = $1`+takeUIDReturningPG+`)`, 4)
	// appendQueryPG into the member's ($1) INBOX ($2).
	deliverInboxQueryPG = appendQueryPG(`mem AS (
	SELECT id FROM members WHERE id = $1 FOR KEY SHARE
), mb AS (`+takeUIDPG+`mailboxes.name_key = $2`+takeUIDReturningPG+`)`, 2)
)

// appendArgsPG are appendQueryPG's arguments after the target's.
func appendArgsPG(flags []string, date time.Time, body []byte) []any {
	args := []any{body, joinFlags(flags), micros(date), int64(len(body)), string(account.EventMailboxChanged), micros(time.Now())}
	x := msgindex.Build(body)
	args = append(args, indexArgs(0, x)[1:]...)
	return append(args, bulkArgs(0, x)[1:]...)
}

// deliverInboxPG delivers body to the member's INBOX with
// deliverInboxQueryPG. done is false when nothing was written: the member
// has no INBOX yet (or its UIDs ran out), which deliverTx's general path
// creates (or reports).
func (db *DB) deliverInboxPG(ctx context.Context, tx *sql.Tx, memberID int64, body []byte) (done bool, err error) {
	var uid, member, modseq int64
	args := append([]any{memberID, inbox}, appendArgsPG(nil, time.Now(), body)...)
	err = tx.QueryRowContext(ctx, deliverInboxQueryPG, args...).Scan(&uid, &member, &modseq)
	if notFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	db.noteMailChanged(tx, memberID)
	db.afterCommit(tx, db.notifyEvents)
	return true, nil
}

// appendPG is Append with appendByIDPG, outside a transaction: the one
// statement is atomic. done is false when nothing was written (no such
// mailbox, or its UIDs ran out), which appendTx then reports.
func (db *DB) appendPG(ctx context.Context, mailboxID int64, flags []string, date time.Time, body []byte) (uid uint32, done bool, err error) {
	return db.appendOnePG(ctx, mailboxID, appendByIDPG, append([]any{mailboxID}, appendArgsPG(flags, date, body)...))
}

// appendOnePG runs query, an appendQueryPG into mailboxID, with args, as
// appendPG says.
func (db *DB) appendOnePG(ctx context.Context, mailboxID int64, query string, args []any) (uid uint32, done bool, err error) {
	var u, memberID, modseq int64
	write, wrote := db.writeConn(mailboxID)
	err = write(ctx, query, args, &u, &memberID, &modseq)
	if notFound(err) {
		return 0, false, wrote(ctx, 0, nil)
	}
	if err == nil {
		db.MailChanged(memberID) // as noteMailChanged after a commit
		db.views.noteChanged(mailboxID)
		db.notifyEvents()
	}
	if err := wrote(ctx, modseq, err); err != nil {
		return 0, false, err
	}
	return uint32(u), true, nil
}

// appendIfPG is AppendIf with appendIfPG, as appendPG is Append. done is
// false when nothing was written: a check failed, or the UIDs ran out.
func (db *DB) appendIfPG(ctx context.Context, memberID, mailboxID int64, key string, quotaDefault int64, flags []string, date time.Time, body []byte) (uid uint32, done bool, err error) {
	return db.appendOnePG(ctx, mailboxID, appendIfPG, append([]any{mailboxID, key, quotaDefault, memberID}, appendArgsPG(flags, date, body)...))
}

// openQuery reads a mailbox and its messages in one statement: one read
// transaction, so the list matches the mailbox row, and one query for every
// POP3 login instead of four.
const openQuery = `SELECT b.id, b.member_id, b.name, b.special_use, b.uid_validity, b.uid_next, b.subscribed, b.highest_modseq, COALESCE(r.recent_uid, 1),
		m.id, m.uid, m.flags, m.internal_date, m.size, m.body_id, m.modseq
	FROM mailboxes b LEFT JOIN mailbox_recent r ON r.mailbox_id = b.id LEFT JOIN mail_messages m ON m.mailbox_id = b.id
	WHERE b.member_id = ? AND b.name_key = ? ORDER BY m.uid`

// stateQuery is openQuery by mailbox id: State's listing read whole, without
// the view cache (tests compare the two).
const stateQuery = `SELECT b.id, b.member_id, b.name, b.special_use, b.uid_validity, b.uid_next, b.subscribed, b.highest_modseq, COALESCE(r.recent_uid, 1),
		m.id, m.uid, m.flags, m.internal_date, m.size, m.body_id, m.modseq
	FROM mailboxes b LEFT JOIN mailbox_recent r ON r.mailbox_id = b.id LEFT JOIN mail_messages m ON m.mailbox_id = b.id
	WHERE b.id = ? ORDER BY m.uid`

// Open implements mailstore.Store.
func (s *Mail) Open(ctx context.Context, memberID int64, name string) (mailstore.Mailbox, []mailstore.MessageInfo, error) {
	key, err := cleanMailboxName(name)
	if err != nil {
		return mailstore.Mailbox{}, nil, account.ErrNotFound // no such name can exist
	}
	read := func() (mailstore.Mailbox, []mailstore.MessageInfo, error) {
		mb, msgs, err := s.db.open(ctx, memberID, key)
		if errors.Is(err, account.ErrNotFound) {
			// Perhaps a member who never had mail: create the defaults and look again.
			if err := s.db.ensureAccount(ctx, memberID); err != nil {
				return mailstore.Mailbox{}, nil, mailErr("open", err)
			}
			mb, msgs, err = s.db.open(ctx, memberID, key)
		}
		if err == nil {
			err = s.db.shown(ctx, mb.ID, mb.HighestModSeq)
		}
		if err != nil && !errors.Is(err, account.ErrNotFound) {
			err = mailErr("open", err)
		}
		return mb, msgs, err
	}
	if c := s.db.inboxes.Load(); c != nil && key == inbox {
		return s.db.openInbox(c, memberID, read)
	}
	return read()
}

func (db *DB) open(ctx context.Context, memberID int64, key string) (mailstore.Mailbox, []mailstore.MessageInfo, error) {
	return db.openWith(ctx, openQuery, memberID, key)
}

// State implements mailstore.Store.
func (s *Mail) State(ctx context.Context, mailboxID int64) (mailstore.Mailbox, mailstore.Listing, error) {
	var mb mailstore.Mailbox
	var msgs mailstore.Listing
	var err error
	if s.db.Dialect == Postgres {
		mb, msgs, err = s.db.sharedState(ctx, mailboxID)
	} else {
		mb, msgs, err = s.db.state(ctx, mailboxID)
	}
	if err != nil && !errors.Is(err, account.ErrNotFound) {
		err = mailErr("state", err)
	}
	return mb, msgs, err
}

// Heard implements mailstore.Store: how many times this process has read
// the events.
func (s *Mail) Heard() uint64 { return s.db.heard.Load() }

// StateHeard implements mailstore.Store: the cached view, when it was read
// after the events of heard were (DB.state labels each view with the count
// of event reads before it), holds their changes, and is returned without
// a read.
func (s *Mail) StateHeard(ctx context.Context, mailboxID int64, heard, atLeast uint64) (mailstore.Mailbox, mailstore.Listing, error) {
	if mb, list, ok := s.db.heardState(mailboxID, heard, atLeast); ok {
		return mb, list, nil
	}
	return s.State(ctx, mailboxID)
}

// openWith runs openQuery or stateQuery.
func (db *DB) openWith(ctx context.Context, query string, args ...any) (mailstore.Mailbox, []mailstore.MessageInfo, error) {
	rows, err := db.queryEachPlan(ctx, db.SQL, db.q(query), args...)
	if err != nil {
		return mailstore.Mailbox{}, nil, err
	}
	defer rows.Close()
	var mb mailstore.Mailbox
	var msgs []mailstore.MessageInfo
	found := false
	// The mailbox's own columns repeat on every row: read as raw bytes,
	// they are made strings once; flags are shared between equal sets.
	sets := flagSets{}
	var name, specialUse, flags sql.RawBytes
	for rows.Next() {
		var validity, next, highest, recent int64
		var id, uid, date, size, bodyID, modseq sql.NullInt64
		if err := rows.Scan(&mb.ID, &mb.MemberID, &name, &specialUse, &validity, &next, &mb.Subscribed, &highest, &recent,
			&id, &uid, &flags, &date, &size, &bodyID, &modseq); err != nil {
			return mailstore.Mailbox{}, nil, err
		}
		if !found {
			mb.Name, mb.SpecialUse = string(name), string(specialUse)
		}
		mb.UIDValidity, mb.UIDNext, mb.HighestModSeq, mb.RecentUID, found = uint32(validity), uint32(next), uint64(highest), uint32(recent), true
		if id.Valid {
			r := msgRow{id: id.Int64, bodyID: bodyID.Int64, uid: uint32(uid.Int64), flags: sets.split(flags), date: date.Int64, size: size.Int64, modseq: modseq.Int64}
			msgs = append(msgs, r.info(mb.ID))
		}
	}
	if err := rows.Err(); err != nil {
		return mailstore.Mailbox{}, nil, err
	}
	if !found {
		return mailstore.Mailbox{}, nil, account.ErrNotFound
	}
	return mb, msgs, nil
}

// Messages lists a mailbox's messages in UID order.
func (s *Mail) Messages(ctx context.Context, mailboxID int64) ([]mailstore.MessageInfo, error) {
	db := s.db
	rows, err := db.selectMsgs(ctx, db.SQL, mailboxID, nil)
	if err != nil {
		return nil, mailErr("messages", err)
	}
	if len(rows) == 0 {
		var one int
		err := db.SQL.QueryRowContext(ctx, db.q(`SELECT 1 FROM mailboxes WHERE id = ?`), mailboxID).Scan(&one)
		if notFound(err) {
			return nil, account.ErrNotFound
		}
		if err != nil {
			return nil, mailErr("messages", err)
		}
	}
	out := make([]mailstore.MessageInfo, len(rows))
	var highest int64
	for i, r := range rows {
		out[i] = r.info(mailboxID)
		highest = max(highest, r.modseq)
	}
	if err := db.shown(ctx, mailboxID, uint64(highest)); err != nil {
		return nil, mailErr("messages", err)
	}
	return out, nil
}

// ClaimRecent implements mailstore.Store. A plain read first: most calls
// (every session that sees new mail after another claimed it) find nothing
// to claim and write nothing. The claim is then one statement that moves
// the mailbox's row of mailbox_recent from the value read to UIDNEXT, and
// does nothing when another session moved it first (the read is then taken
// again). It takes no lock on the mailbox row: UIDNEXT is read as the last
// committed change left it, and every UID below it is committed (UIDs are
// handed out under the row's lock, each with its message), so an append
// still in progress is left to a later claim and the claim never waits for
// one. It moves the member's mail counter as any change does, so that the
// INBOX cache (which keeps RecentUID) stays exact.
func (s *Mail) ClaimRecent(ctx context.Context, mb mailstore.Mailbox) (first, next uint32, err error) {
	db := s.db
	mailboxID := mb.ID
	read, err := db.prepared(ctx, db.q(`SELECT COALESCE(r.recent_uid, 1), b.uid_next, b.member_id
		FROM mailboxes b LEFT JOIN mailbox_recent r ON r.mailbox_id = b.id WHERE b.id = ?`))
	if err != nil {
		return 0, 0, mailErr("claim recent", err)
	}
	// A claim lost in a crash leaves messages that another session may
	// show as \Recent again (RFC 3501 §2.3.2 asks no more): it is
	// written through db.async, which on PostgreSQL does not wait for
	// the WAL flush.
	claim := db.q(`INSERT INTO mailbox_recent (mailbox_id, recent_uid) SELECT id, uid_next FROM mailboxes WHERE id = ? AND uid_next > ?
		ON CONFLICT (mailbox_id) DO UPDATE SET recent_uid = excluded.recent_uid WHERE mailbox_recent.recent_uid = ?
		RETURNING recent_uid`)
	// The caller's mailbox, just read, tells where the claim starts: the
	// claim is tried from there first, or from where this process's
	// sessions have claimed since (the view, see claimLocks), and only
	// when another session claimed meanwhile (it then writes nothing) is
	// the horizon read.
	unlock, err := db.claims.lock(ctx, mailboxID)
	if err != nil {
		return 0, 0, mailErr("claim recent", err)
	}
	defer unlock()
	if claimed := db.views.recentUID(mb); claimed != 0 && claimed >= mb.UIDNext {
		return claimed, claimed, nil // nothing the caller knows is left
	} else if claimed > mb.RecentUID {
		mb.RecentUID = claimed
	}
	recent, memberID := int64(mb.RecentUID), mb.MemberID
	for {
		if recent == 0 || memberID == 0 {
			var uidNext int64
			err = read.QueryRowContext(ctx, mailboxID).Scan(&recent, &uidNext, &memberID)
			if notFound(err) {
				return 0, 0, account.ErrNotFound
			}
			if err != nil || recent >= uidNext {
				if err == nil {
					db.views.claimed(mailboxID, uint32(recent))
				}
				return uint32(uidNext), uint32(uidNext), mailErr("claim recent", err)
			}
		}
		var uidNext int64
		db.MailChanged(memberID)
		err = db.writing(ctx, func() error {
			return db.async.QueryRowContext(ctx, claim, mailboxID, recent, recent).Scan(&uidNext)
		})
		db.MailChanged(memberID)
		if notFound(err) {
			recent = 0 // claimed by another session meanwhile, or the mailbox is gone
			continue
		}
		if err != nil {
			return 0, 0, mailErr("claim recent", err)
		}
		db.lazy.dirty.Store(true) // a claim on SQLite commits without the fsync
		db.views.claimed(mailboxID, uint32(uidNext))
		return uint32(recent), uint32(uidNext), nil
	}
}

// Body returns the raw message; it reads that one body only.
func (s *Mail) Body(ctx context.Context, messageID int64) ([]byte, error) {
	db := s.db
	var body []byte
	err := db.SQL.QueryRowContext(ctx, db.q(`SELECT b.body FROM mail_messages m JOIN mail_bodies b ON b.id = m.body_id WHERE m.id = ?`), messageID).Scan(&body)
	if notFound(err) {
		return nil, account.ErrNotFound
	}
	if body == nil && err == nil {
		body = []byte{}
	}
	return body, mailErr("body", err)
}

// StoreFlags changes the flags of the given UIDs and returns the new state of
// those that exist, in UID order.
func (s *Mail) StoreFlags(ctx context.Context, mailboxID int64, uids []uint32, op mailstore.FlagOp, flags []string) ([]mailstore.MessageInfo, error) {
	out, _, err := s.StoreFlagsIf(ctx, mailboxID, uids, op, flags, 0)
	return out, err
}

// StoreFlagsIf is StoreFlags of the messages whose MODSEQ is at most
// unchangedSince (when it is not 0: STORE (UNCHANGEDSINCE n), RFC 7162
// §3.1.3), tested and changed under the mailbox lock; the others are left
// as they are and returned as modified, in UID order.
func (s *Mail) StoreFlagsIf(ctx context.Context, mailboxID int64, uids []uint32, op mailstore.FlagOp, flags []string, unchangedSince uint64) (infos []mailstore.MessageInfo, modified []uint32, err error) {
	if op != mailstore.FlagsSet && op != mailstore.FlagsAdd && op != mailstore.FlagsRemove {
		return nil, nil, account.Errorf(account.EINVALID, "Unknown flag operation.")
	}
	flags, err = cleanFlags(flags)
	if err != nil {
		return nil, nil, err
	}
	if uids == nil {
		uids = []uint32{}
	}
	db := s.db
	if db.Dialect == Postgres {
		// On the cached view first, when there is one: no read at all.
		infos, modified, done, err := db.storeFlagsFromViewPG(ctx, mailboxID, uids, op, flags, unchangedSince)
		if err != nil {
			return nil, nil, mailErr("store flags", err)
		}
		if done {
			return infos, modified, nil
		}
		// Optimistically then: a STORE that changes nothing takes no
		// lock, and one that does holds the mailbox row for one
		// statement and its commit instead of a transaction of four
		// round trips. After a few conflicts, the locked path below.
		for range optimisticTries {
			infos, modified, done, err := db.storeFlagsOptimisticPG(ctx, mailboxID, uids, op, flags, unchangedSince)
			if err != nil {
				return nil, nil, mailErr("store flags", err)
			}
			if done {
				return infos, modified, nil
			}
		}
	}
	var out []mailstore.MessageInfo
	err = db.txLazy(ctx, func(tx *sql.Tx) error {
		mb, rows, err := db.lockedMsgs(ctx, tx, mailboxID, uids)
		if err != nil {
			return err
		}
		var p storePlan
		if db.Dialect == Postgres {
			p = planStore(rows, mailboxID, op, flags, unchangedSince, mb.takeModSeq())
		} else {
			p = planStore(rows, mailboxID, op, flags, unchangedSince, 0)
			if len(p.order) > 0 {
				modseq, err := db.nextModSeq(ctx, tx, mb)
				if err != nil {
					return err
				}
				p.setModSeq(modseq)
			}
		}
		out, modified = p.out, p.modified
		if len(p.order) == 0 {
			return nil
		}
		if db.Dialect == Postgres {
			return db.storeFlagsPG(ctx, tx, mb, p.byFlags)
		}
		for _, joined := range p.order {
			ids := p.byFlags[joined]
			for len(ids) > 0 {
				part := ids[:min(chunk, len(ids))]
				ids = ids[len(part):]
				args := append([]any{joined, mb.modseq}, int64Args(part)...)
				if _, err := tx.ExecContext(ctx, db.q(`UPDATE mail_messages SET flags = ?, modseq = ? WHERE id IN (`+placeholders(len(part))+`)`), args...); err != nil {
					return err
				}
			}
		}
		return db.mailboxChanged(ctx, tx, mb.memberID, mailboxID)
	})
	if err != nil {
		return nil, nil, mailErr("store flags", err)
	}
	return out, modified, nil
}

// optimisticTries bounds the optimistic attempts of a change on
// PostgreSQL before it takes the mailbox lock and waits.
var optimisticTries = 3

// storePlan is what a STORE does to the messages read: their state after
// it (out), those left as they were for UNCHANGEDSINCE (modified), and the
// ids to write, by their new set of flags (in order of first use).
type storePlan struct {
	out      []mailstore.MessageInfo
	modified []uint32
	byFlags  map[string][]int64
	order    []string
	changed  []int // indexes in out of the messages written
	// The messages written, one by one: id, new flags, MODSEQ read.
	ids, olds []int64
	sets      []string
}

// planStore applies a STORE to rows in memory: one UPDATE per resulting
// set of flags, not per message, since a STORE on many messages leaves
// them with few distinct sets. The messages written take modseq (which
// setModSeq may give later).
func planStore(rows []msgRow, mailboxID int64, op mailstore.FlagOp, flags []string, unchangedSince uint64, modseq int64) storePlan {
	p := storePlan{byFlags: map[string][]int64{}}
	for _, r := range rows {
		if unchangedSince != 0 && uint64(r.modseq) > unchangedSince {
			p.modified = append(p.modified, r.uid)
			continue
		}
		next := applyFlags(r.flags, op, flags)
		if joined := joinFlags(next); joined != joinFlags(r.flags) {
			if p.byFlags[joined] == nil {
				p.order = append(p.order, joined)
			}
			p.byFlags[joined] = append(p.byFlags[joined], r.id)
			p.ids, p.olds, p.sets = append(p.ids, r.id), append(p.olds, r.modseq), append(p.sets, joined)
			r.modseq = modseq
			p.changed = append(p.changed, len(p.out))
		}
		r.flags = next
		p.out = append(p.out, r.info(mailboxID))
	}
	return p
}

// setModSeq gives the messages written their mod-sequence.
func (p *storePlan) setModSeq(modseq int64) {
	for _, i := range p.changed {
		p.out[i].ModSeq = uint64(modseq)
	}
}

// storeFlagsIfQueryPG is storeFlagsQueryPG as a compare-and-set, written
// in a group write (groupwrite.go), after the mailbox row's lock and so
// on a snapshot that holds every change before it: it finds the messages
// to write ($2) that still have the MODSEQ they were read at ($4), and
// leaves out one changed or expunged since. Only when all of them are
// there does it take the next mod-sequence and write their flags ($3) and
// the event; it returns that mod-sequence, or no row. A change to other
// messages of the mailbox (an APPEND, a STORE elsewhere) is no conflict.
// Messages the STORE leaves as they are (no change needed as of the read)
// are not tested: a change made to them since is ordered after this STORE
// on those messages, and each message's own history stays in MODSEQ order,
// which is what CONDSTORE's CHANGEDSINCE and UNCHANGEDSINCE rely on.
// The messages are looked up by id alone, fenced (LATERAL ... LIMIT 1),
// as the re-read's are (stateChangesQueryPG): the statement's generic plan
// is made once per connection, and one made while the statistics knew a
// message or two per mailbox walked the mailbox for every message named.
const storeFlagsIfQueryPG = `WITH k AS MATERIALIZED (
	SELECT m.id FROM unnest($2::bigint[], $4::bigint[]) AS v(id, old)
	CROSS JOIN LATERAL (SELECT id, mailbox_id, modseq FROM mail_messages WHERE id = v.id LIMIT 1) m
	WHERE m.mailbox_id = $1 AND m.modseq = v.old
), mb AS (
	UPDATE mailboxes SET highest_modseq = highest_modseq + 1
	WHERE id = $1 AND (SELECT COUNT(*) FROM k) = cardinality($2::bigint[]) RETURNING highest_modseq, member_id
), e AS (
	INSERT INTO events (kind, member_id, mailbox_id, created_at) SELECT $5, member_id, $1, $6 FROM mb
), w AS (
	UPDATE mail_messages m SET flags = v.flags, modseq = mb.highest_modseq FROM mb, unnest($2::bigint[], $3::text[]) AS v(id, flags) WHERE m.id = v.id
)
SELECT highest_modseq FROM mb`

// storeFlagsFromViewPG is StoreFlagsIf planned on the mailbox's cached
// view and written by storeFlagsIfQueryPG with the view's mod-sequences of
// the messages: one statement, no read of the messages. When nothing else
// changed the mailbox since the view, the view brought up to date with the
// STORE replaces it, so a session's STOREs one after another all take this
// path. done is false (nothing written) when there is no view, when a UID
// is past the view's (a message it does not know), when the view says
// there is nothing to write (only a read tells that the view is current),
// when the messages to write changed since the view, and for UNCHANGEDSINCE,
// whose test covers messages the STORE leaves as they are, as a read has
// them.
func (db *DB) storeFlagsFromViewPG(ctx context.Context, mailboxID int64, uids []uint32, op mailstore.FlagOp, flags []string, unchangedSince uint64) (infos []mailstore.MessageInfo, modified []uint32, done bool, err error) {
	v := db.views.get(mailboxID)
	if v == nil || v.highest() >= math.MaxInt64 || unchangedSince != 0 {
		return nil, nil, false, nil
	}
	for _, u := range uids {
		if u >= v.mb.UIDNext {
			return nil, nil, false, nil // a message the view does not know
		}
	}
	p := planStore(v.rows(uids), mailboxID, op, flags, unchangedSince, 0)
	if len(p.order) == 0 {
		return nil, nil, false, nil
	}
	modseq, wrote, err := db.writeStorePG(ctx, mailboxID, v.mb.MemberID, storeFlagsIfQueryPG, mailboxID, p.ids, p.sets, p.olds,
		string(account.EventMailboxChanged), micros(time.Now()))
	if !wrote || err != nil {
		return nil, nil, false, err
	}
	p.setModSeq(modseq)
	db.views.stores.Add(1)
	if uint64(modseq) == v.highest()+1 {
		// Nothing else changed the mailbox since the view.
		db.views.put(v.with(p.out, uint64(modseq)))
	}
	return p.out, p.modified, true, nil
}

// snapshotMsgsQueryPG is lockedMsgsQueryPG without the lock: the mailbox
// row and its messages from one snapshot.
const snapshotMsgsQueryPG = `SELECT 0, member_id, uid_validity, uid_next, highest_modseq, highest_modseq, NULL::bigint, NULL::text FROM mailboxes WHERE id = $1
UNION ALL SELECT 1, id, uid, internal_date, size, body_id, modseq, flags FROM mail_messages WHERE mailbox_id = $1`

// storeFlagsOptimisticPG is one optimistic attempt of StoreFlagsIf: the
// messages read without a lock, the STORE planned on them, and written by
// storeFlagsIfQueryPG. done is false when another change to those
// messages came between the read and the write (nothing was written).
func (db *DB) storeFlagsOptimisticPG(ctx context.Context, mailboxID int64, uids []uint32, op mailstore.FlagOp, flags []string, unchangedSince uint64) (infos []mailstore.MessageInfo, modified []uint32, done bool, err error) {
	mb, rows, err := db.msgsPG(ctx, db.SQL, snapshotMsgsQueryPG, mailboxID, uids)
	if err != nil {
		return nil, nil, false, err
	}
	p := planStore(rows, mailboxID, op, flags, unchangedSince, 0)
	if len(p.order) == 0 {
		return p.out, p.modified, true, nil
	}
	modseq, wrote, err := db.writeStorePG(ctx, mailboxID, mb.memberID, storeFlagsIfQueryPG, mailboxID, p.ids, p.sets, p.olds,
		string(account.EventMailboxChanged), micros(time.Now()))
	if !wrote || err != nil {
		return nil, nil, false, err
	}
	p.setModSeq(modseq)
	return p.out, p.modified, true, nil
}

// writeStorePG runs a STORE's compare-and-set statement (query, returning
// the new mod-sequence or no row) through the mailbox's write connection,
// and waits for its flush. wrote is false, with no error, when the
// statement wrote nothing: the mailbox or its messages moved on since
// they were read.
func (db *DB) writeStorePG(ctx context.Context, mailboxID, memberID int64, query string, args ...any) (modseq int64, wrote bool, err error) {
	db.MailChanged(memberID)
	write, flushed := db.writeConn(mailboxID)
	err = write(ctx, query, args, &modseq)
	db.MailChanged(memberID)
	if notFound(err) {
		return 0, false, flushed(ctx, 0, nil)
	}
	if err == nil {
		db.notifyEvents()
	}
	if err := flushed(ctx, modseq, err); err != nil {
		return 0, false, err
	}
	return modseq, true, nil
}

// storeFlagsQueryPG writes a STORE in one statement: the flags ($4) of the
// messages ($3), the mailbox's new HIGHESTMODSEQ ($2, which the messages
// take) and the event.
const storeFlagsQueryPG = `WITH mb AS (
	UPDATE mailboxes SET highest_modseq = $2 WHERE id = $1
), e AS (
	INSERT INTO events (kind, member_id, mailbox_id, created_at) VALUES ($5, $6, $1, $7)
)
UPDATE mail_messages m SET flags = v.flags, modseq = $2 FROM unnest($3::bigint[], $4::text[]) AS v(id, flags) WHERE m.id = v.id`

// storeFlagsPG is the end of StoreFlagsIf on PostgreSQL: byFlags's
// messages take their flags at mb's new mod-sequence (nextModSeq taken
// already, not yet written), in one round trip.
func (db *DB) storeFlagsPG(ctx context.Context, tx *sql.Tx, mb *lockedMailbox, byFlags map[string][]int64) error {
	var ids []int64
	var sets []string
	for joined, part := range byFlags {
		for _, id := range part {
			ids = append(ids, id)
			sets = append(sets, joined)
		}
	}
	if _, err := tx.ExecContext(ctx, storeFlagsQueryPG, mb.id, mb.modseq, ids, sets,
		string(account.EventMailboxChanged), mb.memberID, micros(time.Now())); err != nil {
		return err
	}
	db.noteMailChanged(tx, mb.memberID)
	db.afterCommit(tx, db.notifyEvents)
	return nil
}

// Vanished implements mailstore.Store: the UIDs expunged from the mailbox
// after mod-sequence since, from the tombstones (mail_vanished). complete
// is false when tombstones above since were pruned (maxTombstones).
func (s *Mail) Vanished(ctx context.Context, mailboxID int64, since uint64) (uids []uint32, complete bool, err error) {
	db := s.db
	var highest int64
	err = db.readTx(ctx, func(tx *sql.Tx) error {
		uids = uids[:0]
		var pruned int64
		err := tx.QueryRowContext(ctx, db.q(`SELECT pruned_modseq, highest_modseq FROM mailboxes WHERE id = ?`), mailboxID).Scan(&pruned, &highest)
		if notFound(err) {
			return account.ErrNotFound
		}
		if err != nil {
			return err
		}
		complete = since >= uint64(pruned)
		rows, err := tx.QueryContext(ctx, db.q(`SELECT uid FROM mail_vanished WHERE mailbox_id = ? AND modseq > ? ORDER BY uid`), mailboxID, int64(min(since, math.MaxInt64)))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var u int64
			if err := rows.Scan(&u); err != nil {
				return err
			}
			uids = append(uids, uint32(u))
		}
		return rows.Err()
	})
	if err == nil {
		err = db.shown(ctx, mailboxID, uint64(highest))
	}
	if err != nil {
		return nil, false, mailErr("vanished", err)
	}
	return uids, complete, nil
}

// Expunge removes the messages flagged \Deleted, only among uids when uids
// is not nil (UID EXPUNGE, RFC 4315 §2.1), and returns their UIDs in order.
func (s *Mail) Expunge(ctx context.Context, mailboxID int64, uids []uint32) ([]uint32, error) {
	db := s.db
	if db.Dialect == Postgres {
		// Optimistically first, as StoreFlagsIf: an EXPUNGE that finds
		// nothing flagged \Deleted (every CLOSE, mostly) takes no lock,
		// and one that does holds the mailbox for one statement.
		for range optimisticTries {
			gone, done, err := db.expungeOptimisticPG(ctx, mailboxID, uids)
			if err != nil {
				return nil, mailErr("expunge", err)
			}
			if done {
				return gone, nil
			}
		}
	}
	var gone []uint32
	err := db.txLazy(ctx, func(tx *sql.Tx) error {
		gone = gone[:0]
		mb, rows, err := db.lockedMsgs(ctx, tx, mailboxID, uids)
		if err != nil {
			return err
		}
		var del []msgRow
		for _, r := range rows {
			if hasFlag(r.flags, deletedFlag) {
				del = append(del, r)
				gone = append(gone, r.uid)
			}
		}
		return db.removeMsgs(ctx, tx, mb, del)
	})
	if err != nil {
		return nil, mailErr("expunge", err)
	}
	return gone, nil
}

// deletedMsgsQueryPG reads the mailbox's member (kind 0) and the ids of its
// messages flagged \Deleted (kind 1; flags are stored canonical, and
// keywords hold no backslash); Expunge may add a test of the UIDs ($2).
const deletedMsgsQueryPG = `SELECT 0, member_id FROM mailboxes WHERE id = $1
UNION ALL SELECT 1, id FROM mail_messages WHERE mailbox_id = $1 AND strpos(flags, '\Deleted') > 0`

// expungeIfQueryPG is removeMsgsQueryPG for the messages read ($2) that
// are still there and flagged \Deleted, written in a group write, after
// the mailbox row's lock (groupwrite.go): it takes the next mod-sequence,
// deletes them and their bodies that no other message shares, buries their
// UIDs, moves the usage and writes the event. Those another session
// expunged or undeleted since the read are left out, as if this EXPUNGE
// came after that change. It returns the tombstones the mailbox held
// before, the mod-sequence taken and the UIDs removed, or no row when none
// were left. A message that shares a body and was committed after the
// statement's snapshot (a COPY to another mailbox) is not seen by the
// body's NOT EXISTS, but is by the foreign key's check, which fails the
// statement: Expunge then takes the locked path. The messages are looked
// up by id alone, as storeFlagsIfQueryPG's are.
const expungeIfQueryPG = `WITH k AS MATERIALIZED (
	SELECT m.id, m.uid, m.size FROM unnest($2::bigint[]) AS v(id)
	CROSS JOIN LATERAL (SELECT id, uid, size, mailbox_id, flags FROM mail_messages WHERE id = v.id LIMIT 1) m
	WHERE m.mailbox_id = $1 AND strpos(m.flags, '\Deleted') > 0
), mb AS (
	UPDATE mailboxes SET highest_modseq = highest_modseq + 1
	WHERE id = $1 AND EXISTS (SELECT 1 FROM k) RETURNING highest_modseq, member_id
), d AS (
	DELETE FROM mail_messages m USING mb, k WHERE m.id = k.id RETURNING m.body_id
), b AS (
	DELETE FROM mail_bodies WHERE id IN (SELECT body_id FROM d)
	AND NOT EXISTS (SELECT 1 FROM mail_messages m WHERE m.body_id = mail_bodies.id AND m.id NOT IN (SELECT id FROM k))
), v AS (
	INSERT INTO mail_vanished (mailbox_id, uid, modseq) SELECT $1, k.uid, mb.highest_modseq FROM mb, k
	ON CONFLICT (mailbox_id, uid) DO UPDATE SET modseq = excluded.modseq
), u AS (
	INSERT INTO mail_usage (member_id, bytes) SELECT member_id, -(SELECT SUM(size) FROM k) FROM mb
	ON CONFLICT (member_id) DO UPDATE SET bytes = mail_usage.bytes + excluded.bytes
), e AS (
	INSERT INTO events (kind, member_id, mailbox_id, created_at) SELECT $3, member_id, $1, $4 FROM mb
)
SELECT (SELECT COUNT(*) FROM mail_vanished WHERE mailbox_id = $1), highest_modseq, (SELECT array_agg(uid ORDER BY uid) FROM k) FROM mb`

// expungeOptimisticPG is one optimistic attempt of Expunge: the flagged
// messages read without a lock, then expungeIfQueryPG. done is false when
// the mailbox is missing (the locked path says so) or a message shares a
// body with one committed since the statement's snapshot (nothing was
// written).
func (db *DB) expungeOptimisticPG(ctx context.Context, mailboxID int64, uids []uint32) (gone []uint32, done bool, err error) {
	q, args := deletedMsgsQueryPG, []any{mailboxID}
	if uids != nil {
		q, args = q+` AND uid = ANY($2)`, append(args, uidArray(uids))
	}
	rows, err := db.queryEachPlan(ctx, db.SQL, q, args...)
	if err != nil {
		return nil, false, err
	}
	exists := false
	var ids []int64
	var memberID int64
	for rows.Next() {
		var kind, id int64
		if err := rows.Scan(&kind, &id); err != nil {
			rows.Close()
			return nil, false, err
		}
		if kind == 0 {
			exists, memberID = true, id
			continue
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	if !exists {
		return nil, false, nil
	}
	if len(ids) == 0 {
		return nil, true, nil
	}
	var before, modseq int64
	var removed []int64
	db.MailChanged(memberID)
	write, wrote := db.writeConn(mailboxID)
	err = write(ctx, expungeIfQueryPG, []any{mailboxID, ids, string(account.EventMailboxChanged), micros(time.Now())},
		&before, &modseq, &removed)
	db.MailChanged(memberID)
	if notFound(err) {
		// None of them left to remove: expunged or undeleted meanwhile.
		return nil, true, wrote(ctx, 0, nil)
	}
	if err != nil && strings.Contains(err.Error(), "SQLSTATE 23503") {
		// Nothing written; for a body shared meanwhile, see expungeIfQueryPG.
		return nil, false, wrote(ctx, 0, nil)
	}
	if err == nil {
		db.views.noteChanged(mailboxID)
		db.notifyEvents()
	}
	if err := wrote(ctx, modseq, err); err != nil {
		return nil, false, err
	}
	if before+int64(len(removed)) > maxTombstones {
		// The expunge is committed whatever becomes of the prune: a prune
		// that fails is left to the next expunge, not reported as this
		// one's failure.
		if err := db.pruneMailboxTombstones(ctx, mailboxID, before+int64(len(removed))); err != nil && !errors.Is(err, account.ErrNotFound) {
			slog.Warn("pruning a mailbox's expunged UIDs (the next expunge tries again)", "mailbox", mailboxID, "err", err)
		}
	}
	gone = make([]uint32, len(removed))
	for i, u := range removed {
		gone[i] = uint32(u)
	}
	return gone, true, nil
}

// Delete removes the given UIDs whatever their flags (POP3 DELE at QUIT).
func (s *Mail) Delete(ctx context.Context, mailboxID int64, uids []uint32) error {
	if uids == nil {
		uids = []uint32{}
	}
	db := s.db
	return mailErr("delete", db.tx(ctx, func(tx *sql.Tx) error {
		mb, rows, err := db.lockedMsgs(ctx, tx, mailboxID, uids)
		if err != nil {
			return err
		}
		return db.removeMsgs(ctx, tx, mb, rows)
	}))
}

// lockedMsgs locks one mailbox (see Locking) and reads its messages uids
// (all of them when uids is nil).
func (db *DB) lockedMsgs(ctx context.Context, tx *sql.Tx, mailboxID int64, uids []uint32) (*lockedMailbox, []msgRow, error) {
	if db.Dialect == Postgres {
		return db.lockedMsgsPG(ctx, tx, mailboxID, uids)
	}
	locked, err := db.lockMailboxes(ctx, tx, mailboxID)
	if err != nil {
		return nil, nil, err
	}
	rows, err := db.selectMsgs(ctx, tx, mailboxID, uids)
	if err != nil {
		return nil, nil, err
	}
	return locked[mailboxID], rows, nil
}

// lockedMsgsQueryPG locks the mailbox row (kind 0) and reads the messages
// (kind 1, optionally among the UIDs of $2) in one statement, one round
// trip less while the lock is held. The messages are read from the
// statement's snapshot, taken before the lock; if it had to wait for
// another transaction's change, FOR UPDATE returns the row as that change
// left it, with a higher HIGHESTMODSEQ than the snapshot's (every change to
// a mailbox's messages takes a new mod-sequence under this lock), and the
// messages are read again.
const lockedMsgsQueryPG = `WITH l AS (SELECT member_id, uid_validity, uid_next, highest_modseq FROM mailboxes WHERE id = $1 FOR UPDATE)
SELECT 0, l.member_id, l.uid_validity, l.uid_next, l.highest_modseq, s.highest_modseq, NULL::bigint, NULL::text FROM l, mailboxes s WHERE s.id = $1
UNION ALL SELECT 1, id, uid, internal_date, size, body_id, modseq, flags FROM mail_messages WHERE mailbox_id = $1`

func (db *DB) lockedMsgsPG(ctx context.Context, tx *sql.Tx, mailboxID int64, uids []uint32) (*lockedMailbox, []msgRow, error) {
	return db.msgsPG(ctx, tx, lockedMsgsQueryPG, mailboxID, uids)
}

// msgsPG runs lockedMsgsQueryPG or snapshotMsgsQueryPG (through q, a
// transaction or the pool) and reads the mailbox and its messages uids
// (all of them when uids is nil), in UID order.
func (db *DB) msgsPG(ctx context.Context, q queryer, query string, mailboxID int64, uids []uint32) (*lockedMailbox, []msgRow, error) {
	args := []any{mailboxID}
	if uids != nil {
		query, args = query+` AND uid = ANY($2)`, append(args, uidArray(uids))
	}
	rows, err := db.queryEachPlan(ctx, q, query, args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var mb *lockedMailbox
	var snapshot int64
	var out []msgRow
	sets := flagSets{}
	sorted := true
	var kind int
	var i1, i2, i3, i4, i5 int64
	var i6 sql.NullInt64
	var flags sql.RawBytes
	for rows.Next() {
		if err := rows.Scan(&kind, &i1, &i2, &i3, &i4, &i5, &i6, &flags); err != nil {
			return nil, nil, err
		}
		if kind == 0 {
			mb = &lockedMailbox{id: mailboxID, memberID: i1, uidValidity: uint32(i2), uidNext: i3, highestModSeq: i4}
			snapshot = i5
			continue
		}
		r := msgRow{id: i1, uid: uint32(i2), date: i3, size: i4, bodyID: i5, modseq: i6.Int64, flags: sets.split(flags)}
		if n := len(out); n > 0 && out[n-1].uid > r.uid {
			sorted = false
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	if mb == nil {
		return nil, nil, account.ErrNotFound
	}
	if snapshot != mb.highestModSeq {
		out, err = db.selectMsgs(ctx, q, mailboxID, uids)
		return mb, out, err
	}
	if !sorted {
		slices.SortFunc(out, func(a, b msgRow) int { return cmp.Compare(a.uid, b.uid) })
	}
	return mb, out, nil
}

// removeMsgs deletes rows of a locked mailbox and writes the event.
func (db *DB) removeMsgs(ctx context.Context, tx *sql.Tx, mb *lockedMailbox, rows []msgRow) error {
	if len(rows) == 0 {
		return nil
	}
	if db.Dialect == Postgres {
		return db.removeMsgsPG(ctx, tx, mb, rows)
	}
	if err := db.deleteMsgs(ctx, tx, rows); err != nil {
		return err
	}
	uids := make([]uint32, len(rows))
	var size int64
	for i, r := range rows {
		uids[i] = r.uid
		size += r.size
	}
	if err := db.bury(ctx, tx, mb, uids); err != nil {
		return err
	}
	if err := db.addUsage(ctx, tx, mb.memberID, -size); err != nil {
		return err
	}
	return db.mailboxChanged(ctx, tx, mb.memberID, mb.id)
}

// removeMsgsQueryPG is removeMsgs in one statement: it deletes the
// messages ($1), then the bodies no other message shares (the statement's
// snapshot still shows the messages it deletes, hence the id test), buries
// their UIDs ($4) at the mailbox's new HIGHESTMODSEQ ($3), moves the
// member's ($5) usage by $6 and writes the event; it returns the
// tombstones the mailbox held before.
const removeMsgsQueryPG = `WITH d AS (
	DELETE FROM mail_messages WHERE id = ANY($1::bigint[]) RETURNING body_id
), b AS (
	DELETE FROM mail_bodies WHERE id IN (SELECT body_id FROM d)
	AND NOT EXISTS (SELECT 1 FROM mail_messages m WHERE m.body_id = mail_bodies.id AND m.id <> ALL($1::bigint[]))
), mb AS (
	UPDATE mailboxes SET highest_modseq = $3 WHERE id = $2
), v AS (
	INSERT INTO mail_vanished (mailbox_id, uid, modseq) SELECT $2, u, $3 FROM unnest($4::bigint[]) AS u
	ON CONFLICT (mailbox_id, uid) DO UPDATE SET modseq = excluded.modseq
), u AS (
	INSERT INTO mail_usage (member_id, bytes) VALUES ($5, $6)
	ON CONFLICT (member_id) DO UPDATE SET bytes = mail_usage.bytes + excluded.bytes
), e AS (
	INSERT INTO events (kind, member_id, mailbox_id, created_at) VALUES ($7, $5, $2, $8)
)
SELECT COUNT(*) FROM mail_vanished WHERE mailbox_id = $2`

// removeMsgsPG is removeMsgs on PostgreSQL: one round trip while the
// mailbox is locked instead of seven.
func (db *DB) removeMsgsPG(ctx context.Context, tx *sql.Tx, mb *lockedMailbox, rows []msgRow) error {
	ids := make([]int64, len(rows))
	uids := make([]int64, len(rows))
	var size int64
	for i, r := range rows {
		ids[i], uids[i] = r.id, int64(r.uid)
		size += r.size
	}
	var before int64
	if err := tx.QueryRowContext(ctx, removeMsgsQueryPG, ids, mb.id, mb.takeModSeq(), uids, mb.memberID, -size,
		string(account.EventMailboxChanged), micros(time.Now())).Scan(&before); err != nil {
		return err
	}
	mb.modseqWritten = true
	db.noteMailChanged(tx, mb.memberID)
	db.afterCommit(tx, db.notifyEvents)
	// A UID is never reused: each tombstone is new.
	return db.pruneTombstones(ctx, tx, mb, before+int64(len(uids)))
}

// Copy copies uids to dst, with their flags and internal dates (RFC 3501
// §6.4.7), and returns the source and destination UIDs pairwise and dst's
// UIDVALIDITY (RFC 4315 COPYUID). Copies share their original's body.
func (s *Mail) Copy(ctx context.Context, src int64, uids []uint32, dst int64) ([]uint32, []uint32, uint32, error) {
	return s.transfer(ctx, "copy", src, uids, dst, false)
}

// Move moves uids to dst in one transaction (RFC 6851): other sessions see
// them leave src and arrive in dst at once.
func (s *Mail) Move(ctx context.Context, src int64, uids []uint32, dst int64) ([]uint32, []uint32, uint32, error) {
	return s.transfer(ctx, "move", src, uids, dst, true)
}

// moveQueryPG moves messages ($3) to mailbox $1 under new UIDs ($4) at
// mod-sequence $2, in one statement: each statement on mail_messages runs
// its triggers (mailbox_counts, mail_changes) once, where one per message
// cost more than the update.
const moveQueryPG = `UPDATE mail_messages m SET mailbox_id = $1, uid = v.uid, modseq = $2
FROM unnest($3::bigint[], $4::bigint[]) AS v(id, uid) WHERE m.id = v.id`

func (s *Mail) transfer(ctx context.Context, op string, src int64, uids []uint32, dst int64, move bool) (srcUIDs, dstUIDs []uint32, validity uint32, err error) {
	if uids == nil {
		uids = []uint32{}
	}
	db := s.db
	err = db.tx(ctx, func(tx *sql.Tx) error {
		srcUIDs, dstUIDs = []uint32{}, []uint32{}
		ids := []int64{src}
		if dst != src {
			ids = append(ids, dst)
		}
		locked, err := db.lockMailboxes(ctx, tx, ids...)
		if err != nil {
			return err
		}
		from, to := locked[src], locked[dst]
		if from.memberID != to.memberID {
			// Bodies are a member's own; a mailbox of someone else does not exist here.
			return account.ErrNotFound
		}
		validity = to.uidValidity
		rows, err := db.selectMsgs(ctx, tx, src, uids)
		if err != nil || len(rows) == 0 {
			return err
		}
		first, err := db.allocUIDs(ctx, tx, to, len(rows))
		if err != nil {
			return err
		}
		var added int64 // a copy counts as much as its original; a move adds nothing
		if move && db.Dialect == Postgres {
			ids, newUIDs := make([]int64, len(rows)), make([]int64, len(rows))
			for i, r := range rows {
				ids[i], newUIDs[i] = r.id, int64(first)+int64(i)
				srcUIDs, dstUIDs = append(srcUIDs, r.uid), append(dstUIDs, first+uint32(i))
			}
			if _, err := tx.ExecContext(ctx, moveQueryPG, dst, to.modseq, ids, newUIDs); err != nil {
				return err
			}
			rows = nil
		}
		for i, r := range rows {
			uid := first + uint32(i)
			if move {
				_, err = tx.ExecContext(ctx, db.q(`UPDATE mail_messages SET mailbox_id = ?, uid = ?, modseq = ? WHERE id = ?`), dst, int64(uid), to.modseq, r.id)
			} else {
				_, err = tx.ExecContext(ctx, db.q(`INSERT INTO mail_messages (mailbox_id, uid, flags, internal_date, size, body_id, modseq) VALUES (?, ?, ?, ?, ?, ?, ?)`),
					dst, int64(uid), joinFlags(r.flags), r.date, r.size, r.bodyID, to.modseq)
				added += r.size
			}
			if err != nil {
				return err
			}
			srcUIDs = append(srcUIDs, r.uid)
			dstUIDs = append(dstUIDs, uid)
		}
		if err := db.addUsage(ctx, tx, to.memberID, added); err != nil {
			return err
		}
		changed := []int64{dst}
		if move && src != dst {
			changed = append(changed, src)
		}
		if move {
			// A move within one mailbox gives new UIDs too: the old ones vanish.
			if err := db.bury(ctx, tx, from, srcUIDs); err != nil {
				return err
			}
		}
		return db.mailboxChanged(ctx, tx, to.memberID, changed...)
	})
	if err != nil {
		return nil, nil, 0, mailErr(op, err)
	}
	return srcUIDs, dstUIDs, validity, nil
}
