package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/postern/postern/internal/store/sqlstore"
)

// The SQLite connections keep the statements they run prepared: the same
// text run again while its rows are open, more texts than a connection
// keeps, and a statement whose table changed must all still answer right.
func TestSQLiteStatementCache(t *testing.T) {
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "postern.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.SQL.Conn(ctx) // one connection: its cache is the one used
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `CREATE TABLE cache_t (a INTEGER)`); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		if _, err := conn.ExecContext(ctx, `INSERT INTO cache_t (a) VALUES (?)`, i); err != nil {
			t.Fatal(err)
		}
	}

	// Nested: the outer rows stay open while the same text runs inside.
	const q = `SELECT a FROM cache_t WHERE a >= ? ORDER BY a`
	outer, err := conn.QueryContext(ctx, q, 1)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for outer.Next() {
		var a int
		if err := outer.Scan(&a); err != nil {
			t.Fatal(err)
		}
		inner, err := conn.QueryContext(ctx, q, a)
		if err != nil {
			t.Fatal(err)
		}
		var in []int
		for inner.Next() {
			var b int
			if err := inner.Scan(&b); err != nil {
				t.Fatal(err)
			}
			in = append(in, b)
		}
		if err := inner.Close(); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprint(a, in))
		if len(got) > 3 {
			t.Fatalf("the outer rows start again: %v", got)
		}
	}
	if err := outer.Err(); err != nil {
		t.Fatal(err)
	}
	outer.Close()
	if want := "[1 [1 2 3] 2 [2 3] 3 [3]]"; fmt.Sprint(got) != want {
		t.Errorf("nested runs: %v, want %s", got, want)
	}

	// A statement reused after an error and after a run left early.
	if _, err := conn.ExecContext(ctx, `INSERT INTO cache_t (a) VALUES (?, ?)`, 1, 2); err == nil {
		t.Error("an INSERT of two values into one column did not fail")
	}
	rows, err := conn.QueryContext(ctx, q, 1)
	if err != nil {
		t.Fatal(err)
	}
	rows.Next()
	rows.Close() // two rows left unread: the statement is reset
	if n := count(t, conn, q, 2); n != 2 {
		t.Errorf("after a run left early: %d rows, want 2", n)
	}

	// More texts than the cache holds, then the first again.
	for i := 0; i < sqlstore.ConnStmtCap+10; i++ {
		var v int
		if err := conn.QueryRowContext(ctx, fmt.Sprintf(`SELECT %d`, i)).Scan(&v); err != nil || v != i {
			t.Fatalf("SELECT %d: %d, %v", i, v, err)
		}
	}
	if n := count(t, conn, q, 1); n != 3 {
		t.Errorf("after evictions: %d rows, want 3", n)
	}

	// A changed table: SQLite prepares the kept statement again.
	const star = `SELECT * FROM cache_t`
	if cols := columns(t, conn, star); cols != 1 {
		t.Fatalf("%d columns", cols)
	}
	if _, err := conn.ExecContext(ctx, `ALTER TABLE cache_t ADD COLUMN b TEXT`); err != nil {
		t.Fatal(err)
	}
	if cols := columns(t, conn, star); cols != 2 {
		t.Errorf("after ALTER TABLE: %d columns, want 2", cols)
	}
}

func count(t *testing.T, conn *sql.Conn, q string, arg int) int {
	t.Helper()
	rows, err := conn.QueryContext(context.Background(), q, arg)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

func columns(t *testing.T, conn *sql.Conn, q string) int {
	t.Helper()
	rows, err := conn.QueryContext(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	return len(cols)
}
