package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/postern/postern/internal/store/sqlstore"
)

func restoreCmd(a *app, fs *flag.FlagSet) runFunc {
	return func(ctx context.Context, a *app, args []string) error {
		return a.restore(ctx, args[0])
	}
}

// restore puts the backup in src into the data folder, which must be empty
// or missing. Nothing is written before the whole backup is verified
// (every file's checksum, the schema); a failure on the way removes what
// was written, so the folder is left as it was found.
func (a *app) restore(ctx context.Context, src string) (err error) {
	m, err := readManifest(src)
	if err != nil {
		return err
	}
	if err := verifyBackup(src, m); err != nil {
		return err
	}
	if err := checkBackupSchema(ctx, src, m); err != nil {
		return err
	}
	switch {
	case m.Database == "sqlite" && a.database != "":
		return failf("this backup holds a SQLite database: leave out --database to restore it into the data folder")
	case m.Database == "postgres" && a.database == "":
		return failf("this backup's database is PostgreSQL (restored with pg_restore, not by postern): give --database with its URL")
	case a.database != "" && !isPostgresURL(a.database):
		return failf("--database must be a postgres:// URL; leave it out to use SQLite in the data folder")
	}

	// The secret key goes to --secret-file when one is given: a node of
	// several shares the file, which may exist already with this very key.
	secretOut := a.secretFile
	secretSrc := filepath.Join(src, backupDataDir, secretKeyFile)
	if secretOut != "" {
		want, err := os.ReadFile(secretSrc)
		if err != nil {
			return err
		}
		have, err := os.ReadFile(secretOut)
		switch {
		case err == nil && bytes.Equal(have, want):
			secretOut = "" // in place already
		case err == nil:
			return failf("%s holds another secret key than the backup's: move it away, or leave out --secret-file to restore the key into the data folder", secretOut)
		case !errors.Is(err, os.ErrNotExist):
			return err
		}
	}

	created, err := makeRestoreDir(a.data)
	if err != nil {
		return err
	}
	var written []string
	defer func() {
		if err == nil {
			return
		}
		for i := len(written) - 1; i >= 0; i-- {
			os.Remove(written[i])
		}
		removeBackup(a.data, created)
	}()
	for _, f := range m.Files {
		if f.Path == pgDumpFile {
			continue // pg_restore's, into the database
		}
		rel := strings.TrimPrefix(f.Path, backupDataDir+"/")
		target := filepath.Join(a.data, filepath.FromSlash(rel))
		if rel == secretKeyFile && a.secretFile != "" {
			if secretOut == "" {
				continue
			}
			target = secretOut
		}
		if dir := filepath.Dir(target); dir != a.data {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
		}
		sum, size, err := copyFile(filepath.Join(src, filepath.FromSlash(f.Path)), target)
		if err != nil {
			return fmt.Errorf("restore %s: %w", f.Path, err)
		}
		written = append(written, target)
		// Checked again as written: the backup may have changed since it
		// was verified (a copy still in progress, a failing disk).
		if sum != f.SHA256 || size != f.Size {
			return failf("%s changed while it was restored: restore nothing from this backup until it is checked", f.Path)
		}
	}
	if err := syncTree(a.data); err != nil {
		return err
	}
	if secretOut != "" {
		if err := syncDir(filepath.Dir(secretOut)); err != nil {
			return err
		}
	}
	fmt.Fprintf(a.stdout, "Restored %d files into %s from the backup of %s (postern %s, schema %s).\n", len(written), a.data, m.Created, m.Postern.Version, m.Schema)
	if a.secretFile != "" {
		fmt.Fprintf(a.stdout, "The secret key is %s: give serve the same --secret-file.\n", a.secretFile)
	}
	if m.Database == "postgres" {
		dump := filepath.Join(src, pgDumpFile)
		fmt.Fprintf(a.stdout, "\nThe database is in PostgreSQL. Restore its dump into an empty database, then start postern serve:\n\n  %s\n", pgRestoreCommand(a.database, dump))
		if listedDump(m) {
			fmt.Fprintf(a.stdout, "\n(The dump is part of the backup: its checksum was verified.)\n")
		} else if _, err := os.Stat(dump); err != nil {
			fmt.Fprintf(a.stdout, "\n(%s is not there: use the dump made with this backup, by the command the backup printed.)\n", dump)
		}
		return nil
	}
	fmt.Fprintf(a.stdout, "Start the server on it: postern serve --data %s\n", a.data)
	return nil
}

// readManifest reads src/manifest.json.
func readManifest(src string) (*manifest, error) {
	b, err := os.ReadFile(filepath.Join(src, manifestName))
	if errors.Is(err, os.ErrNotExist) {
		if _, serr := os.Stat(src); serr != nil {
			return nil, failf("no backup at %s: %v", src, serr)
		}
		return nil, failf("%s has no %s: it is not a backup, or one that did not finish", src, manifestName)
	}
	if err != nil {
		return nil, err
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, failf("%s is damaged: %v", filepath.Join(src, manifestName), err)
	}
	if m.Format > manifestFormat {
		return nil, failf("the backup was made by a newer Postern (format %d; this one reads %d): restore it with that version", m.Format, manifestFormat)
	}
	if m.Format < 1 || (m.Database != "sqlite" && m.Database != "postgres") {
		return nil, failf("%s is damaged: no format or database", filepath.Join(src, manifestName))
	}
	return &m, nil
}

// verifyBackup checks every file of the manifest against its size and
// SHA-256, and that data/ holds no file the manifest does not list. It
// names every problem, not only the first.
func verifyBackup(src string, m *manifest) error {
	var problems []string
	listed := map[string]bool{}
	for _, f := range m.Files {
		clean := path.Clean(f.Path)
		if clean != f.Path || !(strings.HasPrefix(clean, backupDataDir+"/") || clean == pgDumpFile && m.Database == "postgres") || strings.Contains(clean, "..") {
			return failf("%s is damaged: it names the file %q", filepath.Join(src, manifestName), f.Path)
		}
		listed[f.Path] = true
		sum, size, err := hashFile(filepath.Join(src, filepath.FromSlash(f.Path)))
		switch {
		case errors.Is(err, os.ErrNotExist):
			problems = append(problems, f.Path+" is missing")
		case err != nil:
			problems = append(problems, fmt.Sprintf("%s: %v", f.Path, err))
		case size != f.Size:
			problems = append(problems, fmt.Sprintf("%s has %d bytes, the manifest says %d", f.Path, size, f.Size))
		case sum != f.SHA256:
			problems = append(problems, f.Path+" does not match its checksum")
		}
	}
	if !listed[backupDataDir+"/"+secretKeyFile] {
		problems = append(problems, "the manifest lists no secret key")
	}
	if m.Database == "sqlite" && !listed[backupDataDir+"/"+sqliteFile] {
		problems = append(problems, "the manifest lists no database")
	}
	root := filepath.Join(src, backupDataDir)
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			problems = append(problems, err.Error())
			return nil
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(src, p)
		if !listed[filepath.ToSlash(rel)] {
			problems = append(problems, filepath.ToSlash(rel)+" is not in the manifest")
		}
		return nil
	})
	if len(problems) > 0 {
		return failf("the backup in %s is damaged, nothing was restored: %s", src, strings.Join(problems, "; "))
	}
	return nil
}

// checkBackupSchema refuses a backup whose database a newer Postern has
// migrated: this binary would refuse to open it. For SQLite the copy's own
// list of migrations is read too, checked against the manifest's.
func checkBackupSchema(ctx context.Context, src string, m *manifest) error {
	dialect := sqlstore.SQLite
	if m.Database == "postgres" {
		dialect = sqlstore.Postgres
	}
	migrations := m.Migrations
	if m.Database == "sqlite" {
		inDB, err := sqlstore.SnapshotMigrations(ctx, filepath.Join(src, backupDataDir, sqliteFile))
		if err != nil {
			return failf("the backup's database cannot be read: %v", err)
		}
		if strings.Join(inDB, ",") != strings.Join(m.Migrations, ",") {
			return failf("the backup's database and its manifest disagree on the schema: the backup is damaged")
		}
		migrations = inDB
	}
	if err := sqlstore.CheckMigrations(dialect, migrations); err != nil {
		return failf("cannot restore this backup, nothing was restored: %v. It was made by postern %s: restore it with that version or a later one", err, m.Postern.Version)
	}
	return nil
}

// makeRestoreDir creates the data folder (0700) or accepts an existing
// empty one; it reports whether it created it.
func makeRestoreDir(dir string) (bool, error) {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return false, fmt.Errorf("create %s: %w", dir, err)
		}
		return true, nil
	case err != nil:
		return false, fmt.Errorf("%s: %w", dir, err)
	case len(entries) > 0:
		return false, failf("the data folder %s is not empty: restore into a new or empty folder (--data), then swap it in while Postern is stopped", dir)
	}
	return false, os.Chmod(dir, 0o700)
}

// listedDump reports whether the backup holds its pg_dump (backup --pg-dump).
func listedDump(m *manifest) bool {
	for _, f := range m.Files {
		if f.Path == pgDumpFile {
			return true
		}
	}
	return false
}
