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
	if r.PublicID == "" {
		return fmt.Errorf("create web session: no public id")
	}
	_, err := db.SQL.ExecContext(ctx, db.q(`INSERT INTO web_sessions
		(id, public_id, member_id, created_at, last_seen_at, reauth_at, csrf, user_agent, ip) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		r.IDHash, r.PublicID, r.MemberID, micros(r.CreatedAt), micros(r.LastSeenAt), micros(r.ReauthAt), r.CSRF, r.UserAgent, r.IP)
	return wrap("create web session", err)
}

// WebSession returns the session whose token hashes to idHash.
func (db *DB) WebSession(ctx context.Context, idHash []byte) (websession.Record, error) {
	r := websession.Record{IDHash: idHash}
	var created, seen, reauth int64
	err := db.SQL.QueryRowContext(ctx, db.q(`SELECT public_id, member_id, created_at, last_seen_at, reauth_at, csrf, user_agent, ip
		FROM web_sessions WHERE id = ?`), idHash).Scan(&r.PublicID, &r.MemberID, &created, &seen, &reauth, &r.CSRF, &r.UserAgent, &r.IP)
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

// MemberWebSessions lists the member's sessions, most recently used first.
func (db *DB) MemberWebSessions(ctx context.Context, memberID int64) ([]websession.Record, error) {
	rows, err := db.SQL.QueryContext(ctx, db.q(`SELECT id, public_id, created_at, last_seen_at, reauth_at, csrf, user_agent, ip
		FROM web_sessions WHERE member_id = ? ORDER BY last_seen_at DESC, created_at DESC`), memberID)
	if err != nil {
		return nil, wrap("member web sessions", err)
	}
	defer rows.Close()
	var out []websession.Record
	for rows.Next() {
		r := websession.Record{MemberID: memberID}
		var created, seen, reauth int64
		if err := rows.Scan(&r.IDHash, &r.PublicID, &created, &seen, &reauth, &r.CSRF, &r.UserAgent, &r.IP); err != nil {
			return nil, wrap("member web sessions", err)
		}
		r.CreatedAt, r.LastSeenAt, r.ReauthAt = fromMicros(created), fromMicros(seen), fromMicros(reauth)
		out = append(out, r)
	}
	return out, wrap("member web sessions", rows.Err())
}

// DeleteMemberWebSession signs out one session of the member, named by its
// public id; the member id in the WHERE clause keeps other members' sessions
// out of reach.
func (db *DB) DeleteMemberWebSession(ctx context.Context, memberID int64, publicID string) error {
	res, err := db.SQL.ExecContext(ctx, db.q(`DELETE FROM web_sessions WHERE member_id = ? AND public_id = ?`), memberID, publicID)
	if err != nil {
		return wrap("delete member web session", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return wrap("delete member web session", err)
	} else if n == 0 {
		return fmt.Errorf("web session: %w", account.ErrNotFound)
	}
	return nil
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

// PutReveal stores a one-time view.
func (db *DB) PutReveal(ctx context.Context, v websession.Reveal) error {
	_, err := db.SQL.ExecContext(ctx, db.q(`INSERT INTO web_reveals (id, session_id, expires_at, sealed) VALUES (?, ?, ?, ?)`),
		v.ID, v.SessionID, micros(v.ExpiresAt), v.Sealed)
	return wrap("put reveal", err)
}

// TakeReveal deletes and returns the session's view id, in one statement:
// of two requests racing for it, one gets it.
func (db *DB) TakeReveal(ctx context.Context, id string, sessionID []byte) (websession.Reveal, error) {
	v := websession.Reveal{ID: id, SessionID: sessionID}
	var expires int64
	err := db.SQL.QueryRowContext(ctx, db.q(`DELETE FROM web_reveals WHERE id = ? AND session_id = ? RETURNING expires_at, sealed`),
		id, sessionID).Scan(&expires, &v.Sealed)
	if err != nil {
		return websession.Reveal{}, wrap("take reveal", notFoundErr(err, "reveal"))
	}
	v.ExpiresAt = fromMicros(expires)
	return v, nil
}
