package e2e

import (
	"strings"
	"testing"
	"time"
)

// appSessions is the "apps" half of postern user sessions --json.
type appSessions struct {
	Apps []struct {
		Node, Protocol, IP, Client string
		AppPassword                string `json:"app_password"`
	}
}

// waitAppSessions runs user sessions on in until it lists n sessions of
// the apps (each node publishes its own about once a second), and returns
// the last list. It fails the test after revocationDeadline.
func waitAppSessions(t *testing.T, in *Instance, email string, n int) appSessions {
	t.Helper()
	deadline := time.Now().Add(revocationDeadline)
	for {
		var s appSessions
		in.RunJSON(t, &s, "user", "sessions", email, "--json")
		if len(s.Apps) == n {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("user sessions %s: %d sessions of apps, want %d: %+v", email, len(s.Apps), n, s.Apps)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestLiveSessionsAcrossNodes: two nodes on one PostgreSQL. The sessions of
// apps on node B and on node A are both listed by a command run next to
// node A, with what the IMAP client said it is (ID, RFC 2971) and the app
// password's name; ending the member's sessions from node A closes them on
// both nodes and in the list, and the audit log has it; so does deleting
// the domain with its members.
func TestLiveSessionsAcrossNodes(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2, "")
	a, b := c.nodes[0], c.nodes[1]
	a.MustRun(t, "domain", "add", "example.com")
	alice := addMember(t, a, "alice@example.com")
	ap := createAppPass(t, a, alice.Email, "Thunderbird")
	c.start(t)
	sa, sb := c.srvs[0], c.srvs[1]

	// On node B, an IMAP client that says what it is before logging in.
	ic := dial(t, sb.Addr("imap"))
	ic.line()
	if r := ic.cmd(`i1 ID ("name" "Thunderbird" "version" "128.5.0")`, "i1 "); !strings.Contains(r, "i1 OK") {
		t.Fatalf("ID: %q", r)
	}
	if r := ic.cmd("a1 LOGIN "+imapQuote(alice.Email)+" "+imapQuote(ap.Password), "a1 "); !strings.Contains(r, "a1 OK") {
		t.Fatalf("LOGIN: %q", r)
	}
	ic.cmd("a2 SELECT INBOX", "a2 OK")
	ic.cmd("a3 IDLE", "+")
	idle := &liveSession{name: "IMAP IDLE", c: ic}
	idle.watch()
	// On node A, a POP3 session.
	pop := openPOP3(t, sa.Addr("pop3"), alice.Email, ap.Password)

	s := waitAppSessions(t, a, alice.Email, 2)
	var imap, pop3 int = -1, -1
	for i, x := range s.Apps {
		switch x.Protocol {
		case "imap":
			imap = i
		case "pop3":
			pop3 = i
		}
	}
	if imap < 0 || pop3 < 0 {
		t.Fatalf("sessions: %+v", s.Apps)
	}
	if x := s.Apps[imap]; x.Client != "Thunderbird 128.5.0" || x.AppPassword != "Thunderbird" || x.IP == "" {
		t.Errorf("the IMAP session: %+v", x)
	}
	if s.Apps[imap].Node == s.Apps[pop3].Node {
		t.Errorf("both sessions on one node: %+v", s.Apps)
	}
	// The login record names the client too.
	var logins []struct{ Client, Protocol string }
	a.RunJSON(t, &logins, "audit", "--member", alice.Email, "--action", "login.ok", "--json")
	found := false
	for _, l := range logins {
		found = found || l.Protocol == "imap" && l.Client == "Thunderbird 128.5.0"
	}
	if !found {
		t.Errorf("no IMAP login record with the client's ID: %+v", logins)
	}

	// Ending them from node A closes both, on both nodes.
	revokeOn(t, a, "end-sessions on node A", []*liveSession{idle, pop}, "user", "end-sessions", alice.Email)
	waitAppSessions(t, b, alice.Email, 0)
	var ended []struct{ Action, Actor string }
	a.RunJSON(t, &ended, "audit", "--action", "sessions.ended", "--json")
	if len(ended) != 1 || ended[0].Actor != "cli" {
		t.Errorf("audit: %+v", ended)
	}

	// Deleting the domain with its members from node A closes the
	// member's session on node B: each member goes as user delete does.
	idle = openIMAPIdle(t, sb.Addr("imap"), alice.Email, ap.Password)
	waitAppSessions(t, a, alice.Email, 1)
	revokeOn(t, a, "domain delete --with-members on node A", []*liveSession{idle}, "domain", "delete", "example.com", "--with-members")
	if _, r := imapLogin(t, sb.Addr("imap"), nextSrc(), alice.Email, ap.Password); !strings.Contains(r, "a1 NO [AUTHENTICATIONFAILED]") {
		t.Errorf("IMAP login after the domain was deleted: %q", r)
	}
}
