//go:build unix

package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTightenModes: group and other bits go from the data folder and
// everything in it, each change is logged; what a symbolic link points to
// outside the folder is not touched.
func TestTightenModes(t *testing.T) {
	root := t.TempDir()
	data := filepath.Join(root, "data")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(data, "tls"), 0o755))
	must(os.Chmod(data, 0o755))
	must(os.Chmod(filepath.Join(data, "tls"), 0o750))
	must(os.WriteFile(filepath.Join(data, "postern.db"), nil, 0o644))
	must(os.Chmod(filepath.Join(data, "postern.db"), 0o644))
	must(os.WriteFile(filepath.Join(data, "tls", "key.pem"), nil, 0o640))
	must(os.Chmod(filepath.Join(data, "tls", "key.pem"), 0o640))
	must(os.WriteFile(filepath.Join(data, "secret.key"), nil, 0o400))
	must(os.Chmod(filepath.Join(data, "secret.key"), 0o400))
	outside := filepath.Join(root, "outside.txt")
	must(os.WriteFile(outside, nil, 0o644))
	must(os.Chmod(outside, 0o644))
	must(os.Symlink(outside, filepath.Join(data, "link")))

	var log bytes.Buffer
	tightenModes(data, slog.New(slog.NewTextHandler(&log, nil)))

	want := map[string]os.FileMode{
		"": 0o700, "tls": 0o700, "postern.db": 0o600, "tls/key.pem": 0o600, "secret.key": 0o400,
	}
	for name, mode := range want {
		st, err := os.Stat(filepath.Join(data, name))
		must(err)
		if st.Mode().Perm() != mode {
			t.Errorf("%q is %v, want %v", name, st.Mode().Perm(), mode)
		}
	}
	if st, _ := os.Stat(outside); st.Mode().Perm() != 0o644 {
		t.Errorf("the link's target became %v", st.Mode().Perm())
	}
	if n := strings.Count(log.String(), "tightened the mode"); n != 4 {
		t.Errorf("%d warnings, want 4:\n%s", n, log.String())
	}
}
