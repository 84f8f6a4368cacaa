package archtest

import (
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// storeOpeners may import the store: cmd/postern opens it and wires its
// parts (the service, the gateway's state, the mail and DAV stores, the
// queue) into the packages that declare them; the benchmark harness seeds
// its databases. Everything else reaches the accounts through
// account.Service and the interfaces its packages declare.
var storeOpeners = []string{"cmd/postern", "bench/cmd/postern-bench"}

// TestOnlyWiringImportsTheStore: no package but storeOpeners (and storage
// itself) imports internal/store.
func TestOnlyWiringImportsTheStore(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, mod+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg := strings.TrimPrefix(f[0], mod)
		if strings.HasPrefix(pkg, "internal/store/") || slices.Contains(storeOpeners, pkg) {
			continue
		}
		for _, imp := range f[1:] {
			if strings.HasPrefix(imp, mod+"internal/store/") {
				t.Errorf("%s imports %s: only %v open the store; go through account.Service", pkg, imp, storeOpeners)
			}
		}
	}
}

// TestNoAccountStoreCallsAroundTheService: the packages that hold the
// store call none of the methods of account's store interfaces (Store,
// AdminStore, AuditStore, ...) on it: the account rules (checks, audit
// entries, events) live in account.Service, whose store is unexported, and
// a call on the concrete store would go around them. Calls on the store's
// own parts and machinery (Mail, DAV, Queue, Listen, caches, locks) are
// wiring.
func TestNoAccountStoreCallsAroundTheService(t *testing.T) {
	for _, pkg := range storeOpeners {
		for _, call := range accountStoreCalls(t, pkg) {
			t.Errorf("%s: calls %s on the store, around account.Service: add a Service method", pkg, call)
		}
	}
}

// accountStoreCalls type-checks pkg (its non-test files) and returns the
// calls of account store methods on a value of a type of internal/store.
func accountStoreCalls(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-export", "-f", "{{.ImportPath}}\t{{.Export}}", mod+pkg).Output()
	if err != nil {
		t.Fatalf("go list -export %s: %v", pkg, err)
	}
	export := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if path, file, ok := strings.Cut(line, "\t"); ok {
			export[path] = file
		}
	}
	dir, err := exec.Command("go", "list", "-f", "{{.Dir}}\n{{join .GoFiles \"\\n\"}}", mod+pkg).Output()
	if err != nil {
		t.Fatalf("go list %s: %v", pkg, err)
	}
	lines := strings.Split(strings.TrimSpace(string(dir)), "\n")
	fset := token.NewFileSet()
	var files []*ast.File
	for _, name := range lines[1:] {
		f, err := parser.ParseFile(fset, filepath.Join(lines[0], name), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) { return os.Open(export[path]) })
	info := &types.Info{Selections: map[*ast.SelectorExpr]*types.Selection{}}
	if _, err := (&types.Config{Importer: imp}).Check(mod+pkg, fset, files, info); err != nil {
		t.Fatalf("type-check %s: %v", pkg, err)
	}
	acct, err := imp.Import(mod + "internal/account")
	if err != nil {
		t.Fatal(err)
	}
	methods := map[string][]types.Type{} // by name, their signatures
	for _, name := range acct.Scope().Names() {
		obj := acct.Scope().Lookup(name)
		iface, ok := obj.Type().Underlying().(*types.Interface)
		if !ok || !obj.Exported() || !strings.HasSuffix(name, "Store") {
			continue
		}
		for m := range iface.Methods() {
			methods[m.Name()] = append(methods[m.Name()], m.Type())
		}
	}
	if methods["MemberByID"] == nil || methods["AuditLog"] == nil {
		t.Fatalf("account's store interfaces not found: %v", methods)
	}
	var calls []string
	for sel, s := range info.Selections {
		// The same name with another signature is another store's method
		// (the mail store's Messages), not an account one.
		if s.Kind() != types.MethodVal || !slices.ContainsFunc(methods[s.Obj().Name()],
			func(sig types.Type) bool { return types.Identical(sig, s.Obj().Type()) }) {
			continue
		}
		recv := s.Recv()
		if p, ok := recv.(*types.Pointer); ok {
			recv = p.Elem()
		}
		named, ok := recv.(*types.Named)
		if ok && named.Obj().Pkg() != nil && strings.HasPrefix(named.Obj().Pkg().Path(), mod+"internal/store/") {
			pos := fset.Position(sel.Pos())
			calls = append(calls, fmt.Sprintf("%s:%d %s.%s", filepath.Base(pos.Filename), pos.Line, named.Obj().Name(), s.Obj().Name()))
		}
	}
	slices.Sort(calls)
	return calls
}
