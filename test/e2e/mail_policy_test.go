package e2e

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// mailFixture is the installation TestMailEngines shares between its
// subtests: one server per engine, members for each policy case.
type mailFixture struct {
	in   *Instance
	srv  *Server
	srv2 *Server // PostgreSQL: a second node on the same database

	alice       member  // enforced domain
	aliceApp    appPass // alice's app password
	bob         member  // optional domain, setting off
	bobInactive appPass // made while bob's setting was on: inactive now
	carol       member  // optional domain, setting on
	carolApp    appPass
}

func newMailFixture(t *testing.T, in *Instance) *mailFixture {
	t.Helper()
	in.MustRun(t, "domain", "add", "example.com")
	in.MustRun(t, "domain", "add", "legacy.example", "--created", "2020-04-01")
	f := &mailFixture{in: in}
	f.alice = addMember(t, in, "alice@example.com")
	f.aliceApp = createAppPass(t, in, f.alice.Email, "Thunderbird")
	f.bob = addMember(t, in, "bob@legacy.example")
	in.MustRun(t, "user", "set", f.bob.Email, "--use-app-passwords", "on")
	f.bobInactive = createAppPass(t, in, f.bob.Email, "Old phone")
	in.MustRun(t, "user", "set", f.bob.Email, "--use-app-passwords", "off")
	f.carol = addMember(t, in, "carol@legacy.example")
	in.MustRun(t, "user", "set", f.carol.Email, "--use-app-passwords", "on")
	f.carolApp = createAppPass(t, in, f.carol.Email, "iPhone Mail")
	return f
}

// TestMailEngines runs the checks of issue 3 that must hold on both stores
// against one server per engine (two nodes on PostgreSQL): the policy
// matrix, identical failure replies, the last-used record, IDLE and
// revocation of live sessions.
func TestMailEngines(t *testing.T) {
	Engines(t, func(t *testing.T, in *Instance) {
		t.Parallel()
		f := newMailFixture(t, in)
		f.srv = in.StartServer(t)
		if in.Engine == "postgres" {
			// Several stateless nodes share one PostgreSQL (SPEC §1):
			// revocations and new mail must reach sessions on each.
			f.srv2 = in.StartServer(t)
		}
		t.Run("policy matrix", f.testPolicyMatrix)
		t.Run("identical failure replies", f.testFailureReplies)
		t.Run("last used", f.testLastUsed)
		t.Run("IDLE sees new mail", f.testIdleNewMail)
		t.Run("revocation", f.testRevocation)
		if in.Engine == "sqlite" { // session handling does not depend on the store
			t.Run("revocation of a session stuck writing", f.testStuckWriterRevocation)
		}
	})
}

// credCase is one credential tried by every client, and whether it must
// log in.
type credCase struct {
	who, what string // for messages: "alice (enforced)", "grouped app password"
	user      string
	password  string
	ok        bool
}

// policyCases lists, per member, every credential worth trying: exactly
// the allowed one logs in (SPEC §2, §3: app passwords with or without the
// reading spaces; nothing else is normalised).
func (f *mailFixture) policyCases() []credCase {
	var cases []credCase
	appOnly := func(who string, m member, p appPass) {
		cases = append(cases,
			credCase{who, "app password", m.Email, p.Password, true},
			credCase{who, "grouped app password", m.Email, p.Grouped(), true},
			credCase{who, "app password, upper-case address", strings.ToUpper(m.Email), p.Password, true},
			credCase{who, "main password", m.Email, m.Main, false},
			credCase{who, "app password plus one character", m.Email, p.Password + "x", false},
			credCase{who, "case-changed app password", m.Email, otherCase(p.Password), false},
			// Only the reading spaces are forgiven (SPEC §3): not other
			// groupings, nor spaces around the password.
			credCase{who, "app password grouped by 4", m.Email, groupBy(p.Password, 4), false},
			credCase{who, "grouped app password with a trailing space", m.Email, p.Grouped() + " ", false},
		)
	}
	appOnly("alice (enforced)", f.alice, f.aliceApp)
	appOnly("carol (setting on)", f.carol, f.carolApp)
	cases = append(cases,
		credCase{"bob (setting off)", "main password", f.bob.Email, f.bob.Main, true},
		credCase{"bob (setting off)", "inactive app password", f.bob.Email, f.bobInactive.Password, false},
		credCase{"bob (setting off)", "grouped inactive app password", f.bob.Email, f.bobInactive.Grouped(), false},
		credCase{"bob (setting off)", "main password plus one character", f.bob.Email, f.bob.Main + "x", false},
	)
	var out []credCase
	for _, c := range cases {
		// An app password without lower-case letters has no lower-cased
		// variant worth trying.
		if c.what == "lower-cased app password" && (c.password == f.aliceApp.Password || c.password == f.carolApp.Password) {
			continue
		}
		out = append(out, c)
	}
	return out
}

// testPolicyMatrix: every credential over every protocol with clients
// nobody here wrote — imaplib (LOGIN, AUTHENTICATE PLAIN), poplib
// (USER/PASS), curl pop3:// (AUTH PLAIN), smtplib (login(), AUTH LOGIN) and
// swaks (AUTH PLAIN, AUTH LOGIN).
func (f *mailFixture) testPolicyMatrix(t *testing.T) {
	cases := f.policyCases()
	imap, pop3, sub := f.srv.Addr("imap"), f.srv.Addr("pop3"), f.srv.Addr("submission")

	type outcome struct {
		c      credCase
		client string
		ok     bool
		detail string
	}
	var (
		mu       sync.Mutex
		outcomes []outcome
		wg       sync.WaitGroup
	)
	record := func(c credCase, client string, ok bool, detail string) {
		mu.Lock()
		outcomes = append(outcomes, outcome{c, client, ok, detail})
		mu.Unlock()
	}

	// Python: one interpreter for all its attempts.
	wg.Add(1)
	go func() {
		defer wg.Done()
		var attempts []pyAttempt
		var of []credCase
		for _, c := range cases {
			for _, a := range []struct{ client, addr string }{
				{"imap-login", imap}, {"imap-plain", imap}, {"pop3-user", pop3}, {"smtp", sub}, {"smtp-login", sub},
			} {
				attempts = append(attempts, newAttempt(a.client, a.addr, c.user, c.password, "none"))
				of = append(of, c)
			}
		}
		for i, r := range pyLogins(t, attempts) {
			record(of[i], "python "+attempts[i].Client, r.OK, r.Error)
		}
	}()

	// curl and swaks: one process per attempt, a few at a time.
	sem := make(chan struct{}, 3)
	for _, c := range cases {
		for _, client := range []string{"curl pop3", "swaks PLAIN", "swaks LOGIN"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				var ok bool
				var out string
				switch client {
				case "curl pop3":
					ok, out = curlPOP3(t, pop3, c.user, c.password)
				default:
					ok, out = swaksAuth(t, sub, strings.TrimPrefix(client, "swaks "), c.user, c.password)
				}
				record(c, client, ok, out)
			}()
		}
	}
	wg.Wait()

	if want := len(cases) * 8; len(outcomes) != want {
		t.Fatalf("%d outcomes, want %d", len(outcomes), want)
	}
	for _, o := range outcomes {
		if o.ok != o.c.ok {
			verb := map[bool]string{true: "logged in", false: "did not log in"}[o.ok]
			t.Errorf("%s, %s, %s: %s, want the opposite\n%s", o.c.who, o.c.what, o.client, verb, o.detail)
		}
	}
	t.Logf("policy matrix: %d credentials × 8 clients = %d logins checked", len(cases), len(outcomes))
}

// testLastUsed: an IMAP login with an app password shows in the list as
// last used over imap from 127.0.0.1 (the record is written asynchronously).
func (f *mailFixture) testLastUsed(t *testing.T) {
	p := createAppPass(t, f.in, f.alice.Email, "Last used check")
	a := newAttempt("imap-login", f.srv.Addr("imap"), f.alice.Email, p.Password, "none")
	a.Src = "127.0.0.1"
	if r := pyLogins(t, []pyAttempt{a}); !r[0].OK {
		t.Fatalf("imap login: %s", r[0].Error)
	}
	var got appPasswordRow
	deadline := time.Now().Add(15 * time.Second)
	for {
		var list []appPasswordRow
		f.in.RunJSON(t, &list, "apppass", "list", f.alice.Email)
		for _, row := range list {
			if row.ID == p.ID {
				got = row
			}
		}
		if got.LastUsedAt != nil && got.LastUsedProtocol == "imap" && got.LastUsedIP == "127.0.0.1" && got.Active {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("apppass list after an IMAP login from 127.0.0.1: %+v", got)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// appPasswordRow is an element of apppass list --json.
type appPasswordRow struct {
	ID               string  `json:"id"`
	Name             string  `json:"name"`
	LastUsedAt       *string `json:"last_used_at"`
	LastUsedProtocol string  `json:"last_used_protocol"`
	LastUsedIP       string  `json:"last_used_ip"`
	Active           bool    `json:"active"`
}

// groupBy splits s into groups of n characters separated by spaces.
func groupBy(s string, n int) string {
	var groups []string
	for len(s) > n {
		groups, s = append(groups, s[:n]), s[n:]
	}
	return strings.Join(append(groups, s), " ")
}

// otherCase returns p lower-cased, or upper-cased when it has no upper-case
// letter: never p itself, so the case can only fail for the right reason.
func otherCase(p string) string {
	if l := strings.ToLower(p); l != p {
		return l
	}
	return strings.ToUpper(p)
}
