package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"time"
	"unicode/utf8"
)

// What the ACME client keeps (internal/acme): objects by slash-separated
// key, and leases that keep two nodes from doing the same work at once. The
// store knows nothing of certificates; a missing object is fs.ErrNotExist,
// as the client's storage contract has it.

// ACMEPut stores value at key, replacing what was there.
func (db *DB) ACMEPut(ctx context.Context, key string, value []byte, at time.Time) error {
	if value == nil {
		value = []byte{} // NOT NULL: an empty object is still an object
	}
	_, err := db.SQL.ExecContext(ctx, db.q(`INSERT INTO acme_objects (name, value, modified_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value, modified_at = excluded.modified_at`), key, value, micros(at))
	if err != nil {
		return fmt.Errorf("acme object %s: %w", key, err)
	}
	return nil
}

// ACMEGet returns the value at key and when it was stored.
func (db *DB) ACMEGet(ctx context.Context, key string) ([]byte, time.Time, error) {
	var value []byte
	var at int64
	err := db.SQL.QueryRowContext(ctx, db.q(`SELECT value, modified_at FROM acme_objects WHERE name = ?`), key).Scan(&value, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, time.Time{}, fmt.Errorf("acme object %s: %w", key, fs.ErrNotExist)
	}
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("acme object %s: %w", key, err)
	}
	return value, fromMicros(at), nil
}

// underPrefix matches the names under the folder ? (its length in
// characters is the second argument): substr compares the same way on both
// engines, where a range or LIKE would depend on the collation or on
// escaping '_' and '%'.
const underPrefix = `substr(name, 1, ?) = ?`

// ACMEDelete deletes key and, as a folder, every key under it. Deleting
// what does not exist is no error.
func (db *DB) ACMEDelete(ctx context.Context, key string) error {
	folder := key + "/"
	_, err := db.SQL.ExecContext(ctx, db.q(`DELETE FROM acme_objects WHERE name = ? OR `+underPrefix),
		key, utf8.RuneCountInString(folder), folder)
	if err != nil {
		return fmt.Errorf("delete acme object %s: %w", key, err)
	}
	return nil
}

// ACMEKeys returns every key under the folder prefix ("" for all), in
// byte order (sorted here: PostgreSQL's ORDER BY follows the collation).
func (db *DB) ACMEKeys(ctx context.Context, prefix string) ([]string, error) {
	query, args := `SELECT name FROM acme_objects`, []any(nil)
	if prefix != "" {
		folder := prefix + "/"
		query = `SELECT name FROM acme_objects WHERE ` + underPrefix + ``
		args = []any{utf8.RuneCountInString(folder), folder}
	}
	rows, err := db.SQL.QueryContext(ctx, db.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("list acme objects %s: %w", prefix, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("list acme objects %s: %w", prefix, err)
		}
		out = append(out, name)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list acme objects %s: %w", prefix, err)
	}
	sort.Strings(out)
	return out, nil
}

// ACMETryLock takes the lease name for holder until expires, when nobody
// holds it or its lease ended before now (its holder died). It reports
// whether holder has it. Holder taking again what it holds extends it.
func (db *DB) ACMETryLock(ctx context.Context, name, holder string, now, expires time.Time) (bool, error) {
	// One statement decides: two nodes racing both run it, and the
	// primary key lets exactly one of them insert or take over the row.
	res, err := db.SQL.ExecContext(ctx, db.q(`INSERT INTO acme_locks (name, holder, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE acme_locks.expires_at < ? OR acme_locks.holder = excluded.holder`), name, holder, micros(expires), micros(now))
	if err != nil {
		return false, fmt.Errorf("acme lock %s: %w", name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("acme lock %s: %w", name, err)
	}
	return n == 1, nil
}

// ACMERenewLock extends holder's lease name until expires; it fails when
// holder no longer has it (it expired and another node took it).
func (db *DB) ACMERenewLock(ctx context.Context, name, holder string, expires time.Time) error {
	res, err := db.SQL.ExecContext(ctx, db.q(`UPDATE acme_locks SET expires_at = ? WHERE name = ? AND holder = ?`),
		micros(expires), name, holder)
	if err != nil {
		return fmt.Errorf("renew acme lock %s: %w", name, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		if err == nil {
			err = errors.New("no longer held")
		}
		return fmt.Errorf("renew acme lock %s: %w", name, err)
	}
	return nil
}

// ACMEUnlock ends holder's lease name; a lease another holder has taken
// over is left alone.
func (db *DB) ACMEUnlock(ctx context.Context, name, holder string) error {
	if _, err := db.SQL.ExecContext(ctx, db.q(`DELETE FROM acme_locks WHERE name = ? AND holder = ?`), name, holder); err != nil {
		return fmt.Errorf("acme unlock %s: %w", name, err)
	}
	return nil
}
