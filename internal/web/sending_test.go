package web

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/internal/account"
)

// The app password list, page and API alike, says how many messages each
// app password sent in the last 24 hours: its own sends, not the main
// password's nor another member's.
func TestAppPasswordSent24h(t *testing.T) {
	e := newEnv(t, false)
	alice := e.member("alice@new.example", "Alice")
	bob := e.member("bob@new.example", "Bob")
	c := e.client()
	wantStatus(t, c.signinAPI(alice.Email, testPassword), 200)
	var ids []string
	for _, name := range []string{"Phone", "Laptop", "Tablet"} {
		var created struct{ ID string }
		r := c.api("POST", "/api/v1/me/app-passwords", map[string]string{"name": name})
		wantStatus(t, r, 201)
		r.json(&created)
		ids = append(ids, created.ID)
		e.advance(time.Second) // the list is oldest first
	}
	now := e.Now()
	for _, s := range []struct {
		m   account.Member
		app string
		ago time.Duration
	}{
		{alice, ids[0], time.Minute}, {alice, ids[0], 2 * time.Hour}, {alice, ids[0], 24*time.Hour - time.Second},
		{alice, ids[0], 24 * time.Hour}, {alice, ids[1], time.Minute}, {alice, "", time.Minute}, {bob, ids[2], time.Minute},
	} {
		if err := e.db.RecordSend(t.Context(), s.m.ID, s.app, 5, now.Add(-s.ago)); err != nil {
			t.Fatal(err)
		}
	}

	var list []appPasswordJSON
	c.api("GET", "/api/v1/me/app-passwords", nil).json(&list)
	if len(list) != 3 || list[0].Sent24h != 3 || list[1].Sent24h != 1 || list[2].Sent24h != 0 {
		t.Fatalf("list: %+v", list)
	}
	if raw := string(c.api("GET", "/api/v1/me/app-passwords", nil).body); !strings.Contains(raw, `"sent_24h":3`) || !strings.Contains(raw, `"sent_24h":0`) {
		t.Fatalf("list JSON: %s", raw)
	}

	p := e.client()
	wantStatus(t, p.signinForm(alice.Email, testPassword), 303)
	has(t, p.get("/security/app-passwords"), "Sent in the last 24 hours", `<dd class="sent">3 messages</dd>`,
		`<dd class="sent">1 message</dd>`, `<dd class="sent">0 messages</dd>`)
	req, _ := http.NewRequest("GET", e.ts.URL+"/security/app-passwords", nil)
	req.Header.Set("Accept-Language", "ja")
	has(t, p.do(req), "過去24時間の送信", `<dd class="sent">3 通</dd>`, `<dd class="sent">1 通</dd>`)
}

// The message of a cap reached renders in Japanese from its parameters,
// for an app password and for the main password, with the app password
// page and the password page as its links; a hostile app name stays text.
func TestSendLimitedMessageJA(t *testing.T) {
	e := newEnv(t, false)
	m := e.member("hanako@new.example", "佐藤 花子")
	ctx := t.Context()
	if _, err := e.svc.SendLimited(ctx, m, account.Credential{AppPasswordID: "ab12", AppName: hostileName},
		account.SendLimit{AppPassword: true, Recipients: true, Max: 500}); err != nil {
		t.Fatal(err)
	}
	e.advance(time.Minute)
	if _, err := e.svc.SendLimited(ctx, m, account.Credential{}, account.SendLimit{Day: true, Max: 1000}); err != nil {
		t.Fatal(err)
	}
	c := e.client()
	wantStatus(t, c.signinAPI(m.Email, testPassword), 200)
	var list []messageJSON
	r := c.api("GET", "/api/v1/me/messages", nil, "Accept-Language", "ja")
	wantStatus(t, r, 200)
	r.json(&list)
	if len(list) != 2 {
		t.Fatalf("%d messages", len(list))
	}
	main, app := list[0], list[1]
	if main.Kind != account.MsgSendLimited || main.Lang != "ja" || main.Subject != "アカウントが送信の上限に達しました" ||
		!strings.Contains(main.Body, "アカウント全体（すべてのアプリの合計）で1日に 1000 通まで") ||
		!strings.Contains(main.Body, "パスワードを変更してください: https://mail.example.com/security/password") {
		t.Errorf("main password, ja: %+v", main)
	}
	if app.Lang != "ja" || app.Subject != "サードパーティアプリ用パスワードが送信の上限に達しました: "+hostileName ||
		!strings.Contains(app.Body, "「"+hostileName+"」") ||
		!strings.Contains(app.Body, "1つのサードパーティアプリ用パスワードにつき宛先を1時間に 500 件まで") ||
		!strings.Contains(app.Body, "サードパーティアプリ用パスワードを削除: https://mail.example.com/security/app-passwords") {
		t.Errorf("app password, ja: %+v", app)
	}
	r = c.api("GET", "/api/v1/me/messages", nil)
	r.json(&list)
	if list[1].Lang != "en" || !strings.Contains(list[1].Body, "at most 500 recipients an hour with one third-party app password") {
		t.Errorf("app password, en: %+v", list[1])
	}

	p := e.client()
	wantStatus(t, p.signinForm(m.Email, testPassword), 303)
	page := p.get("/messages")
	has(t, page, `href="/security/app-passwords"`, "Manage third-party app passwords", "Sending limit reached by the third-party app password")
	if strings.Contains(string(page.body), "<img src=x") {
		t.Error("the app name is markup on the page")
	}
}
