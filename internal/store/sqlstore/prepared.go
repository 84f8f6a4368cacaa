package sqlstore

import (
	"context"
	"database/sql"
	"sync"
)

// stmtCache holds the prepared statements of the hot paths.
type stmtCache struct {
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

// prepared returns query (already in the dialect's placeholders) prepared
// once for the life of the DB. database/sql prepares it again on each pooled
// connection the first time it runs there, and the statement is safe for
// concurrent use.
//
// It is for the queries every login runs (Credentials, AuthState, and for
// POP3 the mail account check and the INBOX lookup): on
// SQLite, parsing and planning the Credentials join on every call cost a
// quarter of the server's CPU at 16 clients (pprof, bench/ and
// docs/benchmarks.md); a prepared statement parses once.
func (db *DB) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	db.stmts.mu.Lock()
	defer db.stmts.mu.Unlock()
	if s, ok := db.stmts.stmts[query]; ok {
		return s, nil
	}
	s, err := db.SQL.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if db.stmts.stmts == nil {
		db.stmts.stmts = map[string]*sql.Stmt{}
	}
	db.stmts.stmts[query] = s
	return s, nil
}

// closeStmts closes the cached statements (at Close).
func (db *DB) closeStmts() {
	db.stmts.mu.Lock()
	defer db.stmts.mu.Unlock()
	for q, s := range db.stmts.stmts {
		s.Close()
		delete(db.stmts.stmts, q)
	}
}
