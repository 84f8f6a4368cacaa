package e2e

// Helpers of the mail tests (mail_*_test.go): members and app passwords made
// with the CLI, the Python client script, curl and swaks, raw line
// connections bound to a chosen loopback address, and the server's memory.
//
// The server throttles failed logins per client IP (no delay for the first
// two failures, then 2, 4, 8, 15 s). Every client here binds to its own
// loopback address from nextSrc (127.0.0.0/8 is all local on Linux), so
// tests that fail logins on purpose neither wait nor disturb each other.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postern/postern/internal/account"
)

// python is the interpreter of the client script: the system's, with its
// stdlib imaplib, poplib and smtplib.
const python = "/usr/bin/python3"

var srcCounter atomic.Uint32

// nextSrc returns a loopback address no other client of this test run has
// used: 127.20.0.1, 127.20.0.2, …
func nextSrc() string {
	n := srcCounter.Add(1)
	return fmt.Sprintf("127.%d.%d.%d", 20+n/(250*250), n/250%250, n%250+1)
}

// Pid is the process id of the running server.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// memKiB reads a field of /proc/<pid>/status in KiB ("VmRSS", "VmHWM").
func memKiB(t *testing.T, pid int, field string) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(rest)
			n, err := strconv.Atoi(f[0])
			if err != nil || len(f) != 2 || f[1] != "kB" {
				t.Fatalf("/proc/%d/status: %q", pid, line)
			}
			return n
		}
	}
	t.Fatalf("/proc/%d/status has no %s", pid, field)
	return 0
}

// member is a member made by addMember, with its main password.
type member struct {
	Email, Main string
}

// appPass is an app password made by the CLI.
type appPass struct {
	ID, Password string
}

// Grouped is the password as shown for reading: "abcde fghij kmnpq rstuv".
func (p appPass) Grouped() string { return account.GroupAppPassword(p.Password) }

// addMember adds email with the main password "main password of <email>".
func addMember(t *testing.T, in *Instance, email string) member {
	t.Helper()
	m := member{Email: email, Main: "main password of " + email}
	if r := in.RunStdin(t, m.Main+"\n", "user", "add", email, "--name", strings.Split(email, "@")[0], "--password-stdin"); r.Code != 0 {
		t.Fatalf("user add %s: %s", email, r)
	}
	return m
}

// createAppPass creates an app password with the CLI (as an operator would).
func createAppPass(t *testing.T, in *Instance, email, name string) appPass {
	t.Helper()
	var p appPass
	in.RunJSON(t, &p, "apppass", "create", email, "--name", name)
	if !appPasswordRE.MatchString(p.Password) || p.ID == "" {
		t.Fatalf("apppass create %s: %+v", email, p)
	}
	return p
}

// runPython runs testdata/mailclient.py cmd with input as JSON on stdin and
// decodes its JSON output into out.
func runPython(t *testing.T, cmd string, input, out any) {
	t.Helper()
	runPythonArgs(t, "mailclient.py "+cmd, input, out, filepath.Join("testdata", "mailclient.py"), cmd)
}

// runPythonScript runs script (python3 -c) with input as JSON on stdin and
// decodes its JSON output into out.
func runPythonScript(t *testing.T, script string, input, out any) {
	t.Helper()
	runPythonArgs(t, "python", input, out, "-c", script)
}

func runPythonArgs(t *testing.T, what string, input, out any, args ...string) {
	t.Helper()
	in, err := json.Marshal(input)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, python, args...)
	c.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		t.Fatalf("%s: %v\nstderr:\n%s", what, err, stderr.String())
	}
	if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
		t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", what, err, stdout.String(), stderr.String())
	}
}

// pyAttempt is one login of mailclient.py login.
type pyAttempt struct {
	Client   string `json:"client"` // imap-login, imap-plain, pop3-user, smtp, smtp-login
	Host     string `json:"host"`
	Port     int    `json:"port"`
	Src      string `json:"src"`
	User     string `json:"user"`
	Password string `json:"password"`
	TLS      string `json:"tls"` // none, starttls, implicit
}

type pyResult struct {
	OK    bool   `json:"ok"`
	Error string `json:"error"`
}

// newAttempt fills host, port and a fresh source address.
func newAttempt(client, addr, user, password, tlsMode string) pyAttempt {
	host, port := splitAddr(addr)
	return pyAttempt{Client: client, Host: host, Port: port, Src: nextSrc(), User: user, Password: password, TLS: tlsMode}
}

// pyLogins runs the attempts in one interpreter, one connection each.
func pyLogins(t *testing.T, attempts []pyAttempt) []pyResult {
	t.Helper()
	var res []pyResult
	runPython(t, "login", attempts, &res)
	if len(res) != len(attempts) {
		t.Fatalf("mailclient.py login: %d results for %d attempts", len(res), len(attempts))
	}
	return res
}

func splitAddr(addr string) (string, int) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		panic(err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		panic(err)
	}
	return host, port
}

// tool runs an external client (curl, swaks) and returns its exit code and output.
func tool(t *testing.T, name string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	} else if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return 0, string(out)
}

// curlPOP3 logs in with curl's POP3 client (it uses AUTH PLAIN, advertised
// in CAPA) and lists the mailbox; it reports whether that worked. Exit 67
// is curl's "login denied".
func curlPOP3(t *testing.T, addr, user, password string) (bool, string) {
	t.Helper()
	code, out := tool(t, "curl", "-sS", "--max-time", "60", "--interface", nextSrc(),
		"-u", user+":"+password, "pop3://"+addr+"/")
	if code != 0 && code != 67 {
		t.Errorf("curl pop3 %s: unexpected exit %d: %s", user, code, out)
	}
	return code == 0, out
}

// swaksAuth authenticates with swaks (mech PLAIN or LOGIN) and quits; exit
// 28 is swaks' "authentication failed".
func swaksAuth(t *testing.T, addr, mech, user, password string) (bool, string) {
	t.Helper()
	code, out := tool(t, "swaks", "--server", addr, "--local-interface", nextSrc(), "--timeout", "60",
		"--auth", mech, "--auth-user", user, "--auth-password", password, "--quit-after", "AUTH")
	if code != 0 && code != 28 {
		t.Errorf("swaks %s %s: unexpected exit %d: %s", mech, user, code, out)
	}
	return code == 0, out
}

// lineConn is a raw client connection read line by line.
type lineConn struct {
	t *testing.T
	net.Conn
	r *bufio.Reader
}

// dialFrom connects to addr from the loopback address src.
func dialFrom(t *testing.T, addr, src string) *lineConn {
	t.Helper()
	d := net.Dialer{Timeout: 30 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, src, err)
	}
	t.Cleanup(func() { c.Close() })
	return &lineConn{t: t, Conn: c, r: bufio.NewReader(c)}
}

// dial connects to addr from a fresh loopback address.
func dial(t *testing.T, addr string) *lineConn {
	t.Helper()
	return dialFrom(t, addr, nextSrc())
}

// send writes s as it is (one write).
func (c *lineConn) send(s string) {
	c.t.Helper()
	c.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write([]byte(s)); err != nil {
		c.t.Fatalf("write %q: %v", s, err)
	}
}

// line reads one line, CRLF included; it fails the test after 30 s.
func (c *lineConn) line() string {
	c.t.Helper()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (after %q)", err, l)
	}
	return l
}

// until reads lines up to and including the first that starts with prefix
// and returns them all.
func (c *lineConn) until(prefix string) string {
	c.t.Helper()
	var b strings.Builder
	for {
		l := c.line()
		b.WriteString(l)
		if strings.HasPrefix(l, prefix) {
			return b.String()
		}
	}
}

// cmd sends line+CRLF and returns the reply up to the line starting with
// prefix.
func (c *lineConn) cmd(line, prefix string) string {
	c.t.Helper()
	c.send(line + "\r\n")
	return c.until(prefix)
}

// drain reads until EOF or an error (at most limit) and returns what came.
func (c *lineConn) drain(limit time.Duration) (string, error) {
	c.SetReadDeadline(time.Now().Add(limit))
	var b bytes.Buffer
	_, err := b.ReadFrom(c.r)
	return b.String(), err
}
