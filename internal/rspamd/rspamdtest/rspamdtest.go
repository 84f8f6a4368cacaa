// Package rspamdtest runs a private rspamd (Debian's package) on loopback
// for tests: its own configuration, run, database and log directories in
// the test's temporary directory, the normal worker and the controller on
// free ports of 127.0.0.1, no proxy worker, and no lookup that would leave
// the machine (DNS goes to 127.0.0.1:1; the RBL, SPF, DKIM, DMARC, ASN,
// fuzzy, greylisting and other network or Redis-state modules are off), so
// that a verdict depends only on the message. The Bayes classifier keeps
// its counts in a private redis-server (Debian's package) on another free
// port, so that tests share no state.
//
// The stock rules come from /etc/rspamd. Two things differ from a
// production rspamd, both for the tests' sake: rspamd's test patterns are
// on (enable_test_patterns), so that GTUBE's "YJS…" variant forces "add
// header" and "ZJS…" forces "rewrite subject", and the controller has a
// password and no secure_ip, so that learning needs the password.
package rspamdtest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// GTUBE is the standard test string; rspamd rejects a message holding it.
const GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

// AddHeader and RewriteSubject are rspamd's test patterns for those
// actions (https://rspamd.com/doc/gtube_patterns.html), on in this instance
// only.
const (
	AddHeader      = "YJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
	RewriteSubject = "ZJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
)

// Password is the controller's password.
const Password = "rspamdtest-password"

// Server is a running rspamd.
type Server struct {
	// CheckURL is the normal worker (for /checkv2), ControllerURL the
	// controller (for /learnspam, /learnham), both http://127.0.0.1:PORT.
	CheckURL, ControllerURL string

	t         testing.TB
	cmd       *exec.Cmd
	done      chan struct{}
	redis     *proc
	redisPort int
	log       string
	stopOnce  sync.Once
}

// Start runs an rspamd for t and stops it at t's end. The first start on a
// machine compiles rspamd's regular expressions (some 15 s on two cores)
// into a cache shared by later starts (about 1 s).
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := exec.LookPath("rspamd"); err != nil {
		t.Fatalf("rspamd is not installed (Debian package rspamd; scripts/test-deps.sh installs it): %v", err)
	}
	cache := filepath.Join(os.TempDir(), "postern-rspamdtest-hs-cache")
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	// One start at a time on the machine (test binaries of several packages
	// run at once): the first compiles the cache, the others then read it,
	// rather than all compiling it together.
	lock, err := os.OpenFile(filepath.Join(cache, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	var lastErr error
	for range 3 { // another process may take a port between its pick and rspamd's bind
		s, err := start(t, cache)
		if err == nil {
			return s
		}
		lastErr = err
	}
	t.Fatalf("rspamdtest: %v", lastErr)
	return nil
}

func start(t testing.TB, cache string) (*Server, error) {
	dir := t.TempDir()
	for _, d := range []string{"local.d", "run", "db", "log", "redis"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	checkPort, err := freePort()
	if err != nil {
		return nil, err
	}
	ctrlPort, err := freePort()
	if err != nil {
		return nil, err
	}
	redisPort, redis, err := startRedis(t, dir)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { stopRedis(redis) })
	files := map[string]string{
		"rspamd.conf": fmt.Sprintf(mainConf, checkPort, ctrlPort, Password),
		"local.d/options.inc": fmt.Sprintf(`enable_test_patterns = true;
hs_cache_dir = %q;
dns { nameserver = ["127.0.0.1:1"]; timeout = 0.1s; retransmits = 1; }
`, cache+"/"),
		"local.d/redis.conf": fmt.Sprintf("servers = \"127.0.0.1:%d\";\n", redisPort),
	}
	for _, m := range offModules {
		files["local.d/"+m+".conf"] = "enabled = false;\n"
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			return nil, err
		}
	}
	args := []string{"-f", "-c", filepath.Join(dir, "rspamd.conf"),
		"--var=LOCAL_CONFDIR=" + dir,
		"--var=RUNDIR=" + filepath.Join(dir, "run"),
		"--var=DBDIR=" + filepath.Join(dir, "db"),
		"--var=LOGDIR=" + filepath.Join(dir, "log"),
	}
	if os.Geteuid() == 0 {
		// rspamd refuses to run its workers as root unless told.
		args = append(args, "-i")
	}
	cmd := exec.Command("rspamd", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// Its own process group, so that Stop reaches the workers too if the
	// main process dies without stopping them.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Server{
		CheckURL:      fmt.Sprintf("http://127.0.0.1:%d", checkPort),
		ControllerURL: fmt.Sprintf("http://127.0.0.1:%d", ctrlPort),
		t:             t,
		cmd:           cmd,
		redis:         redis,
		redisPort:     redisPort,
		done:          make(chan struct{}),
		log:           filepath.Join(dir, "log", "rspamd.log"),
	}
	go func() { cmd.Wait(); close(s.done) }()
	t.Cleanup(s.Stop)
	deadline := time.Now().Add(3 * time.Minute)
	for _, u := range []string{s.CheckURL, s.ControllerURL} {
		for !ping(u) {
			select {
			case <-s.done:
				s.Stop()
				return nil, fmt.Errorf("rspamd exited: %s\n%s", out.String(), s.logTail())
			case <-time.After(50 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				s.Stop()
				return nil, errors.New("rspamd did not answer /ping in 3 minutes:\n" + s.logTail())
			}
		}
	}
	return s, nil
}

// Stop stops rspamd (SIGTERM to the process started, then SIGKILL to its
// process group once it has exited or after 10 s) and waits for it, and its
// Redis. It may be called more than once.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
		}
		// Whatever of the group is left (rspamd forks its main process and
		// workers): the group is this process's own (Setpgid).
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
		// The workers leave after the main process; wait until the ports
		// no longer answer, so that a test of an rspamd that is down sees one.
		for range 200 {
			if !ping(s.CheckURL) && !ping(s.ControllerURL) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		stopRedis(s.redis)
	})
}

// startRedis runs a redis-server that keeps nothing on disk, on a free port.
func startRedis(t testing.TB, dir string) (int, *proc, error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server is not installed (Debian package redis-server; scripts/test-deps.sh installs it): %v", err)
	}
	port, err := freePort()
	if err != nil {
		return 0, nil, err
	}
	cmd := exec.Command("redis-server", "--bind", "127.0.0.1", "--port", fmt.Sprint(port),
		"--save", "", "--appendonly", "no", "--dir", filepath.Join(dir, "redis"), "--daemonize", "no")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return 0, nil, err
	}
	p := &proc{cmd, make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		if redisPing(port) {
			return port, p, nil
		}
		select {
		case <-p.done:
			return 0, nil, fmt.Errorf("redis-server exited: %s", out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	stopRedis(p)
	return 0, nil, errors.New("redis-server did not answer PING in 30 s")
}

func redisPing(port int) bool {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	var b [7]byte
	n, _ := c.Read(b[:])
	return string(b[:n]) == "+PONG\r\n"
}

// proc is a process started here and its end.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func stopRedis(p *proc) {
	p.cmd.Process.Kill()
	<-p.done
}

// Learns returns how many messages the Bayes classifier has learnt as spam
// and as ham, read from its Redis (the hash "RS" of rspamd's statistics
// schema): the controller's /stat refreshes them only now and then.
func (s *Server) Learns(t testing.TB) (spam, ham int64) {
	t.Helper()
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.redisPort), 5*time.Second)
	if err != nil {
		t.Fatalf("rspamdtest: redis: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("HMGET RS learns_spam learns_ham\r\n")); err != nil {
		t.Fatalf("rspamdtest: redis: %v", err)
	}
	// *2, then $N and the value, or $-1 for a field not set yet.
	r := bufio.NewReader(c)
	var n [2]int64
	if line, err := r.ReadString('\n'); err != nil || line != "*2\r\n" {
		t.Fatalf("rspamdtest: redis HMGET: %q %v", line, err)
	}
	for i := range n {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("rspamdtest: redis HMGET: %v", err)
		}
		if line == "$-1\r\n" {
			continue
		}
		val, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("rspamdtest: redis HMGET: %v", err)
		}
		n[i], err = strconv.ParseInt(strings.TrimSpace(val), 10, 64)
		if err != nil {
			t.Fatalf("rspamdtest: redis HMGET: %q", val)
		}
	}
	return n[0], n[1]
}

// Log returns rspamd's log, for a failing test to show.
func (s *Server) Log() string { return s.logTail() }

func (s *Server) logTail() string {
	b, _ := os.ReadFile(s.log)
	if len(b) > 8000 {
		b = b[len(b)-8000:]
	}
	return string(b)
}

func ping(base string) bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(base + "/ping")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var b [16]byte
	n, _ := resp.Body.Read(b[:])
	return resp.StatusCode == 200 && strings.HasPrefix(string(b[:n]), "pong")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// offModules look things up on the network (DNS, HTTP maps) or keep state
// in Redis between messages (greylist, ratelimit, reputation, replies,
// neural): off, so that a verdict is quick and depends on the message only.
var offModules = []string{
	"arc", "asn", "dcc", "dkim", "dmarc", "emails", "fuzzy_check", "greylist",
	"hfilter", "history_redis", "mx_check", "neural", "phishing", "ratelimit",
	"rbl", "replies", "reputation", "spf", "surbl", "url_redirector", "whitelist",
}

// mainConf replaces /etc/rspamd/rspamd.conf: the stock rules and options,
// a log file of its own, the normal worker and the controller on the given
// ports, and no proxy or fuzzy worker.
const mainConf = `.include "$CONFDIR/common.conf"
options {
    pidfile = "$RUNDIR/rspamd.pid";
    .include "$CONFDIR/options.inc"
    .include(try=true; priority=1,duplicate=merge) "$LOCAL_CONFDIR/local.d/options.inc"
}
logging {
    type = "file";
    filename = "$LOGDIR/rspamd.log";
    level = "notice";
}
worker "normal" {
    bind_socket = "127.0.0.1:%d";
    count = 1;
}
worker "controller" {
    bind_socket = "127.0.0.1:%d";
    count = 1;
    password = %q;
}
`
