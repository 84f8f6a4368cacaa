package sqlstore

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/authrec"
)

var _ authrec.Store = (*DB)(nil)

// AuthState implements authrec.Store.
func (db *DB) AuthState(ctx context.Context, memberID int64) (authrec.AuthState, error) {
	var failures int
	var paused int64
	var tags []byte
	stmt, err := db.prepared(ctx, db.q(`SELECT failures, paused_until, recent_tags FROM auth_failures WHERE member_id = ?`))
	if err != nil {
		return authrec.AuthState{}, fmt.Errorf("auth state: %w", err)
	}
	err = stmt.QueryRowContext(ctx, memberID).Scan(&failures, &paused, &tags)
	if notFound(err) {
		return authrec.AuthState{}, nil
	} else if err != nil {
		return authrec.AuthState{}, fmt.Errorf("auth state: %w", err)
	}
	return authrec.AuthState{Failures: failures, PausedUntil: microsOrZero(paused), Tags: splitTags(tags)}, nil
}

func microsOrZero(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return fromMicros(us)
}

func splitTags(b []byte) []authrec.PairTag {
	var out []authrec.PairTag
	for len(b) >= len(authrec.PairTag{}) {
		var t authrec.PairTag
		copy(t[:], b)
		out = append(out, t)
		b = b[len(t):]
	}
	return out
}

func joinTags(tags []authrec.PairTag) []byte {
	b := make([]byte, 0, len(tags)*len(authrec.PairTag{}))
	for _, t := range tags {
		b = append(b, t[:]...)
	}
	return b
}

// RecordAuthFailure implements authrec.Store. The row is locked for the
// read-modify-write: SQLite transactions here take the write lock at BEGIN
// (_txlock=immediate), PostgreSQL uses SELECT ... FOR UPDATE after making
// sure the row exists.
func (db *DB) RecordAuthFailure(ctx context.Context, memberID int64, tag authrec.PairTag, now time.Time, limit int, pause time.Duration, onPause account.Effects) (authrec.FailureResult, error) {
	var res authrec.FailureResult
	err := db.memberTx(ctx, memberID, func(tx *sql.Tx) error {
		res = authrec.FailureResult{}
		if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO auth_failures (member_id, failures, paused_until, recent_tags) VALUES (?, 0, 0, ?) ON CONFLICT (member_id) DO NOTHING`),
			memberID, []byte{}); err != nil {
			return err
		}
		sel := `SELECT failures, paused_until, recent_tags, last_failure, alerted_at FROM auth_failures WHERE member_id = ?`
		if db.Dialect == Postgres {
			sel += ` FOR UPDATE`
		}
		var failures int
		var paused, last, alerted int64
		var raw []byte
		if err := tx.QueryRowContext(ctx, db.q(sel), memberID).Scan(&failures, &paused, &raw, &last, &alerted); err != nil {
			return err
		}
		res.Failures = failures
		if paused > micros(now) {
			res.PausedUntil = fromMicros(paused)
			return nil // refused unchecked: not a guess that counts
		}
		tags := splitTags(raw)
		if last < micros(now.Add(-authrec.FailuresForget)) {
			// A quiet day: what came before was a member's typos, not an
			// attack still going on.
			failures, tags = 0, nil
		}
		for _, t := range tags {
			if subtle.ConstantTimeCompare(t[:], tag[:]) == 1 {
				return nil // a stale secret retried: counted once already
			}
		}
		tags = append(tags, tag)
		if len(tags) > authrec.RecentFailures {
			tags = tags[len(tags)-authrec.RecentFailures:]
		}
		res.Counted = true
		failures++
		newPaused := paused
		if failures >= limit {
			// Start the pause and the count afresh: after the pause, another
			// limit failures are needed for the next one.
			res.Paused = true
			res.PausedUntil = now.Add(pause).UTC()
			newPaused = micros(res.PausedUntil)
			failures = 0
			// One message per attack, not one per pause: an attack that
			// goes on all day pauses the account every few minutes.
			res.Alerted = alerted < micros(now.Add(-authrec.AlertEvery))
			if res.Alerted {
				alerted = micros(now)
			}
		}
		res.Failures = failures
		if _, err := tx.ExecContext(ctx, db.q(`UPDATE auth_failures SET failures = ?, paused_until = ?, recent_tags = ?, last_failure = ?, alerted_at = ? WHERE member_id = ?`),
			failures, newPaused, joinTags(tags), micros(now), alerted, memberID); err != nil {
			return err
		}
		switch {
		case res.Alerted:
			return db.writeEffects(ctx, tx, onPause)
		case res.Paused:
			return db.writeEffects(ctx, tx, account.Effects{Audit: onPause.Audit})
		}
		return nil
	})
	if err != nil {
		return authrec.FailureResult{}, fmt.Errorf("record auth failure: %w", err)
	}
	return res, nil
}

// ResetAuthFailures implements authrec.Store.
func (db *DB) ResetAuthFailures(ctx context.Context, memberID int64) error {
	db.CredentialsChanged(memberID) // FailuresOnRecord changes (see memberTx)
	defer db.CredentialsChanged(memberID)
	if _, err := db.SQL.ExecContext(ctx, db.q(`DELETE FROM auth_failures WHERE member_id = ?`), memberID); err != nil {
		return fmt.Errorf("reset auth failures: %w", err)
	}
	return nil
}

// LiftPause implements account.MemberAdminStore: ResetAuthFailures with
// fx in the same transaction.
func (db *DB) LiftPause(ctx context.Context, memberID int64, fx account.Effects) error {
	db.CredentialsChanged(memberID) // as ResetAuthFailures
	defer db.CredentialsChanged(memberID)
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM auth_failures WHERE member_id = ?`), memberID); err != nil {
			return err
		}
		return db.writeEffects(ctx, tx, fx)
	})
	return wrap("lift pause", err)
}

// loginRecordColumns are written per row; rowsPerInsert keeps one statement
// well under SQLite's and PostgreSQL's parameter limits.
const (
	loginRecordColumns = 11
	rowsPerInsert      = 100
)

// AddLoginRecords implements authrec.Store with multi-row INSERTs in one
// transaction: a batch costs one commit (one fsync on SQLite).
func (db *DB) AddLoginRecords(ctx context.Context, recs []authrec.LoginRecord) error {
	if len(recs) == 0 {
		return nil
	}
	err := db.tx(ctx, func(tx *sql.Tx) error {
		for start := 0; start < len(recs); start += rowsPerInsert {
			chunk := recs[start:min(start+rowsPerInsert, len(recs))]
			var b strings.Builder
			b.WriteString(`INSERT INTO login_records (at, member_id, username, protocol, mechanism, ip, tls, result, reason, app_password_id, client) VALUES `)
			args := make([]any, 0, len(chunk)*loginRecordColumns)
			for i, r := range chunk {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
				args = append(args, micros(r.At), r.MemberID, r.Username, r.Protocol, r.Mechanism, r.IP, r.TLS, r.Result, r.Reason, r.AppPasswordID, r.Client)
			}
			if _, err := tx.ExecContext(ctx, db.q(b.String()), args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("add login records: %w", err)
	}
	return nil
}

// LoginRecords returns the member's login records (all members when memberID
// is 0 and all is true), newest first, at most limit.
func (db *DB) LoginRecords(ctx context.Context, memberID int64, all bool, limit int) ([]authrec.LoginRecord, error) {
	q := `SELECT at, member_id, username, protocol, mechanism, ip, tls, result, reason, app_password_id, client FROM login_records`
	args := []any{}
	if !all {
		q += ` WHERE member_id = ?`
		args = append(args, memberID)
	}
	q += ` ORDER BY at DESC, id DESC LIMIT ?`
	args = append(args, limit)
	rows, err := db.SQL.QueryContext(ctx, db.q(q), args...)
	if err != nil {
		return nil, fmt.Errorf("login records: %w", err)
	}
	defer rows.Close()
	var out []authrec.LoginRecord
	for rows.Next() {
		var r authrec.LoginRecord
		var at int64
		if err := rows.Scan(&at, &r.MemberID, &r.Username, &r.Protocol, &r.Mechanism, &r.IP, &r.TLS, &r.Result, &r.Reason, &r.AppPasswordID, &r.Client); err != nil {
			return nil, fmt.Errorf("login records: %w", err)
		}
		r.At = fromMicros(at)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("login records: %w", err)
	}
	return out, nil
}

// PruneLoginRecords implements authrec.Store.
func (db *DB) PruneLoginRecords(ctx context.Context, before time.Time) (int64, error) {
	res, err := db.SQL.ExecContext(ctx, db.q(`DELETE FROM login_records WHERE at < ?`), micros(before))
	if err != nil {
		return 0, fmt.Errorf("prune login records: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
