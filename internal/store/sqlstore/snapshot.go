package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ErrNotSQLite: a snapshot is a SQLite file; PostgreSQL is backed up with
// its own tools (pg_dump).
var ErrNotSQLite = errors.New("only a SQLite database can be copied to a file; back up PostgreSQL with pg_dump")

// Snapshot writes a consistent copy of the SQLite database to path, a file
// that must not exist yet, while the database stays in use.
//
// It is VACUUM INTO: one read transaction, so the copy is the database as of
// one commit, the last before the statement began. In WAL mode a reader
// takes no lock that writers wait for: commits go on during the copy, into
// the WAL, which only grows until the copy ends (a checkpoint cannot move
// past a reader's snapshot). The backup API would copy the same snapshot
// page by page when run in one step; in small steps, which is its point, a
// commit by another connection restarts it, so under steady writes it may
// never finish. VACUUM INTO also leaves the free pages out.
//
// The copy must be one file with nothing beside it (a WAL database wants
// its -wal and -shm): VACUUM INTO writes it in the rollback journal mode,
// which is asked for again explicitly rather than trusted, then the copy is
// checked and synced. Open turns WAL back on when the copy is restored and
// opened. The file is 0600: it holds password hashes and mail.
func (db *DB) Snapshot(ctx context.Context, path string) error {
	if db.Dialect != SQLite {
		return ErrNotSQLite
	}
	// VACUUM INTO accepts an empty file: made here, it has the right mode
	// whatever the umask, and O_EXCL refuses to overwrite anything.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create the copy: %w", err)
	}
	f.Close()
	if _, err := db.SQL.ExecContext(ctx, `VACUUM INTO ?`, path); err != nil {
		os.Remove(path)
		return fmt.Errorf("copy the database: %w", err)
	}
	if err := rollbackJournal(ctx, path); err != nil {
		os.Remove(path)
		return err
	}
	if err := syncFile(path); err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// rollbackJournal makes sure the SQLite file at path uses the rollback
// journal, and checks it. Only this process knows the file yet.
func rollbackJournal(ctx context.Context, path string) error {
	c, err := sql.Open("sqlite", "file:"+filepath.ToSlash(path))
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetMaxOpenConns(1)
	var mode string
	if err := c.QueryRowContext(ctx, `PRAGMA journal_mode=DELETE`).Scan(&mode); err != nil {
		return fmt.Errorf("set the copy's journal mode: %w", err)
	}
	if mode != "delete" {
		return fmt.Errorf("set the copy's journal mode: it is %q", mode)
	}
	return quickCheck(ctx, c)
}

// quickCheck runs SQLite's quick_check: the file's structure, not the
// contents of the indexes (integrity_check, which reads every index, would
// take minutes on a large database).
func quickCheck(ctx context.Context, c *sql.DB) error {
	rows, err := c.QueryContext(ctx, `PRAGMA quick_check`)
	if err != nil {
		return fmt.Errorf("check the copy: %w", err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return fmt.Errorf("check the copy: %w", err)
		}
		if s != "ok" {
			problems = append(problems, s)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("check the copy: %w", err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("the copy is damaged: %s", strings.Join(problems, "; "))
	}
	return nil
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return nil
}

// SnapshotMigrations returns the migrations recorded in the SQLite file at
// path, sorted, without writing to it: a backup's copy is read while its
// checksum must stay what the manifest says. SQLite opens it immutable (no
// locks, no journal), which is right only for a file nothing else writes.
func SnapshotMigrations(ctx context.Context, path string) ([]string, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	c, err := sql.Open("sqlite", "file:"+filepath.ToSlash(path)+"?mode=ro&immutable=1")
	if err != nil {
		return nil, err
	}
	defer c.Close()
	rows, err := c.QueryContext(ctx, `SELECT name FROM schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("read the migrations of %s: %w", path, err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	sort.Strings(names)
	return names, nil
}

// CheckMigrations refuses, with ErrNewerSchema, a list of applied migrations
// (a backup's) that holds one this binary does not know for dialect d: a
// newer Postern made it, and this one would refuse to open it.
func CheckMigrations(d Dialect, applied []string) error {
	names, err := migrationNames(d)
	if err != nil {
		return err
	}
	done := make(map[string]string, len(applied))
	for _, n := range applied {
		done[n] = ""
	}
	if extra := unknownMigrations(names, done); len(extra) > 0 {
		return fmt.Errorf("%w (it has %s, which this binary does not know)", ErrNewerSchema, strings.Join(extra, ", "))
	}
	return nil
}
