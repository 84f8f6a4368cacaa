package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/text/unicode/norm"

	"github.com/postern/postern/internal/account"
)

// Administering members (account.MemberAdminStore).

// searchKey is a display name as SearchMembers compares it (members.name_key):
// compatibility forms folded (fullwidth letters), lower case, by Go's
// Unicode tables on both engines.
func searchKey(s string) string { return strings.ToLower(norm.NFKC.String(strings.TrimSpace(s))) }

// bytewise is the collation that orders and compares text by bytes: SQLite's
// default, PostgreSQL's "C" (the indexes of migration 0025 use it).
func (db *DB) bytewise() string {
	if db.Dialect == Postgres {
		return ` COLLATE "C"`
	}
	return ""
}

// prefixEnd is the smallest string above every string that starts with p,
// bytewise: p followed by the highest code point.
func prefixEnd(p string) string { return p + "\U0010FFFF" }

// SearchMembers implements account.MemberAdminStore: a keyset page by
// address. Without a query the page is read in address order from an index
// (members_domain_email within domains) and stops at the limit. With one,
// the address prefix and the name prefix are each a range of an index
// (members_email or members_domain_email, members_name_key or
// members_domain_name_key), each branch limited on its own before
// the union is sorted: with the two ranges ORed in one WHERE, the planners
// walked the whole address index in order, filtering (PostgreSQL: 75 ms a
// page at 100,000 members; docs/benchmarks.md).
func (db *DB) SearchMembers(ctx context.Context, q account.MemberSearch) ([]account.Member, error) {
	c := db.bytewise()
	if q.DomainIDs != nil && len(q.DomainIDs) == 0 {
		return nil, nil
	}
	// filter adds the domains and the cursor to where, for the columns of
	// the table named t.
	filter := func(t, where string, args ...any) (string, []any) {
		if q.DomainIDs != nil {
			where += ` AND ` + t + `domain_id IN (?` + strings.Repeat(`, ?`, len(q.DomainIDs)-1) + `)`
			for _, id := range q.DomainIDs {
				args = append(args, id)
			}
		}
		if q.After != "" {
			where += ` AND ` + t + `email` + c + ` > ?`
			args = append(args, q.After)
		}
		return where, args
	}
	var query string
	var args []any
	if q.Query == "" {
		where, fargs := filter(`m.`, `1 = 1`)
		query = `SELECT ` + memberCols + memberFrom + ` WHERE ` + where + ` ORDER BY m.email` + c + ` LIMIT ?`
		args = append(fargs, q.Limit)
	} else {
		addr, name := strings.ToLower(q.Query), searchKey(q.Query)
		branch := func(col, prefix string) string {
			where, fargs := filter(``, col+c+` >= ? AND `+col+c+` < ?`, prefix, prefixEnd(prefix))
			args = append(append(args, fargs...), q.Limit)
			return `SELECT id, email FROM (SELECT id, email FROM members WHERE ` + where + ` ORDER BY email` + c + ` LIMIT ?) AS b`
		}
		union := branch(`email`, addr) + ` UNION ` + branch(`name_key`, name)
		query = `SELECT ` + memberCols + ` FROM (` + union + `) AS x JOIN members m ON m.id = x.id JOIN domains d ON d.id = m.domain_id` +
			` ORDER BY m.email` + c + ` LIMIT ?`
		args = append(args, q.Limit)
	}
	rows, err := db.SQL.QueryContext(ctx, db.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("search members: %w", err)
	}
	defer rows.Close()
	var out []account.Member
	for rows.Next() {
		var m account.Member
		if err := scanMember(rows, &m); err != nil {
			return nil, fmt.Errorf("search members: %w", err)
		}
		out = append(out, m)
	}
	return out, wrap("search members", rows.Err())
}

// addressesPerQuery keeps an IN list well under both engines' parameter limits.
const addressesPerQuery = 500

// TakenAddresses implements account.MemberAdminStore.
func (db *DB) TakenAddresses(ctx context.Context, emails []string) (map[string]string, error) {
	out := map[string]string{}
	for chunk := range slices.Chunk(emails, addressesPerQuery) {
		if err := db.takenAddresses(ctx, db.SQL, chunk, out); err != nil {
			return nil, fmt.Errorf("taken addresses: %w", err)
		}
	}
	return out, nil
}

// querier is *sql.DB or *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (db *DB) takenAddresses(ctx context.Context, qr querier, emails []string, out map[string]string) error {
	if len(emails) == 0 {
		return nil
	}
	in := `?` + strings.Repeat(`, ?`, len(emails)-1)
	args := make([]any, 0, 2*len(emails))
	for range 2 {
		for _, e := range emails {
			args = append(args, e)
		}
	}
	rows, err := qr.QueryContext(ctx, db.q(`SELECT email, '`+account.TakenByMember+`' FROM members WHERE email IN (`+in+`)
		UNION ALL SELECT address, '`+account.TakenByAlias+`' FROM aliases WHERE address IN (`+in+`)`), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var addr, by string
		if err := rows.Scan(&addr, &by); err != nil {
			return err
		}
		out[addr] = by
	}
	return rows.Err()
}

// memberColumnsPerRow is what insertMembers binds per member.
const memberColumnsPerRow = 9

// insertMembers inserts ms with one statement and sets the ID of each one
// inserted; a member whose address another member has keeps ID 0. The
// caller has locked the members' domains and checked the aliases.
func (db *DB) insertMembers(ctx context.Context, tx *sql.Tx, ms []*account.Member) error {
	if len(ms) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString(`INSERT INTO members (domain_id, email, name, name_key, password_hash, use_app_passwords, state, created_at, must_change_password) VALUES `)
	args := make([]any, 0, len(ms)*memberColumnsPerRow)
	byEmail := make(map[string]*account.Member, len(ms))
	for i, m := range ms {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?)")
		if m.CreatedAt.IsZero() {
			m.CreatedAt = time.Now().UTC()
		}
		if m.State == "" {
			m.State = account.StateActive
		}
		args = append(args, m.DomainID, m.Email, m.Name, searchKey(m.Name), m.PasswordHash, m.UseAppPasswords,
			string(m.State), micros(m.CreatedAt), m.MustChangePassword)
		if byEmail[m.Email] == nil { // the first of one address is the one inserted
			byEmail[m.Email] = m
		}
	}
	b.WriteString(` ON CONFLICT (email) DO NOTHING RETURNING email, id`)
	rows, err := tx.QueryContext(ctx, db.q(b.String()), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var email string
		var id int64
		if err := rows.Scan(&email, &id); err != nil {
			return err
		}
		if m := byEmail[email]; m != nil {
			m.ID = id
		}
	}
	return rows.Err()
}

// importRowsPerInsert keeps one INSERT's parameters under SQLite's limit.
const importRowsPerInsert = 500

// CreateMembers implements account.MemberAdminStore: the domains are locked
// as CreateMember locks them, the aliases checked with one query, and the
// members inserted with multi-row statements; the batch costs one commit.
func (db *DB) CreateMembers(ctx context.Context, ms []*account.Member, fx func(account.Member) account.Effects) ([]error, error) {
	errs := make([]error, len(ms))
	err := db.tx(ctx, func(tx *sql.Tx) error {
		clear(errs)
		for _, m := range ms {
			m.ID = 0
		}
		domains := map[int64]bool{}
		emails := make([]string, 0, len(ms))
		for _, m := range ms {
			domains[m.DomainID] = true
			emails = append(emails, m.Email)
		}
		// In ID order, as every locker of several domains, so that two
		// imports never wait for each other's.
		for _, id := range slices.Sorted(func(yield func(int64) bool) {
			for id := range domains {
				if !yield(id) {
					return
				}
			}
		}) {
			if err := db.lockDomain(ctx, tx, id); err != nil {
				return err
			}
		}
		taken := map[string]string{}
		for chunk := range slices.Chunk(emails, addressesPerQuery) {
			if err := db.takenAddresses(ctx, tx, chunk, taken); err != nil {
				return err
			}
		}
		var insert []*account.Member
		for i, m := range ms {
			switch taken[m.Email] {
			case account.TakenByAlias:
				errs[i] = account.Errorf(account.ECONFLICT, "%s is the address of an alias.", m.Email)
			case account.TakenByMember:
				errs[i] = account.Errorf(account.ECONFLICT, "A member %s already exists.", m.Email)
			default:
				insert = append(insert, m)
			}
		}
		for chunk := range slices.Chunk(insert, importRowsPerInsert) {
			if err := db.insertMembers(ctx, tx, chunk); err != nil {
				return err
			}
		}
		for i, m := range ms {
			if errs[i] == nil && m.ID == 0 { // the same address twice in ms
				errs[i] = account.Errorf(account.ECONFLICT, "A member %s already exists.", m.Email)
			}
			if errs[i] == nil && fx != nil {
				if err := db.writeEffects(ctx, tx, fx(*m)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, wrap("create members", err)
	}
	return errs, nil
}

// deleteWebSessions signs the member out of every browser and API client.
func (db *DB) deleteWebSessions(ctx context.Context, ex execer, memberID int64) (int64, error) {
	res, err := ex.ExecContext(ctx, db.q(`DELETE FROM web_sessions WHERE member_id = ?`), memberID)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// RenameMember implements account.MemberAdminStore. The new address is
// checked against aliases and members under the lock of its domain, as
// CreateMember checks; with keepAlias the old domain is locked too (in ID
// order), since an alias is created there.
func (db *DB) RenameMember(ctx context.Context, memberID, domainID int64, email string, keepAlias bool, at time.Time, fx account.Effects) error {
	err := db.memberTx(ctx, memberID, func(tx *sql.Tx) error {
		var old string
		var oldDomain int64
		if err := tx.QueryRowContext(ctx, db.q(`SELECT email, domain_id FROM members WHERE id = ?`), memberID).Scan(&old, &oldDomain); err != nil {
			return notFoundErr(err, "member")
		}
		lock := []int64{domainID}
		if keepAlias && oldDomain != domainID {
			lock = append(lock, oldDomain)
			slices.Sort(lock)
		}
		for _, id := range lock {
			if err := db.lockDomain(ctx, tx, id); err != nil {
				return err
			}
		}
		taken := map[string]string{}
		if err := db.takenAddresses(ctx, tx, []string{email}, taken); err != nil {
			return err
		}
		switch taken[email] {
		case account.TakenByAlias:
			return account.Errorf(account.ECONFLICT, "%s is the address of an alias: delete the alias first ('postern alias delete %s').", email, email)
		case account.TakenByMember:
			return account.Errorf(account.ECONFLICT, "A member %s already exists.", email)
		}
		if _, err := tx.ExecContext(ctx, db.q(`UPDATE members SET email = ?, domain_id = ? WHERE id = ?`), email, domainID, memberID); err != nil {
			return err
		}
		if keepAlias {
			var aliasID int64
			if err := tx.QueryRowContext(ctx, db.q(`INSERT INTO aliases (domain_id, address, created_at) VALUES (?, ?, ?) RETURNING id`),
				oldDomain, old, micros(at)).Scan(&aliasID); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO alias_targets (alias_id, member_id) VALUES (?, ?)`), aliasID, memberID); err != nil {
				return err
			}
		}
		if _, err := db.deleteWebSessions(ctx, tx, memberID); err != nil {
			return err
		}
		return db.writeEffects(ctx, tx, fx)
	})
	return wrap("rename member", err)
}

// DeleteMember implements account.MemberAdminStore. Every table that refers
// to a member deletes its rows with it (ON DELETE CASCADE); the member's
// messages are deleted first, explicitly, because each refers to a body
// that the cascade deletes too, and PostgreSQL could check that reference
// before the cascade has reached the message.
func (db *DB) DeleteMember(ctx context.Context, memberID int64, fx account.Effects) error {
	err := db.memberTx(ctx, memberID, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM mail_messages WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE member_id = ?)`), memberID); err != nil {
			return err
		}
		if err := db.execOne(ctx, tx, memberMissing(memberID), `DELETE FROM members WHERE id = ?`, memberID); err != nil {
			return err
		}
		return db.writeEffects(ctx, tx, fx)
	})
	return wrap("delete member", err)
}

// SetOneTimePassword implements account.MemberAdminStore.
func (db *DB) SetOneTimePassword(ctx context.Context, memberID int64, hash string, fx account.Effects) error {
	err := db.memberTx(ctx, memberID, func(tx *sql.Tx) error {
		if err := db.execOne(ctx, tx, memberMissing(memberID), `UPDATE members SET password_hash = ?, must_change_password = TRUE WHERE id = ?`, hash, memberID); err != nil {
			return err
		}
		if _, err := db.deleteWebSessions(ctx, tx, memberID); err != nil {
			return err
		}
		return db.writeEffects(ctx, tx, fx)
	})
	return wrap("set one-time password", err)
}

// DeleteAppPasswords implements account.MemberAdminStore.
func (db *DB) DeleteAppPasswords(ctx context.Context, memberID int64, ids []string, fx account.Effects) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	var n int64
	err := db.memberTx(ctx, memberID, func(tx *sql.Tx) error {
		args := []any{memberID}
		for _, id := range ids {
			args = append(args, id)
		}
		res, err := tx.ExecContext(ctx, db.q(`DELETE FROM app_passwords WHERE member_id = ? AND id IN (?`+strings.Repeat(`, ?`, len(ids)-1)+`)`), args...)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		return db.writeEffects(ctx, tx, fx)
	})
	return int(n), wrap("delete app passwords", err)
}

// AccountPause implements account.MemberAdminStore.
func (db *DB) AccountPause(ctx context.Context, memberID int64) (account.Pause, error) {
	st, err := db.AuthState(ctx, memberID)
	return account.Pause{Failures: st.Failures, Until: st.PausedUntil}, err
}

// WebSessionsOf implements account.MemberAdminStore.
func (db *DB) WebSessionsOf(ctx context.Context, memberID int64) ([]account.WebSession, error) {
	list, err := db.MemberWebSessions(ctx, memberID)
	if err != nil {
		return nil, err
	}
	out := make([]account.WebSession, len(list))
	for i, r := range list {
		out[i] = account.WebSession{PublicID: r.PublicID, CreatedAt: r.CreatedAt, LastSeenAt: r.LastSeenAt, IP: r.IP, UserAgent: r.UserAgent}
	}
	return out, nil
}

// EndSessions implements account.MemberAdminStore.
func (db *DB) EndSessions(ctx context.Context, memberID int64, fx account.Effects) (int64, error) {
	var n int64
	err := db.tx(ctx, func(tx *sql.Tx) (err error) {
		if n, err = db.deleteWebSessions(ctx, tx, memberID); err != nil {
			return err
		}
		return db.writeEffects(ctx, tx, fx)
	})
	return n, wrap("end sessions", err)
}
