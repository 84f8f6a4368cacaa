// Package storetest holds what the store tests of every package share: opening
// a fresh SQLite file or a fresh PostgreSQL schema, running a test on both
// engines, and the conformance suites that both engines must pass.
//
// PostgreSQL is always available to the tests (locally and in CI), so an
// unreachable server fails the test instead of skipping it: a skipped engine
// would let a regression through silently.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/internal/store/sqlstore"
)

// DefaultPostgres is the test server; POSTERN_TEST_POSTGRES overrides it.
const DefaultPostgres = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// PostgresDSN returns the base DSN of the test PostgreSQL server.
func PostgresDSN() string {
	if s := os.Getenv("POSTERN_TEST_POSTGRES"); s != "" {
		return s
	}
	return DefaultPostgres
}

// OpenSQLite opens a migrated SQLite store in a file of t.TempDir(), closed
// when the test ends.
func OpenSQLite(t testing.TB) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), filepath.Join(t.TempDir(), "postern.db"))
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// OpenPostgres opens a migrated PostgreSQL store in a schema of its own
// (t_<random hex>), so that test packages running in parallel never see each
// other's rows. The schema is dropped when the test ends.
func OpenPostgres(t testing.TB) *sqlstore.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	base := PostgresDSN()
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("postgres %s: %v", redact(base), err)
	}
	schema := "t_" + randomHex(8)
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		t.Fatalf("postgres %s unreachable (tests need it; set POSTERN_TEST_POSTGRES): %v", redact(base), err)
	}
	t.Cleanup(func() {
		// Cleanups run last-registered first: the store below is closed
		// before its schema is dropped.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		admin.Close()
	})
	db, err := sqlstore.Open(ctx, WithSearchPath(base, schema))
	if err != nil {
		t.Fatalf("open postgres schema %s: %v", schema, err)
	}
	// Many test packages share one server (max_connections 100 by default):
	// a small pool still gives real concurrency without starving the others.
	db.SQL.SetMaxOpenConns(8)
	db.SQL.SetMaxIdleConns(8)
	t.Cleanup(func() { db.Close() })
	return db
}

// WithSearchPath returns dsn with search_path set to schema; pgx passes
// unknown URL parameters to the server as run-time parameters.
func WithSearchPath(dsn, schema string) string {
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + "search_path=" + schema
}

// Schema returns the search_path schema of a store opened by OpenPostgres,
// or "" for other stores.
func Schema(db *sqlstore.DB) string {
	_, after, ok := strings.Cut(db.DSN, "search_path=")
	if !ok {
		return ""
	}
	s, _, _ := strings.Cut(after, "&")
	return s
}

// Engine is a named way to open a fresh store.
type Engine struct {
	Name string
	Open func(testing.TB) *sqlstore.DB
}

// AllEngines lists the engines every store test runs on.
var AllEngines = []Engine{{"sqlite", OpenSQLite}, {"postgres", OpenPostgres}}

// Engines runs fn as a subtest per engine, each with a fresh store.
func Engines(t *testing.T, fn func(t *testing.T, db *sqlstore.DB)) {
	t.Helper()
	for _, e := range AllEngines {
		t.Run(e.Name, func(t *testing.T) { fn(t, e.Open(t)) })
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// redact drops a password from a DSN before it reaches a test log.
func redact(dsn string) string {
	scheme, rest, ok := strings.Cut(dsn, "://")
	if !ok {
		return dsn
	}
	userinfo, host, ok := strings.Cut(rest, "@")
	if !ok {
		return dsn
	}
	user, _, _ := strings.Cut(userinfo, ":")
	return scheme + "://" + user + "@" + host
}

// OpenOther opens a second store on db's database, as another node sharing
// it would; it is closed when the test ends.
func OpenOther(t testing.TB, db *sqlstore.DB) *sqlstore.DB {
	t.Helper()
	other, err := sqlstore.Open(context.Background(), db.DSN)
	if err != nil {
		t.Fatalf("open another store: %v", err)
	}
	t.Cleanup(func() { other.Close() })
	return other
}
