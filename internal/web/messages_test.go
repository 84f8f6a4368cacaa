package web

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/internal/account"
)

const hostileName = `"><img src=x onerror=alert(1)> %s%d`

// TestMessagesInTheMembersLanguage: notifications are stored with their kind
// and parameters and the English text; the Messages page and the API render
// them in Japanese for a Japanese reader (times in the browser's zone), in
// English otherwise, with a hostile app name and user agent inert in both.
func TestMessagesInTheMembersLanguage(t *testing.T) {
	e := newEnv(t, false)
	m := e.member("hanako@old.example", "佐藤 花子")
	c := e.client()
	ua := `<script>alert(2)</script>`
	wantStatus(t, c.api("POST", "/api/v1/session", map[string]string{"email": m.Email, "password": testPassword}, "User-Agent", ua), 200)
	wantStatus(t, c.api("PUT", "/api/v1/me/settings", map[string]bool{"use_app_passwords": true}, "User-Agent", ua), 200)
	r := c.api("POST", "/api/v1/me/app-passwords", map[string]string{"name": hostileName}, "User-Agent", ua)
	wantStatus(t, r, 201)
	var created struct{ ID string }
	r.json(&created)
	wantStatus(t, c.api("DELETE", "/api/v1/me/app-passwords/"+created.ID, nil, "User-Agent", ua), 204)
	wantStatus(t, c.api("PUT", "/api/v1/me/password", map[string]any{"current": testPassword, "new": "another long password", "delete_app_passwords": true}), 204)
	paused := e.svc.PausedMessage(t.Context(), m, e.Now().Add(15*time.Minute), "198.51.100.7")
	if err := e.db.AddMessage(t.Context(), m.ID, account.Effects{Messages: []account.Message{paused, {Kind: "legacy", Subject: "An old message", Body: "Stored before parameters."}}}); err != nil {
		t.Fatal(err)
	}

	// The stored text stays English (it is also the INBOX mail).
	stored, err := e.db.Messages(t.Context(), m.ID)
	if err != nil || len(stored) != 6 {
		t.Fatalf("stored messages: %d, %v", len(stored), err)
	}
	if !strings.HasPrefix(stored[4].Subject, "A third-party app password was created: ") || stored[4].Params["app"] != hostileName ||
		stored[4].Params["ua"] != ua || stored[4].Params["via"] != "api" || stored[4].Kind != account.MsgAppPasswordCreated {
		t.Fatalf("stored created message: %+v", stored[4])
	}

	// API, Japanese.
	var list []struct {
		ID                        int64
		Kind, Lang, Subject, Body string
		Params                    map[string]string
		CreatedAt                 time.Time `json:"created_at"`
		Read                      bool
	}
	r = c.api("GET", "/api/v1/me/messages", nil, "Accept-Language", "ja-JP,ja;q=0.9,en;q=0.8")
	wantStatus(t, r, 200)
	r.json(&list)
	if len(list) != 6 {
		t.Fatalf("%d messages", len(list))
	}
	want := []struct{ kind, lang, subject, body string }{
		{"legacy", "en", "An old message", "Stored before parameters."},
		{account.MsgAccountPaused, "ja", "パスワードが推測されようとしている可能性があります", "最後は 198.51.100.7 から"},
		{account.MsgPasswordChanged, "ja", "パスワードが変更されました", "サードパーティアプリ用パスワードもすべて削除されました。"},
		{account.MsgAppPasswordDeleted, "ja", "サードパーティアプリ用パスワードが削除されました: " + hostileName, "「" + hostileName + "」が削除されました"},
		{account.MsgAppPasswordCreated, "ja", "サードパーティアプリ用パスワードが作成されました: " + hostileName, "アプリ名: " + hostileName + "\n日時: 2025年3月1日 09:00 UTC\nIPアドレス: 127.0.0.1\nブラウザ: " + ua + "\nAPI から行われました。"},
		{account.MsgSettingChanged, "ja", "「サードパーティアプリ用パスワードを使用」がオンになりました", "https://mail.example.com/security/password"},
	}
	for i, w := range want {
		g := list[i]
		if g.Kind != w.kind || g.Lang != w.lang || g.Subject != w.subject || !strings.Contains(g.Body, w.body) {
			t.Errorf("API ja message %d: %+v\nwant %+v", i, g, w)
		}
	}
	if list[4].Params["app"] != hostileName || !strings.Contains(list[4].Body, "https://mail.example.com/security/app-passwords") {
		t.Errorf("created message params/links: %+v", list[4])
	}
	if strings.Contains(string(r.body), "<img") || strings.Contains(string(r.body), "<script") {
		t.Error("the JSON carries raw markup (encoding/json escapes < and >)")
	}

	// API, English: the stored text.
	r = c.api("GET", "/api/v1/me/messages", nil)
	r.json(&list)
	if list[4].Lang != "en" || list[4].Subject != stored[4].Subject || list[4].Body != stored[4].Body || !strings.Contains(list[4].Body, "App name: "+hostileName) {
		t.Errorf("API en created message: %+v", list[4])
	}

	// The page, Japanese, in Tokyo time: escaped, never markup.
	c.jar.SetCookies(mustURL(e.ts.URL), []*http.Cookie{{Name: "postern_tz", Value: "Asia/Tokyo", Path: "/"}})
	req, _ := http.NewRequest("GET", e.ts.URL+"/messages", nil)
	req.Header.Set("Accept-Language", "ja")
	r = c.do(req)
	wantStatus(t, r, 200)
	has(t, r, `<html lang="ja">`, "サードパーティアプリ用パスワードが作成されました: &#34;&gt;&lt;img src=x onerror=alert(1)&gt; %s%d",
		"日時: 2025年3月1日 18:00 JST", "ブラウザ: &lt;script&gt;alert(2)&lt;/script&gt;", "2025年3月1日 18:15 JST まで、サードパーティアプリからメインパスワードではログインできません",
		`lang="en"`, "An old message")
	for _, bad := range []string{"<img src=x", "<script>alert", "%!"} {
		if strings.Contains(string(r.body), bad) {
			t.Errorf("the Japanese page holds %q", bad)
		}
	}

	// The page, English.
	r = c.get("/messages")
	has(t, r, `<html lang="en">`, "A third-party app password was created: &#34;&gt;&lt;img src=x onerror=alert(1)&gt; %s%d")
	if strings.Contains(string(r.body), "<img src=x") || strings.Contains(string(r.body), "サードパーティ") {
		t.Error("the English page holds markup or Japanese")
	}
}

// TestLocalizeMessageBrowserAndLinks: the Japanese text names the browser
// from the whole User-Agent, and every message offers its actions as links
// to fixed paths of this site, whatever the stored links say.
func TestLocalizeMessageBrowserAndLinks(t *testing.T) {
	m := account.Message{Kind: account.MsgAppPasswordCreated, Subject: "s", Body: "b",
		Params: map[string]string{"app": "Thunderbird", "time": "2025-03-01T09:00:00Z", "ua": uaFirefox,
			"link_apps": "https://evil.example/x", "link_password": "javascript:alert(1)"}}
	v := localizeMessage("ja", time.UTC, m)
	if !strings.Contains(v.Body, "ブラウザ: Firefox（Linux）\n") {
		t.Errorf("ja body: %s", v.Body)
	}
	if len(v.Links) != 2 || v.Links[0].Href != "/security/app-passwords" || v.Links[1].Href != "/security/password" ||
		v.Links[1].Label != "パスワードを変更" {
		t.Errorf("links: %+v", v.Links)
	}
	if en := localizeMessage("en", time.UTC, m); en.Body != "b" || en.Links[0].Label != "Manage third-party app passwords" {
		t.Errorf("en: %+v", en)
	}
}
