package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/davrec"
)

// DAV is the calendar and address book store (davrec.Store) of a DB. A
// type of its own keeps its method names (Collections, Objects, ...) apart
// from the account and mail stores.
//
// Locking: every write to a collection's objects first locks the collection
// row (FOR UPDATE on PostgreSQL; SQLite transactions hold the write lock from
// BEGIN IMMEDIATE), so the Seq counter, the ETag precondition and the UID
// check are serialised per collection. No DAV transaction touches another
// store's rows except by the foreign key to members (a share lock).
type DAV struct{ db *DB }

// DAV returns the DB's DAV store.
func (db *DB) DAV() *DAV { return &DAV{db: db} }

var _ davrec.Store = (*DAV)(nil)

func davErr(op string, err error) error {
	var e *account.Error
	var u *davrec.UIDConflictError
	if err == nil || errors.As(err, &e) || errors.As(err, &u) {
		return err
	}
	return fmt.Errorf("dav store: %s: %w", op, err)
}

const collectionCols = `id, member_id, kind, name, displayname, description, color, components, seq, created_at`

func scanCollection(r rowScanner) (davrec.Collection, error) {
	var c davrec.Collection
	var kind string
	var created int64
	err := r.Scan(&c.ID, &c.MemberID, &kind, &c.Name, &c.DisplayName, &c.Description, &c.Color, &c.Components, &c.Seq, &created)
	c.Kind = davrec.Kind(kind)
	c.CreatedAt = fromMicros(created)
	return c, err
}

// EnsureDefaults creates the member's default collections on first use.
// INSERT ... ON CONFLICT DO NOTHING on dav_accounts makes concurrent first
// uses safe: exactly one transaction creates the defaults.
func (s *DAV) EnsureDefaults(ctx context.Context, memberID int64, defaults []davrec.Collection) error {
	db := s.db
	var one int
	err := db.SQL.QueryRowContext(ctx, db.q(`SELECT 1 FROM dav_accounts WHERE member_id = ?`), memberID).Scan(&one)
	if err == nil {
		return nil
	}
	if !notFound(err) {
		return davErr("defaults", err)
	}
	err = db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.q(`INSERT INTO dav_accounts (member_id) VALUES (?) ON CONFLICT (member_id) DO NOTHING`), memberID)
		if missingMember(err) {
			return account.ErrNotFound
		}
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		for _, c := range defaults {
			c.MemberID = memberID
			if err := db.insertCollection(ctx, tx, &c); err != nil {
				return err
			}
		}
		return nil
	})
	return davErr("defaults", err)
}

func (db *DB) insertCollection(ctx context.Context, tx *sql.Tx, c *davrec.Collection) error {
	c.CreatedAt = time.Now().UTC().Truncate(time.Microsecond)
	c.Seq = 0
	err := tx.QueryRowContext(ctx, db.q(`INSERT INTO dav_collections (member_id, kind, name, displayname, description, color, components, seq, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?) RETURNING id`),
		c.MemberID, string(c.Kind), c.Name, c.DisplayName, c.Description, c.Color, c.Components, micros(c.CreatedAt)).Scan(&c.ID)
	if isUnique(err) {
		return account.Errorf(account.ECONFLICT, "A collection with this name exists.")
	}
	if missingMember(err) {
		return account.ErrNotFound
	}
	return err
}

// Collections lists the member's collections of kind, by name.
func (s *DAV) Collections(ctx context.Context, memberID int64, kind davrec.Kind) ([]davrec.Collection, error) {
	db := s.db
	rows, err := db.SQL.QueryContext(ctx, db.q(`SELECT `+collectionCols+` FROM dav_collections WHERE member_id = ? AND kind = ? ORDER BY id`), memberID, string(kind))
	if err != nil {
		return nil, davErr("collections", err)
	}
	defer rows.Close()
	var out []davrec.Collection
	for rows.Next() {
		c, err := scanCollection(rows)
		if err != nil {
			return nil, davErr("collections", err)
		}
		out = append(out, c)
	}
	return out, davErr("collections", rows.Err())
}

// Collection returns the member's collection of kind called name.
func (s *DAV) Collection(ctx context.Context, memberID int64, kind davrec.Kind, name string) (davrec.Collection, error) {
	db := s.db
	c, err := scanCollection(db.SQL.QueryRowContext(ctx, db.q(`SELECT `+collectionCols+` FROM dav_collections WHERE member_id = ? AND kind = ? AND name = ?`), memberID, string(kind), name))
	if notFound(err) {
		return davrec.Collection{}, account.ErrNotFound
	}
	return c, davErr("collection", err)
}

// CreateCollection inserts c.
func (s *DAV) CreateCollection(ctx context.Context, c *davrec.Collection) error {
	db := s.db
	return davErr("create collection", db.tx(ctx, func(tx *sql.Tx) error { return db.insertCollection(ctx, tx, c) }))
}

// UpdateCollection stores c's properties and raises its Seq, so that
// clients polling getctag see the change.
func (s *DAV) UpdateCollection(ctx context.Context, c davrec.Collection) error {
	db := s.db
	err := db.tx(ctx, func(tx *sql.Tx) error {
		return db.execOne(ctx, tx, account.ErrNotFound, `UPDATE dav_collections SET displayname = ?, description = ?, color = ?, seq = seq + 1 WHERE id = ?`,
			c.DisplayName, c.Description, c.Color, c.ID)
	})
	return davErr("update collection", err)
}

// DeleteCollection deletes a collection; its objects and change log go with
// it (ON DELETE CASCADE), so its sync tokens become invalid.
func (s *DAV) DeleteCollection(ctx context.Context, id int64) error {
	db := s.db
	err := db.tx(ctx, func(tx *sql.Tx) error {
		for _, q := range []string{`DELETE FROM dav_changes WHERE collection_id = ?`, `DELETE FROM dav_objects WHERE collection_id = ?`} {
			if _, err := tx.ExecContext(ctx, db.q(q), id); err != nil {
				return err
			}
		}
		return db.execOne(ctx, tx, account.ErrNotFound, `DELETE FROM dav_collections WHERE id = ?`, id)
	})
	return davErr("delete collection", err)
}
