package account_test

import (
	"errors"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestNoMathRand: secrets (app passwords, salts, session tokens, IDs) must
// come from crypto/rand, so no non-test file of the program imports
// math/rand at all (docs/security.md).
func TestNoMathRand(t *testing.T) {
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	checked := 0
	sawSelf := false
	for _, top := range []string{"internal", "cmd"} {
		dir := filepath.Join(root, top)
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if path == dir && top == "cmd" && errors.Is(err, fs.ErrNotExist) {
					return filepath.SkipDir // cmd/ may not exist yet
				}
				return err
			}
			if d.IsDir() {
				if n := d.Name(); path != dir && (n == "testdata" || strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_")) {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
			if err != nil {
				// A file someone is in the middle of writing: its imports
				// may still be readable, and a later run checks it again.
				t.Logf("%s: %v", path, err)
				if f == nil {
					return nil
				}
			}
			checked++
			if filepath.ToSlash(path) == "../../internal/account/apppass.go" {
				sawSelf = true
			}
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				if p == "math/rand" || strings.HasPrefix(p, "math/rand/") {
					t.Errorf("%s imports %s: use crypto/rand", path, p)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if !sawSelf || checked < 10 {
		t.Fatalf("walked the wrong tree: %d files, account/apppass.go seen: %v", checked, sawSelf)
	}
}
