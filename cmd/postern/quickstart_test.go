package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/postern/postern/packaging/systemd"
)

// TestQuickstartUnit: the printed unit is the packaged one but for the
// command line, which leaves the settings to the file, and the data folder
// made writable when it is not the unit's own.
func TestQuickstartUnit(t *testing.T) {
	packaged := strings.Split(systemd.Unit, "\n")
	for _, tc := range []struct {
		data, config string
		defaultPlace bool
		want         []string
	}{
		{unitData, unitData + "/postern.toml", true, []string{"ExecStart=/usr/local/bin/postern serve --data /var/lib/postern"}},
		{"/srv/mail", "/etc/postern/postern.toml", false, []string{"ReadWritePaths=/srv/mail", "ExecStart=/usr/local/bin/postern serve --data /srv/mail --config /etc/postern/postern.toml"}},
	} {
		unit := quickstartUnit(tc.data, tc.config, tc.defaultPlace)
		have := map[string]bool{}
		for _, l := range packaged {
			have[l] = true
		}
		var added []string
		for _, l := range strings.Split(unit, "\n") {
			if !have[l] && !strings.HasPrefix(l, "#") {
				added = append(added, l)
			}
		}
		if strings.Join(added, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("%s: lines not in the packaged unit: %q, want %q", tc.data, added, tc.want)
		}
		if strings.Contains(unit, "--imap-addr") || strings.Count(unit, "ExecStart=") != 1 || !strings.Contains(unit, "\nProtectSystem=strict\n") {
			t.Errorf("%s: unit\n%s", tc.data, unit)
		}
	}
}

// TestQuickstartNeverOverwrites: quickstart refuses a data folder with
// anything in it and an existing configuration file; a file named with
// --config is written there, naming the data folder, and serves later
// commands.
func TestQuickstartNeverOverwrites(t *testing.T) {
	env := map[string]string{}
	used := t.TempDir()
	os.WriteFile(filepath.Join(used, "notes.txt"), []byte("mine"), 0o600)
	if code, _, stderr := runIn(t, env, "quickstart", "mail.example.com", "admin@example.com", "--data", used); code != 1 || !strings.Contains(stderr, "is not empty") {
		t.Errorf("non-empty folder: %d %s", code, stderr)
	}
	existing := filepath.Join(t.TempDir(), "postern.toml")
	os.WriteFile(existing, []byte("# mine\n"), 0o600)
	data := filepath.Join(t.TempDir(), "data")
	if code, _, stderr := runIn(t, env, "quickstart", "mail.example.com", "admin@example.com", "--data", data, "--config", existing); code != 1 || !strings.Contains(stderr, "never overwrites") {
		t.Errorf("existing config: %d %s", code, stderr)
	}
	if b, _ := os.ReadFile(existing); string(b) != "# mine\n" {
		t.Errorf("config overwritten: %q", b)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("the data folder was made before the refusal: %v", err)
	}
	for _, bad := range [][]string{{"not a host", "admin@example.com"}, {"mail.example.com", "admin"}} {
		if code, _, stderr := runIn(t, env, "quickstart", bad[0], bad[1], "--data", data); code != 2 {
			t.Errorf("%q: %d %s", bad, code, stderr)
		}
	}

	config := filepath.Join(t.TempDir(), "etc", "postern.toml")
	out := mustRunIn(t, env)("quickstart", "mail.example.com", "admin@example.com", "--data", data, "--config", config)
	if !strings.Contains(out, "ExecStart=/usr/local/bin/postern serve --data "+data+" --config "+config+"\n") {
		t.Errorf("unit:\n%s", out)
	}
	if out := mustRunIn(t, env)("domain", "list", "--config", config); !strings.Contains(out, "example.com") {
		t.Errorf("domain list from the file's data folder:\n%s", out)
	}
	if out := mustRunIn(t, map[string]string{configEnv: config})("user", "list"); !strings.Contains(out, "admin@example.com") {
		t.Errorf("user list:\n%s", out)
	}
}
