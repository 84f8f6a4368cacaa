package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSplitWords(t *testing.T) {
	bools := boolFlags()
	for _, tc := range []struct {
		args, words, flags string
	}{
		{"user list --json example.com", "user list example.com", "--json"},
		{"--data d user list example.com", "user list example.com", "--data d"},
		{"apppass create a@b.c --name Mail --json", "apppass create a@b.c", "--name Mail --json"},
		{"apppass create a@b.c --name=Mail", "apppass create a@b.c", "--name=Mail"},
		{"user passwd a@b.c --password-stdin --data d", "user passwd a@b.c", "--password-stdin --data d"},
		{"apppass delete a@b.c -- -odd-id", "apppass delete a@b.c -odd-id", ""},
		{"user list -h example.com", "user list example.com", "-h"},
	} {
		words, flags := splitWords(strings.Fields(tc.args), bools)
		if strings.Join(words, " ") != tc.words || strings.Join(flags, " ") != tc.flags {
			t.Errorf("%q: words %q flags %q, want %q %q", tc.args, words, flags, tc.words, tc.flags)
		}
	}
}

func TestEnvName(t *testing.T) {
	if got := envName("web-addr"); got != "POSTERN_WEB_ADDR" {
		t.Errorf("envName = %s", got)
	}
}

// runIn runs a command line in-process with getenv replaced.
func runIn(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	a := &app{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr,
		getenv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	defer a.close()
	code := exitCode(a, dispatch(context.Background(), a, args))
	return code, stdout.String(), stderr.String()
}

// mustRunIn returns a function that runs a command in env and fails the
// test unless it succeeds, returning its standard output.
func mustRunIn(t *testing.T, env map[string]string) func(args ...string) string {
	return func(args ...string) string {
		t.Helper()
		code, out, stderr := runIn(t, env, args...)
		if code != 0 {
			t.Fatalf("%v: %d %s", args, code, stderr)
		}
		return out
	}
}

func TestFlagsWinOverEnvironment(t *testing.T) {
	envDir, flagDir := t.TempDir(), t.TempDir()
	env := map[string]string{"POSTERN_DATA": envDir, "POSTERN_NAME": "ignored"}
	if code, _, stderr := runIn(t, env, "domain", "add", "env.example"); code != 0 {
		t.Fatal(stderr)
	}
	if code, _, stderr := runIn(t, env, "domain", "add", "flag.example", "--data", flagDir); code != 0 {
		t.Fatal(stderr)
	}
	_, out, _ := runIn(t, env, "domain", "list")
	if !strings.Contains(out, "env.example") || strings.Contains(out, "flag.example") {
		t.Errorf("env data folder lists:\n%s", out)
	}
	// Operands do not come from the environment.
	if code, _, stderr := runIn(t, map[string]string{"POSTERN_DATA": envDir, "POSTERN_NAME": "Mail"}, "apppass", "create", "x@env.example"); code != 2 || !strings.Contains(stderr, "--name") {
		t.Errorf("POSTERN_NAME used as --name: %d %s", code, stderr)
	}
}

func TestUsageExitCodes(t *testing.T) {
	data := filepath.Join(t.TempDir(), "d")
	for _, tc := range []struct {
		args []string
		code int
	}{
		{nil, 2},
		{[]string{"help"}, 0},
		{[]string{"--help"}, 0},
		{[]string{"user", "list", "--help"}, 0},
		{[]string{"nope"}, 2},
		{[]string{"apppass"}, 2},
		{[]string{"domain", "add"}, 2},
		{[]string{"domain", "add", "a.example", "b.example"}, 2},
		{[]string{"domain", "list", "--log-level", "chatty"}, 2},
	} {
		code, _, stderr := runIn(t, map[string]string{"POSTERN_DATA": data}, tc.args...)
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d\n%s", tc.args, code, tc.code, stderr)
		}
	}
}

func TestCommandsAreUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range commands {
		if seen[c.name] {
			t.Errorf("duplicate command %s", c.name)
		}
		seen[c.name] = true
		if c.setup == nil {
			t.Errorf("%s has no setup", c.name)
		}
	}
}

// TestVersion: `postern --version` and `postern version --json` need no data
// folder and name a version.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"-version"}, {"version"}} {
		code, out, errOut := runIn(t, nil, args...)
		if code != 0 || !strings.HasPrefix(out, "postern ") || !strings.HasSuffix(out, "\n") || errOut != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	code, out, _ := runIn(t, nil, "version", "--json")
	if code != 0 || !strings.Contains(out, `"version":`) || !strings.Contains(out, `"platform":`) {
		t.Errorf("version --json: exit %d, %q", code, out)
	}
}

// TestLogFormatJSON: --log-format json (or POSTERN_LOG_FORMAT) makes every
// log line one JSON object; an unknown format is a usage error.
func TestLogFormatJSON(t *testing.T) {
	dir := t.TempDir()
	code, _, stderr := runIn(t, map[string]string{"POSTERN_LOG_FORMAT": "json"}, "domain", "list", "--data", dir, "--log-level", "info")
	if code != 0 || stderr == "" {
		t.Fatalf("exit %d, stderr %q (the new secret key is logged at info)", code, stderr)
	}
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec["msg"] == nil || rec["level"] == nil {
			t.Errorf("not a JSON log record: %q (%v)", line, err)
		}
	}
	if code, _, stderr := runIn(t, nil, "domain", "list", "--data", dir, "--log-format", "xml"); code != 2 || !strings.Contains(stderr, "--log-format") {
		t.Errorf("--log-format xml: exit %d, %q", code, stderr)
	}
}

// TestMigrateStatus: --status on a data folder without a database lists
// every migration pending and creates nothing; migrate applies them.
func TestMigrateStatus(t *testing.T) {
	dir := t.TempDir()
	code, out, stderr := runIn(t, nil, "migrate", "--status", "--data", dir)
	if code != 0 || !strings.Contains(out, "pending") || strings.Contains(out, "applied ") {
		t.Fatalf("exit %d: %s %s", code, out, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "postern.db")); !os.IsNotExist(err) {
		t.Fatalf("--status created the database: %v", err)
	}
	if code, _, stderr := runIn(t, nil, "migrate", "--data", dir); code != 0 {
		t.Fatal(stderr)
	}
	code, out, _ = runIn(t, nil, "migrate", "--status", "--json", "--data", dir)
	var list []struct {
		Name    string `json:"name"`
		Applied bool   `json:"applied"`
	}
	if err := json.Unmarshal([]byte(out), &list); code != 0 || err != nil || len(list) == 0 {
		t.Fatalf("exit %d, %v: %s", code, err, out)
	}
	for _, m := range list {
		if !m.Applied {
			t.Errorf("after migrate: %+v", m)
		}
	}
}
