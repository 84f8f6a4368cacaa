package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/postern/postern/internal/account"
)

// DefaultCredentialCache is how many members' credentials a SQLite store
// keeps in memory unless told otherwise (SetCredentialCache): every member
// of a large organisation, at about 1 KiB each.
const DefaultCredentialCache = 250_000

// credCache keeps the results of Credentials, so that a third-party login
// reads no database at all (on SQLite the query was a third of a login's
// CPU, docs/benchmarks.md). It is exact, not a cache that expires: an entry
// is used only while its member's counter in the generation file has not
// moved since the entry was read, and every change of what Credentials
// returns (in this process or any other on the machine) moves it before the
// change is acknowledged (memberTx). A deleted app password therefore fails
// on the very next login, as it does without the cache.
//
// It exists on SQLite only: PostgreSQL nodes on other machines share no
// memory, and a notification from the database arrives after the commit,
// not before the acknowledgement.
type credCache struct {
	gen *genFile

	mu  sync.RWMutex
	max int
	m   map[string]*credEntry // by the address Credentials was asked for

	hits, misses atomic.Uint64
}

type credEntry struct {
	id     int64
	gen    uint64 // the member's counter read before the query
	valid  bool   // false: only id is known (a first read, whose counter could not be read before it)
	member account.Member
	list   []account.AppPassword
}

// CacheStats says how a cache is doing, for metrics.
type CacheStats struct {
	Enabled      bool
	Entries      int
	Hits, Misses uint64
}

// SetCredentialCache sets how many members' credentials are kept in memory;
// 0 turns the cache off. It has no effect on PostgreSQL. Whatever the
// setting, this process keeps moving the counters of the members it changes,
// for the other processes that cache.
func (db *DB) SetCredentialCache(max int) {
	if db.gen == nil {
		return
	}
	if max <= 0 {
		db.creds.Store(nil)
		return
	}
	db.creds.Store(&credCache{gen: db.gen, max: max, m: map[string]*credEntry{}})
}

// CredentialCacheStats returns the credential cache's counters.
func (db *DB) CredentialCacheStats() CacheStats {
	c := db.creds.Load()
	if c == nil {
		return CacheStats{}
	}
	c.mu.RLock()
	n := len(c.m)
	c.mu.RUnlock()
	return CacheStats{Enabled: true, Entries: n, Hits: c.hits.Load(), Misses: c.misses.Load()}
}

// CredentialsChanged moves member id's credential counter, which tells every
// process's credential cache that the member changed. Writers call it just
// before the commit of a change to the member's credentials and again just
// after (memberTx): the first invalidates what was read before the change,
// the second what was read while it committed. postern serve also calls it
// for every event the outbox brings, which covers a writer that died between
// its commit and its second move.
func (db *DB) CredentialsChanged(id int64) {
	if db.gen != nil {
		db.gen.bump(db.gen.slot(id))
	}
}

// HandleEvent moves the counters that an event from the outbox names, for
// postern serve to subscribe on the bus: every store write moves them
// itself, and the event covers a writer that died between its commit and
// its second move. Which events change what a login checks is
// account.EventKind.ChangesLogin, the rule the session registry shares.
func (db *DB) HandleEvent(e account.Event) {
	if e.Kind == account.EventMailboxChanged && e.MemberID != 0 {
		db.MailChanged(e.MemberID)
	}
	if !e.Kind.ChangesLogin() {
		return
	}
	switch {
	case e.DomainID != 0:
		db.AllCredentialsChanged()
	case e.MemberID != 0:
		db.CredentialsChanged(e.MemberID)
	}
}

// memberTx is tx for changes to what Credentials returns for memberID.
func (db *DB) memberTx(ctx context.Context, memberID int64, fn func(*sql.Tx) error) error {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		db.CredentialsChanged(memberID)
		return nil
	})
	db.CredentialsChanged(memberID)
	return err
}

// lookup returns the entry of email and whether it can be used, and the
// member's counter as it is now (to be read before any query).
func (c *credCache) lookup(email string) (e *credEntry, gen uint64, ok bool) {
	c.mu.RLock()
	e = c.m[email]
	c.mu.RUnlock()
	if e != nil {
		gen = c.gen.load(c.gen.slot(e.id))
		if e.valid && e.gen == gen {
			c.hits.Add(1)
			return e, gen, true
		}
	}
	c.misses.Add(1)
	return e, gen, false
}

// keep stores what a query read for email. prev and gen are lookup's, taken
// before the query: the result is trusted only if the member's counter was
// read then, that is when the member's id was already known.
func (c *credCache) keep(email string, prev *credEntry, gen uint64, m account.Member, list []account.AppPassword) {
	e := &credEntry{id: m.ID}
	if prev != nil && prev.id == m.ID {
		e.gen, e.valid, e.member, e.list = gen, true, m, slices.Clone(list)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[email]; !ok && len(c.m) >= c.max {
		for k := range c.m { // a random victim: map order is randomised
			delete(c.m, k)
			break
		}
	}
	c.m[email] = e
}

// Credentials returns the member and its app passwords: from the credential
// cache when the member has not changed since it was read, otherwise with
// one query (a LEFT JOIN: one row per app password, or one row of NULLs when
// there are none), prepared once, since every third-party login goes through
// here.
func (db *DB) Credentials(ctx context.Context, email string) (account.Member, []account.AppPassword, error) {
	c := db.creds.Load()
	if c == nil {
		return db.queryCredentials(ctx, email)
	}
	e, gen, ok := c.lookup(email)
	if ok {
		// The cached list itself, read-only as the interface says; its
		// capacity clipped so that an append copies it. (A copy for every
		// login was a seventh of the bytes an IMAP login allocated.)
		return e.member, slices.Clip(e.list), nil
	}
	m, list, err := db.queryCredentials(ctx, email)
	if err == nil {
		c.keep(email, e, gen, m, list)
	}
	return m, list, err
}

func (db *DB) queryCredentials(ctx context.Context, email string) (account.Member, []account.AppPassword, error) {
	stmt, err := db.prepared(ctx, db.q(credentialsQuery+` WHERE m.email = ? ORDER BY a.created_at, a.id`))
	if err != nil {
		return account.Member{}, nil, fmt.Errorf("credentials: %w", err)
	}
	rows, err := stmt.QueryContext(ctx, email)
	if err != nil {
		return account.Member{}, nil, fmt.Errorf("credentials: %w", err)
	}
	var m account.Member
	var list []account.AppPassword
	found := false
	err = scanCredentials(rows, func(cm account.Member, cl []account.AppPassword) bool {
		m, list, found = cm, cl, true
		return true
	})
	if err != nil {
		return account.Member{}, nil, fmt.Errorf("credentials: %w", err)
	}
	if !found {
		return account.Member{}, nil, fmt.Errorf("member: %w", account.ErrNotFound)
	}
	return m, list, nil
}

// WarmCredentials reads the credentials of every member (up to the cache's
// size) into the credential cache with one scan, so that the first login of
// each after a start reads no database either: after a restart every phone
// and mail program reconnects at once. It returns how many members it read.
func (db *DB) WarmCredentials(ctx context.Context) (int, error) {
	c := db.creds.Load()
	if c == nil {
		return 0, nil
	}
	snap := db.gen.snapshot() // before the scan, as lookup reads a counter before its query
	rows, err := db.SQL.QueryContext(ctx, credentialsQuery+` ORDER BY m.id, a.created_at, a.id`)
	if err != nil {
		return 0, fmt.Errorf("warm credentials: %w", err)
	}
	n := 0
	err = scanCredentials(rows, func(m account.Member, list []account.AppPassword) bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if len(c.m) >= c.max {
			return false
		}
		if _, ok := c.m[m.Email]; !ok { // a login may have read a newer copy meanwhile
			c.m[m.Email] = &credEntry{id: m.ID, gen: snap[db.gen.slot(m.ID)], valid: true, member: m, list: list}
			n++
		}
		return true
	})
	if err != nil {
		return n, fmt.Errorf("warm credentials: %w", err)
	}
	return n, nil
}

// credentialsQuery selects members with their app passwords and whether the
// gateway holds failures for them; callers add WHERE and ORDER BY, which must
// keep each member's rows together.
const credentialsQuery = `SELECT ` + memberCols + `,
		a.id, a.name, a.hash, a.created_at, a.last_used_at, a.last_used_protocol, a.last_used_ip,
		f.member_id IS NOT NULL` + memberFrom + `
		LEFT JOIN app_passwords a ON a.member_id = m.id
		LEFT JOIN auth_failures f ON f.member_id = m.id`

// scanCredentials reads rows of credentialsQuery and calls fn once per
// member with its app passwords, until fn returns false. It closes rows.
func scanCredentials(rows *sql.Rows, fn func(account.Member, []account.AppPassword) bool) error {
	defer rows.Close()
	var m account.Member
	var list []account.AppPassword
	have := false
	for rows.Next() {
		var row account.Member
		var id, name, proto, ip sql.NullString
		var hash []byte
		var created, used sql.NullInt64
		var failures dbBool
		if err := scanMember(rows, &row, &id, &name, &hash, &created, &used, &proto, &ip, &failures); err != nil {
			return err
		}
		row.FailuresOnRecord = bool(failures)
		if have && row.ID != m.ID {
			if !fn(m, list) {
				return nil
			}
			list = nil
		}
		m, have = row, true
		if id.Valid {
			p := account.AppPassword{ID: id.String, MemberID: row.ID, Name: name.String, Hash: hash,
				CreatedAt: fromMicros(created.Int64), LastUsedProtocol: proto.String, LastUsedIP: ip.String}
			if used.Valid {
				p.LastUsedAt = fromMicros(used.Int64)
			}
			list = append(list, p)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if have {
		fn(m, list)
	}
	return nil
}
