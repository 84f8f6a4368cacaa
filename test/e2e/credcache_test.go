package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCredentialCacheCLI: postern serve on SQLite answers logins from its
// credential cache, and every change made by the CLI (a separate process
// that shares only the database and its generation file) holds for the very
// next login: a revoked credential fails, a new one works at once.
func TestCredentialCacheCLI(t *testing.T) {
	t.Parallel()
	in := NewSQLite(t)
	in.MustRun(t, "domain", "add", "example.com")
	in.MustRun(t, "domain", "add", "legacy.example", "--created", "2020-04-01")
	alice := addMember(t, in, "alice@example.com") // enforced: app passwords only
	a1 := createAppPass(t, in, alice.Email, "Laptop")
	a2 := createAppPass(t, in, alice.Email, "Phone")
	bob := addMember(t, in, "bob@legacy.example") // optional: the setting decides
	in.MustRun(t, "user", "set", bob.Email, "--use-app-passwords", "on")
	b1 := createAppPass(t, in, bob.Email, "Tablet")

	srv := in.StartServer(t, "--credential-cache", "1000")

	gen := filepath.Join(in.Data, "postern.db-gen")
	if st, err := os.Stat(gen); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("the generation file %s: %v %v, want mode 0600", gen, st, err)
	}

	hits := func() float64 { return metric(t, srv, "postern_credential_cache_hits_total") }
	login := func(user, password string) pyResult {
		t.Helper()
		return pyLogins(t, []pyAttempt{newAttempt("imap-login", srv.Addr("imap"), user, password, "none")})[0]
	}
	mustLogin := func(what, user, password string) {
		t.Helper()
		if r := login(user, password); !r.OK {
			t.Fatalf("%s: IMAP LOGIN %s was refused: %s", what, user, r.Error)
		}
	}
	mustFail := func(what, user, password string) {
		t.Helper()
		r := login(user, password)
		if r.OK {
			t.Fatalf("%s: IMAP LOGIN %s still succeeds", what, user)
		}
		if !strings.Contains(r.Error, "AUTHENTICATIONFAILED") {
			t.Fatalf("%s: IMAP LOGIN %s: %s, want an authentication failure", what, user, r.Error)
		}
	}
	// cached logs in (expecting ok) until a login is answered from the
	// cache, so that the change that follows must invalidate a cached copy.
	// The first reads of a member fill the cache (and a failed login's count
	// moves its counter once), so a few attempts suffice. (The last use a
	// login writes moves no counter.)
	cached := func(what, user, password string, ok bool) {
		t.Helper()
		for range 10 {
			before := hits()
			if ok {
				// A change that ends the member's sessions (the setting)
				// reaches this server through its outbox, polled every
				// 100 ms: a session opened meanwhile, though it logged in
				// under the new state, is ended when the event arrives.
				// That is the change's own effect, not this check's
				// concern: log in again once the event is in.
				for attempt := 0; ; attempt++ {
					r := login(user, password)
					if r.OK {
						break
					}
					if attempt < 3 && strings.Contains(r.Error, "the credential was revoked") {
						time.Sleep(250 * time.Millisecond)
						continue
					}
					t.Fatalf("%s (warming the cache): IMAP LOGIN %s was refused: %s", what, user, r.Error)
				}
			} else {
				mustFail(what+" (warming the cache)", user, password)
			}
			if hits() > before {
				return
			}
		}
		t.Fatalf("%s: no login of %s was answered from the credential cache", what, user)
	}
	// change runs the CLI command args (a separate process) with an IMAP
	// connection per check already open and greeted, sends every check's
	// LOGIN the moment the command returns, and then reads the replies. The
	// logins thus come before the server could learn of the change from
	// its outbox (polled every 100 ms on SQLite): only the generation file
	// can have told it.
	type want struct {
		user, password string
		ok             bool
	}
	change := func(what, stdin string, args []string, checks func(stdout string) []want) {
		t.Helper()
		conns := make([]*lineConn, 2)
		for i := range conns {
			conns[i] = dial(t, srv.Addr("imap"))
			conns[i].line() // the greeting
		}
		r := in.RunStdin(t, stdin, args...)
		if r.Code != 0 {
			t.Fatalf("%s: postern %s: %s", what, strings.Join(args, " "), r)
		}
		ws := checks(r.Stdout)
		if len(ws) > len(conns) {
			t.Fatalf("%s: %d checks for %d connections", what, len(ws), len(conns))
		}
		for i, w := range ws {
			conns[i].send("a1 LOGIN " + imapQuote(w.user) + " " + imapQuote(w.password) + "\r\n")
		}
		for i, w := range ws {
			reply := conns[i].until("a1 ")
			switch {
			case w.ok && !strings.Contains(reply, "a1 OK"):
				t.Errorf("%s: the next LOGIN of %s was refused: %q", what, w.user, reply)
			case !w.ok && !strings.Contains(reply, "a1 NO [AUTHENTICATIONFAILED]"):
				t.Errorf("%s: the next LOGIN of %s: %q, want NO [AUTHENTICATIONFAILED]", what, w.user, reply)
			}
		}
		for _, c := range conns {
			c.Close()
		}
		if t.Failed() {
			t.FailNow()
		}
	}
	wants := func(ws ...want) func(string) []want { return func(string) []want { return ws } }
	// createThen is the checks of apppass create --json: the new app
	// password of email works, and so do the others.
	createThen := func(email string, p *appPass, others ...want) func(string) []want {
		return func(stdout string) []want {
			if err := json.Unmarshal([]byte(stdout), p); err != nil || !appPasswordRE.MatchString(p.Password) {
				t.Fatalf("apppass create --json: %v\n%s", err, stdout)
			}
			return append([]want{{email, p.Password, true}}, others...)
		}
	}

	// apppass delete: the deleted one fails at once, the other still works.
	cached("apppass delete", alice.Email, a1.Password, true)
	change("apppass delete", "", []string{"apppass", "delete", alice.Email, a1.ID},
		wants(want{alice.Email, a1.Password, false}, want{alice.Email, a2.Password, true}))

	// apppass create: the new one works at once.
	var a3 appPass
	cached("apppass create", alice.Email, a2.Password, true)
	change("apppass create", "", []string{"apppass", "create", alice.Email, "--name", "Desktop", "--json"},
		createThen(alice.Email, &a3, want{alice.Email, a2.Password, true}))

	// The setting off: the app password fails, the main password works;
	// on again: the reverse.
	cached("user set off", bob.Email, b1.Password, true)
	change("user set off", "", []string{"user", "set", bob.Email, "--use-app-passwords", "off"},
		wants(want{bob.Email, b1.Password, false}, want{bob.Email, bob.Main, true}))
	cached("user set on", bob.Email, bob.Main, true)
	change("user set on", "", []string{"user", "set", bob.Email, "--use-app-passwords", "on"},
		wants(want{bob.Email, b1.Password, true}, want{bob.Email, bob.Main, false}))

	// suspend: every credential fails; resume: they work again.
	cached("user suspend", alice.Email, a2.Password, true)
	change("user suspend", "", []string{"user", "suspend", alice.Email},
		wants(want{alice.Email, a2.Password, false}, want{alice.Email, a3.Password, false}))
	cached("user resume", alice.Email, a2.Password, false)
	change("user resume", "", []string{"user", "resume", alice.Email},
		wants(want{alice.Email, a2.Password, true}, want{alice.Email, a3.Password, true}))

	// passwd --delete-app-passwords: every app password fails at once.
	cached("user passwd --delete-app-passwords", alice.Email, a3.Password, true)
	change("user passwd --delete-app-passwords", "alice's brand-new main password\n",
		[]string{"user", "passwd", alice.Email, "--password-stdin", "--delete-app-passwords"},
		wants(want{alice.Email, a2.Password, false}, want{alice.Email, a3.Password, false}))

	// passwd of a member who logs in with the main password: the old one
	// fails at once, the new one works at once.
	change("user set off again", "", []string{"user", "set", bob.Email, "--use-app-passwords", "off"},
		wants(want{bob.Email, bob.Main, true}))
	cached("user passwd", bob.Email, bob.Main, true)
	const bobNew = "bob's brand-new main password"
	change("user passwd", bobNew+"\n", []string{"user", "passwd", bob.Email, "--password-stdin"},
		wants(want{bob.Email, bob.Main, false}, want{bob.Email, bobNew, true}))

	// apppass create once the cache holds alice without app passwords.
	var a4 appPass
	cached("apppass create after passwd", alice.Email, a3.Password, false)
	change("apppass create after passwd", "", []string{"apppass", "create", alice.Email, "--name", "New phone", "--json"},
		createThen(alice.Email, &a4))

	// And the same through imaplib, a moment later.
	mustLogin("imaplib after the changes", alice.Email, a4.Password)
	mustLogin("imaplib after the changes", bob.Email, bobNew)
	mustFail("imaplib after the changes", alice.Email, a3.Password)

	_, body := httpGet(t, srv.MetricsURL())
	for _, name := range []string{"postern_credential_cache_entries", "postern_credential_cache_hits_total", "postern_credential_cache_misses_total"} {
		if !strings.Contains(body, "\n"+name+" ") {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if h := hits(); h <= 0 {
		t.Errorf("postern_credential_cache_hits_total = %v, want > 0", h)
	}
	if n := metric(t, srv, "postern_credential_cache_entries"); n <= 0 {
		t.Errorf("postern_credential_cache_entries = %v, want > 0", n)
	}
}
