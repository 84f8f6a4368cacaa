package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/davrec"
)

const objectMeta = `collection_id, name, etag, uid, component, start_at, end_at, modified_at, size`

// scanObject scans objectMeta, and data when withData.
func scanObject(r rowScanner, withData bool) (davrec.Object, error) {
	var o davrec.Object
	var start, end sql.NullInt64
	var modified int64
	dest := []any{&o.CollectionID, &o.Name, &o.ETag, &o.UID, &o.Component, &start, &end, &modified, &o.Size}
	if withData {
		dest = append(dest, &o.Data)
	}
	if err := r.Scan(dest...); err != nil {
		return o, err
	}
	if start.Valid {
		o.Start = fromMicros(start.Int64)
	}
	if end.Valid {
		o.End = fromMicros(end.Int64)
	}
	o.Modified = fromMicros(modified)
	return o, nil
}

// bound is a time as stored: NULL for an unbounded (zero) time.
func bound(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return micros(t)
}

func (db *DB) queryObjects(ctx context.Context, q queryer, withData bool, query string, args ...any) ([]davrec.Object, error) {
	cols := objectMeta
	if withData {
		cols += ", data"
	}
	rows, err := q.QueryContext(ctx, db.q(`SELECT `+cols+` FROM dav_objects WHERE `+query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []davrec.Object
	for rows.Next() {
		o, err := scanObject(rows, withData)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// Objects lists a collection's objects by name.
func (s *DAV) Objects(ctx context.Context, collectionID int64, withData bool) ([]davrec.Object, error) {
	list, err := s.db.queryObjects(ctx, s.db.SQL, withData, `collection_id = ? ORDER BY name`, collectionID)
	return list, davErr("objects", err)
}

// ObjectsByName returns the named objects that exist, with their data.
func (s *DAV) ObjectsByName(ctx context.Context, collectionID int64, names []string) ([]davrec.Object, error) {
	var out []davrec.Object
	for len(names) > 0 {
		part := names[:min(len(names), chunk)]
		names = names[len(part):]
		args := []any{collectionID}
		for _, n := range part {
			args = append(args, n)
		}
		list, err := s.db.queryObjects(ctx, s.db.SQL, true, `collection_id = ? AND name IN (`+placeholders(len(part))+`) ORDER BY name`, args...)
		if err != nil {
			return nil, davErr("objects by name", err)
		}
		out = append(out, list...)
	}
	return out, nil
}

// ObjectsInRange returns the candidates of a time-range query from the
// start/end index: NULL bounds are unbounded, and the comparisons include
// the bounds so that zero-length events at the range start are candidates.
func (s *DAV) ObjectsInRange(ctx context.Context, collectionID int64, component string, start, end time.Time) ([]davrec.Object, error) {
	query := `collection_id = ? AND component = ?`
	args := []any{collectionID, component}
	if !end.IsZero() {
		query += ` AND (start_at IS NULL OR start_at < ?)`
		args = append(args, micros(end))
	}
	if !start.IsZero() {
		query += ` AND (end_at IS NULL OR end_at >= ?)`
		args = append(args, micros(start))
	}
	list, err := s.db.queryObjects(ctx, s.db.SQL, true, query+` ORDER BY name`, args...)
	return list, davErr("objects in range", err)
}

// lockCollection locks the collection row and returns its Seq.
func (db *DB) lockCollection(ctx context.Context, tx *sql.Tx, id int64) (int64, error) {
	var seq int64
	err := tx.QueryRowContext(ctx, db.q(`SELECT seq FROM dav_collections WHERE id = ?`+db.forUpdate()), id).Scan(&seq)
	if notFound(err) {
		return 0, account.ErrNotFound
	}
	return seq, err
}

// bumpCollection raises the collection's Seq and records the change of name.
func (db *DB) bumpCollection(ctx context.Context, tx *sql.Tx, id, seq int64, name string, deleted bool) error {
	if _, err := tx.ExecContext(ctx, db.q(`UPDATE dav_collections SET seq = ? WHERE id = ?`), seq, id); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, db.q(`INSERT INTO dav_changes (collection_id, name, seq, deleted) VALUES (?, ?, ?, ?)
		ON CONFLICT (collection_id, name) DO UPDATE SET seq = excluded.seq, deleted = excluded.deleted`), id, name, seq, deleted)
	return err
}

// etag is new on every write, even of the same bytes: a client holding the
// ETag of an earlier identical version must not overwrite a change made in
// between (the ABA case of If-Match).
func etag(data []byte, seq int64) string {
	sum := sha256.Sum256(data)
	return strconv.FormatInt(seq, 36) + "-" + hex.EncodeToString(sum[:8])
}

// PutObject creates or replaces o.
func (s *DAV) PutObject(ctx context.Context, o *davrec.Object, check func(*davrec.Object) error) (bool, error) {
	db := s.db
	var created bool
	err := db.tx(ctx, func(tx *sql.Tx) error {
		seq, err := db.lockCollection(ctx, tx, o.CollectionID)
		if err != nil {
			return err
		}
		cur, err := db.queryObjects(ctx, tx, false, `collection_id = ? AND name = ?`, o.CollectionID, o.Name)
		if err != nil {
			return err
		}
		var current *davrec.Object
		if len(cur) > 0 {
			current = &cur[0]
		}
		if check != nil {
			if err := check(current); err != nil {
				return err
			}
		}
		if o.UID != "" {
			var other string
			err := tx.QueryRowContext(ctx, db.q(`SELECT name FROM dav_objects WHERE collection_id = ? AND uid = ? AND name <> ?`), o.CollectionID, o.UID, o.Name).Scan(&other)
			if err == nil {
				return &davrec.UIDConflictError{Name: other}
			}
			if !notFound(err) {
				return err
			}
		}
		seq++
		o.ETag = etag(o.Data, seq)
		o.Modified = time.Now().UTC().Truncate(time.Microsecond)
		o.Size = int64(len(o.Data))
		created = current == nil
		if created {
			_, err = tx.ExecContext(ctx, db.q(`INSERT INTO dav_objects (collection_id, name, etag, uid, component, start_at, end_at, modified_at, size, data)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
				o.CollectionID, o.Name, o.ETag, o.UID, o.Component, bound(o.Start), bound(o.End), micros(o.Modified), o.Size, o.Data)
		} else {
			_, err = tx.ExecContext(ctx, db.q(`UPDATE dav_objects SET etag = ?, uid = ?, component = ?, start_at = ?, end_at = ?, modified_at = ?, size = ?, data = ?
				WHERE collection_id = ? AND name = ?`),
				o.ETag, o.UID, o.Component, bound(o.Start), bound(o.End), micros(o.Modified), o.Size, o.Data, o.CollectionID, o.Name)
		}
		if isUnique(err) && strings.Contains(err.Error(), "uid") {
			return &davrec.UIDConflictError{}
		}
		if err != nil {
			return err
		}
		return db.bumpCollection(ctx, tx, o.CollectionID, seq, o.Name, false)
	})
	return created, davErr("put object", err)
}

// DeleteObject deletes an object and leaves a tombstone in the change log.
func (s *DAV) DeleteObject(ctx context.Context, collectionID int64, name string, check func(*davrec.Object) error) error {
	db := s.db
	err := db.tx(ctx, func(tx *sql.Tx) error {
		seq, err := db.lockCollection(ctx, tx, collectionID)
		if err != nil {
			return err
		}
		cur, err := db.queryObjects(ctx, tx, false, `collection_id = ? AND name = ?`, collectionID, name)
		if err != nil {
			return err
		}
		if len(cur) == 0 {
			return account.ErrNotFound
		}
		if check != nil {
			if err := check(&cur[0]); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM dav_objects WHERE collection_id = ? AND name = ?`), collectionID, name); err != nil {
			return err
		}
		return db.bumpCollection(ctx, tx, collectionID, seq+1, name, true)
	})
	return davErr("delete object", err)
}

// Changes returns the change log after since and the current Seq.
func (s *DAV) Changes(ctx context.Context, collectionID int64, since int64) ([]davrec.Change, int64, error) {
	db := s.db
	var seq int64
	var out []davrec.Change
	// One read transaction, so that the changes and the Seq agree.
	err := db.readTx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, db.q(`SELECT seq FROM dav_collections WHERE id = ?`), collectionID).Scan(&seq); err != nil {
			if notFound(err) {
				return account.ErrNotFound
			}
			return err
		}
		rows, err := tx.QueryContext(ctx, db.q(`SELECT name, seq, deleted FROM dav_changes WHERE collection_id = ? AND seq > ? ORDER BY seq`), collectionID, since)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c davrec.Change
			var del dbBool
			if err := rows.Scan(&c.Name, &c.Seq, &del); err != nil {
				return err
			}
			c.Deleted = bool(del)
			out = append(out, c)
		}
		return rows.Err()
	})
	return out, seq, davErr("changes", err)
}

// readTx runs fn in a read-only transaction: one snapshot on PostgreSQL
// (REPEATABLE READ) and on SQLite (a deferred read transaction in WAL mode).
func (db *DB) readTx(ctx context.Context, fn func(*sql.Tx) error) error {
	opts := &sql.TxOptions{ReadOnly: true}
	if db.Dialect == Postgres {
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := db.SQL.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	return fn(tx)
}
