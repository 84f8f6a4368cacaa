// Package sqlstore implements Postern's stores (account.Store,
// mailstore.Store, and the auth state) on SQLite (modernc.org/sqlite, the
// embedded default) and PostgreSQL (pgx). The SQL is shared; the few places
// where the engines differ go through Dialect, and each engine has its own
// embedded migrations.
package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx"
	_ "modernc.org/sqlite"             // driver "sqlite"
)

// Dialect is the database engine.
type Dialect int

const (
	SQLite Dialect = iota
	Postgres
)

func (d Dialect) String() string {
	if d == Postgres {
		return "postgres"
	}
	return "sqlite"
}

// DB is an open store.
type DB struct {
	SQL     *sql.DB
	Dialect Dialect
	DSN     string

	// async is, on PostgreSQL, a pool whose commits do not wait for the
	// WAL flush (synchronous_commit off): the \Recent claims, which need
	// not survive a crash. On SQLite, connections
	// with synchronous=NORMAL, whose commits write the WAL without an
	// fsync: the \Recent claims (a third of the fsyncs under imaptest were
	// claims) and, with LazyMailChanges, flag changes and expunges
	// (lazy.go). The next commit of SQL, FULL, or the background flush
	// syncs the WAL file and them with it: only a power cut before that
	// loses one.
	async *sql.DB

	// planned is PostgreSQL's pool for the statements whose plan depends
	// on their arguments (queryEachPlan) and for the group writes of
	// mailbox changes (groupwrite.go): one generic plan per statement and
	// connection, made with sequential scans ruled out.
	planned *sql.DB

	commits commitSignals // Listen's channels, woken after local commits (listen.go)
	stmts   stmtCache     // prepared statements of the login path (prepared.go)

	gen     *genFile                   // SQLite: the generation file (credgen_unix.go)
	creds   atomic.Pointer[credCache]  // nil: no credential cache (credcache.go)
	inboxes atomic.Pointer[inboxCache] // nil: no INBOX cache (inboxcache.go)
	views   *viewCache                 // State's mailbox listings (viewcache.go)
	heard   atomic.Uint64              // reads of the events so far (EventsAfter; Mail.StateHeard)
	claims  claimLocks                 // \Recent claims of this process, by mailbox (recent.go)
	hooks   commitHooks                // afterCommit's functions, by transaction
	horizon horizon                    // PostgreSQL: the events' read horizon (events.go)
	flush   nextRound[struct{}]        // PostgreSQL: group flushes of the WAL (durable.go)
	marks   durableMarks               // PostgreSQL: mailboxes known on disk (durable.go)
	reads   stateReads                 // PostgreSQL: State's reads shared by mailbox (durable.go)
	groups  groupWrites                // PostgreSQL: changes written together by mailbox (groupwrite.go)
	notify  notifier                   // PostgreSQL: NOTIFY after commits (listen.go)
	writer  chan struct{}              // SQLite: the queue for the write lock (writing)
	txq     txQueue                    // SQLite: transactions waiting to commit together (batch.go)
	lazy    lazyCommits                // SQLite: flag changes and expunges without an fsync (lazy.go)

	domainKeys atomic.Pointer[domainKeyMaker] // a new domain's DKIM keys (dkim.go)
}

// commitHooks are functions to run once a transaction of tx commits.
type commitHooks struct {
	mu sync.Mutex
	m  map[*sql.Tx][]func()
}

// afterCommit runs fn once tx has committed; not if it rolls back. tx must
// be one of db.tx, which runs the functions (another would keep them).
func (db *DB) afterCommit(tx *sql.Tx, fn func()) {
	db.hooks.mu.Lock()
	defer db.hooks.mu.Unlock()
	if db.hooks.m == nil {
		db.hooks.m = map[*sql.Tx][]func(){}
	}
	db.hooks.m[tx] = append(db.hooks.m[tx], fn)
}

// hookCount is the number of tx's functions so far.
func (db *DB) hookCount(tx *sql.Tx) int {
	db.hooks.mu.Lock()
	defer db.hooks.mu.Unlock()
	return len(db.hooks.m[tx])
}

// dropHooks forgets tx's functions past the first n: those of a part of
// the transaction rolled back to its savepoint.
func (db *DB) dropHooks(tx *sql.Tx, n int) {
	db.hooks.mu.Lock()
	defer db.hooks.mu.Unlock()
	if fns := db.hooks.m[tx]; len(fns) > n {
		db.hooks.m[tx] = fns[:n]
	}
}

// takeHooks removes and returns tx's functions.
func (db *DB) takeHooks(tx *sql.Tx) []func() {
	db.hooks.mu.Lock()
	defer db.hooks.mu.Unlock()
	fns := db.hooks.m[tx]
	delete(db.hooks.m, tx)
	return fns
}

//go:embed migrations
var migrations embed.FS

// Open opens and migrates the database at dsn: a postgres:// or postgresql://
// URL, or else the path of a SQLite file.
func Open(ctx context.Context, dsn string) (*DB, error) {
	return open(ctx, dsn, true)
}

// OpenUnmigrated opens the database at dsn as it is, for MigrationStatus
// (postern migrate --status): nothing is migrated, and the caches and the
// generation file are not set up, so it must not be used to change data.
func OpenUnmigrated(ctx context.Context, dsn string) (*DB, error) {
	return open(ctx, dsn, false)
}

func open(ctx context.Context, dsn string, migrate bool) (*DB, error) {
	db := &DB{DSN: dsn, views: newViewCache(viewBudget)}
	db.notify.done = make(chan struct{})
	db.notify.tag = rand.Text()
	var err error
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		db.Dialect = Postgres
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		db.SQL, err = sql.Open("pgx", dsn)
		if err == nil {
			db.SQL.SetMaxOpenConns(32)
			db.SQL.SetMaxIdleConns(32)
			db.SQL.SetConnMaxIdleTime(5 * time.Minute)
			// pgx sends the parameters it does not know as run-time settings.
			db.async, err = sql.Open("pgx", dsn+sep+"synchronous_commit=off")
		}
		if err == nil {
			db.async.SetMaxOpenConns(8)
			db.async.SetMaxIdleConns(8)
			db.async.SetConnMaxIdleTime(5 * time.Minute)
			db.planned, err = sql.Open("pgx", dsn+sep+"plan_cache_mode=force_generic_plan&enable_seqscan=off")
		}
		if err == nil {
			db.planned.SetMaxOpenConns(24)
			db.planned.SetMaxIdleConns(24)
			db.planned.SetConnMaxIdleTime(5 * time.Minute)
		}
	} else {
		// The file is created here, 0600, when it is missing: it holds
		// password hashes and mail, and SQLite would create it 0644 (less the
		// umask); SQLite gives its -wal and -shm files the database file's
		// mode, so they are private too. An error is SQLite's to report.
		if f, ferr := os.OpenFile(dsn, os.O_RDONLY|os.O_CREATE, 0o600); ferr == nil {
			f.Close()
		}
		// WAL for concurrent readers; synchronous=FULL so that an acknowledged
		// commit survives power loss (NORMAL may roll back the last commits);
		// IMMEDIATE transactions take the write lock at BEGIN, which makes
		// read-then-write checks (the 5 app password limit) atomic.
		q := "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)" +
			"&_pragma=busy_timeout(15000)&_txlock=immediate"
		var conn, async driver.Connector
		if conn, err = newCachingConnector("file:" + filepath.ToSlash(dsn) + q); err == nil {
			db.SQL = sql.OpenDB(conn)
			db.SQL.SetMaxOpenConns(8)
			db.SQL.SetMaxIdleConns(8)
			db.writer = make(chan struct{}, 1)
			async, err = newCachingConnector("file:" + filepath.ToSlash(dsn) + strings.Replace(q, "synchronous(FULL)", "synchronous(NORMAL)", 1))
		}
		if err == nil {
			db.async = sql.OpenDB(async)
			db.async.SetMaxOpenConns(2)
			db.async.SetMaxIdleConns(2)
		}
	}
	if err != nil {
		if db.SQL != nil {
			db.closeSQL()
		}
		return nil, fmt.Errorf("open %s: %w", db.Dialect, err)
	}
	if err := db.SQL.PingContext(ctx); err != nil {
		db.closeSQL()
		return nil, fmt.Errorf("connect to %s: %w", db.Dialect, err)
	}
	if !migrate {
		return db, nil
	}
	if err := db.migrate(ctx); err != nil {
		db.closeSQL()
		return nil, err
	}
	if db.Dialect == SQLite && genSupported {
		// Every process that may change credentials must move the counters,
		// so a database whose generation file cannot be opened is not opened.
		if db.gen, err = openGenFile(dsn); err != nil {
			db.closeSQL()
			return nil, fmt.Errorf("open the credential generation file: %w", err)
		}
		db.SetCredentialCache(DefaultCredentialCache)
		db.inboxes.Store(&inboxCache{m: map[int64]*inboxEntry{}})
	}
	return db, nil
}

// Close closes the database.
func (db *DB) Close() error {
	db.notify.stop.Do(func() { close(db.notify.done) })
	lerr := db.stopLazy()
	db.closeStmts()
	db.creds.Store(nil)
	db.inboxes.Store(nil)
	err := db.closeSQL()
	if err == nil {
		err = lerr
	}
	if db.gen != nil {
		if gerr := db.gen.close(); err == nil {
			err = gerr
		}
	}
	return err
}

// closeSQL closes the connection pools.
func (db *DB) closeSQL() error {
	if db.async != nil && db.async != db.SQL {
		db.async.Close()
	}
	if db.planned != nil {
		db.planned.Close()
	}
	return db.SQL.Close()
}

// q rewrites the ? placeholders of shared SQL to $n for PostgreSQL.
func (db *DB) q(query string) string {
	if db.Dialect != Postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		} else {
			b.WriteByte(query[i])
		}
	}
	return b.String()
}

// releaseWriter lets the next of this process's SQLite writers in.
func (db *DB) releaseWriter() {
	if db.writer != nil {
		<-db.writer
	}
}

// tx runs fn in a transaction and commits it: on SQLite together with the
// transactions queued behind the write lock (batch.go), on PostgreSQL
// through writing.
func (db *DB) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	if db.writer != nil {
		return db.txSQLite(ctx, false, fn)
	}
	return db.writing(ctx, func() error { return db.runTx(ctx, db.SQL, fn) })
}

// txLazy is tx for a flag change or an expunge, which on SQLite commits
// without waiting for the disk once LazyMailChanges is on (lazy.go).
func (db *DB) txLazy(ctx context.Context, fn func(*sql.Tx) error) error {
	if db.writer != nil {
		return db.txSQLite(ctx, db.lazy.on.Load(), fn)
	}
	return db.tx(ctx, fn)
}

// writing runs fn, a transaction or a single statement that writes (one
// round trip on PostgreSQL where a transaction takes three: BEGIN, the
// statement, COMMIT), retrying serialization failures and deadlocks of
// PostgreSQL a few times, and wakes Listen's channels once it succeeded.
// On SQLite this process's writers queue for the write lock in Go, first
// come first served: SQLite lets one writer in at a time anyway (BEGIN
// IMMEDIATE), and a writer that finds the lock taken would sleep in its
// busy handler in growing steps, which under load leaves the lock idle
// while writers sleep and stretches the slowest far behind the rest (p99
// several times the median, docs/benchmarks.md). Other processes on the
// file (the CLI) still meet the busy handler.
func (db *DB) writing(ctx context.Context, fn func() error) error {
	return db.retrying(func() error {
		if db.writer != nil {
			select {
			case db.writer <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		err := fn()
		db.releaseWriter()
		if err == nil {
			db.onCommit()
		}
		return err
	})
}

// retrying runs fn again, a few times and a little later each time, while
// it fails with a serialization failure, a deadlock or SQLite's lock taken
// by another process.
func (db *DB) retrying(fn func() error) error {
	for attempt := 0; ; attempt++ {
		err := fn()
		if err != nil && attempt < 5 && isRetryable(err) {
			time.Sleep(time.Duration(attempt+1) * 5 * time.Millisecond)
			continue
		}
		return err
	}
}

func isRetryable(err error) bool {
	s := err.Error()
	return strings.Contains(s, "SQLSTATE 40001") || strings.Contains(s, "SQLSTATE 40P01") ||
		strings.Contains(s, "SQLITE_BUSY") || strings.Contains(s, "database is locked")
}

// int64Args are ids as query arguments (for an IN list of placeholders).
func int64Args(ids []int64) []any {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	return args
}

// isUnique reports whether err is a unique-constraint violation.
func isUnique(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "SQLSTATE 23505") || strings.Contains(s, "UNIQUE constraint failed")
}

// migrationNames lists the dialect's embedded migrations, SQL and Go, in the
// order they apply.
func migrationNames(d Dialect) ([]string, error) {
	entries, err := fs.ReadDir(migrations, "migrations/"+d.String())
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(entries)+len(goMigrations))
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".sql") {
			names = append(names, e.Name())
		}
	}
	for name := range goMigrations {
		names = append(names, name)
	}
	sort.Strings(names)
	return names, nil
}

// ErrNewerSchema: the database carries migrations this binary does not know,
// so a newer Postern has run on it. Running an older one would read and write
// a schema it was not written for; the way back from an upgrade is the backup
// taken before it (docs/install.md).
var ErrNewerSchema = errors.New("the database was migrated by a newer Postern")

// Migration is one migration and whether the database has it.
type Migration struct {
	Name      string `json:"name"`
	Applied   bool   `json:"applied"`
	AppliedAt string `json:"applied_at,omitempty"` // RFC 3339
	Unknown   bool   `json:"unknown,omitempty"`    // applied, but not in this binary: a newer Postern's
}

// applied returns the migrations recorded in q's database, by name with
// their time; none when the table does not exist yet.
func (db *DB) applied(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}) (map[string]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT name, applied_at FROM schema_migrations`)
	if err != nil {
		// A database no Postern has opened has no table: nothing applied.
		var exists bool
		probe := `SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'schema_migrations')`
		if db.Dialect == Postgres {
			probe = `SELECT to_regclass('schema_migrations') IS NOT NULL`
		}
		if perr := db.SQL.QueryRowContext(ctx, probe).Scan(&exists); perr == nil && !exists {
			return map[string]string{}, nil
		}
		return nil, err
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var name, at string
		if err := rows.Scan(&name, &at); err != nil {
			return nil, err
		}
		out[name] = at
	}
	return out, rows.Err()
}

// MigrationStatus lists this binary's migrations and, after them, any the
// database has that the binary does not know. It changes nothing.
func (db *DB) MigrationStatus(ctx context.Context) ([]Migration, error) {
	names, err := migrationNames(db.Dialect)
	if err != nil {
		return nil, err
	}
	done, err := db.applied(ctx, db.SQL)
	if err != nil {
		return nil, fmt.Errorf("read the applied migrations: %w", err)
	}
	out := make([]Migration, 0, len(names))
	for _, n := range names {
		at, ok := done[n]
		out = append(out, Migration{Name: n, Applied: ok, AppliedAt: at})
	}
	for _, n := range unknownMigrations(names, done) {
		out = append(out, Migration{Name: n, Applied: true, AppliedAt: done[n], Unknown: true})
	}
	return out, nil
}

// migrate applies the embedded migrations of the dialect not yet applied, in
// name order, each in its own transaction. On PostgreSQL an advisory lock
// keeps nodes starting together from racing. A database that a newer Postern
// migrated is refused (ErrNewerSchema) before anything is written.
func (db *DB) migrate(ctx context.Context) error {
	names, err := migrationNames(db.Dialect)
	if err != nil {
		return err
	}
	conn, err := db.SQL.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if db.Dialect == Postgres {
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(7413001)"); err != nil {
			return fmt.Errorf("migrate: lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(7413001)")
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	done, err := db.applied(ctx, conn)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if extra := unknownMigrations(names, done); len(extra) > 0 {
		return fmt.Errorf("%w (it has %s, which this binary does not know): run that version, or restore the backup taken before the upgrade", ErrNewerSchema, strings.Join(extra, ", "))
	}
	dir := "migrations/" + db.Dialect.String()
	for _, name := range names {
		if _, ok := done[name]; ok {
			continue
		}
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if fn, ok := goMigrations[name]; ok {
			err = fn(ctx, db, tx)
		} else {
			var body []byte
			if body, err = migrations.ReadFile(dir + "/" + name); err == nil {
				_, err = tx.ExecContext(ctx, string(body))
			}
		}
		if err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate %s: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)`), name, time.Now().UTC().Format(time.RFC3339)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate %s: %w", name, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate %s: %w", name, err)
		}
	}
	return nil
}

var errNoRows = sql.ErrNoRows

func notFound(err error) bool { return errors.Is(err, errNoRows) }

// PendingMigrations is MigrationStatus for a SQLite database that does not
// exist yet: every migration pending.
func PendingMigrations() ([]Migration, error) {
	names, err := migrationNames(SQLite)
	if err != nil {
		return nil, err
	}
	out := make([]Migration, len(names))
	for i, n := range names {
		out[i] = Migration{Name: n}
	}
	return out, nil
}

// unknownMigrations lists, sorted, the applied migrations not among names:
// a newer Postern's.
func unknownMigrations(names []string, done map[string]string) []string {
	known := make(map[string]bool, len(names))
	for _, n := range names {
		known[n] = true
	}
	var extra []string
	for n := range done {
		if !known[n] {
			extra = append(extra, n)
		}
	}
	sort.Strings(extra)
	return extra
}
