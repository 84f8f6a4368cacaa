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

// CountMembers returns how many members the domain has.
func (db *DB) CountMembers(ctx context.Context, domainID int64) (int, error) {
	var n int
	if err := db.SQL.QueryRowContext(ctx, db.q(`SELECT COUNT(*) FROM members WHERE domain_id = ?`), domainID).Scan(&n); err != nil {
		return 0, fmt.Errorf("count members: %w", err)
	}
	return n, nil
}

// DomainContents implements account.DomainStore, in one statement.
func (db *DB) DomainContents(ctx context.Context, domainID int64) (account.DomainContents, error) {
	var c account.DomainContents
	err := db.SQL.QueryRowContext(ctx, db.q(`SELECT
		(SELECT COUNT(*) FROM members WHERE domain_id = ?),
		(SELECT COUNT(*) FROM aliases WHERE domain_id = ?),
		(SELECT COUNT(*) FROM mail_messages WHERE mailbox_id IN
			(SELECT b.id FROM mailboxes b JOIN members m ON m.id = b.member_id WHERE m.domain_id = ?))`),
		domainID, domainID, domainID).Scan(&c.Members, &c.Aliases, &c.Messages)
	if err != nil {
		return c, fmt.Errorf("domain contents: %w", err)
	}
	return c, nil
}

// DeleteDomain deletes the domain with its aliases, DKIM keys and admin
// roles, unless it has members (ECONFLICT): the check holds the domain's
// lock, which CreateMember takes too, so no member is added meanwhile.
func (db *DB) DeleteDomain(ctx context.Context, domainID int64, fx ...account.Effects) error {
	return wrap("delete domain", db.tx(ctx, func(tx *sql.Tx) error {
		if err := db.lockDomain(ctx, tx, domainID); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, db.q(`SELECT COUNT(*) FROM members WHERE domain_id = ?`), domainID).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return account.Errorf(account.ECONFLICT, "The domain still has %d members: delete them first.", n)
		}
		if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM aliases WHERE domain_id = ?`), domainID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM domains WHERE id = ?`), domainID); err != nil {
			return err
		}
		return db.writeAllEffects(ctx, tx, fx)
	}))
}

// lastUse is when an app password was last used, or created when never.
const lastUse = `COALESCE(a.last_used_at, a.created_at)`

// UnusedAppPasswords lists the domain's app passwords unused since before since.
func (db *DB) UnusedAppPasswords(ctx context.Context, domainID int64, since time.Time) ([]account.UnusedAppPassword, error) {
	rows, err := db.SQL.QueryContext(ctx, db.q(`SELECT `+memberCols+`, a.id, a.name, a.created_at, `+lastUse+`, a.expiry_warned_at
		`+memberFrom+` JOIN app_passwords a ON a.member_id = m.id
		WHERE m.domain_id = ? AND `+lastUse+` < ? ORDER BY a.id`), domainID, micros(since))
	if err != nil {
		return nil, fmt.Errorf("unused app passwords: %w", err)
	}
	defer rows.Close()
	var out []account.UnusedAppPassword
	for rows.Next() {
		var p account.UnusedAppPassword
		var created, last int64
		var warned sql.NullInt64
		if err := scanMember(rows, &p.Member, &p.ID, &p.Name, &created, &last, &warned); err != nil {
			return nil, fmt.Errorf("unused app passwords: %w", err)
		}
		p.MemberID, p.CreatedAt, p.LastUse = p.Member.ID, fromMicros(created), fromMicros(last)
		p.Warned = warned.Valid && warned.Int64 >= last
		out = append(out, p)
	}
	return out, rows.Err()
}

// WarnAppPasswordExpiry records the warning unless the password was used
// or warned about since unusedSince; fx goes with the record.
func (db *DB) WarnAppPasswordExpiry(ctx context.Context, id string, unusedSince, at time.Time, fx account.Effects) (bool, error) {
	told := false
	err := db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.q(`UPDATE app_passwords SET expiry_warned_at = ?
			WHERE id = ? AND COALESCE(last_used_at, created_at) <= ?
			AND (expiry_warned_at IS NULL OR expiry_warned_at < COALESCE(last_used_at, created_at))`), micros(at), id, micros(unusedSince))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		told = true
		return db.writeEffects(ctx, tx, fx)
	})
	return told, wrap("warn app password expiry", err)
}

// ExpireAppPassword deletes the app password unless it was used after
// unusedSince; fx goes with the deletion.
func (db *DB) ExpireAppPassword(ctx context.Context, memberID int64, id string, unusedSince time.Time, fx account.Effects) (bool, error) {
	deleted := false
	err := db.memberTx(ctx, memberID, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.q(`DELETE FROM app_passwords
			WHERE id = ? AND member_id = ? AND COALESCE(last_used_at, created_at) < ?`), id, memberID, micros(unusedSince))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		deleted = true
		return db.writeEffects(ctx, tx, fx)
	})
	return deleted, wrap("expire app password", err)
}

// ExpiryLock is the advisory lock that lets one PostgreSQL node at a time
// run the app password expiry.
const ExpiryLock = 7413024

// Exclusive runs fn unless another node holds the PostgreSQL advisory lock
// key (ran false then); on SQLite, one node, it just runs fn. The lock is
// an optimisation, not what makes fn correct: work done twice must be
// harmless.
func (db *DB) Exclusive(ctx context.Context, key int64, fn func(context.Context) error) (ran bool, err error) {
	if db.Dialect != Postgres {
		return true, fn(ctx)
	}
	conn, err := db.SQL.Conn(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	var got bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&got); err != nil {
		return false, fmt.Errorf("advisory lock: %w", err)
	}
	if !got {
		return false, nil
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, key)
	return true, fn(ctx)
}
