package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"time"

	"github.com/postern/postern/internal/account"
)

// GrantAdmin gives the member the role over domainID (0: the organisation).
func (db *DB) GrantAdmin(ctx context.Context, memberID, domainID int64, at time.Time) error {
	dom := sql.NullInt64{Int64: domainID, Valid: domainID != 0}
	_, err := db.SQL.ExecContext(ctx, db.q(`INSERT INTO admin_roles (member_id, domain_id, created_at) VALUES (?, ?, ?)
		ON CONFLICT DO NOTHING`), memberID, dom, micros(at))
	if err != nil {
		return fmt.Errorf("grant admin: %w", err)
	}
	return nil
}

// RevokeAdmin removes the member's role over domainID, or all of its roles.
func (db *DB) RevokeAdmin(ctx context.Context, memberID, domainID int64, all bool) (int, error) {
	var res sql.Result
	var err error
	switch {
	case all:
		res, err = db.SQL.ExecContext(ctx, db.q(`DELETE FROM admin_roles WHERE member_id = ?`), memberID)
	case domainID == 0:
		res, err = db.SQL.ExecContext(ctx, db.q(`DELETE FROM admin_roles WHERE member_id = ? AND domain_id IS NULL`), memberID)
	default:
		res, err = db.SQL.ExecContext(ctx, db.q(`DELETE FROM admin_roles WHERE member_id = ? AND domain_id = ?`), memberID, domainID)
	}
	if err != nil {
		return 0, fmt.Errorf("revoke admin: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// AdminRoles lists the member's roles (every member's when memberID is 0).
func (db *DB) AdminRoles(ctx context.Context, memberID int64) ([]account.AdminRole, error) {
	q := `SELECT r.member_id, m.email, COALESCE(d.name, ''), r.created_at
		FROM admin_roles r JOIN members m ON m.id = r.member_id LEFT JOIN domains d ON d.id = r.domain_id`
	args := []any{}
	if memberID != 0 {
		q += ` WHERE r.member_id = ?`
		args = append(args, memberID)
	}
	rows, err := db.SQL.QueryContext(ctx, db.q(q+` ORDER BY m.email, COALESCE(d.name, '')`), args...)
	if err != nil {
		return nil, fmt.Errorf("admin roles: %w", err)
	}
	defer rows.Close()
	var out []account.AdminRole
	for rows.Next() {
		var r account.AdminRole
		var at int64
		if err := rows.Scan(&r.MemberID, &r.Email, &r.Domain, &at); err != nil {
			return nil, fmt.Errorf("admin roles: %w", err)
		}
		r.CreatedAt = fromMicros(at)
		out = append(out, r)
	}
	return out, rows.Err()
}
