package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/postern/postern/internal/account"
)

// An alias and a member never share an address. The two tables cannot
// share a unique index, so each insert checks the other table in a
// transaction that excludes the other insert: on SQLite every transaction
// begins IMMEDIATE and holds the database's write lock; on PostgreSQL both
// CreateMember and AddAliasTargets first lock the domain's row FOR NO KEY
// UPDATE, so that two of them in one domain queue up, and the check that
// follows (a new snapshot per statement under READ COMMITTED) sees what the
// other committed. NO KEY UPDATE does not conflict with the KEY SHARE lock
// that inserting a row referring to the domain takes.
func (db *DB) lockDomain(ctx context.Context, tx *sql.Tx, domainID int64) error {
	q := `SELECT id FROM domains WHERE id = ?`
	if db.Dialect == Postgres {
		q += ` FOR NO KEY UPDATE`
	}
	var id int64
	if err := tx.QueryRowContext(ctx, db.q(q), domainID).Scan(&id); err != nil {
		if notFound(err) {
			return fmt.Errorf("domain %d: %w", domainID, account.ErrNotFound)
		}
		return err
	}
	return nil
}

// exists runs a SELECT COUNT(*) query and reports whether it counted a row.
func (db *DB) exists(ctx context.Context, tx *sql.Tx, query string, args ...any) (bool, error) {
	var n int
	err := tx.QueryRowContext(ctx, db.q(query), args...).Scan(&n)
	return n > 0, err
}

// AddAliasTargets creates the alias unless it exists and adds the targets.
func (db *DB) AddAliasTargets(ctx context.Context, domainID int64, address string, memberIDs []int64, limit int, at time.Time, fx ...account.Effects) (bool, error) {
	var created bool
	err := db.tx(ctx, func(tx *sql.Tx) error {
		created = false
		if err := db.lockDomain(ctx, tx, domainID); err != nil {
			return err
		}
		if taken, err := db.exists(ctx, tx, `SELECT COUNT(*) FROM members WHERE email = ?`, address); err != nil {
			return err
		} else if taken {
			return account.Errorf(account.ECONFLICT, "%s is a member's address: an alias cannot have it.", address)
		}
		var id int64
		err := tx.QueryRowContext(ctx, db.q(`SELECT id FROM aliases WHERE address = ?`), address).Scan(&id)
		if notFound(err) {
			created = true
			err = tx.QueryRowContext(ctx, db.q(`INSERT INTO aliases (domain_id, address, created_at) VALUES (?, ?, ?) RETURNING id`),
				domainID, address, micros(at)).Scan(&id)
		}
		if err != nil {
			return err
		}
		for _, m := range memberIDs {
			_, err := tx.ExecContext(ctx, db.q(`INSERT INTO alias_targets (alias_id, member_id) VALUES (?, ?) ON CONFLICT DO NOTHING`), id, m)
			if err != nil && isForeignKey(err) {
				return fmt.Errorf("member %d: %w", m, account.ErrNotFound)
			} else if err != nil {
				return err
			}
		}
		var n int
		if err := tx.QueryRowContext(ctx, db.q(`SELECT COUNT(*) FROM alias_targets WHERE alias_id = ?`), id).Scan(&n); err != nil {
			return err
		}
		if n > limit {
			return account.Errorf(account.ELIMIT, "An alias delivers to at most %d members; %s would have %d.", limit, address, n)
		}
		return db.writeAllEffects(ctx, tx, fx)
	})
	return created, wrap("add alias targets", err)
}

// RemoveAliasTargets removes targets from the alias, all or nothing.
func (db *DB) RemoveAliasTargets(ctx context.Context, address string, memberIDs []int64, fx ...account.Effects) error {
	return wrap("remove alias targets", db.tx(ctx, func(tx *sql.Tx) error {
		var id int64
		if err := tx.QueryRowContext(ctx, db.q(`SELECT id FROM aliases WHERE address = ?`), address).Scan(&id); err != nil {
			return notFoundErr(err, "alias")
		}
		changed := account.Errorf(account.ECONFLICT, "The alias %s changed meanwhile; nothing was removed, try again.", address)
		for _, m := range memberIDs {
			if err := db.execOne(ctx, tx, changed, `DELETE FROM alias_targets WHERE alias_id = ? AND member_id = ?`, id, m); err != nil {
				return err
			}
		}
		return db.writeAllEffects(ctx, tx, fx)
	}))
}

// DeleteAlias deletes the alias and its targets.
func (db *DB) DeleteAlias(ctx context.Context, address string, fx ...account.Effects) error {
	return wrap("delete alias", db.execWithEffects(ctx, fmt.Errorf("alias: %w", account.ErrNotFound), fx,
		`DELETE FROM aliases WHERE address = ?`, address))
}

// aliasQuery selects aliases (a, of domain ad) with their targets, one row
// per target (a row of NULL member columns for an alias without targets).
const aliasQuery = `SELECT a.id, a.domain_id, a.address, a.created_at, ` + memberCols + `
	FROM aliases a JOIN domains ad ON ad.id = a.domain_id
	LEFT JOIN alias_targets t ON t.alias_id = a.id
	LEFT JOIN members m ON m.id = t.member_id
	LEFT JOIN domains d ON d.id = m.domain_id`

func (db *DB) aliases(ctx context.Context, where string, args ...any) ([]account.Alias, error) {
	rows, err := db.SQL.QueryContext(ctx, db.q(aliasQuery+` WHERE `+where+` ORDER BY a.address, m.email`), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []account.Alias
	for rows.Next() {
		var a account.Alias
		var created int64
		var m optMember
		if err := rows.Scan(append([]any{&a.ID, &a.DomainID, &a.Address, &created}, m.dest()...)...); err != nil {
			return nil, err
		}
		if len(out) == 0 || out[len(out)-1].ID != a.ID {
			a.CreatedAt = fromMicros(created)
			out = append(out, a)
		}
		if mm, ok := m.member(); ok {
			out[len(out)-1].Targets = append(out[len(out)-1].Targets, mm)
		}
	}
	return out, rows.Err()
}

// Alias returns the alias address with its targets.
func (db *DB) Alias(ctx context.Context, address string) (account.Alias, error) {
	list, err := db.aliases(ctx, `a.address = ?`, address)
	if err != nil {
		return account.Alias{}, fmt.Errorf("alias: %w", err)
	}
	if len(list) == 0 {
		return account.Alias{}, fmt.Errorf("alias: %w", account.ErrNotFound)
	}
	return list[0], nil
}

// Aliases lists the aliases of domain (all when ""), by address.
func (db *DB) Aliases(ctx context.Context, domain string) ([]account.Alias, error) {
	where, args := `1 = 1`, []any(nil)
	if domain != "" {
		where, args = `ad.name = ?`, []any{domain}
	}
	list, err := db.aliases(ctx, where, args...)
	return list, wrap("aliases", err)
}

// SetCatchAll sets (memberID > 0) or clears the domain's catch-all member.
func (db *DB) SetCatchAll(ctx context.Context, domainID, memberID int64, fx ...account.Effects) error {
	var m any
	if memberID > 0 {
		m = memberID
	}
	err := db.execWithEffects(ctx, fmt.Errorf("domain %d: %w", domainID, account.ErrNotFound), fx,
		`UPDATE domains SET catchall_member_id = ? WHERE id = ?`, m, domainID)
	if err != nil && isForeignKey(err) {
		return fmt.Errorf("catch-all member %d: %w", memberID, account.ErrNotFound)
	}
	return wrap("set catch-all", err)
}

// LookupAddresses answers in one statement: the domain with its catch-all
// member (kind 0, a row whenever the domain exists), members whose address
// is asked (kind 1) and aliases whose address is asked, one row per target
// (kind 2). Each variant (one or two addresses, as a plus tag asks) is
// prepared once: every RCPT runs it.
func (db *DB) LookupAddresses(ctx context.Context, domain string, addresses []string) (account.AddressLookup, error) {
	if len(addresses) == 0 {
		return account.AddressLookup{}, fmt.Errorf("lookup addresses: no address")
	}
	in := `?` + strings.Repeat(`, ?`, len(addresses)-1)
	query := db.q(`SELECT 0, cd.name, ` + memberCols + ` FROM domains cd
		LEFT JOIN members m ON m.id = cd.catchall_member_id LEFT JOIN domains d ON d.id = m.domain_id
		WHERE cd.name = ?
	UNION ALL
	SELECT 1, m.email, ` + memberCols + memberFrom + ` WHERE m.email IN (` + in + `)
	UNION ALL
	SELECT 2, a.address, ` + memberCols + ` FROM aliases a
		LEFT JOIN alias_targets t ON t.alias_id = a.id
		LEFT JOIN members m ON m.id = t.member_id LEFT JOIN domains d ON d.id = m.domain_id
		WHERE a.address IN (` + in + `)
	ORDER BY 1, 2, 5`)
	args := []any{domain}
	for range 2 {
		for _, a := range addresses {
			args = append(args, a)
		}
	}
	var l account.AddressLookup
	stmt, err := db.prepared(ctx, query)
	if err != nil {
		return l, fmt.Errorf("lookup addresses: %w", err)
	}
	rows, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		return l, fmt.Errorf("lookup addresses: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var kind int
		var addr string
		var m optMember
		if err := rows.Scan(append([]any{&kind, &addr}, m.dest()...)...); err != nil {
			return l, fmt.Errorf("lookup addresses: %w", err)
		}
		mm, ok := m.member()
		switch {
		case kind == 0:
			l.Domain = true
			if ok {
				l.CatchAll = &mm
			}
		case len(l.Addresses) == 0 || l.Addresses[len(l.Addresses)-1].Address != addr || l.Addresses[len(l.Addresses)-1].Alias != (kind == 2):
			l.Addresses = append(l.Addresses, account.Address{Address: addr, Alias: kind == 2})
			fallthrough
		default:
			if ok {
				last := &l.Addresses[len(l.Addresses)-1]
				last.Members = append(last.Members, mm)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return account.AddressLookup{}, fmt.Errorf("lookup addresses: %w", err)
	}
	return l, nil
}

// optMember scans memberCols from the nullable side of a LEFT JOIN.
type optMember struct {
	id, domainID, created, domainCreated sql.NullInt64
	email, name, hash, state             sql.NullString
	use, mustChange                      dbBool
	pol                                  policyDest
}

func (o *optMember) dest() []any {
	return append(append([]any{&o.id, &o.domainID, &o.email, &o.name, &o.hash, &o.use, &o.state, &o.created, &o.domainCreated}, o.pol.dest()...), &o.mustChange)
}

func (o *optMember) member() (account.Member, bool) {
	if !o.id.Valid {
		return account.Member{}, false
	}
	return account.Member{ID: o.id.Int64, DomainID: o.domainID.Int64, Email: o.email.String, Name: o.name.String,
		PasswordHash: o.hash.String, UseAppPasswords: bool(o.use), State: account.State(o.state.String),
		CreatedAt: fromMicros(o.created.Int64), DomainCreatedAt: fromMicros(o.domainCreated.Int64), Security: o.pol.policy(),
		MustChangePassword: bool(o.mustChange)}, true
}
