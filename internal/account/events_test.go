package account

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"testing"
)

// TestEveryEventKindClassified: every EventKind constant of the package says
// what it does to live sessions and to cached credentials, so that a new
// kind cannot leave sessions open or caches stale by being forgotten.
func TestEveryEventKindClassified(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	found := 0
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			g, ok := decl.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				v := spec.(*ast.ValueSpec)
				if id, ok := v.Type.(*ast.Ident); !ok || id.Name != "EventKind" {
					continue
				}
				for _, n := range v.Names {
					found++
					if _, ok := eventKinds[EventKind(constValue(t, f, n.Name))]; !ok {
						t.Errorf("%s (%s) is not in eventKinds: say whether it ends sessions and changes logins", n.Name, name)
					}
				}
			}
		}
	}
	if found != len(eventKinds) {
		t.Errorf("found %d EventKind constants, eventKinds has %d", found, len(eventKinds))
	}
	for k, c := range eventKinds {
		if c.ends != endsNone && !c.login {
			t.Errorf("%s ends sessions but leaves cached credentials: a revoked credential would still log in", k)
		}
	}
}

// constValue returns the string value of the constant name declared in f.
func constValue(t *testing.T, f *ast.File, name string) string {
	obj := f.Scope.Lookup(name)
	if obj == nil {
		t.Fatalf("%s not declared", name)
	}
	v := obj.Decl.(*ast.ValueSpec)
	for i, n := range v.Names {
		if n.Name == name {
			lit := v.Values[i].(*ast.BasicLit)
			return lit.Value[1 : len(lit.Value)-1]
		}
	}
	return ""
}

func TestEventRevokes(t *testing.T) {
	main, app, other := Credential{}, Credential{AppPasswordID: "ap1"}, Credential{AppPasswordID: "ap2"}
	for _, c := range []struct {
		e                  Event
		main, app, other   bool
		revoking, newLogin bool
	}{
		{Event{Kind: EventAppPasswordDeleted, AppPasswordID: "ap1"}, false, true, false, true, true},
		{Event{Kind: EventAppPasswordDeleted}, false, false, false, true, true},
		{Event{Kind: EventPasswordChanged}, true, false, false, true, true},
		{Event{Kind: EventSettingChanged}, true, true, true, true, true},
		{Event{Kind: EventMemberSuspended}, true, true, true, true, true},
		{Event{Kind: EventMemberRenamed}, true, true, true, true, true},
		{Event{Kind: EventMemberDeleted}, true, true, true, true, true},
		{Event{Kind: EventSessionsEnded}, true, true, true, true, true},
		{Event{Kind: EventPolicyChanged, DomainID: 1}, false, false, false, true, true},
		{Event{Kind: EventAppPasswordCreated, AppPasswordID: "ap1"}, false, false, false, false, true},
		{Event{Kind: EventMemberResumed}, false, false, false, false, true},
		{Event{Kind: EventAccountPaused}, false, false, false, false, true},
		{Event{Kind: EventMailboxChanged, MailboxID: 1}, false, false, false, false, false},
		{Event{Kind: "from.a.newer.node"}, false, false, false, false, true},
	} {
		if got := [3]bool{c.e.Revokes(main), c.e.Revokes(app), c.e.Revokes(other)}; got != [3]bool{c.main, c.app, c.other} {
			t.Errorf("%+v revokes main, ap1, ap2: %v", c.e, got)
		}
		if byPolicy := c.e.Kind == EventPolicyChanged; c.e.Kind.RevokesByPolicy() != byPolicy {
			t.Errorf("%s: RevokesByPolicy %v", c.e.Kind, !byPolicy)
		}
		if c.e.Kind.Revoking() != c.revoking || c.e.Kind.ChangesLogin() != c.newLogin {
			t.Errorf("%s: Revoking %v, ChangesLogin %v", c.e.Kind, c.e.Kind.Revoking(), c.e.Kind.ChangesLogin())
		}
	}
}
