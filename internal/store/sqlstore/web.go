package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/web/websession"
)

var _ websession.Store = (*DB)(nil)

// CreateWebSession stores a new web session.
func (db *DB) CreateWebSession(ctx context.Context, r websession.Record) error {
	_, err := db.SQL.ExecContext(ctx, db.q(`INSERT INTO web_sessions
		(id, member_id, created_at, last_seen_at, reauth_at, csrf, user_agent, ip) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
		r.IDHash, r.MemberID, micros(r.CreatedAt), micros(r.LastSeenAt), micros(r.ReauthAt), r.CSRF, r.UserAgent, r.IP)
	return wrap("create web session", err)
}

// WebSession returns the session whose token hashes to idHash.
func (db *DB) WebSession(ctx context.Context, idHash []byte) (websession.Record, error) {
	r := websession.Record{IDHash: idHash}
	var created, seen, reauth int64
	err := db.SQL.QueryRowContext(ctx, db.q(`SELECT member_id, created_at, last_seen_at, reauth_at, csrf, user_agent, ip
		FROM web_sessions WHERE id = ?`), idHash).Scan(&r.MemberID, &created, &seen, &reauth, &r.CSRF, &r.UserAgent, &r.IP)
	if err != nil {
		return websession.Record{}, wrap("web session", notFoundErr(err, "web session"))
	}
	r.CreatedAt, r.LastSeenAt, r.ReauthAt = fromMicros(created), fromMicros(seen), fromMicros(reauth)
	return r, nil
}

// TouchWebSession moves the session's last use forward (never back).
func (db *DB) TouchWebSession(ctx context.Context, idHash []byte, at time.Time) error {
	_, err := db.SQL.ExecContext(ctx, db.q(`UPDATE web_sessions SET last_seen_at = ? WHERE id = ? AND last_seen_at < ?`),
		micros(at), idHash, micros(at))
	return wrap("touch web session", err)
}

// ReauthWebSession records that the main password was entered at at.
func (db *DB) ReauthWebSession(ctx context.Context, idHash []byte, at time.Time) error {
	res, err := db.SQL.ExecContext(ctx, db.q(`UPDATE web_sessions SET reauth_at = ?, last_seen_at = ? WHERE id = ?`),
		micros(at), micros(at), idHash)
	if err != nil {
		return wrap("reauth web session", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return wrap("reauth web session", err)
	} else if n == 0 {
		return fmt.Errorf("web session: %w", account.ErrNotFound)
	}
	return nil
}

// DeleteWebSession signs one session out.
func (db *DB) DeleteWebSession(ctx context.Context, idHash []byte) error {
	_, err := db.SQL.ExecContext(ctx, db.q(`DELETE FROM web_sessions WHERE id = ?`), idHash)
	return wrap("delete web session", err)
}

// DeleteMemberWebSessions deletes every session of the member but keep.
func (db *DB) DeleteMemberWebSessions(ctx context.Context, memberID int64, keep []byte) (int64, error) {
	if keep == nil {
		keep = []byte{} // matches no id: every id is 32 bytes
	}
	res, err := db.SQL.ExecContext(ctx, db.q(`DELETE FROM web_sessions WHERE member_id = ? AND id <> ?`), memberID, keep)
	if err != nil {
		return 0, wrap("delete member web sessions", err)
	}
	n, err := res.RowsAffected()
	return n, wrap("delete member web sessions", err)
}

// PruneWebSessions deletes expired sessions.
func (db *DB) PruneWebSessions(ctx context.Context, idleBefore, createdBefore time.Time) (int64, error) {
	res, err := db.SQL.ExecContext(ctx, db.q(`DELETE FROM web_sessions WHERE last_seen_at < ? OR created_at < ?`),
		micros(idleBefore), micros(createdBefore))
	if err != nil {
		return 0, wrap("prune web sessions", err)
	}
	n, err := res.RowsAffected()
	return n, wrap("prune web sessions", err)
}
