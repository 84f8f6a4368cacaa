package e2e

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// imapResult is one command's answer from mailclient.py imap.
type imapResult struct {
	Typ  string `json:"typ"`
	Data []any  `json:"data"`
}

// imapSession runs imaplib commands as user over STARTTLS and fails the
// test unless each is OK.
func imapSession(t *testing.T, srv *Server, user, password string, commands ...[]any) []imapResult {
	t.Helper()
	host, port := splitAddr(srv.Addr("imap"))
	var res []imapResult
	runPython(t, "imap", map[string]any{"host": host, "port": port, "src": nextSrc(), "user": user,
		"password": password, "tls": "starttls", "commands": commands}, &res)
	for i, r := range res {
		// response() answers with the code's name, not a status.
		if r.Typ != "OK" && commands[i][0] != "response" {
			t.Fatalf("imaplib %v: %s %v", commands[i], r.Typ, r.Data)
		}
	}
	return res
}

// pop3Session runs poplib commands as user (USER/PASS, plaintext on
// loopback) and returns their results.
func pop3Session(t *testing.T, srv *Server, user, password string, commands ...[]any) []any {
	t.Helper()
	host, port := splitAddr(srv.Addr("pop3"))
	var res []any
	runPython(t, "pop3", map[string]any{"host": host, "port": port, "src": nextSrc(), "user": user,
		"password": password, "tls": "none", "commands": commands}, &res)
	return res
}

// inboxMessage is what the flow test reads of a message over IMAP.
type inboxMessage struct {
	UID     string
	Flags   []string
	Subject string
}

var (
	fetchUIDRE   = regexp.MustCompile(`UID (\d+)`)
	fetchFlagsRE = regexp.MustCompile(`FLAGS \(([^)]*)\)`)
)

// readInbox selects INBOX and returns its messages (UID, flags, subject)
// and its UIDVALIDITY, all with imaplib.
func readInbox(t *testing.T, srv *Server, user, password string) ([]inboxMessage, string) {
	t.Helper()
	res := imapSession(t, srv, user, password,
		[]any{"select", "INBOX"},
		[]any{"response", "UIDVALIDITY"},
		[]any{"uid", "FETCH", "1:*", "(UID FLAGS)"},
		[]any{"uid", "FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])"},
	)
	uidValidity := fmt.Sprint(res[1].Data[0])
	var msgs []inboxMessage
	for _, d := range res[2].Data {
		s, _ := d.(string)
		u, fl := fetchUIDRE.FindStringSubmatch(s), fetchFlagsRE.FindStringSubmatch(s)
		if u == nil || fl == nil {
			t.Fatalf("FETCH (UID FLAGS): %q", s)
		}
		msgs = append(msgs, inboxMessage{UID: u[1], Flags: strings.Fields(fl[1])})
	}
	i := 0
	for _, d := range res[3].Data {
		pair, ok := d.([]any)
		if !ok || len(pair) != 2 || i >= len(msgs) {
			continue
		}
		msgs[i].Subject = strings.TrimSpace(strings.TrimPrefix(pair[1].(string), "Subject:"))
		i++
	}
	if i != len(msgs) {
		t.Fatalf("%d subjects for %d messages: %v", i, len(msgs), res[3].Data)
	}
	return msgs, uidValidity
}

func findSubject(msgs []inboxMessage, prefix string) (inboxMessage, bool) {
	for _, m := range msgs {
		if strings.HasPrefix(m.Subject, prefix) {
			return m, true
		}
	}
	return inboxMessage{}, false
}

// sendMail submits a message with smtplib over STARTTLS.
func sendMail(t *testing.T, srv *Server, from member, password, to, subject, body string) {
	t.Helper()
	host, port := splitAddr(srv.Addr("submission"))
	var out map[string]any
	runPython(t, "send", map[string]any{"host": host, "port": port, "user": from.Email, "password": password,
		"from": from.Email, "to": to, "subject": subject, "body": body}, &out)
}

// TestMailFlow: mail submitted by one member arrives in another's INBOX and
// is read over IMAP and POP3, next to the "app password created" message;
// flags and an expunge survive a restart; POP3 DELE takes effect at QUIT
// only (RFC 1939 §6, §8).
func TestMailFlow(t *testing.T) {
	Engines(t, func(t *testing.T, in *Instance) {
		t.Parallel()
		testMailFlow(t, in)
	})
}

func testMailFlow(t *testing.T, in *Instance) {
	in.MustRun(t, "domain", "add", "example.com")
	alice, dave := addMember(t, in, "alice@example.com"), addMember(t, in, "dave@example.com")
	a, d := createAppPass(t, in, alice.Email, "Thunderbird"), createAppPass(t, in, dave.Email, "Phone")
	srv := in.StartServer(t)

	sendMail(t, srv, alice, a.Grouped(), dave.Email, "Lunch on Friday", "Hello Dave,\r\nlunch on Friday?\r\nAlice")
	sendMail(t, srv, alice, a.Password, dave.Email, "Second", "to be flagged")
	sendMail(t, srv, alice, a.Password, dave.Email, "Third", "to be expunged")

	msgs, uidValidity := readInbox(t, srv, dave.Email, d.Password)
	var subjects []string
	for _, m := range msgs {
		subjects = append(subjects, m.Subject)
	}
	if len(msgs) != 4 {
		t.Fatalf("dave's INBOX: %q, want the notification and three messages", subjects)
	}
	if _, ok := findSubject(msgs, "A third-party app password was created: Phone"); !ok {
		t.Errorf("no \"app password created\" notification in dave's INBOX: %q", subjects)
	}
	lunch, ok := findSubject(msgs, "Lunch on Friday")
	if !ok {
		t.Fatalf("the submitted message is not in dave's INBOX: %q", subjects)
	}
	second, _ := findSubject(msgs, "Second")
	third, _ := findSubject(msgs, "Third")

	// IMAP: read the message (BODY[] sets \Seen, RFC 9051 §6.4.5), flag one
	// and expunge another.
	res := imapSession(t, srv, dave.Email, d.Password,
		[]any{"select", "INBOX"},
		[]any{"uid", "FETCH", lunch.UID, "(BODY[])"},
		[]any{"uid", "STORE", second.UID, "+FLAGS", `(\Flagged \Answered)`},
		[]any{"uid", "STORE", third.UID, "+FLAGS", `(\Deleted)`},
		[]any{"expunge"},
	)
	body := fmt.Sprint(res[1].Data)
	// smtplib's message had no Date or Message-ID: the submission server
	// added them (RFC 6409 §8.2, §8.3).
	for _, want := range []string{"From: alice@example.com", "To: dave@example.com", "lunch on Friday?", "\r\nDate: ", "\r\nMessage-ID: <"} {
		if !strings.Contains(body, want) {
			t.Errorf("IMAP FETCH BODY[] lacks %q:\n%s", want, body)
		}
	}

	// POP3: the same message by RETR.
	pop := pop3Session(t, srv, dave.Email, d.Password, []any{"stat"}, []any{"retr", pop3Index(msgs, lunch, third)}, []any{"quit"})
	if stat := fmt.Sprint(pop[0]); !strings.HasPrefix(stat, "[3 ") {
		t.Errorf("POP3 STAT after the expunge: %s, want 3 messages", stat)
	}
	if retr := fmt.Sprint(pop[1]); !strings.Contains(retr, "lunch on Friday?") || !strings.Contains(retr, "From: alice@example.com") {
		t.Errorf("POP3 RETR: %s", retr)
	}

	// Restart on the same data folder.
	srv.Stop(t)
	srv = in.StartServer(t)
	after, uidValidity2 := readInbox(t, srv, dave.Email, d.Password)
	if uidValidity2 != uidValidity {
		t.Errorf("UIDVALIDITY %s before the restart, %s after", uidValidity, uidValidity2)
	}
	t.Logf("dave's INBOX before the restart: %+v; after: %+v", msgs, after)
	if len(after) != 3 {
		t.Fatalf("after the restart: %+v, want 3 messages", after)
	}
	if _, ok := findSubject(after, "Third"); ok {
		t.Error("the expunged message is back after the restart")
	}
	for _, want := range []struct {
		subject string
		flags   []string
	}{{"Lunch on Friday", []string{`\Seen`}}, {"Second", []string{`\Answered`, `\Flagged`}}} {
		m, _ := findSubject(after, want.subject)
		got := slices.Clone(m.Flags)
		slices.Sort(got)
		if !slices.Equal(got, want.flags) {
			t.Errorf("%q after the restart: flags %v, want %v", want.subject, m.Flags, want.flags)
		}
	}

	testPOP3DeleAtQuit(t, srv, dave.Email, d.Password)
}

// pop3Index is the POP3 message number of m: POP3 lists the INBOX in UID
// order without the expunged message gone.
func pop3Index(msgs []inboxMessage, m, gone inboxMessage) int {
	n := 0
	for _, x := range msgs {
		if x.UID == gone.UID {
			continue
		}
		n++
		if x.UID == m.UID {
			return n
		}
	}
	return 0
}

// testPOP3DeleAtQuit: DELE marks a message; only QUIT (the UPDATE state)
// removes it. A connection that ends without QUIT removes nothing.
func testPOP3DeleAtQuit(t *testing.T, srv *Server, user, password string) {
	login := func() *lineConn {
		c := dial(t, srv.Addr("pop3"))
		c.line()
		c.cmd("USER "+user, "+OK")
		if r := c.cmd("PASS "+password, ""); !strings.HasPrefix(r, "+OK") {
			t.Fatalf("POP3 PASS: %q", r)
		}
		return c
	}
	stat := func(c *lineConn) string { return c.cmd("STAT", "") }

	c := login()
	if s := stat(c); !strings.HasPrefix(s, "+OK 3 ") {
		t.Fatalf("STAT: %q", s)
	}
	c.cmd("DELE 1", "+OK")
	if s := stat(c); !strings.HasPrefix(s, "+OK 2 ") {
		t.Errorf("STAT after DELE in the same session: %q, want 2 messages", s)
	}
	other := login()
	if s := stat(other); !strings.HasPrefix(s, "+OK 3 ") {
		t.Errorf("another session sees a DELE before QUIT: %q", s)
	}
	other.cmd("QUIT", "+OK")
	c.Close() // no QUIT: nothing is removed

	c = login()
	if s := stat(c); !strings.HasPrefix(s, "+OK 3 ") {
		t.Errorf("STAT after DELE without QUIT: %q, want 3 messages", s)
	}
	c.cmd("DELE 1", "+OK")
	c.cmd("QUIT", "+OK")
	if _, err := c.drain(10 * time.Second); err != nil {
		t.Errorf("after QUIT: %v, want the server to close", err)
	}
	c = login()
	if s := stat(c); !strings.HasPrefix(s, "+OK 2 ") {
		t.Errorf("STAT after DELE and QUIT: %q, want 2 messages", s)
	}
	c.cmd("QUIT", "+OK")
	if msgs, _ := readInbox(t, srv, user, password); len(msgs) != 2 {
		t.Errorf("IMAP after POP3 DELE+QUIT: %d messages, want 2", len(msgs))
	}
}

// testIdleNewMail: a message submitted over SMTP reaches IMAP sessions in
// IDLE (RFC 2177) as an untagged EXISTS, on every node.
func (f *mailFixture) testIdleNewMail(t *testing.T) {
	var idles []*lineConn
	for _, srv := range f.nodes() {
		c := dial(t, srv.Addr("imap"))
		c.line()
		c.cmd("a1 LOGIN "+imapQuote(f.carol.Email)+" "+imapQuote(f.carolApp.Password), "a1 OK")
		c.cmd("a2 SELECT INBOX", "a2 OK")
		c.cmd("a3 IDLE", "+")
		idles = append(idles, c)
	}
	sendMail(t, f.srv, f.alice, f.aliceApp.Password, f.carol.Email, "Are you there?", "IDLE test")
	exists := regexp.MustCompile(`^\* \d+ EXISTS\r\n$`)
	for i, c := range idles {
		// Other untagged data (a keep-alive "* OK") may come first; c.line
		// fails the test after 30 s without an EXISTS.
		for l := c.line(); !exists.MatchString(l); l = c.line() {
			t.Logf("node %d: IDLE got %q", i+1, l)
		}
		c.cmd("DONE", "a3 OK")
	}
}
