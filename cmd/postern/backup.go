package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/postern/postern/internal/buildinfo"
	"github.com/postern/postern/internal/store/sqlstore"
)

// A backup is a folder:
//
//	manifest.json   what made it, when, the schema, every file's size and SHA-256
//	data/           a data folder: postern.db (SQLite), secret.key, tls/, …
//
// data/ is what `postern restore` puts into the new data folder, file for
// file. Everything Postern keeps is in the database (members, app
// passwords, mail bodies, DKIM keys sealed with the secret key, the queue)
// or in the data folder; the secret key may live elsewhere (--secret-file)
// and is always data/secret.key in the backup.

const (
	manifestName   = "manifest.json"
	backupDataDir  = "data"
	manifestFormat = 1
	sqliteFile     = "postern.db"
	secretKeyFile  = "secret.key"
	pgDumpFile     = "postern.pgdump"
)

// manifest is manifest.json.
type manifest struct {
	Format     int            `json:"format"`
	Postern    buildinfo.Info `json:"postern"`
	Created    string         `json:"created"`  // RFC 3339, UTC
	Database   string         `json:"database"` // "sqlite" or "postgres"
	Schema     string         `json:"schema"`   // the last migration applied
	Migrations []string       `json:"migrations"`
	Files      []manifestFile `json:"files"`
	// PgDump is the command to dump the PostgreSQL database (no password),
	// for the operator: the backup does not hold the database.
	PgDump string `json:"pg_dump,omitempty"`
}

type manifestFile struct {
	Path   string `json:"path"` // slash-separated, under data/
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// skipInDataFolder reports the files of the data folder that a backup
// leaves out: the live SQLite files (the database is copied through
// SQLite, its WAL is in the copy, and the generation file only counts
// cache changes, made anew at start) and the temporary files of writes
// in progress.
func skipInDataFolder(rel string) bool {
	base := path.Base(rel)
	if rel == sqliteFile || strings.HasPrefix(rel, sqliteFile+"-") {
		return true
	}
	return strings.HasPrefix(base, ".tmp-") || strings.HasPrefix(base, ".secret-")
}

func backupCmd(a *app, fs *flag.FlagSet) runFunc {
	pgDump := fs.Bool("pg-dump", false, "PostgreSQL: run pg_dump (from PATH, at least the server's version) into DEST/"+pgDumpFile+" and list it in the manifest")
	return func(ctx context.Context, a *app, args []string) error {
		return a.backup(ctx, args[0], *pgDump)
	}
}

// backup writes a backup of the running (or stopped) installation to dest.
// The database comes first, the files after: a file that a row of the
// copy names was written before that row committed, so it is there when
// the files are read.
func (a *app) backup(ctx context.Context, dest string, runPgDump bool) (err error) {
	if a.database != "" && !isPostgresURL(a.database) {
		return failf("--database must be a postgres:// URL; leave it out to use SQLite in the data folder")
	}
	if runPgDump && a.database == "" {
		return failf("--pg-dump is for a PostgreSQL database (--database); the SQLite database is copied by postern backup itself")
	}
	secretPath := a.secretFile
	if secretPath == "" {
		secretPath = filepath.Join(a.data, secretKeyFile)
	}
	if _, err := os.Stat(secretPath); err != nil {
		return failf("no secret key at %s: nothing to back up (is --data or --secret-file right?)", secretPath)
	}
	if a.database == "" {
		if _, err := os.Stat(a.dsn()); err != nil {
			return failf("no database at %s: nothing to back up (is --data right?)", a.dsn())
		}
	}
	if inside(dest, a.data) {
		return failf("the backup folder %s is in the data folder %s: give a folder outside it", dest, a.data)
	}
	created, err := makeBackupDir(dest)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			removeBackup(dest, created)
		}
	}()
	dataOut := filepath.Join(dest, backupDataDir)
	if err := os.Mkdir(dataOut, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dataOut, err)
	}

	m := manifest{Format: manifestFormat, Postern: buildinfo.Read(), Created: rfc3339(time.Now()), Database: "sqlite"}
	// Opened as it is: a backup must not migrate the database (the backup
	// before an upgrade may be taken with the new binary) nor refuse one a
	// newer Postern migrated.
	db, err := sqlstore.OpenUnmigrated(ctx, a.dsn())
	if err != nil {
		return fmt.Errorf("open the database: %w", err)
	}
	defer db.Close()
	if db.Dialect == sqlstore.Postgres {
		m.Database = "postgres"
		status, err := db.MigrationStatus(ctx)
		if err != nil {
			return fmt.Errorf("read the database's migrations: %w", err)
		}
		for _, s := range status {
			if s.Applied {
				m.Migrations = append(m.Migrations, s.Name)
			}
		}
		sort.Strings(m.Migrations)
		dumpFile := filepath.Join(dest, pgDumpFile)
		m.PgDump = pgDumpCommand(a.database, dumpFile)
		if runPgDump {
			if err := a.pgDump(ctx, dumpFile); err != nil {
				return err
			}
			f, err := fileEntry(dest, dumpFile)
			if err != nil {
				return err
			}
			m.Files = append(m.Files, f)
		}
	} else {
		out := filepath.Join(dataOut, sqliteFile)
		if err := db.Snapshot(ctx, out); err != nil {
			return err
		}
		if m.Migrations, err = sqlstore.SnapshotMigrations(ctx, out); err != nil {
			return err
		}
		f, err := fileEntry(dest, out)
		if err != nil {
			return err
		}
		m.Files = append(m.Files, f)
	}
	db.Close()
	if len(m.Migrations) > 0 {
		m.Schema = m.Migrations[len(m.Migrations)-1]
	}

	sum, size, err := copyFile(secretPath, filepath.Join(dataOut, secretKeyFile))
	if err != nil {
		return fmt.Errorf("copy the secret key: %w", err)
	}
	m.Files = append(m.Files, manifestFile{Path: backupDataDir + "/" + secretKeyFile, Size: size, SHA256: sum})

	files, err := a.copyDataFolder(secretPath, dest)
	if err != nil {
		return err
	}
	m.Files = append(m.Files, files...)
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
	if err := syncTree(dataOut); err != nil {
		return err
	}
	// The manifest is written last, whole or not at all: a folder without
	// one is an unfinished backup, and restore refuses it.
	if err := writeManifest(dest, &m); err != nil {
		return err
	}
	var total int64
	for _, f := range m.Files {
		total += f.Size
	}
	fmt.Fprintf(a.stdout, "Backed up %d files (%s) to %s: schema %s, made by postern %s.\n", len(m.Files), formatSize(total), dest, m.Schema, m.Postern.Version)
	if m.PgDump != "" && runPgDump {
		fmt.Fprintf(a.stdout, "The database was dumped into %s by: %s\n", filepath.Join(dest, pgDumpFile), m.PgDump)
	} else if m.PgDump != "" {
		fmt.Fprintf(a.stdout, "\nThe database is in PostgreSQL and is not in this backup. Dump it now, into the same folder\n"+
			"(or let postern backup --pg-dump run pg_dump):\n\n  %s\n\n"+
			"pg_dump reads the password from PGPASSWORD or ~/.pgpass. Keep the dump and the folder together: the secret key\n"+
			"is needed to use the database's third-party app passwords and DKIM keys.\n", m.PgDump)
	}
	return nil
}

// pgDump runs pg_dump into file, 0600. The password goes in PGPASSWORD, out
// of the command line that other users can read in the process list.
func (a *app) pgDump(ctx context.Context, file string) error {
	bin, err := exec.LookPath("pg_dump")
	if err != nil {
		return failf("--pg-dump: pg_dump is not on the PATH; install the PostgreSQL client tools of the server's version, or run the printed command elsewhere")
	}
	args, password, err := pgDumpArgs(a.database, file)
	if err != nil {
		return err
	}
	// pg_dump creates the file with the umask; an empty 0600 file first
	// keeps it private whatever the umask is.
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = os.Environ()
	if password != "" {
		cmd.Env = append(cmd.Env, "PGPASSWORD="+password)
	}
	cmd.Stdout, cmd.Stderr = a.stderr, a.stderr
	if err := cmd.Run(); err != nil {
		return failf("pg_dump failed (%v); its messages are above", err)
	}
	if err := os.Chmod(file, 0o600); err != nil {
		return err
	}
	return syncFile(file)
}

// copyDataFolder copies the data folder's files, but the live database
// and the secret key (copied already), into dest/data.
func (a *app) copyDataFolder(secretPath, dest string) ([]manifestFile, error) {
	var files []manifestFile
	out := filepath.Join(dest, backupDataDir)
	// The walk starts from the real folder: WalkDir does not enter a root
	// that is a symbolic link (a data folder moved to another disk).
	root, err := realPath(a.data)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // PostgreSQL with --secret-file and --tls-cert: no data folder
	}
	if err != nil {
		return nil, err
	}
	absSecret, err := realPath(secretPath)
	if err != nil {
		return nil, err
	}
	// The backup's own folder is never copied into itself, whatever path
	// (a symbolic link) put it in the data folder past backup's check.
	destInfo, err := os.Stat(dest)
	if err != nil {
		return nil, err
	}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if info, err := d.Info(); err == nil && os.SameFile(info, destInfo) {
				return fs.SkipDir
			}
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		// The key in use is data/secret.key of the backup, wherever it
		// lives; a secret.key in the data folder beside a --secret-file
		// elsewhere is not in use.
		if p == absSecret || rel == secretKeyFile || skipInDataFolder(rel) {
			return nil
		}
		target := filepath.Join(out, filepath.FromSlash(rel))
		switch {
		case d.IsDir():
			return os.Mkdir(target, 0o700)
		case d.Type().IsRegular():
			sum, size, err := copyFile(p, target)
			if errors.Is(err, os.ErrNotExist) {
				return nil // replaced or removed since the listing
			}
			if err != nil {
				return fmt.Errorf("copy %s: %w", p, err)
			}
			files = append(files, manifestFile{Path: backupDataDir + "/" + rel, Size: size, SHA256: sum})
		default:
			fmt.Fprintf(a.stderr, "postern: left out %s: not a regular file\n", p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("copy the data folder: %w", err)
	}
	return files, nil
}

// makeBackupDir creates dest (0700), or accepts an existing empty folder
// and makes it 0700: a backup holds the secret key. It reports whether it
// created the folder.
func makeBackupDir(dest string) (bool, error) {
	entries, err := os.ReadDir(dest)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dest, 0o700); err != nil {
			return false, fmt.Errorf("create %s: %w", dest, err)
		}
		return true, nil
	case err != nil:
		return false, fmt.Errorf("%s: %w", dest, err)
	case len(entries) > 0:
		return false, failf("%s is not empty: give a new folder for the backup", dest)
	}
	if err := os.Chmod(dest, 0o700); err != nil {
		return false, err
	}
	return false, nil
}

// removeBackup removes what an unfinished backup wrote.
func removeBackup(dest string, created bool) {
	if created {
		os.RemoveAll(dest)
		return
	}
	entries, _ := os.ReadDir(dest)
	for _, e := range entries {
		os.RemoveAll(filepath.Join(dest, e.Name()))
	}
}

// copyFile copies src to a new file dst (0600, synced) and returns the
// SHA-256 and size of what it wrote.
func copyFile(src, dst string) (string, int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", 0, err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", 0, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(dst)
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// fileEntry is the manifest entry of a file written under dest.
func fileEntry(dest, p string) (manifestFile, error) {
	sum, size, err := hashFile(p)
	if err != nil {
		return manifestFile{}, err
	}
	rel, err := filepath.Rel(dest, p)
	if err != nil {
		return manifestFile{}, err
	}
	return manifestFile{Path: filepath.ToSlash(rel), Size: size, SHA256: sum}, nil
}

func hashFile(p string) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// syncTree syncs every folder under root, so that the new files' names
// are on disk, not only their contents.
func syncTree(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		return syncDir(p)
	})
}

func syncDir(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	err = f.Sync()
	f.Close()
	return err
}

func writeManifest(dest string, m *manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dest, "."+manifestName)
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	if err := syncFile(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dest, manifestName)); err != nil {
		return err
	}
	return syncDir(dest)
}

func syncFile(p string) error {
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func formatSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// realPath is p absolute, with its symbolic links resolved.
func realPath(p string) (string, error) {
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", err
	}
	return filepath.Abs(r)
}

// inside reports whether p is dir or a path under it.
func inside(p, dir string) bool {
	ap, err1 := filepath.Abs(p)
	ad, err2 := filepath.Abs(dir)
	if err1 != nil || err2 != nil {
		return false
	}
	rel, err := filepath.Rel(ad, ap)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

func isPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}
