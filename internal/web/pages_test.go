package web

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/internal/account"
)

func has(t *testing.T, r resp, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(string(r.body), s) {
			t.Fatalf("%s %s: no %q in:\n%s", r.Request.Method, r.Request.URL, s, r.body)
		}
	}
}

var passwordRE = regexp.MustCompile(`data-password="([A-Za-z0-9]{20})"`)

func TestSeedPathInPages(t *testing.T) {
	e := newEnv(t, false)
	e.member("bob@old.example", "Bob Builder")
	c := e.client()

	// Signed out: pages send to sign-in and back.
	r := c.get("/security/app-passwords")
	wantStatus(t, r, 303)
	if loc := r.Header.Get("Location"); loc != "/signin?next=%2Fsecurity%2Fapp-passwords" {
		t.Fatalf("redirect to %q", loc)
	}
	if r := c.signinForm("bob@old.example", "wrong"); r.StatusCode != 401 {
		t.Fatalf("wrong password: %d", r.StatusCode)
	}
	r = c.signinForm("bob@old.example", testPassword)
	wantStatus(t, r, 303)

	// Header: the profile picture's menu.
	r = c.get("/security")
	has(t, r, `aria-expanded="false"`, `aria-controls="account-menu"`, ">BB</text>", "Bob Builder", "bob@old.example",
		`href="/messages"`, `action="/signout"`, "Use a third-party app password", `role="switch" aria-checked="false"`,
		"Create a third-party app password", "Change password")

	// The app-password page says why creating is not possible yet.
	r = c.get("/security/app-passwords")
	has(t, r, "disabled", "Turn on “Use a third-party app password”")

	// Turn the setting on: a confirmation first (without JavaScript, a page).
	tok := csrfRE.FindStringSubmatch(string(r.body))[1]
	r = c.post("/security/setting", url.Values{"csrf": {tok}, "on": {"1"}})
	wantStatus(t, r, 200)
	has(t, r, "may be logged out", `name="confirmed" value="1"`)
	r = c.post("/security/setting", url.Values{"csrf": {tok}, "on": {"1"}, "confirmed": {"1"}})
	wantStatus(t, r, 303)
	has(t, c.get("/security?done=setting.on"), `aria-checked="true"`, "is on.")

	// Create a password named Thunderbird.
	r = c.get("/security/app-passwords")
	has(t, r, `href="/security/app-passwords/new"`, "0 of 5 created")
	r = c.get("/security/app-passwords/new")
	has(t, r, `<label for="name">App name</label>`, "Create password")
	r = c.created(c.post("/security/app-passwords", url.Values{"csrf": {tok}, "name": {"Thunderbird"}}))
	m := passwordRE.FindStringSubmatch(string(r.body))
	if m == nil {
		t.Fatalf("no password shown:\n%s", r.body)
	}
	plain := m[1]
	has(t, r, account.GroupAppPassword(plain), "Copy", "password field of Thunderbird", "bob@old.example",
		"mail.example.com", "993", "465", "SSL/TLS", "STARTTLS", "https://mail.example.com/dav/", "shown only once")
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Fatal("the page with the password may be cached")
	}
	if _, _, err := e.svc.Verify(t.Context(), "bob@old.example", account.GroupAppPassword(plain)); err != nil {
		t.Fatalf("the shown password does not log in: %v", err)
	}

	// The Apple profile (its refusals: pages_profile_test.go).
	pid := regexp.MustCompile(`name="id" value="([^"]+)"`).FindStringSubmatch(string(r.body))[1]
	p := c.post("/security/app-passwords/profile", url.Values{"csrf": {tok}, "id": {pid}, "password": {plain}})
	wantStatus(t, p, 200)
	if p.Header.Get("Content-Type") != "application/x-apple-aspen-config" ||
		!strings.Contains(p.Header.Get("Content-Disposition"), `attachment; filename="postern-bob-old.example.mobileconfig"`) {
		t.Fatalf("profile headers %v", p.Header)
	}
	has(t, p, "com.apple.mail.managed", "com.apple.caldav.account", "com.apple.carddav.account",
		"<string>"+plain+"</string>", "<key>IncomingMailServerPortNumber</key>", "<integer>993</integer>")

	// Thunderbird's autoconfig: the settings, no secret.
	ac := e.client().get("/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=bob@old.example")
	wantStatus(t, ac, 200)
	has(t, ac, `<emailProvider id="old.example">`, "<hostname>mail.example.com</hostname>", "<port>993</port>",
		"<socketType>SSL</socketType>", "%EMAILADDRESS%", `<calendar type="caldav">`)
	if strings.Contains(string(ac.body), plain) {
		t.Fatal("autoconfig holds a password")
	}

	// The message about it, unread, then read.
	r = c.get("/security")
	has(t, r, `class="badge-dot" aria-hidden="true">2</span>`) // setting on + created
	r = c.get("/messages")
	has(t, r, "A third-party app password was created: Thunderbird", `class="message unread"`, "If you did not create it yourself")
	if strings.Index(string(r.body), "created: Thunderbird") > strings.Index(string(r.body), "was turned on") {
		t.Fatal("messages are not newest first")
	}
	r = c.get("/messages")
	if strings.Contains(string(r.body), `class="message unread"`) {
		t.Fatal("viewing did not mark the messages read")
	}

	// Delete it, after a confirmation.
	var id string
	e.db.SQL.QueryRow(`SELECT id FROM app_passwords`).Scan(&id)
	r = c.post("/security/app-passwords/"+id+"/delete", url.Values{"csrf": {tok}})
	wantStatus(t, r, 200)
	has(t, r, "Delete the third-party app password “Thunderbird”?", "signed out at once")
	r = c.post("/security/app-passwords/"+id+"/delete", url.Values{"csrf": {tok}, "confirmed": {"1"}})
	wantStatus(t, r, 303)
	has(t, c.get("/security/app-passwords?done=deleted"), "The third-party app password was deleted.", "You have no third-party app passwords yet.")
	if _, _, err := e.svc.Verify(t.Context(), "bob@old.example", plain); err == nil {
		t.Fatal("the deleted password still logs in")
	}

	// Sign out.
	wantStatus(t, c.post("/signout", url.Values{"csrf": {tok}}), 303)
	wantStatus(t, c.get("/security"), 303)
}

func TestPagesReauthReturnsToTheAction(t *testing.T) {
	e := newEnv(t, false)
	e.member("alice@new.example", "Alice")
	c := e.client()
	wantStatus(t, c.signinForm("alice@new.example", testPassword), 303)
	tok := c.csrf("/security")
	e.advance(11 * time.Minute)

	// Opening the form asks for the password first, then comes back.
	r := c.get("/security/app-passwords/new")
	has(t, r, "Confirm it’s you", `action="/reauth"`, `name="next" value="/security/app-passwords/new"`)
	r = c.post("/reauth", url.Values{"csrf": {tok}, "next": {"/security/app-passwords/new"}, "reauth_password": {"nope"}})
	wantStatus(t, r, 403)
	has(t, r, "The password is not correct.")
	r = c.post("/reauth", url.Values{"csrf": {tok}, "next": {"/security/app-passwords/new"}, "reauth_password": {testPassword}})
	wantStatus(t, r, 303)
	if r.Header.Get("Location") != "/security/app-passwords/new" {
		t.Fatalf("reauth went to %q", r.Header.Get("Location"))
	}

	// A form left open too long: the POST asks, carrying the name along.
	e.advance(11 * time.Minute)
	r = c.post("/security/app-passwords", url.Values{"csrf": {tok}, "name": {"Phone"}})
	wantStatus(t, r, 200)
	has(t, r, `action="/security/app-passwords"`, `name="name" value="Phone"`, `name="reauth_password"`)
	r = c.created(c.post("/security/app-passwords", url.Values{"csrf": {tok}, "name": {"Phone"}, "reauth_password": {testPassword}}))
	has(t, r, "Your third-party app password for Phone")
}

func TestPagesLimitAndEnforced(t *testing.T) {
	e := newEnv(t, false)
	m := e.member("alice@new.example", "Alice")
	for i := 0; i < 5; i++ {
		e.advance(time.Second)
		if _, _, err := e.svc.CreateAppPassword(t.Context(), m, "App "+string(rune('A'+i)), account.Actor{Via: "cli"}); err != nil {
			t.Fatal(err)
		}
	}
	c := e.client()
	wantStatus(t, c.signinForm("alice@new.example", testPassword), 303)
	r := c.get("/security/app-passwords")
	has(t, r, `<button type="button" class="button primary" disabled aria-describedby="create-reason">`, "5 of 5 created",
		"You have 5 third-party app passwords, the most you can have.")
	r = c.get("/security")
	has(t, r, "cannot be turned off", "October 13, 2022", "On, and cannot be changed")
	if strings.Contains(string(r.body), `role="switch"`) {
		t.Fatal("enforced domain shows a switch")
	}
	tok := c.csrf("/security")
	wantStatus(t, c.post("/security/setting", url.Values{"csrf": {tok}, "on": {"0"}, "confirmed": {"1"}}), 409)
	r = c.post("/security/app-passwords", url.Values{"csrf": {tok}, "name": {"Sixth"}})
	wantStatus(t, r, 409)
	has(t, r, "Delete one")
}

func TestPagesChangePassword(t *testing.T) {
	e := newEnv(t, false)
	m := e.member("alice@new.example", "Alice")
	if _, _, err := e.svc.CreateAppPassword(t.Context(), m, "Laptop", account.Actor{Via: "cli"}); err != nil {
		t.Fatal(err)
	}
	c, other := e.client(), e.client()
	wantStatus(t, c.signinForm("alice@new.example", testPassword), 303)
	wantStatus(t, other.signinForm("alice@new.example", testPassword), 303)
	r := c.get("/security/password")
	has(t, r, "Also delete all my third-party app passwords", `autocomplete="new-password"`)
	tok := csrfRE.FindStringSubmatch(string(r.body))[1]
	form := url.Values{"csrf": {tok}, "current": {testPassword}, "new": {"a new long passphrase"}, "confirm": {"a new long passphras"}}
	wantStatus(t, c.post("/security/password", form), 400)
	form.Set("confirm", "a new long passphrase")
	form.Set("current", "wrong")
	wantStatus(t, c.post("/security/password", form), 403)
	form.Set("current", testPassword)
	form.Set("delete_app_passwords", "1")
	r = c.post("/security/password", form)
	wantStatus(t, r, 303)
	has(t, c.get("/security?done=password"), "Your password was changed.")
	wantStatus(t, other.get("/security"), 303) // signed out
	list, _ := e.svc.AppPasswords(t.Context(), m)
	if len(list) != 0 {
		t.Fatalf("app passwords kept: %v", list)
	}
}

func TestJapaneseAndTimeZone(t *testing.T) {
	e := newEnv(t, false)
	e.member("taro@new.example", "山田 太郎")
	c := e.client()
	wantStatus(t, c.signinForm("taro@new.example", testPassword), 303)
	req, _ := http.NewRequest("GET", e.ts.URL+"/security", nil)
	req.Header.Set("Accept-Language", "ja-JP,ja;q=0.9,en;q=0.5")
	r := c.do(req)
	has(t, r, `<html lang="ja">`, "サードパーティアプリ用パスワードを使用", ">山</text>", "セキュリティ", "時刻は UTC で表示しています。")

	// The language link sets a cookie that beats Accept-Language.
	r = c.get("/lang/en?next=/security")
	wantStatus(t, r, 303)
	req, _ = http.NewRequest("GET", e.ts.URL+"/security", nil)
	req.Header.Set("Accept-Language", "ja")
	has(t, c.do(req), `<html lang="en">`)
	if loc := c.get("/lang/ja?next=//evil.example").Header.Get("Location"); loc != "/" {
		t.Fatalf("open redirect to %q", loc)
	}

	// Dates in the browser's time zone.
	e.advance(time.Second)
	wantStatus(t, c.api("POST", "/api/v1/me/app-passwords", map[string]string{"name": "iPhone"}), 201)
	u := mustURL(e.ts.URL)
	c.jar.SetCookies(u, []*http.Cookie{{Name: "postern_tz", Value: "Asia/Tokyo", Path: "/"}})
	r = c.get("/security/app-passwords")
	has(t, r, "2025年3月1日 18:00 JST", "時刻は Asia/Tokyo で表示しています。", "有効")
	// The first zone seen became the member's: the cookie no longer decides,
	// and a bad one is ignored.
	c.jar.SetCookies(u, []*http.Cookie{{Name: "postern_tz", Value: "../../etc/passwd", Path: "/"}})
	has(t, c.get("/security/app-passwords"), "2025年3月1日 18:00 JST")
	has(t, e.client().get("/signin"), "Times are shown in UTC.")
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func TestCatalogComplete(t *testing.T) {
	for key := range catalog["en"] {
		if _, ok := catalog["ja"][key]; !ok {
			t.Errorf("ja lacks %q", key)
		}
	}
	for key := range catalog["ja"] {
		if _, ok := catalog["en"][key]; !ok && !strings.HasPrefix(key, "err.") {
			t.Errorf("en lacks %q", key)
		}
	}
	// Every key the templates use exists.
	re := regexp.MustCompile(`\{\{t \$?\.L "([^"]+)"`)
	entries, _ := assets.ReadDir("templates")
	for _, f := range entries {
		b, _ := assets.ReadFile("templates/" + f.Name())
		for _, m := range re.FindAllSubmatch(b, -1) {
			if _, ok := catalog["en"][string(m[1])]; !ok {
				t.Errorf("%s uses unknown key %q", f.Name(), m[1])
			}
		}
	}
}
