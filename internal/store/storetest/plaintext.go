package storetest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/store/sqlstore"
)

// testNoPlaintext: after app passwords are created, neither the database's
// bytes (SQLite file and WAL; a pg_dump of the schema) nor the log nor the
// messages hold any plaintext, grouped or not (docs/security.md).
func testNoPlaintext(t *testing.T, e *Env) {
	ctx := context.Background()
	m := e.Enforced(t, "alice")
	var plains []string
	for i := range 5 {
		_, plain := e.Create(t, m, fmt.Sprintf("app %d", i))
		plains = append(plains, plain)
	}
	// Exercise the login path too: it must not store what it was sent.
	for _, p := range plains {
		if _, _, err := e.Svc.Verify(ctx, m.Email, account.GroupAppPassword(p)); err != nil {
			t.Fatal(err)
		}
	}
	dump := DatabaseBytes(t, e.DB)
	if !strings.Contains(dump, m.Email) || !strings.Contains(dump, "app 4") {
		t.Fatalf("the dump (%d bytes) does not hold the member's rows: wrong file or schema", len(dump))
	}
	for _, p := range plains {
		if containsSecret(dump, p) {
			t.Errorf("the database holds an app password in plaintext")
		}
		if containsSecret(e.Logs.String(), p) {
			t.Errorf("the log holds an app password")
		}
		for _, msg := range e.Messages(t, m) {
			if containsSecret(msg.Subject+msg.Body, p) {
				t.Errorf("a message holds an app password")
			}
		}
	}
}

// DatabaseBytes returns everything the store holds on disk, as text to grep:
// the SQLite file and its WAL, or a pg_dump of the test schema.
func DatabaseBytes(t testing.TB, db *sqlstore.DB) string {
	t.Helper()
	if db.Dialect == sqlstore.SQLite {
		var b strings.Builder
		for _, suffix := range []string{"", "-wal"} {
			data, err := os.ReadFile(db.DSN + suffix)
			if err != nil && !(suffix != "" && os.IsNotExist(err)) {
				t.Fatal(err)
			}
			b.Write(data)
		}
		return b.String()
	}
	schema := Schema(db)
	if schema == "" {
		t.Fatalf("no test schema in the store's DSN")
	}
	bin := ""
	for _, p := range []string{"/usr/bin/pg_dump", "/usr/lib/postgresql/15/bin/pg_dump"} {
		if _, err := os.Stat(p); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("pg_dump"); err != nil {
			t.Fatalf("pg_dump not found: %v", err)
		}
	}
	out, err := exec.Command(bin, "--schema="+schema, "--no-owner", "--dbname="+PostgresDSN()).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("pg_dump: %v %s", err, stderr)
	}
	return string(out)
}
