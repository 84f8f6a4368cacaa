package main

import (
	"errors"
	"strings"
	"testing"
)

// TestInvocationCommand: a suggested command runs this binary as the
// reader can: go run again after go run, the name PATH finds, the path
// typed, else the absolute path.
func TestInvocationCommand(t *testing.T) {
	onPath := func(p string) func(string) (string, error) {
		return func(name string) (string, error) {
			if p == "" {
				return "", errors.New("not found")
			}
			return p, nil
		}
	}
	same := func(a, b string) bool { return a == b }
	for _, tc := range []struct {
		name string
		in   invocation
		want string
	}{
		{"go run in the module root", invocation{exe: "/tmp/go-build2771/b001/exe/postern", arg0: "/tmp/go-build2771/b001/exe/postern", cwd: "/src/postern",
			isDir: func(p string) bool { return p == "/src/postern/cmd/postern" }, lookPath: onPath(""), sameFile: same}, "go run ./cmd/postern"},
		{"go run's cached build", invocation{exe: "/root/.cache/go-build/e0/e0cbc160da94bda9d298ba3b5828a5238014fb58b2bf5fa3a468282e729c462b-d/postern", arg0: "postern", cwd: "/src/postern",
			isDir: func(p string) bool { return p == "/src/postern/cmd/postern" }, lookPath: onPath(""), sameFile: same}, "go run ./cmd/postern"},
		{"a folder like a cache entry's", invocation{exe: "/opt/e0/e0cbc160-d/postern", arg0: "/opt/e0/e0cbc160-d/postern"}, "/opt/e0/e0cbc160-d/postern"},
		{"go run elsewhere in the module", invocation{exe: "/tmp/go-build2771/b001/exe/postern", arg0: "postern", cwd: "/src/postern/internal",
			isDir: func(string) bool { return false }, lookPath: onPath("/usr/bin/postern"), sameFile: same}, "go run github.com/postern/postern/cmd/postern"},
		{"on PATH", invocation{exe: "/usr/local/bin/postern", arg0: "postern", lookPath: onPath("/usr/local/bin/postern"), sameFile: same}, "postern"},
		{"another postern on PATH", invocation{exe: "/opt/new/postern", arg0: "postern", lookPath: onPath("/usr/local/bin/postern"), sameFile: same}, "/opt/new/postern"},
		{"not on PATH", invocation{exe: "/opt/new/postern", arg0: "postern", lookPath: onPath(""), sameFile: same}, "/opt/new/postern"},
		{"a relative path", invocation{exe: "/home/me/src/postern", arg0: "./postern"}, "./postern"},
		{"an absolute path", invocation{exe: "/usr/local/bin/postern", arg0: "/usr/local/bin/postern"}, "/usr/local/bin/postern"},
		{"a bin folder named exe", invocation{exe: "/opt/exe/postern", arg0: "/opt/exe/postern"}, "/opt/exe/postern"},
	} {
		if got := strings.Join(tc.in.command(), " "); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}

	a := &app{data: "my data", invocation: &invocation{exe: "/x/postern", arg0: "/x/postern"}}
	if got := strings.Join(quoteAll(a.selfCommand("user", "list")), " "); got != "/x/postern --data 'my data' user list" {
		t.Errorf("selfCommand: %q", got)
	}
	a = &app{data: "./postern-data", invocation: a.invocation}
	if got := strings.Join(a.selfCommand("user", "list"), " "); got != "/x/postern user list" {
		t.Errorf("selfCommand, default data: %q", got)
	}
}

func TestShellLines(t *testing.T) {
	words := strings.Fields("go run ./cmd/postern --data /tmp/TestSomethingRatherLong123/001 apppass create alice@example.com --name Thunderbird")
	lines := shellLines(words, "  ", 80)
	for _, l := range lines {
		if len(l) > 80 {
			t.Errorf("%d columns: %q", len(l), l)
		}
	}
	joined := strings.ReplaceAll(strings.Join(lines, "\n"), " \\\n      ", " ")
	if joined != "  "+strings.Join(words, " ") || len(lines) != 2 {
		t.Errorf("lines %q join to %q", lines, joined)
	}
	if got := shellQuote("it's"); got != `'it'\''s'` {
		t.Errorf("shellQuote: %s", got)
	}
}
