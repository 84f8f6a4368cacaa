package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Phases of the online backup test, as a writer sees them when it sends a
// change and when the change is acknowledged.
const (
	phaseBefore int32 = iota // the backup has not started
	phaseDuring              // postern backup is running
	phaseAfter               // postern backup has exited
)

// change is one acknowledged write of the online backup test.
type change struct {
	kind     string // "member", "apppass", "message"
	key      string // the email, the app password's member, the subject
	password string // apppass: the password
	sent     int32  // phase when the request was sent
	acked    int32  // phase when it was acknowledged
}

// TestBackupOnline: `postern backup` while `postern serve` runs on SQLite
// and four writers change it: two through the CLI (members, each with a
// third-party app password), two through IMAP (APPEND). The backup is
// restored into an empty folder and served. Every change acknowledged
// before the backup began is there (members listed, app passwords log in
// over IMAP, messages in the mailbox); no change sent after the backup
// ended is. The secret key is the same file, the DKIM keys the same keys,
// and a web session signed in before the backup is still valid. A backup
// with one flipped byte is refused and restores nothing.
func TestBackupOnline(t *testing.T) {
	in := NewSQLite(t)
	in.MustRun(t, "domain", "add", "example.com")
	alice := addMember(t, in, "alice@example.com")
	bob := addMember(t, in, "bob@example.com")
	writers := map[string]appPass{
		alice.Email: createAppPass(t, in, alice.Email, "Writer"),
		bob.Email:   createAppPass(t, in, bob.Email, "Writer"),
	}
	srv := in.StartServer(t)
	web := newWebClient(t, srv)
	if code, body := web.do("POST", "/api/v1/session", map[string]string{"email": alice.Email, "password": alice.Main}); code != 200 {
		t.Fatalf("sign in: %d %s", code, body)
	}

	var (
		phase   atomic.Int32
		stop    atomic.Bool
		mu      sync.Mutex
		changes []change
		counts  = map[string]int{} // acknowledged changes per writer
		wg      sync.WaitGroup
		errs    = make(chan error, 16)
	)
	// On a failure the writers stop before the server does (cleanups run
	// last in, first out).
	t.Cleanup(func() { stop.Store(true); wg.Wait() })
	record := func(writer string, c change) {
		c.acked = phase.Load()
		mu.Lock()
		changes = append(changes, c)
		counts[writer]++
		mu.Unlock()
	}
	for w := 0; w < 2; w++ {
		writer := fmt.Sprintf("cli%d", w)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				email := fmt.Sprintf("w%d-%d@example.com", w, i)
				sent := phase.Load()
				r := Run(t, in.Env, "main password of "+email+"\n", append([]string{"user", "add", email, "--password-stdin"}, in.Flags()...)...)
				if r.Code != 0 {
					errs <- fmt.Errorf("user add %s: %s", email, r)
					return
				}
				record(writer, change{kind: "member", key: email, sent: sent})
				sent = phase.Load()
				r = Run(t, in.Env, "", append([]string{"apppass", "create", email, "--name", "Phone", "--json"}, in.Flags()...)...)
				m := regexp.MustCompile(`"password": "([^"]+)"`).FindStringSubmatch(r.Stdout)
				if r.Code != 0 || m == nil {
					errs <- fmt.Errorf("apppass create %s: %s", email, r)
					return
				}
				record(writer, change{kind: "apppass", key: email, password: m[1], sent: sent})
			}
		}()
	}
	for _, who := range []string{alice.Email, bob.Email} {
		writer := "imap " + who
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dialIMAP(srv.Addr("imap"), who, writers[who].Password)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			for i := 0; !stop.Load(); i++ {
				subject := fmt.Sprintf("msg-%s-%d", strings.Split(who, "@")[0], i)
				sent := phase.Load()
				if err := c.append("INBOX", "From: "+who+"\r\nSubject: "+subject+"\r\n\r\nBody.\r\n"); err != nil {
					errs <- err
					return
				}
				record(writer, change{kind: "message", key: who + " " + subject, sent: sent})
			}
		}()
	}
	// Every writer has changes behind it before the backup starts, and
	// makes more while it runs and after.
	waitCounts := func(n int) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Minute)
		for {
			mu.Lock()
			ok := len(counts) == 4
			for _, c := range counts {
				ok = ok && c >= n
			}
			mu.Unlock()
			select {
			case err := <-errs:
				stop.Store(true)
				t.Fatal(err)
			default:
			}
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the writers made too few changes: %v", counts)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitCounts(3)
	mu.Lock()
	startCounts := map[string]int{}
	for k, v := range counts {
		startCounts[k] = v
	}
	mu.Unlock()

	dest := filepath.Join(t.TempDir(), "backup")
	phase.Store(phaseDuring)
	r := in.Run(t, "backup", dest)
	phase.Store(phaseAfter)
	if r.Code != 0 || !strings.Contains(r.Stdout, "Backed up") {
		stop.Store(true)
		wg.Wait()
		t.Fatalf("backup: %s", r)
	}
	mu.Lock()
	for k := range startCounts {
		startCounts[k] = counts[k] + 2
	}
	mu.Unlock()
	for k, n := range startCounts {
		for {
			mu.Lock()
			done := counts[k] >= n
			mu.Unlock()
			if done {
				break
			}
			select {
			case err := <-errs:
				stop.Store(true)
				t.Fatal(err)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	dkimBefore := in.MustRun(t, "domain", "dkim", "list", "example.com", "--json")
	srv.Stop(t)

	// Restore into an empty folder and serve it.
	restored := &Instance{Engine: "sqlite", Data: filepath.Join(t.TempDir(), "restored")}
	r = Run(t, nil, "", "restore", dest, "--data", restored.Data)
	if r.Code != 0 || !strings.Contains(r.Stdout, "Restored") {
		t.Fatalf("restore: %s", r)
	}
	for _, f := range []string{"secret.key", "tls/cert.pem", "tls/key.pem"} {
		a, _ := os.ReadFile(filepath.Join(in.Data, f))
		b, err := os.ReadFile(filepath.Join(restored.Data, f))
		if err != nil || !bytes.Equal(a, b) || len(a) == 0 {
			t.Errorf("%s differs after the restore (%v)", f, err)
		}
	}
	if dkimAfter := restored.MustRun(t, "domain", "dkim", "list", "example.com", "--json"); dkimAfter != dkimBefore || !strings.Contains(dkimAfter, "selector") {
		t.Errorf("DKIM keys before:\n%s\nafter the restore:\n%s", dkimBefore, dkimAfter)
	}
	srv2 := restored.StartServer(t)

	var members []struct{ Email string }
	restored.RunJSON(t, &members, "user", "list")
	have := map[string]bool{}
	for _, m := range members {
		have[m.Email] = true
	}
	subjects := map[string]bool{}
	for who, p := range writers {
		c, reply := imapLogin(t, srv2.Addr("imap"), nextSrc(), who, p.Password)
		if !strings.Contains(reply, "a1 OK") {
			t.Fatalf("%s's writer app password after the restore: %s", who, reply)
		}
		c.cmd("a2 SELECT INBOX", "a2 ")
		out := c.cmd("a3 UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])", "a3 ")
		for _, m := range regexp.MustCompile(`Subject: (msg-\S+)`).FindAllStringSubmatch(out, -1) {
			subjects[who+" "+m[1]] = true
		}
		c.Close()
	}

	tally := map[string][3]int{} // kind → acknowledged before, present, sent after and present
	for _, c := range changes {
		var present bool
		switch c.kind {
		case "member":
			present = have[c.key]
		case "message":
			present = subjects[c.key]
		case "apppass":
			if c.acked == phaseBefore || c.sent == phaseAfter {
				conn, reply := imapLogin(t, srv2.Addr("imap"), nextSrc(), c.key, c.password)
				present = strings.Contains(reply, "a1 OK")
				conn.Close()
			}
		}
		n := tally[c.kind]
		if c.acked == phaseBefore {
			n[0]++
			if !present {
				t.Errorf("%s %s was acknowledged before the backup began but is not in it", c.kind, c.key)
			}
		}
		if present {
			n[1]++
		}
		if c.sent == phaseAfter && present {
			n[2]++
			t.Errorf("%s %s was sent after the backup ended but is in it", c.kind, c.key)
		}
		tally[c.kind] = n
	}
	t.Logf("changes (acknowledged before the backup, present in it): %v of %d", tally, len(changes))

	// The web session signed in before the backup is valid on the restored server.
	web.srv = srv2
	if code, body := web.do("GET", "/api/v1/me", nil); code != 200 || !strings.Contains(string(body), alice.Email) {
		t.Errorf("the web session after the restore: %d %s", code, body)
	}

	// One flipped byte: refused, nothing restored.
	damaged := filepath.Join(t.TempDir(), "damaged")
	if err := os.CopyFS(damaged, os.DirFS(dest)); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(damaged, "data", "postern.db")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/3] ^= 0x40
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "target")
	r = Run(t, nil, "", "restore", damaged, "--data", target)
	wantFail(t, r, 1, "data/postern.db does not match its checksum")
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Errorf("a refused restore made the data folder: %v", err)
	}
}

// imapClient is a minimal IMAP client for the writers, which run outside
// the test's goroutine and so report errors instead of failing the test.
type imapClient struct {
	net.Conn
	r   *bufio.Reader
	tag int
}

func dialIMAP(addr, user, password string) (*imapClient, error) {
	conn, err := net.DialTimeout("tcp", addr, 30*time.Second)
	if err != nil {
		return nil, err
	}
	c := &imapClient{Conn: conn, r: bufio.NewReader(conn)}
	if _, err := c.line(); err != nil {
		conn.Close()
		return nil, err
	}
	if _, err := c.cmd("LOGIN " + imapQuote(user) + " " + imapQuote(password)); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

func (c *imapClient) line() (string, error) {
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	return c.r.ReadString('\n')
}

// cmd sends a command and reads to its tagged reply, which must be OK.
func (c *imapClient) cmd(s string) (string, error) {
	c.tag++
	tag := fmt.Sprintf("w%d", c.tag)
	if _, err := fmt.Fprintf(c, "%s %s\r\n", tag, s); err != nil {
		return "", err
	}
	return c.tagged(tag, s)
}

func (c *imapClient) tagged(tag, what string) (string, error) {
	var b strings.Builder
	for {
		l, err := c.line()
		if err != nil {
			return b.String(), fmt.Errorf("%s: %v", what, err)
		}
		b.WriteString(l)
		if strings.HasPrefix(l, tag+" ") {
			if !strings.HasPrefix(l, tag+" OK") {
				return b.String(), fmt.Errorf("%s: %s", what, l)
			}
			return b.String(), nil
		}
	}
}

// append APPENDs msg with a synchronizing literal; it returns once the
// server acknowledged it with OK.
func (c *imapClient) append(mailbox, msg string) error {
	c.tag++
	tag := fmt.Sprintf("w%d", c.tag)
	if _, err := fmt.Fprintf(c, "%s APPEND %s {%d}\r\n", tag, imapQuote(mailbox), len(msg)); err != nil {
		return err
	}
	l, err := c.line()
	if err != nil {
		return err
	}
	if !strings.HasPrefix(l, "+") {
		return fmt.Errorf("APPEND: %s", l)
	}
	if _, err := fmt.Fprintf(c, "%s\r\n", msg); err != nil {
		return err
	}
	_, err = c.tagged(tag, "APPEND")
	return err
}
