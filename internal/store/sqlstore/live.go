package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/postern/postern/internal/account"
)

// The live third-party sessions every node publishes (account.LiveSessionStore).

var _ account.LiveSessionStore = (*DB)(nil)

// liveColumns are written per session; livePerInsert keeps one statement
// under SQLite's parameter limit.
const (
	liveColumns   = 8
	livePerInsert = 100
)

// PublishSessions implements account.LiveSessionStore.
func (db *DB) PublishSessions(ctx context.Context, node string, at, staleBefore time.Time, full bool, opened []account.LiveSession, closed []int64) (bool, error) {
	var known bool
	err := db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.q(`UPDATE live_nodes SET heartbeat_at = ? WHERE node = ?`), micros(at), node)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if known = n > 0; !known {
			if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO live_nodes (node, heartbeat_at) VALUES (?, ?)`), node, micros(at)); err != nil {
				return err
			}
		}
		// The dead nodes' sessions, then the dead nodes: whichever node
		// beats first after a crash cleans up after it.
		if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM live_sessions WHERE node IN (SELECT node FROM live_nodes WHERE heartbeat_at < ?)`), micros(staleBefore)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM live_nodes WHERE heartbeat_at < ?`), micros(staleBefore)); err != nil {
			return err
		}
		if full {
			if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM live_sessions WHERE node = ?`), node); err != nil {
				return err
			}
		}
		for chunk := range slices.Chunk(closed, livePerInsert) {
			args := append([]any{node}, int64Args(chunk)...)
			if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM live_sessions WHERE node = ? AND id IN (`+placeholders(len(chunk))+`)`), args...); err != nil {
				return err
			}
		}
		for chunk := range slices.Chunk(opened, livePerInsert) {
			var b strings.Builder
			b.WriteString(`INSERT INTO live_sessions (node, id, member_id, protocol, ip, client, app_password_id, started_at) VALUES `)
			args := make([]any, 0, len(chunk)*liveColumns)
			for i, s := range chunk {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString(`(?, ?, ?, ?, ?, ?, ?, ?)`)
				args = append(args, node, s.ID, s.MemberID, s.Protocol, s.IP, s.Client, s.AppPasswordID, micros(s.StartedAt))
			}
			// A session published twice (a full publication racing a
			// delta) keeps its first row.
			b.WriteString(` ON CONFLICT (node, id) DO NOTHING`)
			if _, err := tx.ExecContext(ctx, db.q(b.String()), args...); err != nil {
				return err
			}
		}
		return nil
	})
	return known, wrap("publish live sessions", err)
}

// ForgetNode implements account.LiveSessionStore.
func (db *DB) ForgetNode(ctx context.Context, node string) error {
	return wrap("forget node", db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM live_sessions WHERE node = ?`), node); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, db.q(`DELETE FROM live_nodes WHERE node = ?`), node)
		return err
	}))
}

// LiveSessionsOf implements account.LiveSessionStore.
func (db *DB) LiveSessionsOf(ctx context.Context, memberID int64, aliveAfter time.Time) ([]account.LiveSession, error) {
	rows, err := db.SQL.QueryContext(ctx, db.q(`SELECT s.node, s.id, s.member_id, s.protocol, s.ip, s.client, s.app_password_id,
		COALESCE(a.name, ''), s.started_at
		FROM live_sessions s JOIN live_nodes n ON n.node = s.node
		LEFT JOIN app_passwords a ON a.id = s.app_password_id AND s.app_password_id <> ''
		WHERE s.member_id = ? AND n.heartbeat_at >= ?
		ORDER BY s.started_at, s.node, s.id`), memberID, micros(aliveAfter))
	if err != nil {
		return nil, fmt.Errorf("live sessions: %w", err)
	}
	defer rows.Close()
	var out []account.LiveSession
	for rows.Next() {
		var s account.LiveSession
		var started int64
		if err := rows.Scan(&s.Node, &s.ID, &s.MemberID, &s.Protocol, &s.IP, &s.Client, &s.AppPasswordID, &s.AppName, &started); err != nil {
			return nil, fmt.Errorf("live sessions: %w", err)
		}
		s.StartedAt = fromMicros(started)
		out = append(out, s)
	}
	return out, wrap("live sessions", rows.Err())
}
