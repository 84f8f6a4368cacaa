package storetest

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/internal/account"
)

// testSendBudget: the service counts what a login sent from the send log,
// the app password's caps apply to app-password logins only, and no cap
// reads nothing.
func testSendBudget(t *testing.T, e *Env) {
	ctx := context.Background()
	alice := e.Enforced(t, "alice")
	p, _ := e.Create(t, alice, "Thunderbird")
	now := e.Now()
	for _, r := range []struct {
		app   string
		rcpts int
		ago   time.Duration
	}{{p.ID, 3, time.Minute}, {p.ID, 2, 2 * time.Hour}, {"", 4, 30 * time.Minute}, {"other", 1, 23 * time.Hour}} {
		if err := e.DB.RecordSend(ctx, alice.ID, r.app, r.rcpts, now.Add(-r.ago)); err != nil {
			t.Fatal(err)
		}
	}
	app := account.Credential{AppPasswordID: p.ID, AppName: p.Name}
	b, err := e.Svc.SendBudget(ctx, alice, app)
	// The clock moved a second since now: every row is still in its window.
	want := account.SendCounts{
		Member:      account.SendUsage{Hour: account.SendTally{Messages: 2, Recipients: 7}, Day: account.SendTally{Messages: 4, Recipients: 10}},
		AppPassword: account.SendUsage{Hour: account.SendTally{Messages: 1, Recipients: 3}, Day: account.SendTally{Messages: 2, Recipients: 5}},
	}
	if err != nil || !b.AppPassword || b.Sent != want || b.Limits != account.DefaultSendLimits {
		t.Fatalf("app password budget %+v, %v; want sent %+v", b, err, want)
	}
	b, err = e.Svc.SendBudget(ctx, alice, account.Credential{})
	if err != nil || b.AppPassword || b.Sent.AppPassword != (account.SendUsage{}) || b.Sent.Member != want.Member ||
		b.Limits.AppPassword != (account.SendCaps{}) || b.Limits.Member != account.DefaultSendLimits.Member {
		t.Fatalf("main password budget %+v, %v", b, err)
	}
	e.Svc.Config.SendLimits = &account.SendLimits{}
	if b, err := e.Svc.SendBudget(ctx, alice, app); err != nil || b.Sent != (account.SendCounts{}) {
		t.Fatalf("without caps: %+v, %v", b, err)
	}
}

// testSendLimited: the member hears of a cap once a day per app password
// (or main password), whoever hits it how often and from how many nodes,
// with the app password named, its page linked and the advice to delete
// it; on the web as in the INBOX.
func testSendLimited(t *testing.T, e *Env) {
	ctx := context.Background()
	alice, bob := e.Enforced(t, "alice"), e.Enforced(t, "bob")
	p, _ := e.Create(t, alice, "Phone <script>")
	q, _ := e.Create(t, alice, "Laptop")
	before := len(e.Messages(t, alice))
	app := account.Credential{AppPasswordID: p.ID, AppName: p.Name}
	hour := account.SendLimit{AppPassword: true, Max: 100}

	// 20 sessions hit the cap at once: one message.
	var wg sync.WaitGroup
	var mu sync.Mutex
	told := 0
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := e.Svc.SendLimited(ctx, alice, app, hour)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				told++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	msgs := e.Messages(t, alice)
	if told != 1 || len(msgs) != before+1 {
		t.Fatalf("told %d times, %d new messages; want 1", told, len(msgs)-before)
	}
	m := msgs[0]
	if m.Kind != account.MsgSendLimited || m.Subject != "Sending limit reached by the third-party app password: "+p.Name ||
		m.Params["app"] != p.Name || m.Params["app_id"] != p.ID || m.Params["scope"] != "app_password" ||
		m.Params["what"] != "messages" || m.Params["window"] != "hour" || m.Params["max"] != "100" {
		t.Fatalf("message %+v", m)
	}
	for _, s := range []string{alice.Email, `"` + p.Name + `"`, "at most 100 messages an hour with one third-party app password",
		"If this was not you", "Delete it now", "https://mail.example.test/security/app-passwords", "https://mail.example.test/security/password"} {
		if !strings.Contains(m.Body, s) {
			t.Errorf("body lacks %q:\n%s", s, m.Body)
		}
	}

	// Another cap of the same app password, the same day: nothing more.
	if ok, err := e.Svc.SendLimited(ctx, alice, app, account.SendLimit{Recipients: true, Day: true, Max: 3000}); ok || err != nil {
		t.Fatalf("second notice of the day: %v %v", ok, err)
	}
	// Another app password, the main password and another member: one each.
	for _, c := range []struct {
		m    account.Member
		cred account.Credential
	}{{alice, account.Credential{AppPasswordID: q.ID, AppName: q.Name}}, {alice, account.Credential{}}, {bob, account.Credential{}}} {
		if ok, err := e.Svc.SendLimited(ctx, c.m, c.cred, account.SendLimit{Day: true, Recipients: true, Max: 3000}); !ok || err != nil {
			t.Fatalf("%s %q: told %v, %v", c.m.Email, c.cred.AppName, ok, err)
		}
	}
	msgs = e.Messages(t, alice)
	if len(msgs) != before+3 {
		t.Fatalf("%d new messages, want 3", len(msgs)-before)
	}
	main := msgs[0]
	if main.Subject != "Sending limit reached by your account" || main.Params["scope"] != "member" || main.Params["app"] != "" ||
		!strings.Contains(main.Body, "at most 3000 recipients a day from your account, all apps together") ||
		!strings.Contains(main.Body, "Change your password now: https://mail.example.test/security/password") ||
		strings.Contains(main.Body, "Delete the app password") {
		t.Fatalf("main-password message %+v", main)
	}
	if !strings.Contains(msgs[1].Subject, "Laptop") {
		t.Fatalf("second app password's message %+v", msgs[1])
	}

	// A day later the same app password is named again.
	e.mu.Lock()
	e.now = e.now.Add(account.SendNoticeEvery)
	e.mu.Unlock()
	if ok, err := e.Svc.SendLimited(ctx, alice, app, hour); !ok || err != nil {
		t.Fatalf("a day later: told %v, %v", ok, err)
	}
	if ok, err := e.Svc.SendLimited(ctx, alice, app, hour); ok || err != nil {
		t.Fatalf("again a day later: told %v, %v", ok, err)
	}
	if n := len(e.Messages(t, alice)); n != before+4 {
		t.Fatalf("%d new messages, want 4", n-before)
	}
}

// testSenders: a member sends as its own address and those of the aliases
// it receives, in any domain here; not as an alias it left, nor as one of
// which it is not a target.
func testSenders(t *testing.T, e *Env) {
	ctx := context.Background()
	e.Domain(t, "other.test", EnforcedDate)
	alice, bob := e.Enforced(t, "alice"), e.Enforced(t, "bob")
	for _, a := range []struct {
		address string
		targets []string
	}{
		{"sales@enforced.test", []string{bob.Email, alice.Email}},
		{"info@other.test", []string{alice.Email}},
		{"support@enforced.test", []string{bob.Email}},
		{"old@enforced.test", []string{alice.Email, bob.Email}},
	} {
		if _, _, err := e.Svc.AddAlias(ctx, a.address, a.targets, Web); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.Svc.RemoveAliasTargets(ctx, "old@enforced.test", []string{alice.Email}, Web); err != nil {
		t.Fatal(err)
	}
	got, err := e.Svc.Senders(ctx, alice)
	want := []string{alice.Email, "info@other.test", "sales@enforced.test"}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("alice's senders %v, %v; want %v", got, err, want)
	}
	carol := e.Enforced(t, "carol")
	if got, err := e.Svc.Senders(ctx, carol); err != nil || !slices.Equal(got, []string{carol.Email}) {
		t.Fatalf("carol's senders %v, %v", got, err)
	}
}

// testSent24h: the app password list says how many messages each sent in
// the last 24 hours, from one query, and a deleted app password's sends
// still count under the member's caps.
func testSent24h(t *testing.T, e *Env) {
	ctx := context.Background()
	alice, bob := e.Enforced(t, "alice"), e.Enforced(t, "bob")
	p, _ := e.Create(t, alice, "Phone")
	q, _ := e.Create(t, alice, "Laptop")
	r, _ := e.Create(t, bob, "Bob's phone")
	now := e.Now()
	for _, s := range []struct {
		m   account.Member
		app string
		ago time.Duration
	}{
		{alice, p.ID, time.Minute}, {alice, p.ID, 23 * time.Hour}, {alice, p.ID, 25 * time.Hour},
		{alice, "", time.Minute}, {bob, r.ID, time.Minute}, {bob, p.ID, time.Minute},
	} {
		if err := e.DB.RecordSend(ctx, s.m.ID, s.app, 1, now.Add(-s.ago)); err != nil {
			t.Fatal(err)
		}
	}
	list, err := e.Svc.AppPasswords(ctx, alice)
	if err != nil || len(list) != 2 || list[0].ID != p.ID || list[0].Sent24h != 2 || list[1].ID != q.ID || list[1].Sent24h != 0 {
		t.Fatalf("alice's list %+v, %v", list, err)
	}
	if err := e.Svc.DeleteAppPassword(ctx, alice, p.ID, Web); err != nil {
		t.Fatal(err)
	}
	b, err := e.Svc.SendBudget(ctx, alice, account.Credential{AppPasswordID: q.ID})
	if err != nil || b.Sent.Member.Day.Messages != 3 || b.Sent.AppPassword.Day.Messages != 0 {
		t.Fatalf("after deleting the app password: %+v, %v", b, err)
	}
}
