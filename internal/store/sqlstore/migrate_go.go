package sqlstore

import (
	"context"
	"database/sql"
	"strconv"
)

// goMigrations are the migrations that need Go, not only SQL: each runs in
// its migration's transaction, in name order among the .sql files of both
// dialects, and is recorded in schema_migrations like them.
var goMigrations = map[string]func(ctx context.Context, db *DB, tx *sql.Tx) error{
	"0010_app_name_skeleton.go": migrateAppNameKeys,
	"0025_members_name_key.go":  migrateMemberNameKeys,
}

// migrateMemberNameKeys fills in members.name_key (searchKey of the name),
// which migration 0025 added empty.
func migrateMemberNameKeys(ctx context.Context, db *DB, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT id, name FROM members`)
	if err != nil {
		return err
	}
	type key struct {
		id  int64
		key string
	}
	var keys []key
	for rows.Next() {
		var k key
		var name string
		if err := rows.Scan(&k.id, &name); err != nil {
			rows.Close()
			return err
		}
		k.key = searchKey(name)
		keys = append(keys, k)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, k := range keys {
		if _, err := tx.ExecContext(ctx, db.q(`UPDATE members SET name_key = ? WHERE id = ?`), k.key, k.id); err != nil {
			return err
		}
	}
	return nil
}

// migrateAppNameKeys recomputes app_passwords.name_key with nameKey (it was
// the lower-cased name). Existing names that now share a key (a member who
// already has "Thunderbird" and "Тhunderbird") both stay, since deleting a
// working password would break an app: the oldest keeps the plain key,
// and each later one gets the key with "\x01" and its id appended, which no
// name's key can equal (names hold no control characters). A new name
// that looks like either one is refused.
//
// Rows whose key changes first get a temporary key of their own, so that
// no update meets another row's old key in the unique index on the way.
func migrateAppNameKeys(ctx context.Context, db *DB, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT id, member_id, name, name_key FROM app_passwords ORDER BY member_id, created_at, id`)
	if err != nil {
		return err
	}
	type change struct{ id, key string }
	var changes []change
	taken := map[string]bool{} // keys of the current member
	var member int64 = -1
	for rows.Next() {
		var id, name, old string
		var m int64
		if err := rows.Scan(&id, &m, &name, &old); err != nil {
			rows.Close()
			return err
		}
		if m != member {
			member, taken = m, map[string]bool{}
		}
		key := nameKey(name)
		if taken[key] {
			key += "\x01" + id
		}
		taken[key] = true
		if key != old {
			changes = append(changes, change{id, key})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for pass := range 2 {
		for _, c := range changes {
			key := c.key
			if pass == 0 {
				key = "\x01\x01" + strconv.Quote(c.id)
			}
			if _, err := tx.ExecContext(ctx, db.q(`UPDATE app_passwords SET name_key = ? WHERE id = ?`), key, c.id); err != nil {
				return err
			}
		}
	}
	return nil
}
