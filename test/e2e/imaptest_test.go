package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// imaptestBinary finds Dovecot's imaptest as tools/imaptest/build.sh leaves
// it: $POSTERN_IMAPTEST, else the build cache. Missing, the test is skipped,
// except in CI, where scripts/test-deps.sh builds it: there it fails.
func imaptestBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("POSTERN_IMAPTEST")
	if bin == "" {
		cache := os.Getenv("XDG_CACHE_HOME")
		if cache == "" {
			home, _ := os.UserHomeDir()
			cache = filepath.Join(home, ".cache")
		}
		bin = filepath.Join(cache, "postern-imaptest", "imaptest")
	}
	if _, err := os.Stat(bin); err != nil {
		msg := "imaptest is not built (scripts/test-deps.sh builds it with tools/imaptest/build.sh): " + err.Error()
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return bin
}

// imaptestSummary is imaptest's last lines: "71 test groups: 0 failed, 0
// skipped due to missing capabilities", "base protocol: 0/457 individual
// commands failed", "extensions: 0/26 individual commands failed".
var (
	imaptestGroups   = regexp.MustCompile(`(?m)^(\d+) test groups: (\d+) failed, (\d+) skipped`)
	imaptestCommands = regexp.MustCompile(`(?m)^(base protocol|extensions): (\d+)/(\d+) individual commands failed$`)
)

// checkImaptest fails unless out is a complete imaptest run in which no test
// group, no command failed and imaptest reported no protocol error (such as
// "Keyword used without being in FLAGS", which fails no command).
func checkImaptest(out string) []string {
	var problems []string
	g := imaptestGroups.FindStringSubmatch(out)
	if g == nil {
		problems = append(problems, "no test group summary")
	} else if g[2] != "0" {
		problems = append(problems, g[0])
	}
	cmds := imaptestCommands.FindAllStringSubmatch(out, -1)
	if len(cmds) != 2 {
		problems = append(problems, "no base protocol and extensions summary")
	}
	for _, c := range cmds {
		if n, _ := strconv.Atoi(c[3]); c[2] != "0" || (c[1] == "base protocol" && n == 0) {
			problems = append(problems, c[0])
		}
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "Error: ") || strings.HasPrefix(l, "*** Test ") {
			problems = append(problems, l)
		}
	}
	return problems
}

func TestCheckImaptest(t *testing.T) {
	const clean = "71 test groups: 0 failed, 0 skipped due to missing capabilities\n" +
		"base protocol: 0/457 individual commands failed\nextensions: 0/26 individual commands failed\n"
	if p := checkImaptest(clean); len(p) != 0 {
		t.Errorf("clean run: %q", p)
	}
	for _, bad := range []string{
		"",
		strings.Replace(clean, "0 failed,", "1 failed,", 1),
		strings.Replace(clean, "0/457", "3/457", 1),
		strings.Replace(clean, "0/26", "1/26", 1),
		strings.Replace(clean, "base protocol: 0/457 individual commands failed\n", "", 1),
		"Error: alice[3]: Keyword used without being in FLAGS: $a: * 1 FETCH (FLAGS ($a))\n" + clean,
	} {
		if p := checkImaptest(bad); len(p) == 0 {
			t.Errorf("accepted %q", bad)
		}
	}
}

// TestImaptest runs Dovecot's imaptest scripted tests (every test group,
// and the extension tests of every capability the server advertises)
// against the real binary, logging in with an app password as a client
// would, on each engine: any failed group or command fails the test.
func TestImaptest(t *testing.T) {
	bin := imaptestBinary(t)
	tests := filepath.Join(filepath.Dir(bin), "tests")
	Engines(t, func(t *testing.T, in *Instance) {
		in.MustRun(t, "domain", "add", "example.com")
		addMember(t, in, "imaptest@example.com")
		pass := createAppPass(t, in, "imaptest@example.com", "imaptest")
		srv := in.StartServer(t)
		host, port, ok := strings.Cut(srv.Addr("imap"), ":")
		if !ok {
			t.Fatalf("imap address %q", srv.Addr("imap"))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "host="+host, "port="+port, "user=imaptest@example.com", "pass="+pass.Password, "test="+tests)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("imaptest: %v", err)
		}
		if problems := checkImaptest(string(out)); len(problems) > 0 || err != nil {
			t.Errorf("imaptest failed:\n%s\n\nits output:\n%s", strings.Join(problems, "\n"), out)
		} else {
			t.Log(strings.TrimSpace(string(out)))
		}
	})
}
