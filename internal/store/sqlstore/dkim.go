package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/dkim"
)

// DKIM signing keys (dkim.Store). The store sees only sealed private keys:
// the sealing key is derived from the secret key file, which never comes
// here (internal/dkim).

// domainKeyMaker makes a new domain's first DKIM keys (SetDomainKeys).
type domainKeyMaker func(domain string) ([]dkim.StoredKey, error)

// SetDomainKeys makes CreateDomain store the keys fn returns for each new
// domain, in the transaction that creates the domain: a domain never
// exists without its keys. fn runs before the transaction begins (making
// an RSA key takes a while). nil turns it off.
func (db *DB) SetDomainKeys(fn func(domain string) ([]dkim.StoredKey, error)) {
	if fn == nil {
		db.domainKeys.Store(nil)
		return
	}
	f := domainKeyMaker(fn)
	db.domainKeys.Store(&f)
}

const dkimCols = `k.selector, k.algorithm, k.private_sealed, k.public, k.created_at, k.active, k.retired_at`

// DKIMKeys returns every key of the domain, oldest first.
func (db *DB) DKIMKeys(ctx context.Context, domain string) ([]dkim.StoredKey, error) {
	rows, err := db.SQL.QueryContext(ctx, db.q(`SELECT `+dkimCols+` FROM dkim_keys k JOIN domains d ON d.id = k.domain_id
		WHERE d.name = ? ORDER BY k.created_at, k.id`), domain)
	if err != nil {
		return nil, fmt.Errorf("dkim keys: %w", err)
	}
	defer rows.Close()
	var out []dkim.StoredKey
	for rows.Next() {
		k := dkim.StoredKey{Domain: domain}
		var created int64
		var retired sql.NullInt64
		if err := rows.Scan(&k.Selector, &k.Algorithm, &k.Sealed, &k.Public, &created, &k.Active, &retired); err != nil {
			return nil, fmt.Errorf("dkim keys: %w", err)
		}
		k.CreatedAt = fromMicros(created)
		if retired.Valid {
			k.RetiredAt = fromMicros(retired.Int64)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("dkim keys: %w", err)
	}
	return out, nil
}

// AddDKIMKeys makes keys the domain's active keys; the domain's row is
// locked first (lockDomain) so that two nodes adding keys to a domain
// without any, at start, add one pair between them.
func (db *DB) AddDKIMKeys(ctx context.Context, domain string, keys []dkim.StoredKey, onlyIfNone bool) (bool, error) {
	return db.addDKIMKeys(ctx, domain, keys, onlyIfNone, nil)
}

// DKIMAuditor gives the audit entry of a change to a domain's DKIM keys:
// action is account.AuditDKIMRotated or account.AuditDKIMRetired, detail
// the selectors.
type DKIMAuditor func(action, domain, detail string) account.Effects

// DKIMAudited returns the database as the dkim.Store of a keyring whose
// every change (new keys, a key retired) writes the effects fx gives for
// it in its transaction: the dkim package stays ignorant of the audit log.
func (db *DB) DKIMAudited(fx DKIMAuditor) dkim.Store { return dkimAudited{db, fx} }

type dkimAudited struct {
	*DB
	fx DKIMAuditor
}

func (d dkimAudited) AddDKIMKeys(ctx context.Context, domain string, keys []dkim.StoredKey, onlyIfNone bool) (bool, error) {
	sels := make([]string, len(keys))
	for i, k := range keys {
		sels[i] = k.Selector
	}
	fx := d.fx(account.AuditDKIMRotated, domain, strings.Join(sels, ","))
	return d.addDKIMKeys(ctx, domain, keys, onlyIfNone, &fx)
}

func (d dkimAudited) RetireDKIMKey(ctx context.Context, domain, selector string, at time.Time) error {
	return d.retireDKIMKey(ctx, domain, selector, at, []account.Effects{d.fx(account.AuditDKIMRetired, domain, selector)})
}

// addDKIMKeys is AddDKIMKeys writing fx (when not nil) with the keys.
func (db *DB) addDKIMKeys(ctx context.Context, domain string, keys []dkim.StoredKey, onlyIfNone bool, fx *account.Effects) (bool, error) {
	var added bool
	err := db.tx(ctx, func(tx *sql.Tx) error {
		added = false
		var id int64
		if err := tx.QueryRowContext(ctx, db.q(`SELECT id FROM domains WHERE name = ?`), domain).Scan(&id); err != nil {
			return notFoundErr(err, "domain "+domain)
		}
		if err := db.lockDomain(ctx, tx, id); err != nil {
			return err
		}
		if onlyIfNone {
			if has, err := db.exists(ctx, tx, `SELECT COUNT(*) FROM dkim_keys WHERE domain_id = ? AND active = ?`, id, true); err != nil || has {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, db.q(`UPDATE dkim_keys SET active = ? WHERE domain_id = ? AND active = ?`), false, id, true); err != nil {
			return err
		}
		if err := db.insertDKIMKeys(ctx, tx, id, keys); err != nil {
			return err
		}
		added = true
		if fx != nil {
			return db.writeEffects(ctx, tx, *fx)
		}
		return nil
	})
	return added, wrap("add dkim keys", err)
}

func (db *DB) insertDKIMKeys(ctx context.Context, tx *sql.Tx, domainID int64, keys []dkim.StoredKey) error {
	for _, k := range keys {
		_, err := tx.ExecContext(ctx, db.q(`INSERT INTO dkim_keys (domain_id, selector, algorithm, private_sealed, public, created_at, active)
			VALUES (?, ?, ?, ?, ?, ?, ?)`), domainID, k.Selector, k.Algorithm, k.Sealed, k.Public, micros(k.CreatedAt), k.Active)
		if isUnique(err) {
			return fmt.Errorf("%s: %w", k.Selector, dkim.ErrSelectorTaken)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// RetireDKIMKey retires an inactive key and erases its sealed private key.
func (db *DB) RetireDKIMKey(ctx context.Context, domain, selector string, at time.Time) error {
	return db.retireDKIMKey(ctx, domain, selector, at, nil)
}

func (db *DB) retireDKIMKey(ctx context.Context, domain, selector string, at time.Time, fx []account.Effects) error {
	return wrap("retire dkim key", db.execWithEffects(ctx, fmt.Errorf("%s of %s: %w", selector, domain, dkim.ErrNoKey), fx,
		`UPDATE dkim_keys SET retired_at = ?, private_sealed = NULL
		WHERE domain_id = (SELECT id FROM domains WHERE name = ?) AND selector = ? AND active = ? AND retired_at IS NULL`,
		micros(at), domain, selector, false))
}

// DomainsWithoutDKIMKeys lists the domains without an active key, by name.
func (db *DB) DomainsWithoutDKIMKeys(ctx context.Context) ([]string, error) {
	rows, err := db.SQL.QueryContext(ctx, db.q(`SELECT d.name FROM domains d
		WHERE NOT EXISTS (SELECT 1 FROM dkim_keys k WHERE k.domain_id = d.id AND k.active = ?) ORDER BY d.name`), true)
	if err != nil {
		return nil, fmt.Errorf("domains without dkim keys: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("domains without dkim keys: %w", err)
		}
		out = append(out, name)
	}
	return out, rows.Err()
}
