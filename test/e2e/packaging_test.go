package e2e

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The files operators install (packaging/, Dockerfile, compose.yaml) are
// checked here against the real binary: a flag or variable they name that
// postern does not know, or a unit systemd would not load as written, fails.

const (
	unitPath     = "../../packaging/systemd/postern.service"
	sysusersPath = "../../packaging/systemd/postern.sysusers"
	envPath      = "../../packaging/systemd/postern.env"
	installDoc   = "../../docs/install.md"
	dockerfile   = "../../Dockerfile"
	composePath  = "../../compose.yaml"
	// The folder the unit gives to --data (its StateDirectory).
	unitData = "/var/lib/postern"
)

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// logicalLines returns the lines of a systemd unit or a Dockerfile, both of
// which continue a line ending in a backslash on the next, without blank
// lines and lines starting with one of the comment characters.
func logicalLines(text, comment string) []string {
	var lines []string
	var cont strings.Builder
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if cont.Len() == 0 && (trimmed == "" || strings.ContainsRune(comment, rune(trimmed[0]))) {
			continue
		}
		if strings.HasSuffix(trimmed, `\`) {
			cont.WriteString(strings.TrimSuffix(trimmed, `\`) + " ")
			continue
		}
		cont.WriteString(trimmed)
		lines = append(lines, cont.String())
		cont.Reset()
	}
	return lines
}

// unitFile is a parsed systemd unit: section → key → values in order.
type unitFile map[string]map[string][]string

// parseUnit reads the systemd unit syntax the packaged unit uses: sections,
// Key=Value, comments (# and ;), and lines continued with a backslash.
func parseUnit(t *testing.T, text string) unitFile {
	t.Helper()
	u := unitFile{}
	section := ""
	for _, full := range logicalLines(text, "#;") {
		if strings.HasPrefix(full, "[") && strings.HasSuffix(full, "]") {
			section = full[1 : len(full)-1]
			u[section] = map[string][]string{}
			continue
		}
		k, v, ok := strings.Cut(full, "=")
		if !ok || section == "" {
			t.Fatalf("unit line %q is not Key=Value in a section", full)
		}
		u[section][k] = append(u[section][k], v)
	}
	return u
}

// one returns the single value of key in section, failing when it is missing or repeated.
func (u unitFile) one(t *testing.T, section, key string) string {
	t.Helper()
	v := u[section][key]
	if len(v) != 1 {
		t.Fatalf("[%s] %s: %d values %q, want one", section, key, len(v), v)
	}
	return v[0]
}

// loopbackAddrs puts every listener flag (--*-addr VALUE) of args on
// 127.0.0.1:0: the packaged command lines use the standard ports on every
// address, which a test must not take.
func loopbackAddrs(args []string) []string {
	out := append([]string(nil), args...)
	for i := 0; i+1 < len(out); i++ {
		if strings.HasPrefix(out[i], "--") && strings.HasSuffix(out[i], "-addr") {
			out[i+1] = "127.0.0.1:0"
		}
	}
	return out
}

// serveUntilHealthy starts the command line args (a serve command) with env
// and checks that /healthz on its web listener answers.
func serveUntilHealthy(t *testing.T, env []string, args []string) {
	t.Helper()
	srv := StartServer(t, env, args...)
	if code, body := httpGet(t, srv.URL("/healthz")); code != 200 || body != "ok" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	srv.Stop(t)
}

// requireTool finds a program the test needs. scripts/test-deps.sh installs
// it, so it is never skipped: a missing one fails.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found (Debian's systemd package; scripts/test-deps.sh installs it): %v", name, err)
	}
	return p
}

func TestSystemdUnit(t *testing.T) {
	text := readFile(t, unitPath)
	u := parseUnit(t, text)

	// The hardening the unit promises in docs/install.md.
	want := map[string]string{
		"User":                    "postern",
		"Group":                   "postern",
		"StateDirectory":          "postern",
		"EnvironmentFile":         "-/etc/postern/postern.env",
		"AmbientCapabilities":     "CAP_NET_BIND_SERVICE",
		"CapabilityBoundingSet":   "CAP_NET_BIND_SERVICE",
		"NoNewPrivileges":         "yes",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"PrivateDevices":          "yes",
		"ProtectKernelTunables":   "yes",
		"ProtectKernelModules":    "yes",
		"ProtectKernelLogs":       "yes",
		"RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
		"SystemCallFilter":        "@system-service",
		"Restart":                 "on-failure",
		// systemctl reload: new certificate files without closing a connection.
		"ExecReload": "/bin/kill -HUP $MAINPID",
	}
	for k, v := range want {
		if got := u.one(t, "Service", k); got != v {
			t.Errorf("[Service] %s=%s, want %s", k, got, v)
		}
	}
	// Thousands of IMAP IDLE connections, one descriptor each.
	if n, err := strconv.Atoi(u.one(t, "Service", "LimitNOFILE")); err != nil || n < 65536 {
		t.Errorf("LimitNOFILE=%s, want a number ≥ 65536", u.one(t, "Service", "LimitNOFILE"))
	}

	// ExecStart: the data in the StateDirectory, every mail port public.
	execStart := strings.Fields(u.one(t, "Service", "ExecStart"))
	if strings.ContainsAny(u.one(t, "Service", "ExecStart"), `"'$%`) {
		t.Fatalf("ExecStart has quotes or specifiers this test does not expand: %q", execStart)
	}
	if len(execStart) < 2 || execStart[0] != "/usr/local/bin/postern" || execStart[1] != "serve" {
		t.Fatalf("ExecStart runs %q, want /usr/local/bin/postern serve", execStart)
	}
	args := execStart[1:]
	flags := map[string]string{}
	for i := 0; i+1 < len(args); i++ {
		if strings.HasPrefix(args[i], "--") {
			flags[args[i]] = args[i+1]
		}
	}
	if flags["--data"] != unitData {
		t.Errorf("ExecStart --data %q, want the StateDirectory %s", flags["--data"], unitData)
	}
	for flag, addr := range map[string]string{
		"--imap-addr": ":143", "--imaps-addr": ":993", "--pop3-addr": ":110", "--pop3s-addr": ":995",
		"--submission-addr": ":587", "--submissions-addr": ":465", "--smtp-addr": ":25",
	} {
		if flags[flag] != addr {
			t.Errorf("ExecStart %s %q, want %q", flag, flags[flag], addr)
		}
	}

	t.Run("systemd-analyze", func(t *testing.T) {
		analyze := requireTool(t, "systemd-analyze")
		// systemd-analyze verify checks that ExecStart's program exists and
		// exits 0 on a directive it ignores, with only a line of output: any
		// output fails.
		dir := t.TempDir()
		copyPath := filepath.Join(dir, "postern.service")
		if err := os.WriteFile(copyPath, []byte(strings.Replace(text, "ExecStart=/usr/local/bin/postern ", "ExecStart="+binary+" ", 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(analyze, "verify", "--man=no", copyPath).CombinedOutput()
		if err != nil || len(out) != 0 {
			t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
		}
	})

	t.Run("sysusers", func(t *testing.T) {
		sysusers := requireTool(t, "systemd-sysusers")
		root := t.TempDir()
		if err := os.Mkdir(filepath.Join(root, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
		conf, err := filepath.Abs(sysusersPath) // a relative one is taken inside --root
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(sysusers, "--root="+root, conf).CombinedOutput()
		if err != nil {
			t.Fatalf("systemd-sysusers: %v\n%s", err, out)
		}
		passwd := readFile(t, filepath.Join(root, "etc/passwd"))
		f := strings.Split(strings.TrimSpace(passwd), ":")
		if len(f) != 7 || f[0] != "postern" || f[5] != unitData || f[6] != "/usr/sbin/nologin" {
			t.Errorf("systemd-sysusers made %q, want the user postern with home %s and no shell", passwd, unitData)
		}
		if group := readFile(t, filepath.Join(root, "etc/group")); !strings.HasPrefix(group, "postern:") {
			t.Errorf("systemd-sysusers made the groups %q, want postern", group)
		}
	})

	t.Run("docs", func(t *testing.T) {
		doc := readFile(t, installDoc)
		for _, p := range []string{unitPath, sysusersPath, envPath} {
			if !strings.Contains(doc, readFile(t, p)) {
				t.Errorf("docs/install.md does not hold %s verbatim", filepath.Base(p))
			}
		}
	})

	t.Run("env-file-in-sh", func(t *testing.T) {
		// The CLI reads the environment file with sh (docs/install.md):
		// every sample line, commented out or not, must mean to sh what it
		// means to systemd.
		var lines []string
		for _, l := range strings.Split(readFile(t, envPath), "\n") {
			if strings.HasPrefix(l, "#POSTERN_") {
				l = l[1:]
			}
			lines = append(lines, l)
		}
		all := strings.Join(lines, "\n")
		path := filepath.Join(t.TempDir(), "postern.env")
		if err := os.WriteFile(path, []byte(all), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("sh", "-c", `set -a; . "$1"; env`, "sh", path)
		cmd.Env = cleanEnv(nil)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("sh cannot read the environment file: %v", err)
		}
		got := map[string]bool{}
		for _, kv := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(kv, "POSTERN_") {
				got[kv] = true
			}
		}
		want := envFile(t, all)
		for _, kv := range want {
			if !got[kv] {
				t.Errorf("systemd reads %q, sh does not", kv)
			}
		}
		if len(got) != len(want) {
			t.Errorf("sh reads %d variables, systemd %d", len(got), len(want))
		}
	})

	// The command line of the unit, as systemd runs it, with the settings of
	// the sample environment file: a test folder for /var/lib/postern and
	// loopback ports. PostgreSQL comes from the environment file too.
	env := envFile(t, readFile(t, envPath))
	Engines(t, func(t *testing.T, in *Instance) {
		run := loopbackAddrs(args)
		for i, a := range run {
			if a == unitData {
				run[i] = in.Data
			}
		}
		e := append([]string(nil), env...)
		if in.Database != "" {
			e = append(e, "POSTERN_DATABASE="+in.Database)
		}
		serveUntilHealthy(t, e, run)
	})
}

// envFile returns the assignments of a systemd environment file written as
// the sample is: KEY=VALUE lines, the value possibly in single quotes.
func envFile(t *testing.T, text string) []string {
	t.Helper()
	var env []string
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("environment file line %q is not KEY=VALUE", line)
		}
		if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
			v = v[1 : len(v)-1]
		}
		env = append(env, k+"="+v)
	}
	return env
}

// dockerImage is what the final stage of the Dockerfile sets.
type dockerImage struct {
	env        []string
	entrypoint []string
	cmd        []string
	user       string
	volumes    []string
	expose     []string
}

// parseDockerfile reads the final stage of a Dockerfile: ENV KEY=VALUE,
// USER, VOLUME, EXPOSE, and ENTRYPOINT and CMD in their JSON (exec) form,
// the only one that runs the binary without a shell.
func parseDockerfile(t *testing.T, text string) dockerImage {
	t.Helper()
	var img dockerImage
	for _, full := range logicalLines(text, "#") {
		instr, rest, _ := strings.Cut(full, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(instr) {
		case "FROM":
			img = dockerImage{}
		case "ENV":
			for _, kv := range strings.Fields(rest) {
				if !strings.Contains(kv, "=") {
					t.Fatalf("ENV %q: write ENV KEY=VALUE", rest)
				}
				img.env = append(img.env, kv)
			}
		case "USER":
			img.user = rest
		case "VOLUME":
			if err := json.Unmarshal([]byte(rest), &img.volumes); err != nil {
				t.Fatalf("VOLUME %s: want the JSON form: %v", rest, err)
			}
		case "EXPOSE":
			img.expose = append(img.expose, strings.Fields(rest)...)
		case "ENTRYPOINT", "CMD":
			var v []string
			if err := json.Unmarshal([]byte(rest), &v); err != nil {
				t.Fatalf("%s %s: want the JSON (exec) form: %v", instr, rest, err)
			}
			if strings.ToUpper(instr) == "CMD" {
				img.cmd = v
			} else {
				img.entrypoint = v
			}
		}
	}
	return img
}

func TestDockerfileEntrypoint(t *testing.T) {
	img := parseDockerfile(t, readFile(t, dockerfile))
	if len(img.entrypoint) != 1 || img.entrypoint[0] != "/postern" {
		t.Fatalf("ENTRYPOINT %q, want [\"/postern\"]", img.entrypoint)
	}
	if len(img.cmd) == 0 || img.cmd[0] != "serve" {
		t.Fatalf("CMD %q, want serve and its flags", img.cmd)
	}
	if uid, _, _ := strings.Cut(img.user, ":"); uid == "" || uid == "0" || uid == "root" {
		t.Errorf("USER %q: the image must run as a non-root user", img.user)
	}
	data := ""
	for _, kv := range img.env {
		if k, v, _ := strings.Cut(kv, "="); k == "POSTERN_DATA" {
			data = v
		}
	}
	if data == "" || len(img.volumes) != 1 || img.volumes[0] != data {
		t.Errorf("ENV POSTERN_DATA=%q and VOLUME %q: the data folder must be the volume", data, img.volumes)
	}
	// Every port CMD listens on is exposed and published by compose.yaml
	// (8080, the plain-HTTP web listener, on the host's loopback only).
	compose := readFile(t, composePath)
	var ports []string
	for i, a := range img.cmd {
		if strings.HasSuffix(a, "-addr") && i+1 < len(img.cmd) && img.cmd[i+1] != "" {
			_, port, _ := strings.Cut(img.cmd[i+1], ":")
			ports = append(ports, port)
		}
	}
	sort.Strings(ports)
	exposed := append([]string(nil), img.expose...)
	sort.Strings(exposed)
	if strings.Join(ports, " ") != strings.Join(exposed, " ") {
		t.Errorf("CMD listens on %v, EXPOSE has %v", ports, exposed)
	}
	for _, p := range ports {
		if !regexp.MustCompile(`"(127\.0\.0\.1:)?` + p + `:` + p + `"`).MatchString(compose) {
			t.Errorf("compose.yaml does not publish port %s", p)
		}
	}

	// The container's command line on the real binary, with the image's
	// environment: a test folder for the volume, loopback ports. The
	// metrics listener, which CMD leaves on its loopback default, goes on a
	// free port too. PostgreSQL as compose.yaml gives it.
	Engines(t, func(t *testing.T, in *Instance) {
		var env []string
		for _, kv := range img.env {
			if k, _, _ := strings.Cut(kv, "="); k == "POSTERN_DATA" {
				kv = k + "=" + in.Data
			}
			env = append(env, kv)
		}
		if in.Database != "" {
			env = append(env, "POSTERN_DATABASE="+in.Database)
		}
		args := append(loopbackAddrs(img.cmd), "--metrics-addr", "127.0.0.1:0")
		serveUntilHealthy(t, env, args)
	})
}

// TestPackagingVariables checks that every POSTERN_ variable the packaging
// files and docs/install.md name is one postern reads: a misspelt one would
// be ignored without a word.
func TestPackagingVariables(t *testing.T) {
	r := Run(t, nil, "", "serve", "--help")
	known := map[string]bool{}
	for _, m := range regexp.MustCompile(`\((POSTERN_[A-Z0-9_]+)\)`).FindAllStringSubmatch(r.Stdout, -1) {
		known[m[1]] = true
	}
	if !known["POSTERN_DATA"] || !known["POSTERN_TLS_CERT"] {
		t.Fatalf("postern serve --help lists no POSTERN_ variables:\n%s", r)
	}
	for _, p := range []string{unitPath, envPath, dockerfile, composePath, installDoc} {
		for _, name := range regexp.MustCompile(`POSTERN_[A-Z0-9_]+`).FindAllString(readFile(t, p), -1) {
			if !known[name] {
				t.Errorf("%s names %s, which postern does not read", filepath.Base(p), name)
			}
		}
	}
}
