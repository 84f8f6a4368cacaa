package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeConfig(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestConfigFilePrecedence: a flag wins over its variable, the variable
// over the file, the file over the default; the file is found in the data
// folder, or named by --config or POSTERN_CONFIG.
func TestConfigFilePrecedence(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"POSTERN_DATA": dir}
	mustRunIn(t, env)("domain", "add", "old.example", "--created", "2020-01-01")
	policy := func(env map[string]string, args ...string) string {
		t.Helper()
		var ds []domainJSON
		out := mustRunIn(t, env)(append([]string{"domain", "list", "--json"}, args...)...)
		if err := json.Unmarshal([]byte(out), &ds); err != nil || len(ds) != 1 {
			t.Fatalf("domain list: %v %s", err, out)
		}
		return ds[0].Policy
	}
	// The default cut-off (2022) leaves a domain of 2020 optional.
	if p := policy(env); p != "optional" {
		t.Fatalf("without a file: %s", p)
	}
	// A bare TOML date, as the flag takes it, and a key only serve uses,
	// which the other commands accept.
	writeConfig(t, filepath.Join(dir, configFileName), "# settings\ncutoff = 2010-01-01\nweb-addr = \":80\"\nmax-connections = 100\n")
	if p := policy(env); p != "enforced" {
		t.Errorf("file over the default: %s", p)
	}
	withEnv := map[string]string{"POSTERN_DATA": dir, "POSTERN_CUTOFF": "2030-01-01"}
	if p := policy(withEnv); p != "optional" {
		t.Errorf("variable over the file: %s", p)
	}
	if p := policy(withEnv, "--cutoff", "2010-01-01"); p != "enforced" {
		t.Errorf("flag over the variable: %s", p)
	}

	// A file elsewhere names the data folder.
	other := filepath.Join(t.TempDir(), "elsewhere.toml")
	writeConfig(t, other, "data = \""+dir+"\"\ncutoff = \"2030-01-01\"\n")
	noData := map[string]string{}
	if p := policy(noData, "--config", other); p != "optional" {
		t.Errorf("--config: %s", p)
	}
	if p := policy(map[string]string{configEnv: other}); p != "optional" {
		t.Errorf("%s: %s", configEnv, p)
	}
	// The flag's data folder wins over the file's: an empty folder.
	if out := mustRunIn(t, noData)("domain", "list", "--config", other, "--data", t.TempDir()); strings.Contains(out, "old.example") {
		t.Errorf("--data lost to the file's data:\n%s", out)
	}
	if code, _, stderr := runIn(t, noData, "domain", "list", "--config", filepath.Join(dir, "missing.toml")); code != 2 || !strings.Contains(stderr, "missing.toml does not exist") {
		t.Errorf("missing --config: %d %s", code, stderr)
	}
}

// TestConfigFileMistakes: a key that is no setting, a per-command operand
// and a value of the wrong kind are errors naming the key and its line.
func TestConfigFileMistakes(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"POSTERN_DATA": dir}
	path := filepath.Join(dir, configFileName)
	for _, tc := range []struct {
		text string
		want []string
	}{
		{"base-url = \"https://mail.example.com\"\n\nweb-adr = \":80\"\n", []string{"line 3", `unknown setting "web-adr"`}},
		{"web_addr = \":80\"\n", []string{"line 1", `unknown setting "web_addr"`}},
		{"# comment\nname = \"Mail\"\n", []string{"line 2", "name is an option of a command", "--name"}},
		{"json = true\n", []string{"line 1", "json is an option of a command"}},
		{"config = \"/etc/x.toml\"\n", []string{"line 1", "cannot name another"}},
		{"imap-compress = false\n", []string{"line 1", "imap-compress: not a yes-or-no flag"}},
		{"\n\ntrusted-proxies = [\"10.0.0.1\"]\n", []string{"line 3", "trusted-proxies: a list"}},
		{"[serve]\nweb-addr = \":80\"\n", []string{"line 1", `unknown setting "serve"`}},
		{"max-connections = 1.5\n", []string{"line 1", "not a whole number"}},
		{"cutoff = \"someday\"\n", []string{"--cutoff", "not a date"}},
		{"log-level = \"loud\"\n", []string{"--log-level", "loud"}},
		{"web-addr = \n", []string{"line 1"}},
		{"data = \"/elsewhere\"\n", []string{"line 1", "remove the line, or name the file with --config"}},
	} {
		writeConfig(t, path, tc.text)
		code, _, stderr := runIn(t, env, "domain", "list")
		if code != 2 {
			t.Errorf("%q: exit %d, want 2: %s", tc.text, code, stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%q: %q lacks %q", tc.text, stderr, w)
			}
		}
	}
	// The data folder naming itself is fine, however written.
	writeConfig(t, path, "data = \""+dir+"/\"\n")
	mustRunIn(t, env)("domain", "list")
	wd, _ := os.Getwd()
	rel, err := filepath.Rel(wd, dir)
	if err != nil {
		t.Fatal(err)
	}
	mustRunIn(t, map[string]string{"POSTERN_DATA": rel})("domain", "list")
}

func TestKeyLines(t *testing.T) {
	got := keyLines("# c\na = 1\n\"b\" = '''\nx = 2\n'''\n[t]\nc.d = 3\n  e=4\n")
	want := map[string]int{"a": 2, "b": 3, "t": 6, "c": 7, "e": 8}
	for k, l := range want {
		if got[k] != l {
			t.Errorf("%s: line %d, want %d (%v)", k, got[k], l, got)
		}
	}
	if _, ok := got["x"]; ok {
		t.Errorf("a line of a multi-line string counted as a key: %v", got)
	}
}

// TestConfigFileDocExample: the example in docs/deploy.md is a file
// postern reads.
func TestConfigFileDocExample(t *testing.T) {
	doc, err := os.ReadFile("../../docs/deploy.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(doc), "```toml\n")
	if !ok {
		t.Fatal("docs/deploy.md has no TOML example")
	}
	block, _, _ = strings.Cut(block, "```")
	path := filepath.Join(t.TempDir(), "example.toml")
	writeConfig(t, path, block)
	cf, err := readConfigFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if cf.values["max-connections"] != "20000" || cf.values["cutoff"] != "2022-10-13" || cf.values["auth-max-delay"] != "15s" {
		t.Errorf("read %v", cf.values)
	}
}
