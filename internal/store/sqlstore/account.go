package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/mtibben/confusables"
	"golang.org/x/text/unicode/norm"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/dkim"
)

var _ account.Store = (*DB)(nil)

// memberCols selects a member with its domain's creation time (the policy
// needs it), from members m JOIN domains d.
const memberCols = `m.id, m.domain_id, m.email, m.name, m.password_hash, m.use_app_passwords, m.state, m.created_at, d.created_at,
	` + policyCols + `, m.must_change_password`

// policyCols selects the security policy of domain d (scanPolicy).
const policyCols = `d.policy_protocols, d.policy_allow_cidrs, d.policy_expire_unused_days, d.policy_force_setting`

// policyDest scans policyCols; NULLs come from the nullable side of a LEFT JOIN.
type policyDest struct {
	protocols, networks sql.NullString
	days                sql.NullInt64
	force               dbBool
}

func (p *policyDest) dest() []any { return []any{&p.protocols, &p.networks, &p.days, &p.force} }

func (p *policyDest) policy() account.SecurityPolicy {
	var protocols *string
	if p.protocols.Valid {
		protocols = &p.protocols.String
	}
	return account.DecodeSecurityPolicy(protocols, p.networks.String, int(p.days.Int64), bool(p.force))
}

const memberFrom = ` FROM members m JOIN domains d ON d.id = m.domain_id`

// dbBool scans a boolean column: PostgreSQL BOOLEAN arrives as bool through
// pgx, SQLite stores 0/1 INTEGER and arrives as int64.
type dbBool bool

func (b *dbBool) Scan(v any) error {
	switch x := v.(type) {
	case bool:
		*b = dbBool(x)
	case int64:
		*b = x != 0
	case nil:
		*b = false
	default:
		return fmt.Errorf("sqlstore: cannot scan %T into a boolean", v)
	}
	return nil
}

// rowScanner is *sql.Row or *sql.Rows.
type rowScanner interface{ Scan(dest ...any) error }

func scanMember(r rowScanner, m *account.Member, extra ...any) error {
	var use, mustChange dbBool
	var state string
	var created, domainCreated int64
	var pol policyDest
	dest := append(append([]any{&m.ID, &m.DomainID, &m.Email, &m.Name, &m.PasswordHash, &use, &state, &created, &domainCreated}, pol.dest()...), &mustChange)
	if err := r.Scan(append(dest, extra...)...); err != nil {
		return err
	}
	m.Security = pol.policy()
	m.UseAppPasswords, m.MustChangePassword = bool(use), bool(mustChange)
	m.State = account.State(state)
	m.CreatedAt = fromMicros(created)
	m.DomainCreatedAt = fromMicros(domainCreated)
	return nil
}

// notFoundErr turns sql.ErrNoRows into account.ErrNotFound.
func notFoundErr(err error, what string) error {
	if notFound(err) {
		return fmt.Errorf("%s: %w", what, account.ErrNotFound)
	}
	return err
}

// execer is *sql.DB or *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// execOne runs an UPDATE or DELETE (in ? form) and returns missing when it
// matched no row.
func (db *DB) execOne(ctx context.Context, ex execer, missing error, query string, args ...any) error {
	res, err := ex.ExecContext(ctx, db.q(query), args...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return missing
	}
	return nil
}

// wrap gives a database error the operation's name; *account.Error values
// pass unchanged, their Message is for clients.
func wrap(op string, err error) error {
	var ae *account.Error
	if err == nil || errors.As(err, &ae) {
		return err
	}
	return fmt.Errorf("%s: %w", op, err)
}

// isForeignKey reports whether err is a foreign-key violation.
func isForeignKey(err error) bool {
	s := err.Error()
	return strings.Contains(s, "SQLSTATE 23503") || strings.Contains(s, "FOREIGN KEY constraint failed")
}

// CreateDomain inserts d and sets its ID, with its first DKIM keys when
// SetDomainKeys gave a maker (dkim.go), and writes fx in the same
// transaction.
func (db *DB) CreateDomain(ctx context.Context, d *account.Domain, fx ...account.Effects) error {
	if d.CreatedAt.IsZero() {
		d.CreatedAt = time.Now().UTC()
	}
	var keys []dkim.StoredKey
	if mk := db.domainKeys.Load(); mk != nil {
		var err error
		if keys, err = (*mk)(d.Name); err != nil {
			return fmt.Errorf("create domain: %w", err)
		}
	}
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, db.q(`INSERT INTO domains (name, created_at) VALUES (?, ?) RETURNING id`),
			d.Name, micros(d.CreatedAt)).Scan(&d.ID); err != nil {
			return err
		}
		if keys != nil {
			if err := db.insertDKIMKeys(ctx, tx, d.ID, keys); err != nil {
				return err
			}
		}
		return db.writeAllEffects(ctx, tx, fx)
	})
	if isUnique(err) {
		return &account.Error{Code: account.ECONFLICT, Message: fmt.Sprintf("The domain %s already exists.", d.Name), Err: err}
	}
	if err != nil {
		return fmt.Errorf("create domain: %w", err)
	}
	return nil
}

// domainQuery selects a domain with its catch-all member's address.
const domainQuery = `SELECT d.id, d.name, d.created_at, COALESCE(c.email, ''), d.mail_quota, ` + policyCols + `
	FROM domains d LEFT JOIN members c ON c.id = d.catchall_member_id`

func scanDomain(r rowScanner) (account.Domain, error) {
	var d account.Domain
	var created int64
	var quota sql.NullInt64
	var pol policyDest
	if err := r.Scan(append([]any{&d.ID, &d.Name, &created, &d.CatchAll, &quota}, pol.dest()...)...); err != nil {
		return account.Domain{}, err
	}
	d.CreatedAt, d.MailQuota, d.Security = fromMicros(created), nullInt(quota), pol.policy()
	return d, nil
}

// DomainByName returns the domain named name (lower case).
func (db *DB) DomainByName(ctx context.Context, name string) (account.Domain, error) {
	d, err := scanDomain(db.SQL.QueryRowContext(ctx, db.q(domainQuery+` WHERE d.name = ?`), name))
	return d, notFoundErr(err, "domain")
}

// DomainByID returns the domain with the id.
func (db *DB) DomainByID(ctx context.Context, id int64) (account.Domain, error) {
	d, err := scanDomain(db.SQL.QueryRowContext(ctx, db.q(domainQuery+` WHERE d.id = ?`), id))
	return d, notFoundErr(err, "domain")
}

// Domains lists every domain by name.
func (db *DB) Domains(ctx context.Context) ([]account.Domain, error) {
	rows, err := db.SQL.QueryContext(ctx, domainQuery+` ORDER BY d.name`)
	if err != nil {
		return nil, fmt.Errorf("domains: %w", err)
	}
	defer rows.Close()
	var out []account.Domain
	for rows.Next() {
		d, err := scanDomain(rows)
		if err != nil {
			return nil, fmt.Errorf("domains: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// CreateMember inserts m and sets its ID (and DomainCreatedAt when zero),
// unless a member or an alias has its address: the alias check and the
// insert are atomic (lockDomain, alias.go). fx is written in the same
// transaction; its audit entries without a member are about m.
func (db *DB) CreateMember(ctx context.Context, m *account.Member, fx ...account.Effects) error {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if err := db.lockDomain(ctx, tx, m.DomainID); err != nil {
			return err
		}
		if alias, err := db.exists(ctx, tx, `SELECT COUNT(*) FROM aliases WHERE address = ?`, m.Email); err != nil {
			return err
		} else if alias {
			return account.Errorf(account.ECONFLICT, "%s is the address of an alias: delete the alias first ('postern alias delete %s').", m.Email, m.Email)
		}
		if err := db.insertMembers(ctx, tx, []*account.Member{m}); err != nil {
			return err
		}
		if m.ID == 0 {
			return account.Errorf(account.ECONFLICT, "A member %s already exists.", m.Email)
		}
		for _, f := range fx {
			for i := range f.Audit {
				if f.Audit[i].MemberID == 0 {
					f.Audit[i].MemberID = m.ID
				}
			}
		}
		return db.writeAllEffects(ctx, tx, fx)
	})
	switch {
	case err == nil:
	case errors.Is(err, account.ErrNotFound):
		return fmt.Errorf("member's domain %d: %w", m.DomainID, account.ErrNotFound)
	default:
		return wrap("create member", err)
	}
	if m.DomainCreatedAt.IsZero() {
		var created int64
		if err := db.SQL.QueryRowContext(ctx, db.q(`SELECT created_at FROM domains WHERE id = ?`), m.DomainID).Scan(&created); err != nil {
			return fmt.Errorf("create member: %w", err)
		}
		m.DomainCreatedAt = fromMicros(created)
	}
	return nil
}

// MemberByEmail returns the member with the (lower-case) address email.
func (db *DB) MemberByEmail(ctx context.Context, email string) (account.Member, error) {
	var m account.Member
	err := scanMember(db.SQL.QueryRowContext(ctx, db.q(`SELECT `+memberCols+memberFrom+` WHERE m.email = ?`), email), &m)
	return m, notFoundErr(err, "member")
}

// MemberByID returns the member id.
func (db *DB) MemberByID(ctx context.Context, id int64) (account.Member, error) {
	var m account.Member
	err := scanMember(db.SQL.QueryRowContext(ctx, db.q(`SELECT `+memberCols+memberFrom+` WHERE m.id = ?`), id), &m)
	return m, notFoundErr(err, "member")
}

// Members lists the members of domain (all when domain is ""), by address.
func (db *DB) Members(ctx context.Context, domain string) ([]account.Member, error) {
	query, args := `SELECT `+memberCols+memberFrom+` ORDER BY m.email`, []any(nil)
	if domain != "" {
		query, args = `SELECT `+memberCols+memberFrom+` WHERE d.name = ? ORDER BY m.email`, []any{domain}
	}
	rows, err := db.SQL.QueryContext(ctx, db.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("members: %w", err)
	}
	defer rows.Close()
	var out []account.Member
	for rows.Next() {
		var m account.Member
		if err := scanMember(rows, &m); err != nil {
			return nil, fmt.Errorf("members: %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// updateMember runs one UPDATE of the member memberID and writes fx, in one
// transaction; ErrNotFound when there is no such member.
func (db *DB) updateMember(ctx context.Context, memberID int64, fx account.Effects, query string, args ...any) error {
	return db.memberTx(ctx, memberID, func(tx *sql.Tx) error {
		if err := db.execOne(ctx, tx, memberMissing(memberID), query, append(args, memberID)...); err != nil {
			return err
		}
		return db.writeEffects(ctx, tx, fx)
	})
}

func memberMissing(id int64) error { return fmt.Errorf("member %d: %w", id, account.ErrNotFound) }

// SetUseAppPasswords stores the member's setting.
func (db *DB) SetUseAppPasswords(ctx context.Context, memberID int64, on bool, fx account.Effects) error {
	return wrap("set use_app_passwords", db.updateMember(ctx, memberID, fx, `UPDATE members SET use_app_passwords = ? WHERE id = ?`, on))
}

// SetState suspends or resumes the member.
func (db *DB) SetState(ctx context.Context, memberID int64, s account.State, fx account.Effects) error {
	return wrap("set state", db.updateMember(ctx, memberID, fx, `UPDATE members SET state = ? WHERE id = ?`, string(s)))
}

// SetPasswordHash replaces the main password hash and, with
// deleteAppPasswords, deletes the member's app passwords in the same transaction.
func (db *DB) SetPasswordHash(ctx context.Context, memberID int64, hash string, deleteAppPasswords bool, fx account.Effects) error {
	return wrap("set password", db.memberTx(ctx, memberID, func(tx *sql.Tx) error {
		if err := db.execOne(ctx, tx, memberMissing(memberID), `UPDATE members SET password_hash = ?, must_change_password = FALSE WHERE id = ?`, hash, memberID); err != nil {
			return err
		}
		if deleteAppPasswords {
			if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM app_passwords WHERE member_id = ?`), memberID); err != nil {
				return err
			}
		}
		return db.writeEffects(ctx, tx, fx)
	}))
}

// CreateAppPassword inserts p unless the member holds limit app passwords
// already or one named the same ignoring case. The count and the insert are
// atomic: SQLite transactions begin IMMEDIATE (the write lock is held from
// BEGIN, see Open); on PostgreSQL the member's row is locked first, so
// concurrent creates for one member queue up, and each count (a new snapshot
// per statement under READ COMMITTED) sees the inserts committed before it.
// The lock is FOR NO KEY UPDATE: it excludes other creates and updates of the
// member as FOR UPDATE would, but not the KEY SHARE lock that inserting a row
// referring to the member takes (a mail delivery's body, say), so a delivery
// holding its mailbox lock never waits on this one while it waits for that
// mailbox to deliver the notification.
func (db *DB) CreateAppPassword(ctx context.Context, p *account.AppPassword, limit int, fx account.Effects) error {
	if p.CreatedAt.IsZero() {
		p.CreatedAt = time.Now().UTC()
	}
	key := nameKey(p.Name)
	conflict := func(existing string, err error) error {
		msg := fmt.Sprintf("You already have a third-party app password named “%s”.", p.Name)
		if existing != "" && !strings.EqualFold(existing, p.Name) {
			msg = fmt.Sprintf("You already have a third-party app password named “%s”, which looks the same as “%s”. Choose a name that looks different.", existing, p.Name)
		}
		return &account.Error{Code: account.ECONFLICT, Message: msg, Err: err}
	}
	err := db.memberTx(ctx, p.MemberID, func(tx *sql.Tx) error {
		lock := `SELECT id FROM members WHERE id = ?`
		if db.Dialect == Postgres {
			lock += ` FOR NO KEY UPDATE`
		}
		var id int64
		if err := tx.QueryRowContext(ctx, db.q(lock), p.MemberID).Scan(&id); err != nil {
			return notFoundErr(err, "member")
		}
		var n int
		var same string
		if err := tx.QueryRowContext(ctx, db.q(`SELECT COUNT(*), COALESCE(MAX(CASE WHEN name_key = ? THEN name END), '')
			FROM app_passwords WHERE member_id = ?`), key, p.MemberID).Scan(&n, &same); err != nil {
			return err
		}
		if n >= limit {
			return account.Errorf(account.ELIMIT, "You already have %d third-party app passwords. Delete one you no longer use before creating a new one.", n)
		}
		if same != "" {
			return conflict(same, nil)
		}
		_, err := tx.ExecContext(ctx, db.q(`INSERT INTO app_passwords (id, member_id, name, name_key, hash, created_at) VALUES (?, ?, ?, ?, ?, ?)`),
			p.ID, p.MemberID, p.Name, key, p.Hash, micros(p.CreatedAt))
		if isUnique(err) {
			// The name check above sees every committed row; this is the
			// database's own guard should the two ever disagree.
			return conflict("", err)
		}
		if err != nil {
			return err
		}
		return db.writeEffects(ctx, tx, fx)
	})
	return wrap("create app password", err)
}

// nameKey is the form app names are compared in, unique per member
// (app_passwords.name_key): two names with one key look alike.
//
// Invisible characters (account.IgnorableRune, U+2800) are dropped, runs of
// white space become one space, and compatibility forms are folded (NFKC:
// fullwidth and mathematical letters, ligatures), which confusables.txt
// leaves to normalization. Then Unicode TS #39 skeletons
// (confusables.Skeleton: NFD, confusables.txt, NFD) are taken around case
// mappings: of the upper-cased name first, because confusables.txt maps
// capitals across scripts (Cyrillic Т to T) where it does not map their
// small letters (т to ᴛ); then of that, lower-cased, so that case does not
// count and the small-letter look-alikes (rn for m) do. The key is only
// compared, never shown. Look-alikes are not transitive, and the key errs on
// the side of refusing: "mail" and "mall" share it (MAIL, with a capital I
// that looks like l), so a member cannot have both; it costs a rename.
func nameKey(name string) string {
	var b strings.Builder
	space := false
	for _, r := range name {
		switch {
		case account.IgnorableRune(r) || r == '\u2800':
		case unicode.IsSpace(r):
			space = true
		default:
			if space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = false
			b.WriteRune(r)
		}
	}
	upper := confusables.Skeleton(strings.ToUpper(norm.NFKC.String(b.String())))
	return confusables.Skeleton(strings.ToLower(upper))
}

const appPasswordCols = `id, member_id, name, hash, created_at, last_used_at, last_used_protocol, last_used_ip`

// AppPasswords lists the member's app passwords, oldest first.
func (db *DB) AppPasswords(ctx context.Context, memberID int64) ([]account.AppPassword, error) {
	rows, err := db.SQL.QueryContext(ctx, db.q(`SELECT `+appPasswordCols+` FROM app_passwords WHERE member_id = ? ORDER BY created_at, id`), memberID)
	if err != nil {
		return nil, fmt.Errorf("app passwords: %w", err)
	}
	defer rows.Close()
	var out []account.AppPassword
	for rows.Next() {
		var p account.AppPassword
		var created int64
		var used sql.NullInt64
		if err := rows.Scan(&p.ID, &p.MemberID, &p.Name, &p.Hash, &created, &used, &p.LastUsedProtocol, &p.LastUsedIP); err != nil {
			return nil, fmt.Errorf("app passwords: %w", err)
		}
		p.CreatedAt = fromMicros(created)
		if used.Valid {
			p.LastUsedAt = fromMicros(used.Int64)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// DeleteAppPassword deletes app password id if it is the member's: the
// member_id condition makes another member's id look missing (no IDOR).
func (db *DB) DeleteAppPassword(ctx context.Context, memberID int64, id string, fx account.Effects) error {
	err := db.memberTx(ctx, memberID, func(tx *sql.Tx) error {
		err := db.execOne(ctx, tx, fmt.Errorf("app password: %w", account.ErrNotFound),
			`DELETE FROM app_passwords WHERE id = ? AND member_id = ?`, id, memberID)
		if err != nil {
			return err
		}
		return db.writeEffects(ctx, tx, fx)
	})
	return wrap("delete app password", err)
}

// TouchAppPassword records a use; see TouchAppPasswords.
func (db *DB) TouchAppPassword(ctx context.Context, id string, at time.Time, protocol, ip string, notBefore time.Time) error {
	return db.TouchAppPasswords(ctx, []account.Touch{{ID: id, At: at, Protocol: protocol, IP: ip, NotBefore: notBefore}})
}

// TouchAppPasswords records uses with conditional UPDATEs in one
// transaction, so that nodes racing on the same password write it at most
// once per interval and no read-modify-write is needed: touchesPerUpdate uses
// per statement, joined to a VALUES list (a statement per use was a round trip
// each on PostgreSQL, at 100,000 members a round trip per login). It moves no
// credential counter: no login checks the last use, so Credentials may return
// an older one from the cache (AppPasswords reads it fresh).
func (db *DB) TouchAppPasswords(ctx context.Context, uses []account.Touch) error {
	return wrap("touch app passwords", db.tx(ctx, func(tx *sql.Tx) error {
		for start := 0; start < len(uses); start += touchesPerUpdate {
			chunk := uses[start:min(start+touchesPerUpdate, len(uses))]
			var b strings.Builder
			// VALUES columns are column1... on both engines; the casts type
			// PostgreSQL's parameters.
			b.WriteString(`UPDATE app_passwords SET last_used_at = v.column1, last_used_protocol = v.column2, last_used_ip = v.column3 FROM (VALUES `)
			args := make([]any, 0, len(chunk)*5)
			for i, u := range chunk {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString("(CAST(? AS BIGINT), ?, ?, ?, CAST(? AS BIGINT))")
				args = append(args, micros(u.At), u.Protocol, u.IP, u.ID, micros(u.NotBefore))
			}
			b.WriteString(`) AS v WHERE app_passwords.id = v.column4
				AND (app_passwords.last_used_at IS NULL OR app_passwords.last_used_at < v.column5)`)
			if _, err := tx.ExecContext(ctx, db.q(b.String()), args...); err != nil {
				return err
			}
		}
		return nil
	}))
}

// touchesPerUpdate keeps a statement's parameters (5 a use) well under both
// engines' limits.
const touchesPerUpdate = 200

// AddMessage writes fx (messages to the member, events) on its own; messages
// without a member are addressed to memberID.
func (db *DB) AddMessage(ctx context.Context, memberID int64, fx account.Effects) error {
	msgs := make([]account.Message, len(fx.Messages))
	for i, m := range fx.Messages {
		if m.MemberID == 0 {
			m.MemberID = memberID
		}
		msgs[i] = m
	}
	fx.Messages = msgs
	return wrap("add message", db.tx(ctx, func(tx *sql.Tx) error { return db.writeEffects(ctx, tx, fx) }))
}

// Messages lists the member's messages, newest first.
func (db *DB) Messages(ctx context.Context, memberID int64) ([]account.Message, error) {
	rows, err := db.SQL.QueryContext(ctx, db.q(`SELECT id, member_id, kind, subject, body, created_at, read, params
		FROM messages WHERE member_id = ? ORDER BY id DESC`), memberID)
	if err != nil {
		return nil, fmt.Errorf("messages: %w", err)
	}
	defer rows.Close()
	var out []account.Message
	for rows.Next() {
		var m account.Message
		var created int64
		var read dbBool
		var params string
		if err := rows.Scan(&m.ID, &m.MemberID, &m.Kind, &m.Subject, &m.Body, &created, &read, &params); err != nil {
			return nil, fmt.Errorf("messages: %w", err)
		}
		m.CreatedAt, m.Read, m.Params = fromMicros(created), bool(read), decodeParams(params)
		out = append(out, m)
	}
	return out, rows.Err()
}

// MarkMessagesRead marks the member's messages ids (all when empty) read.
// TRUE and FALSE are keywords of both engines (SQLite reads them as 1 and 0).
func (db *DB) MarkMessagesRead(ctx context.Context, memberID int64, ids []int64) error {
	query := `UPDATE messages SET read = TRUE WHERE member_id = ? AND read = FALSE`
	args := []any{memberID}
	if len(ids) > 0 {
		query += ` AND id IN (?` + strings.Repeat(`, ?`, len(ids)-1) + `)`
		for _, id := range ids {
			args = append(args, id)
		}
	}
	_, err := db.SQL.ExecContext(ctx, db.q(query), args...)
	return wrap("mark messages read", err)
}

// UnreadMessages counts the member's unread messages (the badge).
func (db *DB) UnreadMessages(ctx context.Context, memberID int64) (int, error) {
	var n int
	err := db.SQL.QueryRowContext(ctx, db.q(`SELECT COUNT(*) FROM messages WHERE member_id = ? AND read = FALSE`), memberID).Scan(&n)
	return n, wrap("unread messages", err)
}

// encodeParams is the JSON object stored in messages.params.
func encodeParams(p map[string]string) string {
	if len(p) == 0 {
		return "{}"
	}
	b, err := json.Marshal(p)
	if err != nil { // a map of strings always encodes
		return "{}"
	}
	return string(b)
}

// decodeParams reads messages.params; a row written before the column
// existed has "{}", and anything unreadable is no parameters: the message
// then shows its stored English subject and body.
func decodeParams(s string) map[string]string {
	var p map[string]string
	if json.Unmarshal([]byte(s), &p) != nil || len(p) == 0 {
		return nil
	}
	return p
}
