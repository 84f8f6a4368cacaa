package web

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

const (
	uaFirefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
	uaIPhone  = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)

// signinFormUA signs c in through the form with a User-Agent of its own.
func (c *client) signinFormUA(email, pw, ua string) {
	c.t.Helper()
	req, _ := http.NewRequest("GET", c.e.ts.URL+"/signin", nil)
	req.Header.Set("User-Agent", ua)
	tok := csrfRE.FindSubmatch(c.do(req).body)[1]
	form := url.Values{"csrf": {string(tok)}, "email": {email}, "password": {pw}, "next": {"/security"}}
	req, _ = http.NewRequest("POST", c.e.ts.URL+"/signin", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", ua)
	wantStatus(c.t, c.do(req), 303)
}

func (c *client) sessionCookie() string {
	for _, k := range c.jar.Cookies(mustURL(c.e.ts.URL)) {
		if k.Name == sessionCookie {
			return k.Value
		}
	}
	return ""
}

type sessionItem struct {
	ID          string
	IP, Browser string
	UserAgent   string    `json:"user_agent"`
	CreatedAt   time.Time `json:"created_at"`
	LastSeenAt  time.Time `json:"last_seen_at"`
	Current     bool
}

func (c *client) sessions() []sessionItem {
	c.t.Helper()
	r := c.api("GET", "/api/v1/me/sessions", nil)
	wantStatus(c.t, r, 200)
	var out []sessionItem
	r.json(&out)
	return out
}

var hexID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// TestSessionsList: the Security page and the API list the member's web
// sessions (this one first, marked), named by public ids that are neither
// the cookie token nor its hash; one can be signed out, or all the others;
// another member's session cannot; expired ones are not listed.
func TestSessionsList(t *testing.T) {
	e := newEnv(t, false)
	e.member("bob@old.example", "Bob")
	e.member("eve@old.example", "Eve")
	ff, phone, api := e.client(), e.client(), e.client()
	ff.signinFormUA("bob@old.example", testPassword, uaFirefox)
	e.advance(2 * time.Minute)
	phone.signinFormUA("bob@old.example", testPassword, uaIPhone)
	e.advance(2 * time.Minute)
	wantStatus(t, api.api("POST", "/api/v1/session", map[string]string{"email": "bob@old.example", "password": testPassword}, "User-Agent", "curl/8.5.0"), 200)

	list := api.sessions()
	if len(list) != 3 || !list[0].Current || list[0].Browser != "curl" || list[1].Current || list[2].Current ||
		list[1].Browser != "Safari on iPhone" || list[2].Browser != "Firefox on Linux" || list[2].UserAgent != uaFirefox ||
		list[0].IP != "127.0.0.1" || !list[2].CreatedAt.Equal(time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)) {
		t.Fatalf("sessions: %+v", list)
	}
	// The ids are random public ids: no cookie token, no hash of one.
	for _, c := range []*client{ff, phone, api} {
		tok := c.sessionCookie()
		h := sha256.Sum256([]byte(tok))
		for _, s := range list {
			if !hexID.MatchString(s.ID) || s.ID == tok || s.ID == hex.EncodeToString(h[:]) || strings.Contains(s.ID, base64.RawURLEncoding.EncodeToString(h[:])[:16]) {
				t.Fatalf("session id %q is not a public id", s.ID)
			}
		}
	}
	ffID, phoneID, apiID := list[2].ID, list[1].ID, list[0].ID

	// The Security page: "Where you're signed in", this session first.
	r := ff.get("/security")
	has(t, r, "Where you’re signed in", "Firefox on Linux", "Safari on iPhone", "This session", "127.0.0.1",
		`action="/security/sessions/`+phoneID+`/signout"`, "Sign out all other sessions")
	body := string(r.body)
	if strings.Index(body, "Firefox on Linux") > strings.Index(body, "Safari on iPhone") {
		t.Error("this session is not listed first")
	}
	for _, c := range []*client{ff, phone, api} {
		tok := c.sessionCookie()
		h := sha256.Sum256([]byte(tok))
		if strings.Contains(body, tok) || strings.Contains(body, hex.EncodeToString(h[:])) {
			t.Fatal("the page holds a session token or its hash")
		}
	}
	req, _ := http.NewRequest("GET", e.ts.URL+"/security", nil)
	req.Header.Set("Accept-Language", "ja")
	has(t, ff.do(req), "ログイン中のセッション", "Firefox（Linux）", "このセッション", "ほかのセッションをすべてサインアウト")

	// Another member can neither list nor sign out bob's sessions.
	eve := e.client()
	wantStatus(t, eve.signinAPI("eve@old.example", testPassword), 200)
	if l := eve.sessions(); len(l) != 1 || !l[0].Current {
		t.Fatalf("eve's sessions: %+v", l)
	}
	wantCode(t, eve.api("DELETE", "/api/v1/me/sessions/"+phoneID, nil), 404, "not_found")
	tok := eve.csrf("/security")
	wantStatus(t, eve.post("/security/sessions/"+phoneID+"/signout", url.Values{"csrf": {tok}}), 404)
	wantStatus(t, phone.get("/security"), 200)

	// Sign out the phone from the Firefox page: CSRF token required.
	fftok := ff.csrf("/security")
	wantStatus(t, ff.post("/security/sessions/"+phoneID+"/signout", url.Values{}), 403)
	r = ff.post("/security/sessions/"+phoneID+"/signout", url.Values{"csrf": {fftok}})
	wantStatus(t, r, 303)
	if loc := r.Header.Get("Location"); !strings.HasPrefix(loc, "/security?done=session") {
		t.Fatalf("redirect to %q", loc)
	}
	has(t, ff.get("/security?done=session"), "The session was signed out.")
	if r := phone.get("/security"); r.StatusCode != 303 || !strings.HasPrefix(r.Header.Get("Location"), "/signin") {
		t.Fatalf("the signed-out phone still gets in: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	wantStatus(t, ff.post("/security/sessions/"+phoneID+"/signout", url.Values{"csrf": {fftok}}), 404)

	// The API signs out its own session: the cookie goes, the next call is 401.
	wantStatus(t, api.api("DELETE", "/api/v1/me/sessions/"+apiID, nil), 204)
	wantCode(t, api.api("GET", "/api/v1/me", nil), 401, "unauthorized")

	// "Sign out all other sessions", on the page and in the API.
	phone.signinFormUA("bob@old.example", testPassword, uaIPhone)
	wantStatus(t, api.signinAPI("bob@old.example", testPassword), 200)
	if n := len(ff.sessions()); n != 3 {
		t.Fatalf("%d sessions before signing out the others", n)
	}
	wantStatus(t, ff.post("/security/sessions/others/signout", url.Values{"csrf": {fftok}}), 303)
	if l := ff.sessions(); len(l) != 1 || l[0].ID != ffID || !l[0].Current {
		t.Fatalf("after signing out the others: %+v", l)
	}
	wantCode(t, api.api("GET", "/api/v1/me", nil), 401, "unauthorized")
	wantStatus(t, api.signinAPI("bob@old.example", testPassword), 200)
	r = ff.api("DELETE", "/api/v1/me/sessions", nil)
	wantStatus(t, r, 200)
	if !strings.Contains(string(r.body), `"signed_out":1`) {
		t.Fatalf("DELETE /api/v1/me/sessions: %s", r.body)
	}
	if has := strings.Contains(string(eve.api("GET", "/api/v1/me", nil).body), "eve@old.example"); !has {
		t.Fatal("signing out bob's other sessions ended eve's")
	}

	// An expired session is not listed (the pruning deletes it later).
	wantStatus(t, api.signinAPI("bob@old.example", testPassword), 200)
	e.advance(40 * time.Minute)
	ff.get("/security") // ff stays active
	e.advance(30 * time.Minute)
	if l := ff.sessions(); len(l) != 1 || l[0].ID != ffID {
		t.Fatalf("an idle-expired session is listed: %+v", l)
	}
}

func TestDescribeBrowser(t *testing.T) {
	for _, c := range []struct{ ua, en, ja string }{
		{uaFirefox, "Firefox on Linux", "Firefox（Linux）"},
		{uaIPhone, "Safari on iPhone", "Safari（iPhone）"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0", "Edge on Windows", "Edge（Windows）"},
		{"Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36", "Chrome on Android", "Chrome（Android）"},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15", "Safari on macOS", "Safari（macOS）"},
		{"curl/8.5.0", "curl", "curl"},
		{"", "Unknown browser", "不明なブラウザ"},
		{`<script>alert(1)</script>`, "Unknown browser", "不明なブラウザ"},
	} {
		if got := describeBrowser("en", c.ua); got != c.en {
			t.Errorf("en %q: %q, want %q", c.ua, got, c.en)
		}
		if got := describeBrowser("ja", c.ua); got != c.ja {
			t.Errorf("ja %q: %q, want %q", c.ua, got, c.ja)
		}
	}
}
