package e2e

// Scale-out (issue 7): several postern nodes on one PostgreSQL. Every node
// has its own data folder and shares the database and the secret key
// (--secret-file), as docs/deploy.md describes.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/internal/store/sqlstore"
)

// cluster is n nodes of one deployment. Node i runs CLI commands with its
// own data folder, like an operator logged in to that machine.
type cluster struct {
	nodes []*Instance
	srvs  []*Server
}

// newCluster prepares n installations on one fresh PostgreSQL schema (or
// dsn when given) with one shared secret key file.
func newCluster(t *testing.T, n int, dsn string) *cluster {
	t.Helper()
	if dsn == "" {
		dsn = PostgresSchema(t)
	}
	secret := filepath.Join(t.TempDir(), "secret.key")
	key := make([]byte, 32)
	rand.Read(key)
	if err := os.WriteFile(secret, key, 0o600); err != nil {
		t.Fatal(err)
	}
	c := &cluster{}
	for range n {
		c.nodes = append(c.nodes, &Instance{Engine: "postgres", Data: t.TempDir(), Database: dsn,
			Env: []string{"POSTERN_SECRET_FILE=" + secret}})
	}
	return c
}

// start starts every node with args.
func (c *cluster) start(t *testing.T, args ...string) {
	t.Helper()
	for _, in := range c.nodes {
		c.srvs = append(c.srvs, in.StartServer(t, args...))
	}
}

// apiCreateAppPassword signs in to the JSON API of srv with the main password
// and creates an app password, as a member's script would.
func apiCreateAppPassword(t *testing.T, srv *Server, m member, name string) appPass {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 60 * time.Second}
	call := func(method, path string, body any, want int) []byte {
		b, _ := json.Marshal(body)
		req, err := http.NewRequest(method, srv.URL(path), bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, out, want)
		}
		return out
	}
	call("POST", "/api/v1/session", map[string]string{"email": m.Email, "password": m.Main}, 200)
	var p appPass
	if err := json.Unmarshal(call("POST", "/api/v1/me/app-passwords", map[string]string{"name": name}, 201), &p); err != nil {
		t.Fatal(err)
	}
	if !appPasswordRE.MatchString(p.Password) || p.ID == "" {
		t.Fatalf("created app password: %+v", p)
	}
	return p
}

// imapLogin logs in from src and returns the tagged reply (the connection
// stays open when it is OK).
func imapLogin(t *testing.T, addr, src, user, password string) (*lineConn, string) {
	t.Helper()
	c := dialFrom(t, addr, src)
	c.line()
	return c, c.cmd("a1 LOGIN "+imapQuote(user)+" "+imapQuote(password), "a1 ")
}

func pop3Login(t *testing.T, addr, src, user, password string) string {
	t.Helper()
	c := dialFrom(t, addr, src)
	defer c.Close()
	c.line()
	c.cmd("USER "+user, "")
	return c.cmd("PASS "+password, "")
}

func smtpLogin(t *testing.T, addr, src, user, password string) string {
	t.Helper()
	c := dialFrom(t, addr, src)
	defer c.Close()
	c.until("220 ")
	c.cmd("EHLO client.example", "250 ")
	return c.cmd("AUTH PLAIN "+saslPlain("", user, password), "")
}

// metric returns the value of a sample line of srv's /metrics ("name{labels}" or "name").
func metric(t *testing.T, srv *Server, sample string) float64 {
	t.Helper()
	_, body := httpGet(t, srv.MetricsURL())
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatalf("metric %s: %v", sample, err)
	}
	return v
}

// idleUntilExists reads an IDLE session until the server announces a new
// message count (RFC 2177; RFC 9051 §7.4.1).
func idleUntilExists(t *testing.T, c *lineConn, deadline time.Duration) (string, time.Time) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(deadline))
	var b strings.Builder
	for {
		l, err := c.r.ReadString('\n')
		b.WriteString(l)
		if err != nil {
			t.Fatalf("IDLE: %v before EXISTS; read %q", err, b.String())
		}
		if strings.HasPrefix(l, "* ") && strings.HasSuffix(strings.TrimSpace(l), " EXISTS") {
			return b.String(), time.Now()
		}
	}
}

// TestScaleOutThreeNodes: three nodes on one PostgreSQL serve any member:
// an app password made through node A's API logs in on node B; mail
// submitted on A wakes an IDLE on B; deleting the password with C's CLI
// closes the member's sessions on A, B and C; a setting changed on C closes
// a main-password session on A; per-IP failures count on every node; 100
// wrong passwords spread over the nodes pause the account on all of them.
func TestScaleOutThreeNodes(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, "")
	a, b, cc := c.nodes[0], c.nodes[1], c.nodes[2]
	a.MustRun(t, "domain", "add", "example.com")
	b.MustRun(t, "domain", "add", "legacy.example", "--created", "2020-04-01")
	alice := addMember(t, a, "alice@example.com")
	bob := addMember(t, cc, "bob@legacy.example")
	// A short per-IP delay keeps the 100 failures quick; it is still on,
	// so the shared throttle is exercised.
	c.start(t, "--auth-max-delay", "100ms")
	sa, sb, sc := c.srvs[0], c.srvs[1], c.srvs[2]

	// Created through node A's API, used on node B.
	ap := apiCreateAppPassword(t, sa, alice, "Thunderbird")
	idle, r := imapLogin(t, sb.Addr("imap"), nextSrc(), alice.Email, ap.Password)
	if !strings.Contains(r, "a1 OK") {
		t.Fatalf("login on node B with the password made on node A: %q", r)
	}
	idle.cmd("a2 SELECT INBOX", "a2 OK")
	idle.cmd("a3 IDLE", "+")

	// Mail submitted on node A wakes the IDLE on node B (the delivery's
	// mailbox event goes through the outbox and NOTIFY).
	sent := time.Now()
	sendMail(t, sa, alice, ap.Password, alice.Email, "Across nodes", "submitted on node A")
	got, at := idleUntilExists(t, idle, revocationDeadline)
	t.Logf("IDLE on node B saw the mail submitted on node A %v after the submission started: %q",
		at.Sub(sent).Round(time.Millisecond), strings.TrimSpace(got))

	// Deleted through node C's CLI: the sessions of that password on every
	// node close. The IDLE on B is the one the issue names.
	sessions := []*liveSession{
		{name: "IMAP IDLE", c: idle},
		openPOP3(t, sa.Addr("pop3"), alice.Email, ap.Password),
		openSMTP(t, sc.Addr("submission"), alice.Email, ap.Password),
	}
	sessions[0].watch()
	revokeOn(t, cc, "apppass delete on node C", sessions, "apppass", "delete", alice.Email, ap.ID)
	if r := pop3Login(t, sb.Addr("pop3"), nextSrc(), alice.Email, ap.Password); !strings.HasPrefix(r, "-ERR [AUTH]") {
		t.Errorf("deleted password on node B: %q", r)
	}

	// The setting changed with node C's CLI ends bob's main-password session on A.
	bobIdle := openIMAPIdle(t, sa.Addr("imap"), bob.Email, bob.Main)
	revokeOn(t, cc, "user set --use-app-passwords on, node C", []*liveSession{bobIdle},
		"user", "set", bob.Email, "--use-app-passwords", "on")

	testSharedThrottle(t, c)
	testPauseAcrossNodes(t, c, alice)
}

// revokeOn runs a CLI command on node in and waits until every session
// (watched, on any node) is closed by its server. It logs how long after the
// command returned each one ended (negative: before the process exited —
// the commit comes first); the requirement is 1 s, the deadline here is a
// generous functional one because the machine is small and shared.
func revokeOn(t *testing.T, in *Instance, what string, sessions []*liveSession, args ...string) {
	t.Helper()
	start := time.Now()
	in.MustRun(t, args...)
	end := time.Now()
	for _, s := range sessions {
		select {
		case ev := <-s.closed:
			var ne net.Error
			if errors.As(ev.err, &ne) && ne.Timeout() {
				t.Errorf("%s: the %s session was not closed", what, s.name)
				continue
			}
			if s.name == "IMAP IDLE" && !strings.Contains(ev.tail, "* BYE") {
				t.Errorf("%s: IMAP closed without BYE: %q", what, ev.tail)
			}
			t.Logf("%s: %s session closed %v after the command returned (%v after it started)", what, s.name,
				ev.at.Sub(end).Round(time.Millisecond), ev.at.Sub(start).Round(time.Millisecond))
		case <-time.After(revocationDeadline):
			t.Errorf("%s: the %s session is still open %v after the command", what, s.name, revocationDeadline)
		}
	}
}

// testSharedThrottle: failures from one address on node A delay that
// address's next attempt on node B, which has never seen it fail.
func testSharedThrottle(t *testing.T, c *cluster) {
	t.Helper()
	sa, sb := c.srvs[0], c.srvs[1]
	src := nextSrc()
	for i := range 3 {
		if _, r := imapLogin(t, sa.Addr("imap"), src, "nobody@example.com", fmt.Sprintf("guess %d", i)); !strings.Contains(r, "a1 NO [AUTHENTICATIONFAILED]") {
			t.Fatalf("failure %d on node A: %q", i, r)
		}
	}
	const delaySum = "postern_auth_throttle_delay_seconds_sum"
	before := metric(t, sb, delaySum)
	if _, r := imapLogin(t, sb.Addr("imap"), src, "nobody@example.com", "guess 3"); !strings.Contains(r, "a1 NO [AUTHENTICATIONFAILED]") {
		t.Fatalf("attempt on node B: %q", r)
	}
	if after := metric(t, sb, delaySum); after <= before {
		t.Errorf("node B did not delay an address that failed 3 times on node A (delay sum %v -> %v)", before, after)
	} else {
		t.Logf("node B delayed the address that failed on node A by %.3f s", after-before)
	}
}

// testPauseAcrossNodes: 100 distinct wrong passwords spread over the three
// nodes and protocols pause the account's main password on every node;
// its app password keeps logging in everywhere (a pause must not become a
// stranger's way to cut a member off).
func testPauseAcrossNodes(t *testing.T, c *cluster, alice member) {
	t.Helper()
	ap := createAppPass(t, c.nodes[1], alice.Email, "Phone")
	var wg sync.WaitGroup
	var mu sync.Mutex
	var bad []string
	const workers = 4 // each with its own address: the per-IP delay is per worker
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src := nextSrc()
			for i := w; i < 100; i += workers {
				srv := c.srvs[i%3]
				pw := fmt.Sprintf("wrong password %03d", i)
				var r, want string
				switch i % 3 {
				case 0:
					var conn *lineConn
					conn, r = imapLogin(t, srv.Addr("imap"), src, alice.Email, pw)
					conn.Close()
					want = "a1 NO [AUTHENTICATIONFAILED]"
				case 1:
					r, want = pop3Login(t, srv.Addr("pop3"), src, alice.Email, pw), "-ERR [AUTH]"
				default:
					r, want = smtpLogin(t, srv.Addr("submission"), src, alice.Email, pw), "535 5.7.8"
				}
				if !strings.Contains(r, want) {
					mu.Lock()
					bad = append(bad, fmt.Sprintf("attempt %d: %q", i, r))
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if len(bad) > 0 {
		t.Fatalf("wrong passwords not refused as usual: %v", bad)
	}
	withStore(t, c.nodes[0], func(ctx context.Context, db *sqlstore.DB) {
		m, err := db.MemberByEmail(ctx, alice.Email)
		if err != nil {
			t.Fatal(err)
		}
		if st, err := db.AuthState(ctx, m.ID); err != nil || !st.PausedUntil.After(time.Now()) {
			t.Errorf("after 100 failures over three nodes: %+v %v, want paused", st, err)
		}
	})
	for i, srv := range c.srvs {
		conn, r := imapLogin(t, srv.Addr("imap"), nextSrc(), alice.Email, ap.Password)
		conn.Close()
		if !strings.Contains(r, "a1 OK") {
			t.Errorf("node %c: the app password while the account is paused: %q", 'A'+i, r)
		}
		if r := pop3Login(t, srv.Addr("pop3"), nextSrc(), alice.Email, ap.Password); !strings.HasPrefix(r, "+OK") {
			t.Errorf("node %c: POP3 with the app password while paused: %q", 'A'+i, r)
		}
	}
	subjects := messageSubjects(t, c.nodes[0], alice.Email)
	found := 0
	for _, s := range subjects {
		if strings.Contains(s, "guessing your password") {
			found++
		}
	}
	if found != 1 {
		t.Errorf("%d attack messages for the member, want 1: %q", found, subjects)
	}
}

// messageSubjects lists the subjects of a member's web UI messages.
func messageSubjects(t *testing.T, in *Instance, email string) []string {
	t.Helper()
	var out []string
	withStore(t, in, func(ctx context.Context, db *sqlstore.DB) {
		m, err := db.MemberByEmail(ctx, email)
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := db.Messages(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, msg := range msgs {
			out = append(out, msg.Subject)
		}
	})
	return out
}
