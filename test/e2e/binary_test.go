// Package e2e tests the real postern binary, built once per test run, with
// real clients over loopback sockets, on SQLite and on PostgreSQL.
//
// Helpers for every e2e test file:
//
//	in := NewSQLite(t)                       // or NewPostgres(t), or Engines(t, fn)
//	r := in.Run(t, "user", "list", "--json") // r.Stdout, r.Stderr, r.Code
//	out := in.MustRun(t, "domain", "add", "example.com")
//	in.RunJSON(t, &v, "apppass", "list", "alice@example.com")
//	srv := in.StartServer(t)                 // every listener on 127.0.0.1:0
//	srv.Addr("imap"), srv.URL("/healthz"), srv.MetricsURL()
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/postern/postern/internal/store/storetest"
)

// binary is the postern binary built by TestMain.
var binary string

func TestMain(m *testing.M) {
	// The crash test re-executes this test binary as its child process.
	if os.Getenv(crashChildEnv) != "" {
		os.Exit(crashChild())
	}
	dir, err := os.MkdirTemp("", "postern-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "postern")
	build := exec.Command("go", "build", "-o", binary, "github.com/postern/postern/cmd/postern")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build postern:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Instance is one Postern installation: a data folder and, for PostgreSQL, a
// database URL with a schema of its own.
type Instance struct {
	Engine   string   // "sqlite" or "postgres"
	Data     string   // --data
	Database string   // --database; "" for SQLite in Data
	Env      []string // extra environment of every command, KEY=VALUE
}

// NewSQLite returns an installation with SQLite in a fresh temporary folder.
func NewSQLite(t testing.TB) *Instance {
	t.Helper()
	return &Instance{Engine: "sqlite", Data: t.TempDir()}
}

// NewPostgres returns an installation on the test PostgreSQL server in a
// fresh schema, dropped when the test ends. An unreachable server fails the
// test: it is always available, locally and in CI.
func NewPostgres(t testing.TB) *Instance {
	t.Helper()
	return &Instance{Engine: "postgres", Data: t.TempDir(), Database: PostgresSchema(t)}
}

// Engines runs fn as a subtest on a fresh SQLite and a fresh PostgreSQL installation.
func Engines(t *testing.T, fn func(t *testing.T, in *Instance)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, NewSQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, NewPostgres(t)) })
}

// PostgresSchema creates a schema t_<random> on the test server and returns
// the DSN that uses it; the schema is dropped when the test ends.
func PostgresSchema(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	base := storetest.PostgresDSN()
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	b := make([]byte, 8)
	rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		t.Fatalf("postgres unreachable (the tests need it; set POSTERN_TEST_POSTGRES): %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		admin.Close()
	})
	return storetest.WithSearchPath(base, schema)
}

// Flags returns the global flags that select this installation.
func (in *Instance) Flags() []string {
	f := []string{"--data", in.Data}
	if in.Database != "" {
		f = append(f, "--database", in.Database)
	}
	return f
}

// Result is what a command did.
type Result struct {
	Stdout, Stderr string
	Code           int
}

func (r Result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
}

// Run runs postern with args (no flags added) and the given environment on
// top of a clean one, and waits for it (at most 2 minutes).
func Run(t testing.TB, env []string, stdin string, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = cleanEnv(env)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.Code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("postern %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// cleanEnv is this process's environment without POSTERN_* variables (which
// would reconfigure the binary under test), plus extra.
func cleanEnv(extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "POSTERN_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// Run runs a command of this installation: args with its --data/--database.
func (in *Instance) Run(t testing.TB, args ...string) Result {
	t.Helper()
	return Run(t, in.Env, "", append(args, in.Flags()...)...)
}

// RunStdin is Run with stdin as standard input.
func (in *Instance) RunStdin(t testing.TB, stdin string, args ...string) Result {
	t.Helper()
	return Run(t, in.Env, stdin, append(args, in.Flags()...)...)
}

// MustRun runs a command that must succeed and returns its stdout.
func (in *Instance) MustRun(t testing.TB, args ...string) string {
	t.Helper()
	r := in.Run(t, args...)
	if r.Code != 0 {
		t.Fatalf("postern %s: %s", strings.Join(args, " "), r)
	}
	return r.Stdout
}

// RunJSON runs a command with --json that must succeed and decodes its output into v.
func (in *Instance) RunJSON(t testing.TB, v any, args ...string) {
	t.Helper()
	out := in.MustRun(t, append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("postern %s --json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// listenerFlags are the listener addresses of serve; StartServer puts every
// one not given on 127.0.0.1:0.
var listenerFlags = []string{"web", "metrics", "imap", "imaps", "pop3", "pop3s", "submission", "submissions", "smtp"}

// Server is a running postern serve (or demo).
type Server struct {
	Addrs map[string]string // listener name ("web", "imap", …) → bound host:port

	cmd    *exec.Cmd
	stdout *syncBuffer
	stderr *syncBuffer
	done   chan struct{}
	err    error // of cmd.Wait, once done is closed
}

// StartServer starts "postern serve" on this installation with args, every
// listener on a free loopback port unless args give its address, and waits
// until it is ready. It is stopped when the test ends.
func (in *Instance) StartServer(t testing.TB, args ...string) *Server {
	t.Helper()
	return in.Start(t, "serve", args...)
}

// Start starts "postern <command>" (serve or demo) like StartServer.
func (in *Instance) Start(t testing.TB, command string, args ...string) *Server {
	t.Helper()
	full := append([]string{command}, in.Flags()...)
	for _, name := range listenerFlags {
		if !hasFlag(args, name+"-addr") {
			full = append(full, "--"+name+"-addr", "127.0.0.1:0")
		}
	}
	if !hasFlag(args, "dns-resolver") {
		// The MX listener's sender checks ask DNS; tests ask loopback only
		// (a closed port: every lookup fails at once, as temperror). Tests
		// of the checks give a DNS server of their own.
		full = append(full, "--dns-resolver", "127.0.0.1:1")
	}
	return StartServer(t, in.Env, append(full, args...)...)
}

func hasFlag(args []string, name string) bool {
	for _, a := range args {
		a = strings.TrimLeft(a, "-")
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}

// StartServer runs postern with exactly args (a serve or demo command line),
// waits for its "ready" line and returns the bound addresses. The process is
// stopped (SIGTERM) when the test ends.
func StartServer(t testing.TB, env []string, args ...string) *Server {
	t.Helper()
	s := &Server{Addrs: map[string]string{}, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	s.cmd = exec.Command(binary, args...)
	s.cmd.Env = cleanEnv(env)
	s.cmd.Stderr = s.stderr
	pipe, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		br := bufio.NewReader(pipe)
		isReady := false
		for {
			line, err := br.ReadString('\n')
			s.stdout.WriteString(line)
			if f := strings.Fields(line); !isReady && len(f) == 3 && f[0] == "listening" {
				s.stdout.mu.Lock()
				s.Addrs[f[1]] = f[2]
				s.stdout.mu.Unlock()
			} else if !isReady && strings.TrimSpace(line) == "ready" {
				isReady = true
				close(ready)
			}
			if err != nil {
				break
			}
		}
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() { s.Stop(t) })
	select {
	case <-ready:
	case <-s.done:
		t.Fatalf("postern %s exited before it was ready: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), s.err, s.stdout, s.stderr)
	case <-time.After(90 * time.Second):
		t.Fatalf("postern %s not ready after 90 s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), s.stdout, s.stderr)
	}
	return s
}

// Addr returns the bound address of a listener; the test fails when it is off.
func (s *Server) Addr(name string) string {
	s.stdout.mu.Lock()
	defer s.stdout.mu.Unlock()
	a, ok := s.Addrs[name]
	if !ok {
		panic("e2e: listener " + name + " is not running")
	}
	return a
}

// URL returns http://<web address><path>.
func (s *Server) URL(path string) string { return "http://" + s.Addr("web") + path }

// MetricsURL returns the Prometheus endpoint on the metrics listener.
func (s *Server) MetricsURL() string { return "http://" + s.Addr("metrics") + "/metrics" }

// Stdout and Stderr return what the server printed so far.
func (s *Server) Stdout() string { return s.stdout.String() }
func (s *Server) Stderr() string { return s.stderr.String() }

// logFlush is longer than the time the server holds information lines in
// its log buffer before writing them (100 ms; warnings go out at once).
const logFlush = 300 * time.Millisecond

// SettledStderr is Stderr once the lines logged before the call have been
// written out: for checks that a line is absent.
func (s *Server) SettledStderr() string {
	time.Sleep(logFlush)
	return s.Stderr()
}

// WaitStderr reports whether the server's log shows substr within a few
// seconds: an information line reaches stderr up to 100 ms after it is logged.
func (s *Server) WaitStderr(substr string) bool {
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if strings.Contains(s.Stderr(), substr) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// Stop sends SIGTERM and waits for a graceful exit (SIGKILL after 30 s). It
// fails the test when the server did not exit cleanly. Calling it again does nothing.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		if s.err != nil {
			t.Errorf("postern exited with %v after SIGTERM\nstderr:\n%s", s.err, s.stderr)
		}
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
		t.Errorf("postern did not stop within 30 s of SIGTERM\nstderr:\n%s", s.stderr)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer goroutine and test readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) WriteString(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.WriteString(s)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var _ io.Writer = (*syncBuffer)(nil)
