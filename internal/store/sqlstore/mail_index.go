package sqlstore

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/mailstore"
	"github.com/postern/postern/internal/msgindex"
)

// The message index (migration 0019, internal/msgindex): one mail_index
// row per body, written with the body on every append and delivery. A body
// stored before the table existed, or indexed by an older msgindex.Version,
// gets its row when a command first needs it (indexMissing), so reads never
// depend on a backfill having run.

// indexCols are mail_index's columns in indexArgs's order.
const indexCols = `body_id, version, envelope, envelope_utf8, body_plain, body_plain_utf8, bodystructure, bodystructure_utf8,
	from_text, to_text, cc_text, bcc_text, subject_text, body_text, header_text, sort_from, sort_to, sort_cc, display_from, display_to,
	base_subject, sent_date, sent_offset, message_id, in_reply_to, refs, preview, has_attachment`

// indexColCount is the number of indexCols.
const indexColCount = 28

// indexArgs are the values of indexCols for a body's index.
func indexArgs(bodyID int64, x *mailstore.MessageIndex) []any {
	var sent any
	offset := 0
	if !x.SentDate.IsZero() {
		sent = micros(x.SentDate)
		_, offset = x.SentDate.Zone()
	}
	return []any{bodyID, msgindex.Version, x.Envelope, nullBytes(x.EnvelopeUTF8), x.Body, nullBytes(x.BodyUTF8),
		x.BodyStructure, nullBytes(x.BodyStructureUTF8),
		nullBytes(x.From), nullBytes(x.To), nullBytes(x.Cc), nullBytes(x.Bcc), nullBytes(x.Subject),
		nullBytes(x.BodyText), nullBytes(x.HeaderText),
		x.SortFrom, x.SortTo, x.SortCc, x.DisplayFrom, x.DisplayTo,
		x.BaseSubject, sent, offset, x.MessageID, x.InReplyTo, strings.Join(x.References, " "),
		x.Preview, x.HasAttachment}
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

// insertIndex writes a body's index, replacing an older one.
func (db *DB) insertIndex(ctx context.Context, q execer, bodyID int64, x *mailstore.MessageIndex) error {
	_, err := q.ExecContext(ctx, db.q(`INSERT INTO mail_index (`+indexCols+`) VALUES (`+placeholders(indexColCount)+`)
		ON CONFLICT (body_id) DO UPDATE SET `+indexUpdate), indexArgs(bodyID, x)...)
	return err
}

// indexUpdate sets every column but body_id from the row being inserted.
var indexUpdate = func() string {
	var sets []string
	for _, c := range strings.Split(indexCols, ",")[1:] {
		c = strings.TrimSpace(c)
		sets = append(sets, c+" = excluded."+c)
	}
	return strings.Join(sets, ", ")
}()

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

// indexSelect reads messages with their index; a NULL version is a body
// without an index row (or the message's own columns when encoded is
// false: the encoded items are left out).
func indexSelect(encoded bool) string {
	cols := `m.id, m.body_id, i.version, i.from_text, i.to_text, i.cc_text, i.bcc_text, i.subject_text,
		i.sort_from, i.sort_to, i.sort_cc, i.display_from, i.display_to, i.base_subject, i.sent_date, i.sent_offset,
		i.message_id, i.in_reply_to, i.refs, i.preview, i.has_attachment`
	if encoded {
		cols += `, i.envelope, i.envelope_utf8, i.body_plain, i.body_plain_utf8, i.bodystructure, i.bodystructure_utf8`
	}
	return `SELECT ` + cols + ` FROM mail_messages m LEFT JOIN mail_index i ON i.body_id = m.body_id`
}

// scanIndexes reads indexSelect's rows: the current indexes by message id,
// and the messages whose index is missing or old, with their body.
func scanIndexes(rows *sql.Rows, encoded bool, out map[int64]*mailstore.MessageIndex, stale map[int64]int64) error {
	defer rows.Close()
	for rows.Next() {
		var id, bodyID int64
		var version, sent, offset sql.NullInt64
		var sortFrom, sortTo, sortCc, dispFrom, dispTo, base, msgID, inReplyTo, refs, preview sql.NullString
		var attach sql.NullBool
		x := &mailstore.MessageIndex{}
		dest := []any{&id, &bodyID, &version, &x.From, &x.To, &x.Cc, &x.Bcc, &x.Subject,
			&sortFrom, &sortTo, &sortCc, &dispFrom, &dispTo, &base, &sent, &offset, &msgID, &inReplyTo, &refs, &preview, &attach}
		if encoded {
			dest = append(dest, &x.Envelope, &x.EnvelopeUTF8, &x.Body, &x.BodyUTF8, &x.BodyStructure, &x.BodyStructureUTF8)
		}
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		if !version.Valid || version.Int64 < msgindex.Version {
			stale[id] = bodyID
			continue
		}
		x.SortFrom, x.SortTo, x.SortCc = sortFrom.String, sortTo.String, sortCc.String
		x.DisplayFrom, x.DisplayTo, x.BaseSubject = dispFrom.String, dispTo.String, base.String
		if sent.Valid {
			x.SentDate = time.UnixMicro(sent.Int64).In(time.FixedZone("", int(offset.Int64)))
		}
		x.MessageID, x.InReplyTo, x.Preview, x.HasAttachment = msgID.String, inReplyTo.String, preview.String, attach.Bool
		x.References = strings.Fields(refs.String)
		out[id] = x
	}
	return rows.Err()
}

// Indexes implements mailstore.Indexer.
func (s *Mail) Indexes(ctx context.Context, mailboxID int64, ids []int64, encoded bool) (map[int64]*mailstore.MessageIndex, error) {
	db := s.db
	out := make(map[int64]*mailstore.MessageIndex, len(ids))
	stale := map[int64]int64{}
	if ids == nil {
		rows, err := db.SQL.QueryContext(ctx, db.q(indexSelect(encoded)+` WHERE m.mailbox_id = ?`), mailboxID)
		if err != nil {
			return nil, mailErr("indexes", err)
		}
		if err := scanIndexes(rows, encoded, out, stale); err != nil {
			return nil, mailErr("indexes", err)
		}
	}
	for len(ids) > 0 {
		part := ids[:min(chunk, len(ids))]
		ids = ids[len(part):]
		args := append([]any{mailboxID}, int64Args(part)...)
		rows, err := db.SQL.QueryContext(ctx, db.q(indexSelect(encoded)+` WHERE m.mailbox_id = ? AND m.id IN (`+placeholders(len(part))+`)`), args...)
		if err != nil {
			return nil, mailErr("indexes", err)
		}
		if err := scanIndexes(rows, encoded, out, stale); err != nil {
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

// searchCols are the search texts by field: a match in any of them.
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
			terms = append(terms, `i.`+col+` IS NOT NULL`)
		case db.Dialect == Postgres:
			terms = append(terms, `position(?::bytea in i.`+col+`) > 0`)
			valueArgs = append(valueArgs, []byte(value))
		default:
			terms = append(terms, `instr(i.`+col+`, ?) > 0`)
			valueArgs = append(valueArgs, []byte(value))
		}
	}
	match := `(` + strings.Join(terms, ` OR `) + `)`
	args := append(slices.Clone(valueArgs), msgindex.Version, mailboxID, msgindex.Version)
	args = append(args, valueArgs...)
	// The first column tells a match (1) from a message to index (0).
	q := `SELECT CASE WHEN ` + match + ` AND i.version >= ? THEN 1 ELSE 0 END, m.uid, m.body_id
		FROM mail_messages m LEFT JOIN mail_index i ON i.body_id = m.body_id
		WHERE m.mailbox_id = ? AND (i.body_id IS NULL OR i.version < ? OR ` + match + `) ORDER BY m.uid`
	rows, err := db.SQL.QueryContext(ctx, db.q(q), args...)
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
	for len(ids) > 0 {
		part := ids[:min(chunk, len(ids))]
		ids = ids[len(part):]
		rows, err := db.SQL.QueryContext(ctx, db.q(`SELECT m.id, b.body FROM mail_messages m JOIN mail_bodies b ON b.id = m.body_id WHERE m.id IN (`+placeholders(len(part))+`)`), int64Args(part)...)
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

// countsQuery totals a mailbox. Flags are stored canonical and keywords
// hold no backslash, so a system flag's name inside the flags column is
// that flag.
const countsQuery = `SELECT COUNT(*), COALESCE(SUM(CASE WHEN instr(flags, '\Seen') = 0 THEN 1 ELSE 0 END), 0),
	COALESCE(SUM(CASE WHEN instr(flags, '\Deleted') > 0 THEN 1 ELSE 0 END), 0), COALESCE(SUM(size), 0),
	COALESCE(SUM(CASE WHEN instr(flags, '\Deleted') > 0 THEN size ELSE 0 END), 0)
	FROM mail_messages WHERE mailbox_id = ?`

// Counts implements mailstore.Indexer.
func (s *Mail) Counts(ctx context.Context, mailboxID int64) (mailstore.Counts, error) {
	db := s.db
	q := countsQuery
	if db.Dialect == Postgres {
		q = strings.ReplaceAll(q, "instr(flags, ", "strpos(flags, ")
	}
	var c mailstore.Counts
	var n, unseen, deleted int64
	if err := db.SQL.QueryRowContext(ctx, db.q(q), mailboxID).Scan(&n, &unseen, &deleted, &c.Size, &c.DeletedSize); err != nil {
		return c, mailErr("counts", err)
	}
	c.Messages, c.Unseen, c.Deleted = uint32(n), uint32(unseen), uint32(deleted)
	return c, nil
}
