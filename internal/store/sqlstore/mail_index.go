package sqlstore

import (
	"context"
	"database/sql"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/mailstore"
	"github.com/postern/postern/internal/msgindex"
)

// The message index (migrations 0019 and 0023, internal/msgindex): per
// body, a mail_index row (the version, search texts, sort and thread keys:
// what is read for every message of a mailbox) and a mail_index_bulk row
// (the encoded FETCH items, the preview and the BODY and TEXT search texts:
// read for the messages a FETCH names, or by a substring scan), written
// together with the body on every append and delivery. A body stored before
// the table existed, or indexed by an older msgindex.Version, gets its rows
// when a command first needs them (indexMissing), so reads never depend on
// a backfill having run.

// indexCols are mail_index's columns in indexArgs's order, and
// indexTypesPG their PostgreSQL types after body_id.
const (
	indexCols = `body_id, version, from_text, to_text, cc_text, bcc_text, subject_text, sort_from, sort_to, sort_cc,
	display_from, display_to, base_subject, sent_date, sent_offset, message_id, in_reply_to, refs, has_attachment`
	indexTypesPG = `bigint bytea bytea bytea bytea bytea text text text text text text bigint bigint text text text boolean`
)

// bulkCols are mail_index_bulk's columns in bulkArgs's order, and
// bulkTypesPG their PostgreSQL types after body_id.
const (
	bulkCols = `body_id, version, preview, envelope, envelope_utf8, body_plain, body_plain_utf8, bodystructure, bodystructure_utf8,
	body_text, header_text`
	bulkTypesPG = `bigint text bytea bytea bytea bytea bytea bytea bytea bytea`
)

// indexArgs are the values of indexCols for a body's index.
func indexArgs(bodyID int64, x *mailstore.MessageIndex) []any {
	var sent any
	offset := 0
	if !x.SentDate.IsZero() {
		sent = micros(x.SentDate)
		_, offset = x.SentDate.Zone()
	}
	return []any{bodyID, msgindex.Version,
		nullBytes(x.From), nullBytes(x.To), nullBytes(x.Cc), nullBytes(x.Bcc), nullBytes(x.Subject),
		x.SortFrom, x.SortTo, x.SortCc, x.DisplayFrom, x.DisplayTo,
		x.BaseSubject, sent, offset, x.MessageID, x.InReplyTo, strings.Join(x.References, " "), x.HasAttachment}
}

// bulkArgs are the values of bulkCols for a body's index.
func bulkArgs(bodyID int64, x *mailstore.MessageIndex) []any {
	return []any{bodyID, msgindex.Version, x.Preview, x.Envelope, nullBytes(x.EnvelopeUTF8), x.Body, nullBytes(x.BodyUTF8),
		x.BodyStructure, nullBytes(x.BodyStructureUTF8), nullBytes(x.BodyText), nullBytes(x.HeaderText)}
}

// nullBytes is NULL for nil, so that an absent field and an empty one
// differ (SEARCH HEADER with an empty value matches any message that has
// the field).
func nullBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

// valuesPG are numbered placeholders from $from, one per type, each cast
// to its type: in a SELECT list PostgreSQL would take them as text.
func valuesPG(types string, from int) string {
	var ps []string
	for i, t := range strings.Fields(types) {
		ps = append(ps, "$"+strconv.Itoa(from+i)+"::"+t)
	}
	return strings.Join(ps, ", ")
}

// upsertSet sets every column of cols but the first (the key) from the
// row being inserted.
func upsertSet(cols string) string {
	var sets []string
	for _, c := range strings.Split(cols, ",")[1:] {
		c = strings.TrimSpace(c)
		sets = append(sets, c+" = excluded."+c)
	}
	return strings.Join(sets, ", ")
}

var (
	// insertIndexQuery and insertBulkQuery write a body's index rows,
	// replacing older ones.
	insertIndexQuery = `INSERT INTO mail_index (` + indexCols + `) VALUES (` + placeholders(strings.Count(indexCols, ",")+1) + `)
		ON CONFLICT (body_id) DO UPDATE SET ` + upsertSet(indexCols)
	insertBulkQuery = `INSERT INTO mail_index_bulk (` + bulkCols + `) VALUES (` + placeholders(strings.Count(bulkCols, ",")+1) + `)
		ON CONFLICT (body_id) DO UPDATE SET ` + upsertSet(bulkCols)
	// insertIndexQueryPG is both as one statement, one round trip; its
	// arguments are indexArgs's, then bulkArgs's after body_id.
	insertIndexQueryPG = `WITH i AS (
		INSERT INTO mail_index (` + indexCols + `) VALUES ($1, ` + valuesPG(indexTypesPG, 2) + `)
		ON CONFLICT (body_id) DO UPDATE SET ` + upsertSet(indexCols) + `
	) INSERT INTO mail_index_bulk (` + bulkCols + `) VALUES ($1, ` + valuesPG(bulkTypesPG, 2+len(strings.Fields(indexTypesPG))) + `)
		ON CONFLICT (body_id) DO UPDATE SET ` + upsertSet(bulkCols)
)

// insertIndex writes a body's index, replacing an older one.
func (db *DB) insertIndex(ctx context.Context, q execer, bodyID int64, x *mailstore.MessageIndex) error {
	if db.Dialect == Postgres {
		_, err := q.ExecContext(ctx, insertIndexQueryPG, append(indexArgs(bodyID, x), bulkArgs(bodyID, x)[1:]...)...)
		return err
	}
	if _, err := q.ExecContext(ctx, insertIndexQuery, indexArgs(bodyID, x)...); err != nil {
		return err
	}
	_, err := q.ExecContext(ctx, insertBulkQuery, bulkArgs(bodyID, x)...)
	return err
}

// indexBody builds and stores the index of a stored body. The body is
// read and indexed outside any transaction: a concurrent build of the same
// body writes the same row.
func (db *DB) indexBody(ctx context.Context, bodyID int64) (*mailstore.MessageIndex, error) {
	var body []byte
	err := db.SQL.QueryRowContext(ctx, db.q(`SELECT body FROM mail_bodies WHERE id = ?`), bodyID).Scan(&body)
	if err != nil {
		return nil, err // errNoRows: expunged meanwhile
	}
	x := msgindex.Build(body)
	if err := db.tx(ctx, func(tx *sql.Tx) error {
		// The body may have gone meanwhile; then there is nothing to index.
		var one int
		if err := tx.QueryRowContext(ctx, db.q(`SELECT 1 FROM mail_bodies WHERE id = ?`), bodyID).Scan(&one); err != nil {
			if notFound(err) {
				return nil
			}
			return err
		}
		return db.insertIndex(ctx, tx, bodyID, x)
	}); err != nil {
		return nil, err
	}
	return x, nil
}

// indexSelect reads messages with their index: with fetch, the FETCH
// items from mail_index_bulk, else mail_index's keys. A NULL version is a
// body without the row.
func indexSelect(fetch bool) string {
	if fetch {
		return `SELECT m.id, m.body_id, b.version, b.envelope, b.envelope_utf8, b.body_plain, b.body_plain_utf8, b.bodystructure,
			b.bodystructure_utf8, b.preview
			FROM mail_messages m LEFT JOIN mail_index_bulk b ON b.body_id = m.body_id`
	}
	return `SELECT m.id, m.body_id, i.version, i.from_text, i.to_text, i.cc_text, i.bcc_text, i.subject_text,
		i.sort_from, i.sort_to, i.sort_cc, i.display_from, i.display_to, i.base_subject, i.sent_date, i.sent_offset,
		i.message_id, i.in_reply_to, i.refs, i.has_attachment
		FROM mail_messages m LEFT JOIN mail_index i ON i.body_id = m.body_id`
}

// scanIndexes reads indexSelect's rows: the current indexes by message id,
// and the messages whose index is missing or old, with their body.
func scanIndexes(rows *sql.Rows, fetch bool, out map[int64]*mailstore.MessageIndex, stale map[int64]int64) error {
	defer rows.Close()
	for rows.Next() {
		var id, bodyID int64
		var version, sent, offset sql.NullInt64
		var sortFrom, sortTo, sortCc, dispFrom, dispTo, base, msgID, inReplyTo, refs, preview sql.NullString
		var attach sql.NullBool
		x := &mailstore.MessageIndex{}
		var err error
		if fetch {
			err = rows.Scan(&id, &bodyID, &version, &x.Envelope, &x.EnvelopeUTF8, &x.Body, &x.BodyUTF8, &x.BodyStructure,
				&x.BodyStructureUTF8, &preview)
		} else {
			err = rows.Scan(&id, &bodyID, &version, &x.From, &x.To, &x.Cc, &x.Bcc, &x.Subject, &sortFrom, &sortTo, &sortCc,
				&dispFrom, &dispTo, &base, &sent, &offset, &msgID, &inReplyTo, &refs, &attach)
		}
		if err != nil {
			return err
		}
		if !version.Valid || version.Int64 < msgindex.Version {
			stale[id] = bodyID
			continue
		}
		if fetch {
			x.Preview = preview.String
			out[id] = x
			continue
		}
		x.SortFrom, x.SortTo, x.SortCc = sortFrom.String, sortTo.String, sortCc.String
		x.DisplayFrom, x.DisplayTo, x.BaseSubject = dispFrom.String, dispTo.String, base.String
		if sent.Valid {
			x.SentDate = time.UnixMicro(sent.Int64).In(time.FixedZone("", int(offset.Int64)))
		}
		x.MessageID, x.InReplyTo, x.HasAttachment = msgID.String, inReplyTo.String, attach.Bool
		x.References = strings.Fields(refs.String)
		out[id] = x
	}
	return rows.Err()
}

// Indexes implements mailstore.Indexer.
func (s *Mail) Indexes(ctx context.Context, mailboxID int64, ids []int64, fetch bool) (map[int64]*mailstore.MessageIndex, error) {
	db := s.db
	out := make(map[int64]*mailstore.MessageIndex, len(ids))
	stale := map[int64]int64{}
	if ids == nil {
		rows, err := db.queryEachPlan(ctx, db.SQL, db.q(indexSelect(fetch)+` WHERE m.mailbox_id = ?`), mailboxID)
		if err != nil {
			return nil, mailErr("indexes", err)
		}
		if err := scanIndexes(rows, fetch, out, stale); err != nil {
			return nil, mailErr("indexes", err)
		}
	}
	if len(ids) > 0 {
		// The ids go as one argument, so that the statement is prepared
		// once for any number of them. The messages are looked up by id:
		// +m.mailbox_id keeps SQLite from walking the whole mailbox through
		// its index on mailbox_id instead.
		q, arg := ` WHERE +m.mailbox_id = ? AND m.id IN (SELECT value FROM json_each(?))`, any(idList(ids))
		if db.Dialect == Postgres {
			q, arg = ` WHERE m.mailbox_id = $1 AND m.id = ANY($2::bigint[])`, ids
		}
		rows, err := db.queryEachPlan(ctx, db.SQL, indexSelect(fetch)+q, mailboxID, arg)
		if err != nil {
			return nil, mailErr("indexes", err)
		}
		if err := scanIndexes(rows, fetch, out, stale); err != nil {
			return nil, mailErr("indexes", err)
		}
	}
	built := map[int64]*mailstore.MessageIndex{} // copies in one mailbox share a body
	for id, bodyID := range stale {
		x := built[bodyID]
		if x == nil {
			var err error
			x, err = db.indexBody(ctx, bodyID)
			if notFound(err) {
				continue
			}
			if err != nil {
				return nil, mailErr("indexes", err)
			}
			built[bodyID] = x
		}
		out[id] = x
	}
	return out, nil
}

// idList is ids as a JSON array, for SQLite's json_each.
func idList(ids []int64) string {
	b := make([]byte, 0, len(ids)*8+2)
	b = append(b, '[')
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, id, 10)
	}
	return string(append(b, ']'))
}

// searchCols are the search texts by field: a match in any of them. Those
// of BODY and TEXT are in mail_index_bulk, the others in mail_index, whose
// narrow rows a scan reads quickly.
var searchCols = map[mailstore.SearchField][]string{
	mailstore.SearchFrom: {"from_text"}, mailstore.SearchTo: {"to_text"}, mailstore.SearchCc: {"cc_text"},
	mailstore.SearchBcc: {"bcc_text"}, mailstore.SearchSubject: {"subject_text"},
	mailstore.SearchBody: {"body_text"}, mailstore.SearchText: {"header_text", "body_text"},
}

// SearchIndex implements mailstore.Indexer. One statement returns the
// matching messages and those not indexed yet, which are indexed and
// matched here.
func (s *Mail) SearchIndex(ctx context.Context, mailboxID int64, field mailstore.SearchField, value string) ([]uint32, error) {
	cols, ok := searchCols[field]
	if !ok {
		return nil, account.Errorf(account.EINVALID, "Unknown search field.")
	}
	db := s.db
	// match is true for a message whose field is there and (for a value)
	// contains it; its placeholders are the value, once per column.
	var terms []string
	var valueArgs []any
	for _, col := range cols {
		switch {
		case value == "":
			terms = append(terms, `t.`+col+` IS NOT NULL`)
		case db.Dialect == Postgres:
			terms = append(terms, `position(?::bytea in t.`+col+`) > 0`)
			valueArgs = append(valueArgs, []byte(value))
		default:
			terms = append(terms, `instr(t.`+col+`, ?) > 0`)
			valueArgs = append(valueArgs, []byte(value))
		}
	}
	match := `(` + strings.Join(terms, ` OR `) + `)`
	args := append(slices.Clone(valueArgs), msgindex.Version, mailboxID, msgindex.Version)
	args = append(args, valueArgs...)
	table := "mail_index"
	if field == mailstore.SearchBody || field == mailstore.SearchText {
		table = "mail_index_bulk"
	}
	// The first column tells a match (1) from a message to index (0).
	q := `SELECT CASE WHEN ` + match + ` AND t.version >= ? THEN 1 ELSE 0 END, m.uid, m.body_id
		FROM mail_messages m LEFT JOIN ` + table + ` t ON t.body_id = m.body_id
		WHERE m.mailbox_id = ? AND (t.body_id IS NULL OR t.version < ? OR ` + match + `) ORDER BY m.uid`
	rows, err := db.queryEachPlan(ctx, db.SQL, db.q(q), args...)
	if err != nil {
		return nil, mailErr("search", err)
	}
	var uids []uint32
	type pending struct {
		uid    uint32
		bodyID int64
	}
	var todo []pending
	for rows.Next() {
		var hit int
		var uid, bodyID int64
		if err := rows.Scan(&hit, &uid, &bodyID); err != nil {
			rows.Close()
			return nil, mailErr("search", err)
		}
		if hit == 1 {
			uids = append(uids, uint32(uid))
		} else {
			todo = append(todo, pending{uint32(uid), bodyID})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, mailErr("search", err)
	}
	if len(todo) == 0 {
		return uids, nil
	}
	for _, p := range todo {
		x, err := db.indexBody(ctx, p.bodyID)
		if notFound(err) {
			continue
		}
		if err != nil {
			return nil, mailErr("search", err)
		}
		if t := searchText(x, field); t != nil && strings.Contains(string(t), value) {
			uids = append(uids, p.uid)
		}
	}
	slices.Sort(uids)
	return uids, nil
}

// searchText is the text of x that field's search matches.
func searchText(x *mailstore.MessageIndex, f mailstore.SearchField) []byte {
	switch f {
	case mailstore.SearchFrom:
		return x.From
	case mailstore.SearchTo:
		return x.To
	case mailstore.SearchCc:
		return x.Cc
	case mailstore.SearchBcc:
		return x.Bcc
	case mailstore.SearchBody:
		return x.BodyText
	case mailstore.SearchText:
		if x.HeaderText == nil {
			return nil
		}
		return append(append(slices.Clip(x.HeaderText), mailstore.SearchSep), x.BodyText...)
	}
	return x.Subject
}

// Bodies implements mailstore.Indexer.
func (s *Mail) Bodies(ctx context.Context, ids []int64, fn func(id int64, body []byte) error) error {
	db := s.db
	// The ids go as one argument (as in Indexes): one statement for any
	// number of them.
	q := `SELECT m.id, b.body FROM mail_messages m JOIN mail_bodies b ON b.id = m.body_id WHERE m.id IN (SELECT value FROM json_each(?))`
	if db.Dialect == Postgres {
		q = `SELECT m.id, b.body FROM mail_messages m JOIN mail_bodies b ON b.id = m.body_id WHERE m.id = ANY($1::bigint[])`
	}
	for len(ids) > 0 {
		part := ids[:min(chunk, len(ids))]
		ids = ids[len(part):]
		var arg any = part
		if db.Dialect != Postgres {
			arg = idList(part)
		}
		rows, err := db.queryEachPlan(ctx, db.SQL, q, arg)
		if err != nil {
			return mailErr("bodies", err)
		}
		for rows.Next() {
			var id int64
			var body []byte
			if err := rows.Scan(&id, &body); err != nil {
				rows.Close()
				return mailErr("bodies", err)
			}
			if body == nil {
				body = []byte{}
			}
			if err := fn(id, body); err != nil {
				rows.Close()
				return err
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return mailErr("bodies", err)
		}
	}
	return nil
}

// countsQuery reads a mailbox's counts as mailbox_counts keeps them
// (migration 0031's triggers), one row by key at any size. The recent
// messages are those from the mailbox's recent_uid (mailbox_recent) on,
// counted through the (mailbox_id, uid) index: after a SELECT, few.
const countsQuery = `SELECT c.messages, c.unseen, c.deleted, c.size, c.deleted_size,
	(SELECT COUNT(*) FROM mail_messages WHERE mailbox_id = ? AND uid >= COALESCE((SELECT recent_uid FROM mailbox_recent WHERE mailbox_id = ?), 1))
	FROM mailbox_counts c WHERE c.mailbox_id = ?`

// Counts implements mailstore.Indexer. On PostgreSQL it runs on the pool of
// generic plans without sequential scans: a plan the main pool's cache
// made while the mailboxes were small counted the recent messages of a
// mailbox of 100,000 by reading the table (75 ms a STATUS after the
// imaptest stress, against 2).
func (s *Mail) Counts(ctx context.Context, mailboxID int64) (mailstore.Counts, error) {
	db := s.db
	var row *sql.Row
	if db.planned != nil {
		row = db.planned.QueryRowContext(ctx, db.q(countsQuery), mailboxID, mailboxID, mailboxID)
	} else {
		stmt, err := db.prepared(ctx, db.q(countsQuery))
		if err != nil {
			return mailstore.Counts{}, mailErr("counts", err)
		}
		row = stmt.QueryRowContext(ctx, mailboxID, mailboxID, mailboxID)
	}
	var c mailstore.Counts
	var n, unseen, deleted, recent int64
	err := row.Scan(&n, &unseen, &deleted, &c.Size, &c.DeletedSize, &recent)
	if notFound(err) {
		err = account.Errorf(account.ENOTFOUND, "No such mailbox.")
	}
	if err != nil {
		return c, mailErr("counts", err)
	}
	c.Messages, c.Unseen, c.Deleted, c.Recent = uint32(n), uint32(unseen), uint32(deleted), uint32(recent)
	return c, nil
}
