package sqlstore

import (
	"context"
	"database/sql"
	"sync"

	"github.com/jackc/pgx/v5"
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

// queryEachPlan runs a query whose best plan depends on its arguments: the
// messages of one mailbox (a hundred or a hundred thousand), a set of UIDs
// or ids passed as one array. PostgreSQL plans a prepared statement
// generically after five runs, once for any argument, from the statistics
// of that moment; a plan made while the table was small (a new server,
// the first import) stays a sequential scan testing `uid = ANY($2)` against
// each element in turn: STORE on 1,000 of 10,000 messages took 40 ms in
// that scan alone, and after the imaptest stress on a small mailbox a
// SELECT of a mailbox of 100,000 messages filled afterwards took 9 ms
// instead of 0.5.
//
// Planning such a statement for its arguments on every run (pgx's
// unnamed statement) cured that, at 0.5–1.2 ms of PostgreSQL's CPU per run
// on a busy two-core machine: more than running it. So on PostgreSQL they
// run on db.planned, whose connections keep one generic plan per
// statement (plan_cache_mode = force_generic_plan: parsed and planned
// once) made with enable_seqscan off: every one of these statements finds
// its rows through an index (a mailbox's messages, ids, UIDs, event
// sequence numbers), and a plan that cannot choose a sequential scan is
// right for a mailbox of any size, whatever the table held when it was
// made. Inside a transaction (q a *sql.Tx) the statement is planned for
// its arguments instead (eachPlan). SQLite's planner has no generic plans:
// the connection's statement cache keeps it prepared.
func (db *DB) queryEachPlan(ctx context.Context, q queryer, query string, args ...any) (*sql.Rows, error) {
	if db.planned != nil && q == queryer(db.SQL) {
		return db.planned.QueryContext(ctx, query, args...)
	}
	return q.QueryContext(ctx, query, db.eachPlan(args)...)
}

// eachPlan returns args so that, on PostgreSQL, the statement they go with
// is planned for them: queryEachPlan's statements inside a transaction.
func (db *DB) eachPlan(args []any) []any {
	if db.Dialect == Postgres {
		return append([]any{pgx.QueryExecModeCacheDescribe}, args...)
	}
	return args
}
