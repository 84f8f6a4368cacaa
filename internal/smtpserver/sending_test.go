package smtpserver

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/auth"
)

// credAuth is fakeAuth with a credential of the test's choosing per user
// (fakeAuth's app password "ap1" otherwise).
type credAuth struct {
	*fakeAuth
	creds map[string]account.Credential
}

func (a credAuth) Authenticate(ctx context.Context, at auth.Attempt) (auth.Login, error) {
	l, err := a.fakeAuth.Authenticate(ctx, at)
	if c, ok := a.creds[strings.ToLower(at.User)]; ok && err == nil {
		l.Credential = c
	}
	return l, err
}

// withCreds gives users their credentials.
func withCreds(creds map[string]account.Credential) func(*Config) {
	return func(c *Config) { c.Auth = credAuth{c.Auth.(*fakeAuth), creds} }
}

// limit sets the caps of the env's service; zero caps are none.
func (e *env) limit(l account.SendLimits) { e.se.Svc.Config.SendLimits = &l }

// sent records in the send log what a commit of the delivery path would:
// messages messages, each to rcpts recipients, ago before now.
func (e *env) sent(m account.Member, app string, messages, rcpts int, ago time.Duration) {
	e.t.Helper()
	for range messages {
		if err := e.db.RecordSend(context.Background(), m.ID, app, rcpts, time.Now().Add(-ago)); err != nil {
			e.t.Fatal(err)
		}
	}
}

// limitMessages returns the member's send.limited messages, newest first.
func (e *env) limitMessages(m account.Member) []account.Message {
	e.t.Helper()
	all, err := e.db.Messages(context.Background(), m.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []account.Message
	for _, msg := range all {
		if msg.Kind == account.MsgSendLimited {
			out = append(out, msg)
		}
	}
	return out
}

// Past an hour's message cap MAIL FROM gets 450 4.7.1, past a day's 550
// 5.7.1 (named first when both are passed); the member hears of it once,
// with the app password named, however often the script tries.
func TestSendCapMessages(t *testing.T) {
	e := newEnv(t)
	e.limit(account.SendLimits{
		Member:      account.SendCaps{MessagesPerHour: 5, MessagesPerDay: 8},
		AppPassword: account.SendCaps{MessagesPerHour: 2, MessagesPerDay: 4},
	})
	const (
		hourApp = "450 4.7.1 Sending limit reached: at most 2 messages an hour with this app password; try again later\r\n"
		dayApp  = "550 5.7.1 Sending limit reached: at most 4 messages a day with this app password\r\n"
	)
	e.sent(e.alice, "ap1", 1, 1, time.Minute)
	c := dial(t, e.addr)
	c.login(e.alice.Email, alicePass)
	c.wantCmd("MAIL FROM:<alice@example.test>", "250 ")
	c.wantCmd("RSET", "250 ")
	e.sent(e.alice, "ap1", 1, 1, time.Minute)
	if got := c.cmd("MAIL FROM:<alice@example.test>"); got != hourApp {
		t.Fatalf("at the hour's cap: %q", got)
	}
	// The refusal leaves no transaction.
	c.wantCmd("RCPT TO:<bob@other.test>", "503 ")
	// Sends of the other hours of the day: the day's cap, named first.
	e.sent(e.alice, "ap1", 2, 1, 3*time.Hour)
	if got := c.cmd("MAIL FROM:<alice@example.test>"); got != dayApp {
		t.Fatalf("at both caps: %q", got)
	}
	c.wantCmd("QUIT", "221 ")
	c = dial(t, e.addr)
	c.login(e.alice.Email, alicePass)
	if got := c.cmd("MAIL FROM:<alice@example.test>"); got != dayApp {
		t.Fatalf("a new session: %q", got)
	}
	c.wantCmd("QUIT", "221 ")

	msgs := e.limitMessages(e.alice)
	if len(msgs) != 1 || msgs[0].Params["app"] != "test" || msgs[0].Params["app_id"] != "ap1" ||
		msgs[0].Params["window"] != "hour" || !strings.Contains(msgs[0].Body, "If this was not you") {
		t.Fatalf("the member's messages: %+v", msgs)
	}
	if box := e.inbox(e.alice); len(box) != 1 || !strings.Contains(box[0], "Sending limit reached by the third-party app password: test") {
		t.Fatalf("INBOX %q", box)
	}
	// Another member is not held by alice's sends.
	c = dial(t, e.addr)
	c.login(e.bob.Email, bobPass)
	c.wantCmd("MAIL FROM:<bob@other.test>", "250 ")
}

// RCPT counts the recipients already given in the transaction, local and
// refused ones apart: past the hour's cap 450 4.7.1, past the day's 550
// 5.7.1, and the message goes to the recipients accepted.
func TestSendCapRecipientsInTransaction(t *testing.T) {
	e := newEnv(t)
	e.limit(account.SendLimits{Member: account.SendCaps{RecipientsPerHour: 5, RecipientsPerDay: 7}})
	e.sent(e.alice, "ap1", 1, 2, time.Minute)
	c := dial(t, e.addr)
	c.login(e.alice.Email, alicePass)
	c.wantCmd("MAIL FROM:<alice@example.test>", "250 ")
	c.wantCmd("RCPT TO:<bob@other.test>", "250 ")
	c.wantCmd("RCPT TO:<nobody@example.test>", "550 5.1.1 ") // refused: holds no place
	c.wantCmd("RCPT TO:<alice@example.test>", "250 ")
	c.wantCmd("RCPT TO:<bob@other.test>", "250 ") // a duplicate is a recipient too
	if got := c.cmd("RCPT TO:<alice+x@example.test>"); got != "450 4.7.1 Sending limit reached: at most 5 recipients an hour from your account; try again later\r\n" {
		t.Fatalf("sixth recipient: %q", got)
	}
	c.wantCmd("DATA", "354 ")
	c.send("Subject: hi\r\n\r\nhi\r\n.\r\n")
	c.want("250 ")
	if n := len(e.inbox(e.bob)); n != 1 {
		t.Fatalf("bob has %d", n)
	}
	// The delivery path records what it sent; the day's cap comes next.
	e.sent(e.alice, "ap1", 1, 3, time.Second)
	e.sent(e.alice, "ap1", 1, 2, 5*time.Hour)
	c.wantCmd("MAIL FROM:<alice@example.test>", "250 ")
	if got := c.cmd("RCPT TO:<bob@other.test>"); got != "550 5.7.1 Sending limit reached: at most 7 recipients a day from your account\r\n" {
		t.Fatalf("past the day's recipients: %q", got)
	}
	if msgs := e.limitMessages(e.alice); len(msgs) != 1 || msgs[0].Params["what"] != "recipients" || msgs[0].Params["scope"] != "member" {
		t.Fatalf("the member's messages: %+v", msgs)
	}
}

// Sessions in parallel cannot share the last place: a message accepted at
// MAIL holds its place until its session's next MAIL or end, committed or
// not, so a script on many connections stops at the cap too.
func TestSendCapParallelSessions(t *testing.T) {
	e := newEnv(t)
	e.limit(account.SendLimits{AppPassword: account.SendCaps{MessagesPerHour: 2, RecipientsPerHour: 3}})
	var cs []*client
	for range 3 {
		c := dial(t, e.addr)
		c.login(e.alice.Email, alicePass)
		cs = append(cs, c)
	}
	cs[0].wantCmd("MAIL FROM:<alice@example.test>", "250 ")
	cs[1].wantCmd("MAIL FROM:<alice@example.test>", "250 ")
	cs[2].wantCmd("MAIL FROM:<alice@example.test>", "450 4.7.1 ")
	// Recipients too: two in one session and one in another fill the cap.
	cs[0].wantCmd("RCPT TO:<bob@other.test>", "250 ")
	cs[0].wantCmd("RCPT TO:<alice@example.test>", "250 ")
	cs[1].wantCmd("RCPT TO:<bob@other.test>", "250 ")
	cs[1].wantCmd("RCPT TO:<alice@example.test>", "450 4.7.1 ")
	// A session that ends gives its places back.
	cs[0].wantCmd("QUIT", "221 ")
	cs[0].waitClosed()
	cs[1].wantCmd("RCPT TO:<alice@example.test>", "250 ")
	cs[2].wantCmd("MAIL FROM:<alice@example.test>", "250 ")
	// So does a session's next MAIL: its message is in the store by then
	// (recorded here by hand).
	cs[1].wantCmd("RSET", "250 ")
	e.sent(e.alice, "ap1", 1, 2, time.Second)
	cs[1].wantCmd("MAIL FROM:<alice@example.test>", "450 4.7.1 ")
	e.srv.ledger.mu.Lock()
	held := len(e.srv.ledger.m)
	e.srv.ledger.mu.Unlock()
	if held != 2 {
		t.Fatalf("ledger holds %d scopes: want the member's and ap1's (cs[2]'s message)", held)
	}
	cs[1].wantCmd("QUIT", "221 ")
	cs[2].wantCmd("QUIT", "221 ")
	cs[1].waitClosed()
	cs[2].waitClosed()
	// Session ends are asynchronous to the client; the ledger empties.
	deadline := time.Now().Add(10 * time.Second)
	for {
		e.srv.ledger.mu.Lock()
		n := len(e.srv.ledger.m)
		e.srv.ledger.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ledger holds %d scopes after every session ended", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A main-password login counts under the member's caps only; an app
// password's under both, the other app passwords' sends counting under the
// member's.
func TestSendCapScopes(t *testing.T) {
	e := newEnv(t, withCreds(map[string]account.Credential{"bob@other.test": {}}))
	e.limit(account.SendLimits{
		Member:      account.SendCaps{MessagesPerHour: 3},
		AppPassword: account.SendCaps{MessagesPerHour: 1},
	})
	e.sent(e.alice, "ap1", 1, 1, time.Minute)
	e.sent(e.bob, "ap1", 1, 1, time.Minute) // bob's own row with an id like alice's
	e.sent(e.bob, "", 1, 1, time.Minute)
	c := dial(t, e.addr)
	c.login(e.alice.Email, alicePass)
	c.wantCmd("MAIL FROM:<alice@example.test>", "450 4.7.1 Sending limit reached: at most 1 message an hour with this app password")
	b := dial(t, e.addr)
	b.login(e.bob.Email, bobPass)
	b.wantCmd("MAIL FROM:<bob@other.test>", "250 ")
	e.sent(e.bob, "other", 1, 1, time.Minute)
	b.wantCmd("RSET", "250 ")
	b.wantCmd("MAIL FROM:<bob@other.test>", "450 4.7.1 Sending limit reached: at most 3 messages an hour from your account")
	msgs := e.limitMessages(e.bob)
	if len(msgs) != 1 || msgs[0].Subject != "Sending limit reached by your account" || msgs[0].Params["app"] != "" {
		t.Fatalf("bob's messages %+v", msgs)
	}
}

// A member sends as its aliases, envelope and From: alike, and the reverse
// path stays the alias's; not as an alias it does not receive, nor as an
// address someone has as written though it looks like a tag of its own.
func TestSendAsAlias(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	carol := e.se.Member(t, "carol@example.test")
	plus := e.se.Member(t, "alice+list@example.test") // a member of its own
	for _, a := range []struct {
		address string
		targets []string
	}{
		{"sales@example.test", []string{e.alice.Email, carol.Email}},
		{"info@other.test", []string{e.alice.Email}},
		{"hr@example.test", []string{carol.Email}},
	} {
		if _, _, err := e.se.Svc.AddAlias(ctx, a.address, a.targets, account.Actor{Via: "cli"}); err != nil {
			t.Fatal(err)
		}
	}
	const (
		ok      = "250 2.0.0 Message accepted and delivered\r\n"
		notMail = "553 5.7.1 Sender address must be your own address <alice@example.test> or an alias of yours\r\n"
		notFrom = "550 5.7.1 The From: address must be your own address <alice@example.test> or an alias of yours\r\n"
	)
	for _, tc := range []struct {
		name, mailFrom, from, mailReply, dataReply, returnPath string
	}{
		{"alias", "Sales@Example.test", "Sales <sales@example.test>", "250 ", ok, "sales@example.test"},
		{"alias of another domain", "info@other.test", "info@other.test", "250 ", ok, "info@other.test"},
		{"alias with a tag", "sales+eu@example.test", "sales+eu@example.test", "250 ", ok, "sales+eu@example.test"},
		{"own envelope, alias author", "alice@example.test", "sales@example.test", "250 ", ok, "alice@example.test"},
		{"alias envelope, own author", "sales@example.test", "alice@example.test", "250 ", ok, "sales@example.test"},
		{"own with a tag", "alice+news@example.test", "alice+news@example.test", "250 ", ok, "alice+news@example.test"},
		{"alias of others", "hr@example.test", "", notMail, "", ""},
		{"author an alias of others", "alice@example.test", "hr@example.test", "250 ", notFrom, ""},
		{"author an alias of others with a tag", "alice@example.test", "hr+x@example.test", "250 ", notFrom, ""},
		{"a member's address that looks like a tag", "alice+list@example.test", "", notMail, "", ""},
		{"author a member that looks like a tag", "alice@example.test", "alice+list@example.test", "250 ", notFrom, ""},
		{"another member", "carol@example.test", "", notMail, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.inbox(carol))
			c := dial(t, e.addr)
			c.login(e.alice.Email, alicePass)
			if got := c.cmd("MAIL FROM:<" + tc.mailFrom + ">"); !strings.HasPrefix(got, tc.mailReply) {
				t.Fatalf("MAIL: %q, want %q", got, tc.mailReply)
			}
			if tc.dataReply == "" {
				return
			}
			c.wantCmd("RCPT TO:<carol@example.test>", "250 ")
			c.wantCmd("DATA", "354 ")
			c.send("From: " + tc.from + "\r\nSubject: x\r\n\r\nhi\r\n.\r\n")
			if got := c.reply(); got != tc.dataReply {
				t.Fatalf("DATA: %q, want %q", got, tc.dataReply)
			}
			box := e.inbox(carol)
			if tc.dataReply != ok {
				if len(box) != before {
					t.Fatal("refused, yet delivered")
				}
				return
			}
			if len(box) != before+1 || !strings.HasPrefix(box[len(box)-1], "Return-Path: <"+tc.returnPath+">\r\n") {
				t.Fatalf("delivered %q", box[before:])
			}
		})
	}
	if n := len(e.inbox(plus)); n != 0 {
		t.Fatalf("the member alice+list got %d", n)
	}
	// Removed from the alias, alice no longer sends as it.
	if _, err := e.se.Svc.RemoveAliasTargets(ctx, "sales@example.test", []string{e.alice.Email}, account.Actor{Via: "cli"}); err != nil {
		t.Fatal(err)
	}
	c := dial(t, e.addr)
	c.login(e.alice.Email, alicePass)
	if got := c.cmd("MAIL FROM:<sales@example.test>"); got != notMail {
		t.Fatalf("after removal: %q", got)
	}
	// Without aliases, the refusal names the member's address alone.
	c = dial(t, e.addr)
	c.login(e.bob.Email, bobPass)
	c.wantCmd("MAIL FROM:<sales@example.test>", "553 5.7.1 Sender address must be your own address <bob@other.test>\r\n")
}

// The rule itself: exact addresses in any ASCII case, tags of them (not
// empty ones), never a non-ASCII look-alike.
func TestAllowedSender(t *testing.T) {
	allowed := []string{"alice@example.test", "sales@example.test"}
	for _, c := range []struct {
		addr       string
		ok, tagged bool
	}{
		{"alice@example.test", true, false},
		{"ALICE@Example.TEST", true, false},
		{"sales@example.test", true, false},
		{"alice+x@example.test", true, true},
		{"Sales+EU.2@example.test", true, true},
		{"alice+@example.test", false, false},
		{"+alice@example.test", false, false},
		{"alice@example.test.evil", false, false},
		{"alice+x@other.test", false, false},
		{"bob+alice@example.test", false, false},
		{"\"alice\"@example.test", false, false},
		{"alice@example.te\u017ft", false, false},
		{"alice", false, false},
		{"", false, false},
	} {
		if ok, tagged := allowedSender(allowed, c.addr); ok != c.ok || tagged != c.tagged {
			t.Errorf("%q: %v %v, want %v %v", c.addr, ok, tagged, c.ok, c.tagged)
		}
	}
}
