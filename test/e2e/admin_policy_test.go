package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestDomainPolicyAcrossNodes: two nodes on one PostgreSQL. A domain
// security policy changed with node A's CLI closes on node B the live
// sessions it refuses (IMAP turned off; then an address allowlist that
// leaves the client out) and refuses their next logins with the one
// generic failure, while what it allows goes on; the auto-expiry of
// unused app passwords warns the member a week before, then deletes the
// password and tells the member.
func TestDomainPolicyAcrossNodes(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2, "")
	a, b := c.nodes[0], c.nodes[1]
	a.MustRun(t, "domain", "add", "example.com")
	alice := addMember(t, a, "alice@example.com")
	ap := createAppPass(t, a, alice.Email, "Thunderbird")
	c.start(t, "--auth-max-delay", "100ms")
	sb := c.srvs[1]

	// IMAP turned off: the IMAP IDLE on node B ends, POP3 there stays.
	idle := openIMAPIdle(t, sb.Addr("imap"), alice.Email, ap.Password)
	pop := openPOP3(t, sb.Addr("pop3"), alice.Email, ap.Password)
	revokeOn(t, a, "IMAP turned off on node A", []*liveSession{idle},
		"domain", "policy", "example.com", "--protocols", "pop3,smtp,caldav,carddav")
	stillOpen(t, pop)
	if _, r := imapLogin(t, sb.Addr("imap"), nextSrc(), alice.Email, ap.Password); !strings.Contains(r, "a1 NO [AUTHENTICATIONFAILED]") {
		t.Errorf("IMAP login while IMAP is off: %q", r)
	}

	// An allowlist without 127.0.0.1: the POP3 session from there ends;
	// logins from the allowed network work, from elsewhere fail alike.
	revokeOn(t, a, "address allowlist on node A", []*liveSession{pop},
		"domain", "policy", "example.com", "--protocols", "all", "--allow-cidr", "127.20.0.0/16")
	if _, r := imapLogin(t, sb.Addr("imap"), nextSrc(), alice.Email, ap.Password); !strings.Contains(r, "a1 OK") {
		t.Errorf("IMAP login from the allowed network: %q", r)
	}
	if _, r := imapLogin(t, sb.Addr("imap"), "127.0.0.1", alice.Email, ap.Password); !strings.Contains(r, "a1 NO [AUTHENTICATIONFAILED]") {
		t.Errorf("IMAP login from outside the allowlist: %q", r)
	}
	if _, r := imapLogin(t, sb.Addr("imap"), "127.0.0.1", alice.Email, "a wrong password"); !strings.Contains(r, "a1 NO [AUTHENTICATIONFAILED]") {
		t.Errorf("wrong password from outside the allowlist: %q", r)
	}
	a.MustRun(t, "domain", "policy", "example.com", "--allow-cidr", "any")

	// Auto-expiry, driven through the CLI's clock.
	a.MustRun(t, "domain", "policy", "example.com", "--expire-unused-days", "30")
	day := 24 * time.Hour
	var res struct{ Warned, Expired int }
	b.RunJSON(t, &res, "apppass", "expire", "--at", time.Now().Add(20*day).UTC().Format(time.RFC3339), "--json")
	if res.Warned != 0 || res.Expired != 0 {
		t.Fatalf("after 20 days: %+v", res)
	}
	b.RunJSON(t, &res, "apppass", "expire", "--at", time.Now().Add(25*day).UTC().Format(time.RFC3339), "--json")
	if res.Warned != 1 || res.Expired != 0 {
		t.Fatalf("after 25 days: %+v", res)
	}
	session := openPOP3(t, sb.Addr("pop3"), alice.Email, ap.Password)
	// A login just now counts as a use: it is kept until 30 days from now.
	b.RunJSON(t, &res, "apppass", "expire", "--at", time.Now().Add(29*day).UTC().Format(time.RFC3339), "--json")
	if res.Expired != 0 {
		t.Fatalf("after 29 days: %+v", res)
	}
	start := time.Now()
	b.RunJSON(t, &res, "apppass", "expire", "--at", time.Now().Add(31*day).UTC().Format(time.RFC3339), "--json")
	if res.Expired != 1 {
		t.Fatalf("after 31 days: %+v", res)
	}
	select {
	case <-session.closed:
		t.Logf("the expired password's POP3 session closed %v after the expiry started", time.Since(start).Round(time.Millisecond))
	case <-time.After(revocationDeadline):
		t.Error("the expired password's POP3 session is still open")
	}
	if r := pop3Login(t, sb.Addr("pop3"), nextSrc(), alice.Email, ap.Password); !strings.HasPrefix(r, "-ERR [AUTH]") {
		t.Errorf("expired password on node B: %q", r)
	}
	subjects := strings.Join(messageSubjects(t, a, alice.Email), "\n")
	for _, want := range []string{"will be deleted soon: Thunderbird", "unused third-party app password was deleted: Thunderbird"} {
		if !strings.Contains(subjects, want) {
			t.Errorf("no message %q among %q", want, subjects)
		}
	}
}
