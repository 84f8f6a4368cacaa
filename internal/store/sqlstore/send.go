package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/postern/postern/internal/account"
)

// The send log (migration 0017): one row per message accepted over SMTP
// submission, counted over sliding windows for the sending caps
// (account.SendLimits), and the record of the notices that tell a member a
// cap was reached.

// SendLogRetention is how long send_log rows are kept: the longest window
// (a day) and a margin for clocks and for the app password page's 24 hours.
const SendLogRetention = 48 * time.Hour

// recordSendTx adds the message that memberID submitted at at, with the
// app password appPasswordID ("" for the main password), to recipients
// envelope recipients, to the send log. It runs inside the submission's
// delivery transaction, so that a message counts exactly when it is
// accepted.
func (db *DB) recordSendTx(ctx context.Context, tx *sql.Tx, memberID int64, appPasswordID string, recipients int, at time.Time) error {
	_, err := tx.ExecContext(ctx, db.q(`INSERT INTO send_log (member_id, app_password_id, recipients, created_at) VALUES (?, ?, ?, ?)`),
		memberID, appPasswordID, recipients, micros(at))
	if err != nil {
		return fmt.Errorf("record send: %w", err)
	}
	return nil
}

// RecordSend is recordSendTx in a transaction of its own, for tests and
// tools that record a send without delivering it.
func (db *DB) RecordSend(ctx context.Context, memberID int64, appPasswordID string, recipients int, at time.Time) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		return db.recordSendTx(ctx, tx, memberID, appPasswordID, recipients, at)
	})
}

// SendCounts implements account.Store: one statement over the member's rows
// of the last day (index send_log_member), whatever the windows hold. A
// row at exactly now minus the window is outside it.
func (db *DB) SendCounts(ctx context.Context, memberID int64, appPasswordID string, now time.Time) (account.SendCounts, error) {
	hour, day := micros(now.Add(-time.Hour)), micros(now.Add(-24*time.Hour))
	var c account.SendCounts
	var app account.SendUsage
	err := db.SQL.QueryRowContext(ctx, db.q(`SELECT
		COUNT(*),
		COALESCE(SUM(recipients), 0),
		COALESCE(SUM(CASE WHEN created_at > ? THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN created_at > ? THEN recipients ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN app_password_id = ? THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN app_password_id = ? THEN recipients ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN app_password_id = ? AND created_at > ? THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN app_password_id = ? AND created_at > ? THEN recipients ELSE 0 END), 0)
		FROM send_log WHERE member_id = ? AND created_at > ?`),
		hour, hour, appPasswordID, appPasswordID, appPasswordID, hour, appPasswordID, hour, memberID, day,
	).Scan(&c.Member.Day.Messages, &c.Member.Day.Recipients, &c.Member.Hour.Messages, &c.Member.Hour.Recipients,
		&app.Day.Messages, &app.Day.Recipients, &app.Hour.Messages, &app.Hour.Recipients)
	if err != nil {
		return account.SendCounts{}, fmt.Errorf("send counts: %w", err)
	}
	if appPasswordID != "" {
		c.AppPassword = app
	}
	return c, nil
}

// SentByAppPassword implements account.Store.
func (db *DB) SentByAppPassword(ctx context.Context, memberID int64, since time.Time) (map[string]int, error) {
	rows, err := db.SQL.QueryContext(ctx, db.q(`SELECT app_password_id, COUNT(*) FROM send_log
		WHERE member_id = ? AND created_at > ? AND app_password_id <> '' GROUP BY app_password_id`), memberID, micros(since))
	if err != nil {
		return nil, fmt.Errorf("sent by app password: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("sent by app password: %w", err)
		}
		out[id] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sent by app password: %w", err)
	}
	return out, nil
}

// NoteSendLimited implements account.Store. A notice sent recently is found
// by a read, without the write lock: a script refused again and again costs
// no write. Otherwise one upsert decides, under the row's lock on
// PostgreSQL and the database's on SQLite, whether this call is the one
// that tells the member; the message is written in its transaction.
func (db *DB) NoteSendLimited(ctx context.Context, memberID int64, appPasswordID string, at, notBefore time.Time, fx account.Effects) (bool, error) {
	var last int64
	err := db.SQL.QueryRowContext(ctx, db.q(`SELECT notified_at FROM send_limit_notices WHERE member_id = ? AND app_password_id = ?`),
		memberID, appPasswordID).Scan(&last)
	switch {
	case err == nil && last > micros(notBefore):
		return false, nil
	case err != nil && !notFound(err):
		return false, fmt.Errorf("note send limited: %w", err)
	}
	told := false
	err = db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.q(`INSERT INTO send_limit_notices (member_id, app_password_id, notified_at) VALUES (?, ?, ?)
			ON CONFLICT (member_id, app_password_id) DO UPDATE SET notified_at = excluded.notified_at
			WHERE send_limit_notices.notified_at <= ?`), memberID, appPasswordID, micros(at), micros(notBefore))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if told = n == 1; !told {
			return nil
		}
		return db.writeEffects(ctx, tx, fx)
	})
	if err != nil {
		return false, fmt.Errorf("note send limited: %w", err)
	}
	return told, nil
}

// MemberAliases implements account.Store (index alias_targets_member).
func (db *DB) MemberAliases(ctx context.Context, memberID int64) ([]string, error) {
	rows, err := db.SQL.QueryContext(ctx, db.q(`SELECT a.address FROM alias_targets t JOIN aliases a ON a.id = t.alias_id
		WHERE t.member_id = ? ORDER BY a.address`), memberID)
	if err != nil {
		return nil, fmt.Errorf("member aliases: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			return nil, fmt.Errorf("member aliases: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("member aliases: %w", err)
	}
	return out, nil
}

// PruneSendLog deletes the send log's rows and the notices recorded before
// before (SendLogRetention ago: no window reaches them) and returns how many
// rows went.
func (db *DB) PruneSendLog(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	for _, q := range []string{`DELETE FROM send_log WHERE created_at < ?`, `DELETE FROM send_limit_notices WHERE notified_at < ?`} {
		res, err := db.SQL.ExecContext(ctx, db.q(q), micros(before))
		if err != nil {
			return n, fmt.Errorf("prune send log: %w", err)
		}
		k, err := res.RowsAffected()
		if err != nil {
			return n, fmt.Errorf("prune send log: %w", err)
		}
		n += k
	}
	return n, nil
}
