package e2e

import (
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// privatePG is a PostgreSQL server of this test alone (initdb in a
// temporary folder, its own port), so that it can be stopped without
// disturbing the shared test server.
type privatePG struct {
	bin, dir, data string
	port           int
	asUser         *user.User // the server refuses to run as root: run it as this user
}

// newPrivatePG creates and starts a cluster with trust authentication on
// 127.0.0.1 and a free port; it is stopped and removed when the test ends.
func newPrivatePG(t *testing.T) *privatePG {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		t.Fatal("initdb not found under /usr/lib/postgresql/*/bin: install the PostgreSQL server package")
	}
	sort.Strings(bins)
	p := &privatePG{bin: filepath.Dir(bins[len(bins)-1])}
	dir, err := os.MkdirTemp("", "postern-pg-")
	if err != nil {
		t.Fatal(err)
	}
	p.dir, p.data = dir, filepath.Join(dir, "data")
	t.Cleanup(func() {
		p.ctl(t, "stop", "-m", "immediate") // may fail when already stopped
		os.RemoveAll(dir)
	})
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root, and there is no postgres user to run a private server as: %v", err)
		}
		p.asUser = u
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	if out, err := p.cmd("initdb", "-D", p.data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-locale", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	p.start(t)
	return p
}

// cmd runs a PostgreSQL program, as the postgres user when we are root.
func (p *privatePG) cmd(prog string, args ...string) *exec.Cmd {
	path := filepath.Join(p.bin, prog)
	if p.asUser != nil {
		return exec.Command("runuser", append([]string{"-u", p.asUser.Username, "--", path}, args...)...)
	}
	return exec.Command(path, args...)
}

func (p *privatePG) ctl(t *testing.T, args ...string) error {
	t.Helper()
	out, err := p.cmd("pg_ctl", append([]string{"-D", p.data, "-w", "-t", "60"}, args...)...).CombinedOutput()
	if err != nil {
		t.Logf("pg_ctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return err
}

func (p *privatePG) start(t *testing.T) {
	t.Helper()
	opts := "-p " + strconv.Itoa(p.port) + " -k " + p.dir + " -c listen_addresses=127.0.0.1"
	if err := p.ctl(t, "-o", opts, "-l", filepath.Join(p.dir, "log"), "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(p.dir, "log"))
		t.Fatalf("private PostgreSQL did not start:\n%s", log)
	}
}

// crash stops the server without a checkpoint, as a power cut would:
// committed transactions must come back from the WAL.
func (p *privatePG) crash(t *testing.T) {
	t.Helper()
	if err := p.ctl(t, "stop", "-m", "immediate"); err != nil {
		t.Fatal("could not stop the private PostgreSQL")
	}
}

func (p *privatePG) dsn() string {
	return "postgres://postgres@127.0.0.1:" + strconv.Itoa(p.port) + "/postgres?sslmode=disable"
}

// waitFor retries check until it returns "" (success) or the deadline
// passes, and fails with the last reason.
func waitFor(t *testing.T, what string, deadline time.Duration, check func() string) time.Duration {
	t.Helper()
	start := time.Now()
	last := ""
	for time.Since(start) < deadline {
		if last = check(); last == "" {
			return time.Since(start)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: still failing after %v: %s", what, deadline, last)
	return 0
}

// TestScaleOutDatabaseDown: nodes whose PostgreSQL goes away refuse logins
// with the protocols' temporary-failure replies and report 503 on /readyz;
// when it comes back they recover by themselves, every acknowledged write
// is there, and revocation works again.
func TestScaleOutDatabaseDown(t *testing.T) {
	t.Parallel()
	pg := newPrivatePG(t)
	c := newCluster(t, 2, pg.dsn())
	n0 := c.nodes[0]
	n0.MustRun(t, "domain", "add", "example.com")
	alice := addMember(t, n0, "alice@example.com")
	var created []appPass
	for _, name := range []string{"Laptop", "Phone", "Tablet"} {
		created = append(created, createAppPass(t, c.nodes[1], alice.Email, name))
	}
	c.start(t, "--auth-max-delay", "100ms")
	for i, srv := range c.srvs {
		if code, body := httpGet(t, srv.URL("/readyz")); code != 200 {
			t.Fatalf("node %d /readyz with the database up: %d %q", i, code, body)
		}
		conn, r := imapLogin(t, srv.Addr("imap"), nextSrc(), alice.Email, created[i].Password)
		conn.Close()
		if !strings.Contains(r, "a1 OK") {
			t.Fatalf("node %d login: %q", i, r)
		}
	}
	// Two more, acknowledged by the API just before the crash.
	created = append(created, apiCreateAppPassword(t, c.srvs[0], alice, "Watch"), apiCreateAppPassword(t, c.srvs[1], alice, "Car"))
	pg.crash(t)

	for i, srv := range c.srvs {
		waitFor(t, "/readyz while the database is down", 30*time.Second, func() string {
			if code, body := httpGet(t, srv.URL("/readyz")); code != 503 {
				return strconv.Itoa(code) + " " + body
			}
			return ""
		})
		conn, r := imapLogin(t, srv.Addr("imap"), nextSrc(), alice.Email, created[0].Password)
		conn.Close()
		if !strings.Contains(r, "a1 NO [UNAVAILABLE]") {
			t.Errorf("node %d IMAP LOGIN with the database down: %q, want NO [UNAVAILABLE]", i, r)
		}
		if r := pop3Login(t, srv.Addr("pop3"), nextSrc(), alice.Email, created[1].Password); !strings.HasPrefix(r, "-ERR [SYS/TEMP]") {
			t.Errorf("node %d POP3 PASS with the database down: %q, want -ERR [SYS/TEMP]", i, r)
		}
		if r := smtpLogin(t, srv.Addr("submission"), nextSrc(), alice.Email, created[2].Password); !strings.HasPrefix(r, "454 ") {
			t.Errorf("node %d SMTP AUTH with the database down: %q, want 454", i, r)
		}
		// A wrong password is refused the same temporary way: nothing is
		// decided without the database.
		if r := pop3Login(t, srv.Addr("pop3"), nextSrc(), alice.Email, "wrong"); !strings.HasPrefix(r, "-ERR [SYS/TEMP]") {
			t.Errorf("node %d POP3 wrong password with the database down: %q", i, r)
		}
	}

	pg.start(t)
	for i, srv := range c.srvs {
		took := waitFor(t, "/readyz after the database is back", 60*time.Second, func() string {
			if code, body := httpGet(t, srv.URL("/readyz")); code != 200 {
				return strconv.Itoa(code) + " " + body
			}
			return ""
		})
		t.Logf("node %d ready again %v after PostgreSQL restarted", i, took.Round(time.Millisecond))
		for _, p := range created {
			waitFor(t, "login after the database is back", 30*time.Second, func() string {
				conn, r := imapLogin(t, srv.Addr("imap"), nextSrc(), alice.Email, p.Password)
				conn.Close()
				if !strings.Contains(r, "a1 OK") {
					return r
				}
				return ""
			})
		}
	}
	var list []struct{ ID, Name string }
	n0.RunJSON(t, &list, "apppass", "list", alice.Email)
	if len(list) != len(created) {
		t.Errorf("after the crash: %d app passwords %+v, %d were acknowledged", len(list), list, len(created))
	}

	// The event tailers and LISTEN connections are back too: a deletion on
	// one node closes a session on the other.
	s := openPOP3(t, c.srvs[1].Addr("pop3"), alice.Email, created[3].Password)
	revokeOn(t, n0, "apppass delete after the database came back", []*liveSession{s}, "apppass", "delete", alice.Email, created[3].ID)
}
