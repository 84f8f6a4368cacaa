package sqlstore

import "context"

// TimeZone implements account.Store.
func (db *DB) TimeZone(ctx context.Context, memberID int64) (string, error) {
	var zone string
	err := db.SQL.QueryRowContext(ctx, db.q(`SELECT time_zone FROM member_prefs WHERE member_id = ?`), memberID).Scan(&zone)
	if notFound(err) {
		return "", nil
	}
	return zone, wrap("time zone", err)
}

// SetTimeZone implements account.Store, in one statement on both engines.
func (db *DB) SetTimeZone(ctx context.Context, memberID int64, zone string, onlyIfUnset bool) error {
	q := `INSERT INTO member_prefs (member_id, time_zone) VALUES (?, ?)
		ON CONFLICT (member_id) DO UPDATE SET time_zone = excluded.time_zone`
	if onlyIfUnset {
		q += ` WHERE member_prefs.time_zone = ''`
	}
	_, err := db.SQL.ExecContext(ctx, db.q(q), memberID, zone)
	return wrap("set time zone", err)
}

// Server settings' statements, shared with LazyMailChanges' transaction.
const (
	serverSettingQuery    = `SELECT value FROM server_settings WHERE name = ?`
	setServerSettingQuery = `INSERT INTO server_settings (name, value) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`
)

// ServerSetting implements account.Store.
func (db *DB) ServerSetting(ctx context.Context, name string) (string, error) {
	var v string
	err := db.SQL.QueryRowContext(ctx, db.q(serverSettingQuery), name).Scan(&v)
	if notFound(err) {
		return "", nil
	}
	return v, wrap("server setting", err)
}

// SetServerSetting implements account.Store.
func (db *DB) SetServerSetting(ctx context.Context, name, value string) error {
	_, err := db.SQL.ExecContext(ctx, db.q(setServerSettingQuery), name, value)
	return wrap("set server setting", err)
}
