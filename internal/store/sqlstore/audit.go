package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/postern/postern/internal/account"
)

var _ account.AuditStore = (*DB)(nil)

// writeAudit appends one audit entry inside the change's transaction.
func (db *DB) writeAudit(ctx context.Context, tx *sql.Tx, a account.AuditEntry, now time.Time) error {
	at := a.At
	if at.IsZero() {
		at = now
	}
	_, err := tx.ExecContext(ctx, db.q(`INSERT INTO audit_log (at, action, actor, actor_email, member_id, member_email, domain, ip, client, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		micros(at), a.Action, a.Actor, a.ActorEmail, a.MemberID, a.MemberEmail, a.Domain, a.IP, a.Client, a.Detail)
	if err != nil {
		return fmt.Errorf("audit %s: %w", a.Action, err)
	}
	return nil
}

// auditBranches builds the two halves of the audit log's query: audit
// entries, and login records as entries (action login.RESULT or
// signin.RESULT, the member's address and domain through the members
// table; unknown users' records have none). Each half selects the same
// columns, filtered by q, so that its own index serves it.
func (db *DB) auditBranches(q account.AuditQuery) (audit string, auditArgs []any, login string, loginArgs []any) {
	var aw, lw []string
	if !q.Since.IsZero() {
		aw, auditArgs = append(aw, `at >= ?`), append(auditArgs, micros(q.Since))
		lw, loginArgs = append(lw, `r.at >= ?`), append(loginArgs, micros(q.Since))
	}
	if !q.Until.IsZero() {
		aw, auditArgs = append(aw, `at < ?`), append(auditArgs, micros(q.Until))
		lw, loginArgs = append(lw, `r.at < ?`), append(loginArgs, micros(q.Until))
	}
	if c := q.Before; c != nil {
		// Entries come by at, then source, then id, all descending: each
		// half takes what follows the cursor in that order, before its LIMIT.
		cond, args := cursorCond("at", "id", account.AuditSourceAudit, c)
		aw, auditArgs = append(aw, cond), append(auditArgs, args...)
		cond, args = cursorCond("r.at", "r.id", account.AuditSourceLogin, c)
		lw, loginArgs = append(lw, cond), append(loginArgs, args...)
	}
	if q.Member != "" {
		aw, auditArgs = append(aw, `member_email = ?`), append(auditArgs, q.Member)
		if q.MemberID != 0 {
			lw, loginArgs = append(lw, `r.member_id = ?`), append(loginArgs, q.MemberID)
		} else {
			lw, loginArgs = append(lw, `r.member_id = 0 AND r.username = ?`), append(loginArgs, q.Member)
		}
	}
	if q.Restricted {
		if len(q.Domains) == 0 {
			aw, lw = append(aw, `1 = 0`), append(lw, `1 = 0`)
		} else {
			in := `(?` + strings.Repeat(`, ?`, len(q.Domains)-1) + `)`
			aw, lw = append(aw, `domain IN `+in), append(lw, `d.name IN `+in)
			for _, d := range q.Domains {
				auditArgs, loginArgs = append(auditArgs, d), append(loginArgs, d)
			}
		}
	}
	if q.Action != "" {
		aw = append(aw, `(action = ? OR action LIKE ? ESCAPE '\')`)
		auditArgs = append(auditArgs, q.Action, likePrefix(q.Action+"."))
		kind, result, _ := strings.Cut(q.Action, ".")
		switch kind {
		case account.AuditLogin:
			lw = append(lw, `r.protocol <> 'web'`)
		case account.AuditSignIn:
			lw = append(lw, `r.protocol = 'web'`)
		default:
			lw = append(lw, `1 = 0`)
		}
		if result != "" {
			lw, loginArgs = append(lw, `r.result = ?`), append(loginArgs, result)
		}
	}
	audit = `SELECT 'audit' AS src, id, at, action, actor, actor_email, member_id, member_email, domain, ip, client, detail,
		'' AS protocol, '' AS result FROM audit_log` + where(aw)
	login = `SELECT 'login' AS src, r.id, r.at,
		CASE WHEN r.protocol = 'web' THEN 'signin.' ELSE 'login.' END || r.result AS action,
		CASE WHEN r.result = 'ok' THEN 'member' ELSE 'unknown' END AS actor, r.username AS actor_email, r.member_id,
		COALESCE(m.email, r.username) AS member_email, COALESCE(d.name, '') AS domain, r.ip,
		CASE WHEN r.client = '' THEN r.protocol || ' ' || r.mechanism ELSE r.client END AS client, r.reason AS detail,
		r.protocol, r.result
		FROM login_records r LEFT JOIN members m ON m.id = r.member_id AND r.member_id <> 0
		LEFT JOIN domains d ON d.id = m.domain_id` + where(lw)
	return audit, auditArgs, login, loginArgs
}

// cursorCond selects the rows of the source src (columns at and id) that
// come after c.
func cursorCond(at, id, src string, c *account.AuditCursor) (string, []any) {
	switch {
	case src < c.Source:
		return at + ` <= ?`, []any{micros(c.At)}
	case src > c.Source:
		return at + ` < ?`, []any{micros(c.At)}
	}
	return `(` + at + ` < ? OR ` + at + ` = ? AND ` + id + ` < ?)`, []any{micros(c.At), micros(c.At), c.ID}
}

func where(conds []string) string {
	if len(conds) == 0 {
		return ""
	}
	return ` WHERE ` + strings.Join(conds, ` AND `)
}

// likePrefix is a LIKE pattern (ESCAPE '\') matching what starts with p.
func likePrefix(p string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(p) + "%"
}

// AuditLog implements account.AuditStore: both halves, each sorted and
// limited on its own index, merged and limited again.
func (db *DB) AuditLog(ctx context.Context, q account.AuditQuery) ([]account.AuditEntry, error) {
	audit, aargs, login, largs := db.auditBranches(q)
	order := ` ORDER BY at DESC, src DESC, id DESC`
	query := `SELECT * FROM (SELECT * FROM (` + audit + order + ` LIMIT ?) AS a UNION ALL SELECT * FROM (` + login +
		` ORDER BY r.at DESC, r.id DESC LIMIT ?) AS l) AS x`
	args := append(append(append(aargs, q.Limit), largs...), q.Limit)
	query += order + ` LIMIT ?`
	args = append(args, q.Limit)
	rows, err := db.SQL.QueryContext(ctx, db.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	defer rows.Close()
	var out []account.AuditEntry
	for rows.Next() {
		var e account.AuditEntry
		var at int64
		if err := rows.Scan(&e.Source, &e.ID, &at, &e.Action, &e.Actor, &e.ActorEmail, &e.MemberID, &e.MemberEmail,
			&e.Domain, &e.IP, &e.Client, &e.Detail, &e.Protocol, &e.Result); err != nil {
			return nil, fmt.Errorf("audit log: %w", err)
		}
		e.At = fromMicros(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return out, nil
}

const microsPerDay = int64(24 * time.Hour / time.Microsecond)

// AuditCounts implements account.AuditStore.
func (db *DB) AuditCounts(ctx context.Context, q account.AuditQuery) ([]account.AuditCount, error) {
	q.Member, q.Action, q.Before = "", "", nil
	audit, aargs, login, largs := db.auditBranches(q)
	day := fmt.Sprintf(`(at / %d)`, microsPerDay)
	query := `SELECT ` + day + `, CASE WHEN result = 'ok' THEN 'login' ELSE 'fail' END, CASE WHEN result = 'ok' THEN protocol ELSE '' END, COUNT(*)
		FROM (` + login + `) AS l WHERE result IN ('ok', 'fail') GROUP BY 1, 2, 3
		UNION ALL
		SELECT ` + day + `, 'pause', '', COUNT(*) FROM (` + audit + `) AS a WHERE action = ? GROUP BY 1`
	args := append(append(largs, aargs...), account.AuditAccountPaused)
	rows, err := db.SQL.QueryContext(ctx, db.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("audit counts: %w", err)
	}
	defer rows.Close()
	var out []account.AuditCount
	for rows.Next() {
		var c account.AuditCount
		var d int64
		if err := rows.Scan(&d, &c.Kind, &c.Protocol, &c.N); err != nil {
			return nil, fmt.Errorf("audit counts: %w", err)
		}
		c.Day = fromMicros(d * microsPerDay)
		out = append(out, c)
	}
	return out, rows.Err()
}

// AuditRetention implements account.AuditStore.
func (db *DB) AuditRetention(ctx context.Context) (int, error) {
	var days int
	err := db.SQL.QueryRowContext(ctx, `SELECT retention_days FROM audit_settings WHERE id = 1`).Scan(&days)
	if notFound(err) {
		return 0, nil
	} else if err != nil {
		return 0, fmt.Errorf("audit retention: %w", err)
	}
	return days, nil
}

// SetAuditRetention implements account.AuditStore.
func (db *DB) SetAuditRetention(ctx context.Context, days int, fx account.Effects) error {
	return wrap("set audit retention", db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO audit_settings (id, retention_days) VALUES (1, ?)
			ON CONFLICT (id) DO UPDATE SET retention_days = excluded.retention_days`), days); err != nil {
			return err
		}
		return db.writeEffects(ctx, tx, fx)
	}))
}

// auditPruneLock is the advisory lock that lets one PostgreSQL node prune
// the audit log at a time; the others find it taken and skip their turn.
const auditPruneLock = 7413026

// PruneAuditLog implements account.AuditStore. Retention pruning is the one
// deletion the audit log knows.
func (db *DB) PruneAuditLog(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if db.Dialect == Postgres {
			var got bool
			if err := tx.QueryRowContext(ctx, `SELECT pg_try_advisory_xact_lock($1)`, auditPruneLock).Scan(&got); err != nil {
				return err
			}
			if !got {
				return nil
			}
		}
		res, err := tx.ExecContext(ctx, db.q(`DELETE FROM audit_log WHERE at < ?`), micros(before))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune audit log: %w", err)
	}
	return n, nil
}
