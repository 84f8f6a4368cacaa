//go:build unix

package sqlstore_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/postern/postern/internal/store/sqlstore"
)

// TestSQLiteFilesPrivate: the database, its -wal and -shm files and the
// generation file are 0600 even under the common umask 022 (SQLite alone
// makes them 0644).
func TestSQLiteFilesPrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	path := filepath.Join(t.TempDir(), "postern.db")
	db, err := sqlstore.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.SQL.Exec("CREATE TABLE perms_probe (x INTEGER)"); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"", "-wal", "-shm", "-gen"} {
		st, err := os.Stat(path + suffix)
		if err != nil {
			t.Fatalf("%s: %v", suffix, err)
		}
		if m := st.Mode().Perm(); m != 0o600 {
			t.Errorf("postern.db%s is %v, want -rw-------", suffix, m)
		}
	}
}
