package sqlstore_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/postern/postern/internal/store/sqlstore"
	"github.com/postern/postern/internal/store/storetest"
)

// TestSnapshotWhileAWriterHoldsTheLock: a snapshot taken while another
// connection holds the write lock with an uncommitted change finishes
// without waiting for it (a snapshot that waited would fail after the busy
// timeout), has every committed row and not the uncommitted one, is one
// 0600 file in the rollback journal, and records the database's migrations.
func TestSnapshotWhileAWriterHoldsTheLock(t *testing.T) {
	ctx := context.Background()
	db := storetest.OpenSQLite(t)
	if _, err := db.SQL.ExecContext(ctx, `CREATE TABLE probe (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if _, err := db.SQL.ExecContext(ctx, `INSERT INTO probe VALUES (?)`, i); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := db.SQL.BeginTx(ctx, nil) // BEGIN IMMEDIATE: the write lock
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO probe VALUES (-1)`); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "copy.db")
	if err := db.Snapshot(ctx, path); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}

	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("copy mode %v, want 0600", st.Mode().Perm())
	}
	for _, suffix := range []string{"-wal", "-shm", "-journal"} {
		if _, err := os.Stat(path + suffix); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("copy%s exists: %v", suffix, err)
		}
	}
	head := make([]byte, 20)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	f.ReadAt(head, 0)
	f.Close()
	if head[18] != 1 || head[19] != 1 { // file format versions: 1 rollback journal, 2 WAL
		t.Errorf("copy's format bytes %d %d, want the rollback journal (1 1)", head[18], head[19])
	}

	names, err := sqlstore.SnapshotMigrations(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	status, err := db.MigrationStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != len(status) || len(names) < 20 {
		t.Fatalf("copy has %d migrations, the database %d", len(names), len(status))
	}
	for i, m := range status {
		if names[i] != m.Name {
			t.Errorf("migration %d: copy %s, database %s", i, names[i], m.Name)
		}
	}
	if err := sqlstore.CheckMigrations(sqlstore.SQLite, names); err != nil {
		t.Errorf("CheckMigrations of this binary's own: %v", err)
	}

	// The copy opens as a store, with the rows committed before it began.
	copyDB, err := sqlstore.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer copyDB.Close()
	var n, neg int
	if err := copyDB.SQL.QueryRowContext(ctx, `SELECT COUNT(*), COUNT(CASE WHEN x < 0 THEN 1 END) FROM probe`).Scan(&n, &neg); err != nil {
		t.Fatal(err)
	}
	if n != 100 || neg != 0 {
		t.Errorf("copy has %d rows, %d uncommitted; want 100 and 0", n, neg)
	}
}

// TestSnapshotRefusesAnExistingFile: the copy never overwrites a file.
func TestSnapshotRefusesAnExistingFile(t *testing.T) {
	db := storetest.OpenSQLite(t)
	path := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(path, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := db.Snapshot(context.Background(), path); err == nil {
		t.Fatal("Snapshot overwrote an existing file")
	}
	if b, _ := os.ReadFile(path); string(b) != "keep" {
		t.Errorf("the existing file became %q", b)
	}
}

// TestSnapshotOnPostgres: PostgreSQL has no file to copy; the caller is told
// to use pg_dump.
func TestSnapshotOnPostgres(t *testing.T) {
	db := storetest.OpenPostgres(t)
	path := filepath.Join(t.TempDir(), "copy.db")
	if err := db.Snapshot(context.Background(), path); !errors.Is(err, sqlstore.ErrNotSQLite) {
		t.Fatalf("Snapshot on PostgreSQL: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a file was left: %v", err)
	}
}

// TestCheckMigrations: a list with a migration this binary does not know is
// a newer Postern's, on both engines; an older list (a prefix) is fine.
func TestCheckMigrations(t *testing.T) {
	for _, d := range []sqlstore.Dialect{sqlstore.SQLite, sqlstore.Postgres} {
		list, err := sqlstore.PendingMigrations()
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, m := range list {
			names = append(names, m.Name)
		}
		if d == sqlstore.Postgres {
			names = append(names, "0006_scaleout.sql", "0014_events_xid.sql")
		}
		if err := sqlstore.CheckMigrations(d, names[:5]); err != nil {
			t.Errorf("%s, an older schema: %v", d, err)
		}
		err = sqlstore.CheckMigrations(d, append(names, "9999_from_the_future.sql"))
		if !errors.Is(err, sqlstore.ErrNewerSchema) {
			t.Errorf("%s, a newer schema: %v", d, err)
		}
	}
}
