package sqlstore

import (
	"container/list"
	"context"
	"database/sql/driver"
	"fmt"
	"reflect"

	"modernc.org/sqlite"
)

// connStmtCap bounds the statements each SQLite connection keeps prepared.
// The store runs about a hundred distinct statements; a few are built with
// a number of placeholders that varies (IN lists), and the least recently
// used of those fall out.
const connStmtCap = 256

// cachingConnector opens SQLite connections that keep every statement they
// run prepared, keyed by its text. SQLite (modernc.org/sqlite, a
// translation of C to Go) parses and plans a statement on every
// QueryContext and ExecContext; under imaptest's stress load the parser
// was a seventh of the server's CPU (docs/benchmarks.md). A prepared
// statement is bound and stepped again instead, and SQLite prepares it
// again by itself when the schema changes (sqlite3_prepare_v2).
type cachingConnector struct {
	driver.Connector
}

func newCachingConnector(dsn string) (driver.Connector, error) {
	c, err := sqlite.NewConnector(dsn)
	if err != nil {
		return nil, err
	}
	return cachingConnector{c}, nil
}

func (c cachingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	sc, ok := conn.(sqliteConn)
	if !ok {
		conn.Close()
		return nil, fmt.Errorf("sqlite: the driver's connection (%T) lacks an interface the statement cache forwards", conn)
	}
	return &cachingConn{conn: sc, stmts: map[string]*list.Element{}, lru: list.New()}, nil
}

// The interfaces of modernc.org/sqlite's connection that database/sql uses.
type sqliteConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

type stmtContext interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

// cachingConn is one SQLite connection with its statements. database/sql
// uses a connection from one goroutine at a time, so it needs no lock.
type cachingConn struct {
	conn  sqliteConn
	stmts map[string]*list.Element // of *cachedStmt, most recently used first in lru
	lru   *list.List
}

type cachedStmt struct {
	query string
	s     stmtContext
	busy  bool // rows of it are open: another run must not reset it
	gone  bool // evicted while busy: closed when its rows are
}

// stmt returns query's statement, prepared now if it was not, or nil when
// it is busy (the same text run again while its rows are open) or cannot
// be kept: the caller then runs the query uncached.
func (c *cachingConn) stmt(ctx context.Context, query string) (*cachedStmt, error) {
	if e, ok := c.stmts[query]; ok {
		cs := e.Value.(*cachedStmt)
		if cs.busy {
			return nil, nil
		}
		c.lru.MoveToFront(e)
		return cs, nil
	}
	s, err := c.conn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	sc, ok := s.(stmtContext)
	if !ok {
		s.Close()
		return nil, nil
	}
	cs := &cachedStmt{query: query, s: sc}
	c.stmts[query] = c.lru.PushFront(cs)
	for c.lru.Len() > connStmtCap {
		old := c.lru.Back()
		c.evict(old)
	}
	return cs, nil
}

func (c *cachingConn) evict(e *list.Element) {
	cs := e.Value.(*cachedStmt)
	c.lru.Remove(e)
	delete(c.stmts, cs.query)
	if cs.busy {
		cs.gone = true
		return
	}
	cs.s.Close()
}

func (c *cachingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	cs, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if cs == nil {
		return c.conn.ExecContext(ctx, query, args)
	}
	return cs.s.ExecContext(ctx, args)
}

func (c *cachingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	cs, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if cs == nil {
		return c.conn.QueryContext(ctx, query, args)
	}
	rows, err := cs.s.QueryContext(ctx, args)
	if err != nil {
		return nil, err
	}
	cs.busy = true
	return &cachedRows{Rows: rows, cs: cs}, nil
}

func (c *cachingConn) Prepare(query string) (driver.Stmt, error) { return c.conn.Prepare(query) }
func (c *cachingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.conn.PrepareContext(ctx, query)
}
func (c *cachingConn) Begin() (driver.Tx, error) {
	return c.conn.BeginTx(context.Background(), driver.TxOptions{})
}
func (c *cachingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.conn.BeginTx(ctx, opts)
}
func (c *cachingConn) Ping(ctx context.Context) error         { return c.conn.Ping(ctx) }
func (c *cachingConn) ResetSession(ctx context.Context) error { return c.conn.ResetSession(ctx) }
func (c *cachingConn) IsValid() bool                          { return c.conn.IsValid() }

// Close finalizes the statements first: SQLite keeps a connection with
// unfinalized statements open.
func (c *cachingConn) Close() error {
	for e := c.lru.Front(); e != nil; e = e.Next() {
		e.Value.(*cachedStmt).s.Close()
	}
	c.stmts, c.lru = map[string]*list.Element{}, list.New()
	return c.conn.Close()
}

// cachedRows are the rows of a cached statement: closing them resets the
// statement (the driver's rows do) and frees it for the next run.
type cachedRows struct {
	driver.Rows
	cs *cachedStmt
}

func (r *cachedRows) Close() error {
	err := r.Rows.Close()
	if r.cs != nil {
		r.cs.busy = false
		if r.cs.gone {
			r.cs.s.Close()
		}
		r.cs = nil
	}
	return err
}

// The column type methods of the driver's rows, for Rows.ColumnTypes.

func (r *cachedRows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r *cachedRows) ColumnTypeLength(i int) (int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeLength); ok {
		return t.ColumnTypeLength(i)
	}
	return 0, false
}

func (r *cachedRows) ColumnTypeNullable(i int) (bool, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeNullable); ok {
		return t.ColumnTypeNullable(i)
	}
	return false, false
}

func (r *cachedRows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypePrecisionScale); ok {
		return t.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}

func (r *cachedRows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := r.Rows.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}
