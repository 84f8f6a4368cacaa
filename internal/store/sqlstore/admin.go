package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/postern/postern/internal/account"
)

// GrantAdmin gives the member the role over domainID (0: the organisation).
func (db *DB) GrantAdmin(ctx context.Context, memberID, domainID int64, at time.Time, fx ...account.Effects) error {
	dom := sql.NullInt64{Int64: domainID, Valid: domainID != 0}
	err := db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.q(`INSERT INTO admin_roles (member_id, domain_id, created_at) VALUES (?, ?, ?)
			ON CONFLICT DO NOTHING`), memberID, dom, micros(at))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err // held already: nothing changed, nothing to record
		}
		return db.writeAllEffects(ctx, tx, fx)
	})
	if err != nil {
		return fmt.Errorf("grant admin: %w", err)
	}
	return nil
}

// RevokeAdmin removes the member's role over domainID, or all of its roles.
func (db *DB) RevokeAdmin(ctx context.Context, memberID, domainID int64, all bool, fx ...account.Effects) (int, error) {
	var n int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var res sql.Result
		var err error
		switch {
		case all:
			res, err = tx.ExecContext(ctx, db.q(`DELETE FROM admin_roles WHERE member_id = ?`), memberID)
		case domainID == 0:
			res, err = tx.ExecContext(ctx, db.q(`DELETE FROM admin_roles WHERE member_id = ? AND domain_id IS NULL`), memberID)
		default:
			res, err = tx.ExecContext(ctx, db.q(`DELETE FROM admin_roles WHERE member_id = ? AND domain_id = ?`), memberID, domainID)
		}
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil || n == 0 {
			return err // none held: nothing changed, nothing to record
		}
		return db.writeAllEffects(ctx, tx, fx)
	})
	if err != nil {
		return 0, fmt.Errorf("revoke admin: %w", err)
	}
	return int(n), nil
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

// SetSecurityPolicy replaces the domain's security policy. Every member's
// credentials change with it, so every credential counter moves (before
// and after the commit, as memberTx does for one member): the credential
// caches of every process drop what they hold.
func (db *DB) SetSecurityPolicy(ctx context.Context, domainID int64, p account.SecurityPolicy, fx account.Effects) error {
	var protocols sql.NullString
	if p.Protocols != nil {
		protocols = sql.NullString{String: strings.Join(p.Protocols, ","), Valid: true}
	}
	err := db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.q(`UPDATE domains SET policy_protocols = ?, policy_allow_cidrs = ?,
			policy_expire_unused_days = ?, policy_force_setting = ? WHERE id = ?`),
			protocols, account.FormatNetworks(p.Networks), p.ExpireUnusedDays, p.ForceAppPasswords, domainID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("domain %d: %w", domainID, account.ErrNotFound)
		}
		if err := db.writeEffects(ctx, tx, fx); err != nil {
			return err
		}
		db.AllCredentialsChanged()
		return nil
	})
	db.AllCredentialsChanged()
	return wrap("set security policy", err)
}

// AllCredentialsChanged moves every credential counter: a change to what
// Credentials returns for many members at once (a domain's policy).
func (db *DB) AllCredentialsChanged() {
	if db.gen != nil {
		for i := range genSlots {
			db.gen.bump(i)
		}
	}
}
