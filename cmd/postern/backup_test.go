package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/postern/postern/internal/store/storetest"
)

// newInstallation makes a SQLite data folder with a domain, a member, a TLS
// pair, an ACME-like file in a subfolder, and the leftovers a backup must
// leave out (a temporary file of a write in progress).
func newInstallation(t *testing.T) (data string, run func(args ...string) string) {
	t.Helper()
	data = filepath.Join(t.TempDir(), "data")
	run = mustRunIn(t, map[string]string{"POSTERN_DATA": data})
	run("domain", "add", "example.com")
	run("user", "add", "alice@example.com", "--name", "Alice")
	for name, body := range map[string]string{
		"tls/cert.pem":                 "cert",
		"tls/key.pem":                  "key",
		"acme/example.com/cert.pem":    "acme cert",
		"tls/.tmp-cert.pem-123":        "half a write",
		".secret-456":                  "half a key",
		"postern.db-journal-leftover":  "sqlite's",
		"acme/example.com/account.key": "acme account",
	} {
		p := filepath.Join(data, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return data, run
}

func readManifestT(t *testing.T, dir string) manifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, manifestName))
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestBackupRestoreSQLite: the backup lists the database, the secret key
// and the data folder's files with their checksums, not the live SQLite
// files or temporary ones; everything is 0600 and 0700; the restored
// folder has the same files byte for byte and its database opens with the
// member in it.
func TestBackupRestoreSQLite(t *testing.T) {
	data, _ := newInstallation(t)
	dest := filepath.Join(t.TempDir(), "backup")
	out := mustRunIn(t, nil)("backup", dest, "--data", data)
	if !strings.Contains(out, "Backed up 6 files") {
		t.Errorf("backup said: %s", out)
	}
	m := readManifestT(t, dest)
	var paths []string
	for _, f := range m.Files {
		paths = append(paths, f.Path)
		if len(f.SHA256) != 64 || f.Size <= 0 {
			t.Errorf("%+v", f)
		}
	}
	want := "data/acme/example.com/account.key data/acme/example.com/cert.pem data/postern.db data/secret.key data/tls/cert.pem data/tls/key.pem"
	if got := strings.Join(paths, " "); got != want {
		t.Errorf("files\n%s\nwant\n%s", got, want)
	}
	if m.Format != 1 || m.Database != "sqlite" || len(m.Migrations) < 20 || m.Schema != m.Migrations[len(m.Migrations)-1] || m.Created == "" || m.Postern.Version == "" {
		t.Errorf("manifest %+v", m)
	}
	filepath.WalkDir(dest, func(p string, d os.DirEntry, err error) error {
		info, _ := d.Info()
		if want := os.FileMode(0o600); d.IsDir() {
			want = 0o700
			if info.Mode().Perm() != want {
				t.Errorf("%s is %v", p, info.Mode().Perm())
			}
		} else if info.Mode().Perm() != want {
			t.Errorf("%s is %v", p, info.Mode().Perm())
		}
		return nil
	})

	restored := filepath.Join(t.TempDir(), "restored")
	out = mustRunIn(t, nil)("restore", dest, "--data", restored)
	if !strings.Contains(out, "Restored 6 files") {
		t.Errorf("restore said: %s", out)
	}
	for _, f := range m.Files {
		rel := strings.TrimPrefix(f.Path, "data/")
		got, err := os.ReadFile(filepath.Join(restored, rel))
		if err != nil {
			t.Fatal(err)
		}
		if rel == "postern.db" {
			continue // the live file differs from the copy (WAL, free pages)
		}
		orig, _ := os.ReadFile(filepath.Join(data, rel))
		if !bytes.Equal(got, orig) {
			t.Errorf("%s differs after the restore", rel)
		}
		info, _ := os.Stat(filepath.Join(restored, rel))
		if info.Mode().Perm() != 0o600 {
			t.Errorf("restored %s is %v", rel, info.Mode().Perm())
		}
	}
	if out := mustRunIn(t, nil)("user", "list", "--data", restored); !strings.Contains(out, "alice@example.com") {
		t.Errorf("restored members:\n%s", out)
	}
}

// TestBackupRefuses: a destination with files in it, and a data folder
// with no database or no secret key.
func TestBackupRefuses(t *testing.T) {
	data, _ := newInstallation(t)
	dest := t.TempDir()
	os.WriteFile(filepath.Join(dest, "keep"), []byte("x"), 0o600)
	code, _, stderr := runIn(t, nil, "backup", dest, "--data", data)
	if code != 1 || !strings.Contains(stderr, "is not empty") {
		t.Errorf("non-empty destination: %d %s", code, stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "keep")); string(b) != "x" {
		t.Error("the destination's file was changed")
	}
	code, _, stderr = runIn(t, nil, "backup", filepath.Join(t.TempDir(), "b"), "--data", t.TempDir())
	if code != 1 || !strings.Contains(stderr, "nothing to back up") {
		t.Errorf("empty data folder: %d %s", code, stderr)
	}
	inData := filepath.Join(data, "backups", "today")
	code, _, stderr = runIn(t, nil, "backup", inData, "--data", data)
	if code != 1 || !strings.Contains(stderr, "is in the data folder") {
		t.Errorf("destination in the data folder: %d %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(data, "backups")); !os.IsNotExist(err) {
		t.Errorf("a folder was made in the data folder: %v", err)
	}
	code, _, stderr = runIn(t, nil, "backup", filepath.Join(t.TempDir(), "b"), "--data", data, "--pg-dump")
	if code != 1 || !strings.Contains(stderr, "--pg-dump is for a PostgreSQL database") {
		t.Errorf("--pg-dump on SQLite: %d %s", code, stderr)
	}
	// An existing empty folder is fine, and becomes 0700.
	empty := filepath.Join(t.TempDir(), "empty")
	os.Mkdir(empty, 0o755)
	mustRunIn(t, nil)("backup", empty, "--data", data)
	if info, _ := os.Stat(empty); info.Mode().Perm() != 0o700 {
		t.Errorf("backup folder is %v", info.Mode().Perm())
	}
}

// backupOf makes a backup of a fresh installation and returns its folder.
func backupOf(t *testing.T) string {
	t.Helper()
	data, _ := newInstallation(t)
	dest := filepath.Join(t.TempDir(), "backup")
	mustRunIn(t, nil)("backup", dest, "--data", data)
	return dest
}

// rewriteManifest changes the manifest with fn and writes it back.
func rewriteManifest(t *testing.T, dir string, fn func(m *manifest)) {
	t.Helper()
	m := readManifestT(t, dir)
	fn(&m)
	b, _ := json.Marshal(m)
	if err := os.WriteFile(filepath.Join(dir, manifestName), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestRestoreRefuses: every damaged or unusable backup is refused with a
// message that says why, and the data folder stays as it was (missing or empty).
func TestRestoreRefuses(t *testing.T) {
	flip := func(t *testing.T, dir, rel string) {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 1
		os.WriteFile(p, b, 0o600)
	}
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string)
		want   string
	}{
		{"a flipped byte in the database", func(t *testing.T, dir string) { flip(t, dir, "data/postern.db") }, "data/postern.db does not match its checksum"},
		{"a flipped byte in the secret key", func(t *testing.T, dir string) { flip(t, dir, "data/secret.key") }, "data/secret.key does not match its checksum"},
		{"a file cut short", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "data/tls/cert.pem"), []byte("ce"), 0o600)
		}, "data/tls/cert.pem has 2 bytes, the manifest says 4"},
		{"a missing file", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "data/tls/key.pem")) }, "data/tls/key.pem is missing"},
		{"a file the manifest does not list", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "data/extra"), []byte("x"), 0o600)
		}, "data/extra is not in the manifest"},
		{"no manifest", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, manifestName)) }, "it is not a backup, or one that did not finish"},
		{"a path out of the backup", func(t *testing.T, dir string) {
			rewriteManifest(t, dir, func(m *manifest) { m.Files[0].Path = "data/../../etc/passwd" })
		}, "it names the file"},
		{"a newer format", func(t *testing.T, dir string) { rewriteManifest(t, dir, func(m *manifest) { m.Format = 2 }) }, "made by a newer Postern (format 2"},
		{"a manifest that disagrees with the database", func(t *testing.T, dir string) {
			rewriteManifest(t, dir, func(m *manifest) { m.Migrations = m.Migrations[:3] })
		}, "disagree on the schema"},
		{"a newer schema", func(t *testing.T, dir string) {
			// As a newer Postern would have made it: the database and the
			// manifest agree, and the checksum is right.
			p := filepath.Join(dir, "data/postern.db")
			c, err := sql.Open("sqlite", "file:"+p)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Exec(`INSERT INTO schema_migrations (name, applied_at) VALUES ('9999_from_the_future.sql', '2030-01-01T00:00:00Z')`)
			c.Close()
			if err != nil {
				t.Fatal(err)
			}
			sum, size, err := hashFile(p)
			if err != nil {
				t.Fatal(err)
			}
			rewriteManifest(t, dir, func(m *manifest) {
				m.Migrations = append(m.Migrations, "9999_from_the_future.sql")
				m.Schema = "9999_from_the_future.sql"
				for i := range m.Files {
					if m.Files[i].Path == "data/postern.db" {
						m.Files[i].SHA256, m.Files[i].Size = sum, size
					}
				}
			})
		}, "the database was migrated by a newer Postern (it has 9999_from_the_future.sql"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := backupOf(t)
			tc.damage(t, dir)
			restored := filepath.Join(t.TempDir(), "restored")
			code, _, stderr := runIn(t, nil, "restore", dir, "--data", restored)
			if code != 1 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, want 1 and %q:\n%s", code, tc.want, stderr)
			}
			if _, err := os.Stat(restored); !os.IsNotExist(err) {
				t.Errorf("the data folder was made: %v", err)
			}
		})
	}

	t.Run("a data folder that is not empty", func(t *testing.T) {
		dir := backupOf(t)
		data := t.TempDir()
		os.WriteFile(filepath.Join(data, "postern.db"), []byte("mine"), 0o600)
		code, _, stderr := runIn(t, nil, "restore", dir, "--data", data)
		if code != 1 || !strings.Contains(stderr, "is not empty") {
			t.Errorf("%d %s", code, stderr)
		}
		if b, _ := os.ReadFile(filepath.Join(data, "postern.db")); string(b) != "mine" {
			t.Error("the existing database was changed")
		}
	})
	t.Run("a SQLite backup with --database", func(t *testing.T) {
		dir := backupOf(t)
		code, _, stderr := runIn(t, nil, "restore", dir, "--data", filepath.Join(t.TempDir(), "r"), "--database", "postgres://u@h/db")
		if code != 1 || !strings.Contains(stderr, "leave out --database") {
			t.Errorf("%d %s", code, stderr)
		}
	})
}

// TestRestoreSecretFile: with --secret-file the key goes to that file: a
// missing one is written, one with the same key is left alone, one with
// another key is refused (it would lock out every third-party app password).
func TestRestoreSecretFile(t *testing.T) {
	dir := backupOf(t)
	key, _ := os.ReadFile(filepath.Join(dir, "data/secret.key"))

	secret := filepath.Join(t.TempDir(), "secret.key")
	data := filepath.Join(t.TempDir(), "r1")
	mustRunIn(t, nil)("restore", dir, "--data", data, "--secret-file", secret)
	if got, _ := os.ReadFile(secret); !bytes.Equal(got, key) {
		t.Error("--secret-file does not hold the backup's key")
	}
	if _, err := os.Stat(filepath.Join(data, "secret.key")); !os.IsNotExist(err) {
		t.Errorf("the key went into the data folder too: %v", err)
	}
	if out := mustRunIn(t, nil)("user", "list", "--data", data, "--secret-file", secret); !strings.Contains(out, "alice@example.com") {
		t.Errorf("restored members:\n%s", out)
	}

	mustRunIn(t, nil)("restore", dir, "--data", filepath.Join(t.TempDir(), "r2"), "--secret-file", secret)

	other := filepath.Join(t.TempDir(), "other.key")
	os.WriteFile(other, bytes.Repeat([]byte{7}, 32), 0o600)
	data = filepath.Join(t.TempDir(), "r3")
	code, _, stderr := runIn(t, nil, "restore", dir, "--data", data, "--secret-file", other)
	if code != 1 || !strings.Contains(stderr, "holds another secret key") {
		t.Errorf("%d %s", code, stderr)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("the data folder was made: %v", err)
	}
}

// TestBackupPostgres: the backup holds the secret key and the data
// folder's files, not the database; its manifest has the database's
// migrations, and it prints the pg_dump command without the password.
// Restoring it needs --database and prints the pg_restore command.
func TestBackupPostgres(t *testing.T) {
	db := storetest.OpenPostgres(t)
	schema := storetest.Schema(db)
	data := filepath.Join(t.TempDir(), "data")
	run := mustRunIn(t, map[string]string{"POSTERN_DATA": data, "POSTERN_DATABASE": db.DSN})
	run("domain", "add", "example.com")
	os.WriteFile(filepath.Join(data, "postern.db"), []byte("an old SQLite file"), 0o600)

	dest := filepath.Join(t.TempDir(), "backup")
	var stdout, stderr bytes.Buffer
	a := &app{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, database: db.DSN, data: data}
	defer a.close()
	if err := a.backup(context.Background(), dest, false); err != nil {
		t.Fatal(err)
	}
	m := readManifestT(t, dest)
	if m.Database != "postgres" || len(m.Migrations) < 20 || len(m.Files) != 1 || m.Files[0].Path != "data/secret.key" {
		t.Errorf("manifest %+v", m)
	}
	if !strings.Contains(stdout.String(), "pg_dump --format=custom --file="+filepath.Join(dest, "postern.pgdump")+" --schema="+schema+" --dbname=") {
		t.Errorf("stdout:\n%s", stdout.String())
	}
	if strings.Contains(stdout.String(), "search_path") {
		t.Errorf("the printed URL has search_path, which libpq refuses:\n%s", stdout.String())
	}

	code, _, errText := runIn(t, nil, "restore", dest, "--data", filepath.Join(t.TempDir(), "r"))
	if code != 1 || !strings.Contains(errText, "give --database") {
		t.Errorf("restore without --database: %d %s", code, errText)
	}
	code, out, errText := runIn(t, nil, "restore", dest, "--data", filepath.Join(t.TempDir(), "r"), "--database", "postgres://postern:pw@db.internal/postern")
	if code != 0 || !strings.Contains(out, "pg_restore --no-owner --exit-on-error --dbname=postgres://postern@db.internal/postern "+filepath.Join(dest, "postern.pgdump")) {
		t.Errorf("restore: %d\n%s\n%s", code, out, errText)
	}
}

func TestPgDumpCommand(t *testing.T) {
	for _, tc := range []struct{ dsn, want string }{
		{"postgres://postern:hunter2@db.internal:5432/postern?sslmode=verify-full",
			"pg_dump --format=custom --file=/b/postern.pgdump --dbname='postgres://postern@db.internal:5432/postern?sslmode=verify-full'"},
		{"postgresql://u:p%40ss@h/d?search_path=tenant_a&pool_max_conns=10&sslpassword=x&application_name=postern",
			"pg_dump --format=custom --file=/b/postern.pgdump --schema=tenant_a --dbname='postgresql://u@h/d?application_name=postern'"},
		{"postgres://h/d?password=inline", "pg_dump --format=custom --file=/b/postern.pgdump --dbname=postgres://h/d"},
	} {
		if got := pgDumpCommand(tc.dsn, "/b/postern.pgdump"); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.dsn, got, tc.want)
		}
	}
	if got := shellQuote("it's"); got != `'it'\''s'` {
		t.Errorf("shellQuote: %s", got)
	}
}

// TestBackupSecretFile: with --secret-file the backup holds that key as
// data/secret.key, not a secret.key left in the data folder.
func TestBackupSecretFile(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	secret := filepath.Join(t.TempDir(), "key")
	key := bytes.Repeat([]byte{42}, 32)
	os.WriteFile(secret, key, 0o600)
	run := mustRunIn(t, map[string]string{"POSTERN_DATA": data, "POSTERN_SECRET_FILE": secret})
	run("domain", "add", "example.com")
	os.WriteFile(filepath.Join(data, "secret.key"), bytes.Repeat([]byte{1}, 32), 0o600)
	dest := filepath.Join(t.TempDir(), "backup")
	run("backup", dest)
	if got, _ := os.ReadFile(filepath.Join(dest, "data", "secret.key")); !bytes.Equal(got, key) {
		t.Errorf("the backup's key is %x, want the --secret-file's", got)
	}
	if m := readManifestT(t, dest); len(m.Files) != 2 {
		t.Errorf("files %+v", m.Files)
	}
}

// TestBackupPgDumpRoundTrip: backup --pg-dump runs pg_dump for real and
// lists the dump in the manifest; the pg_restore command restore prints
// restores it into a new database, where the members are.
func TestBackupPgDumpRoundTrip(t *testing.T) {
	db := storetest.OpenPostgres(t)
	data := filepath.Join(t.TempDir(), "data")
	run := mustRunIn(t, map[string]string{"POSTERN_DATA": data, "POSTERN_DATABASE": db.DSN})
	run("domain", "add", "example.com")
	run("user", "add", "alice@example.com", "--name", "Alice")
	dest := filepath.Join(t.TempDir(), "backup")
	out := run("backup", dest, "--pg-dump")
	if !strings.Contains(out, "The database was dumped into") {
		t.Errorf("backup said:\n%s", out)
	}
	m := readManifestT(t, dest)
	if len(m.Files) != 2 || m.Files[1].Path != pgDumpFile || m.Files[1].Size == 0 {
		t.Fatalf("files %+v", m.Files)
	}
	if info, err := os.Stat(filepath.Join(dest, pgDumpFile)); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("the dump: %v %v", info, err)
	}

	// A new, empty database on the test server.
	base, err := url.Parse(storetest.PostgresDSN())
	if err != nil {
		t.Fatal(err)
	}
	admin, err := sql.Open("pgx", base.String())
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 8)
	rand.Read(b)
	name := "t_restore_" + hex.EncodeToString(b)
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		admin.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP DATABASE " + name + " WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
		admin.Close()
	})
	base.Path = "/" + name
	target := storetest.WithSearchPath(base.String(), storetest.Schema(db))

	restored := filepath.Join(t.TempDir(), "restored")
	out = mustRunIn(t, nil)("restore", dest, "--data", restored, "--database", target)
	var restoreCmd string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "pg_restore ") {
			restoreCmd = strings.TrimSpace(l)
		}
	}
	if restoreCmd == "" || !strings.Contains(out, "its checksum was verified") {
		t.Fatalf("restore said:\n%s", out)
	}
	if b, err := exec.Command("sh", "-c", restoreCmd).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", restoreCmd, err, b)
	}
	if out := mustRunIn(t, nil)("user", "list", "--data", restored, "--database", target); !strings.Contains(out, "alice@example.com") {
		t.Errorf("members of the restored database:\n%s", out)
	}
}

// TestBackupSymlinkedDataFolder: a data folder reached through a symbolic
// link is copied (the walk starts from the real folder), and a backup
// folder that is inside it by another path is not copied into itself.
func TestBackupSymlinkedDataFolder(t *testing.T) {
	data, _ := newInstallation(t)
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(data, link); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(data, "backups", "today")
	mustRunIn(t, nil)("backup", dest, "--data", link)
	var paths []string
	for _, f := range readManifestT(t, dest).Files {
		paths = append(paths, f.Path)
	}
	want := "data/acme/example.com/account.key data/acme/example.com/cert.pem data/postern.db data/secret.key data/tls/cert.pem data/tls/key.pem"
	if got := strings.Join(paths, " "); got != want {
		t.Errorf("files\n%s\nwant\n%s", got, want)
	}
	if _, err := os.Stat(filepath.Join(dest, "data", "backups", "today")); !os.IsNotExist(err) {
		t.Errorf("the backup holds itself: %v", err)
	}
}
