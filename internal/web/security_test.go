package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestCrossSiteRequestsRefused(t *testing.T) {
	e := newEnv(t, false)
	e.member("bob@old.example", "")
	c := e.client()
	wantStatus(t, c.signinAPI("bob@old.example", testPassword), 200)

	// Fetch Metadata says another site sent it.
	wantCode(t, c.api("PUT", "/api/v1/me/settings", map[string]bool{"use_app_passwords": true}, "Sec-Fetch-Site", "cross-site"), 403, "cross_origin")
	// An old browser: only Origin.
	wantCode(t, c.api("PUT", "/api/v1/me/settings", map[string]bool{"use_app_passwords": true}, "Origin", "https://evil.example"), 403, "cross_origin")
	tok := c.csrf("/security")
	r := c.post("/security/setting", url.Values{"csrf": {tok}, "on": {"1"}, "confirmed": {"1"}}, "Sec-Fetch-Site", "cross-site")
	wantStatus(t, r, 403)
	// A cookie-bearing form POST with no Origin header and no token.
	r = c.post("/security/setting", url.Values{"on": {"1"}, "confirmed": {"1"}})
	wantStatus(t, r, 403)
	r = c.post("/security/setting", url.Values{"csrf": {"forged"}, "on": {"1"}, "confirmed": {"1"}})
	wantStatus(t, r, 403)
	// Sign-in from another site (login CSRF).
	r = e.client().post("/signin", url.Values{"email": {"bob@old.example"}, "password": {testPassword}}, "Origin", "https://evil.example")
	wantStatus(t, r, 403)
	r = e.client().post("/signin", url.Values{"email": {"bob@old.example"}, "password": {testPassword}})
	wantStatus(t, r, 403) // no pre-session token

	var me meJSON
	c.api("GET", "/api/v1/me", nil).json(&me)
	if me.UseAppPasswords {
		t.Fatal("a cross-site request changed the setting")
	}
	// Same-origin requests from a browser pass.
	wantStatus(t, c.api("PUT", "/api/v1/me/settings", map[string]bool{"use_app_passwords": true}, "Sec-Fetch-Site", "same-origin", "Origin", e.ts.URL), 200)
}

func findCookie(res *http.Response, name string) *http.Cookie {
	for _, c := range res.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func TestCookieFlags(t *testing.T) {
	for _, secure := range []bool{false, true} {
		e := newEnv(t, secure)
		e.member("alice@new.example", "")
		c := e.client()
		r := c.signinAPI("alice@new.example", testPassword)
		wantStatus(t, r, 200)
		name := "postern_session"
		if secure {
			name = "__Host-postern_session"
		}
		ck := findCookie(r.Response, name)
		if ck == nil {
			t.Fatalf("secure=%v: no %s cookie in %v", secure, name, r.Header["Set-Cookie"])
		}
		if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Domain != "" || ck.Secure != secure {
			t.Fatalf("secure=%v: cookie %+v", secure, ck)
		}
		if len(ck.Value) < 43 { // 256 bits, base64url
			t.Fatalf("session token too short: %d", len(ck.Value))
		}
		hsts := r.Header.Get("Strict-Transport-Security")
		if secure != (hsts != "") {
			t.Fatalf("secure=%v: HSTS %q", secure, hsts)
		}
		// The sign-in form's pre-session token cookie too.
		r = e.client().get("/signin")
		pre := findCookie(r.Response, strings.Replace(name, "session", "pre", 1))
		if pre == nil || !pre.HttpOnly || pre.Secure != secure {
			t.Fatalf("secure=%v: pre-session cookie %+v", secure, pre)
		}
	}
}

func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t, false)
	c := e.client()
	for _, path := range []string{"/signin", "/api/v1/me", "/static/app.css", "/nope"} {
		r := c.get(path)
		h := r.Header
		if h.Get("Content-Security-Policy") != "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'" {
			t.Fatalf("%s: CSP %q", path, h.Get("Content-Security-Policy"))
		}
		if h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" {
			t.Fatalf("%s: headers %v", path, h)
		}
	}
	if r := c.get("/signin"); r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("pages are cacheable: %q", r.Header.Get("Cache-Control"))
	}
	// No inline script or style anywhere: everything comes from /static.
	for _, name := range []string{"/signin"} {
		body := string(c.get(name).body)
		if strings.Contains(body, "<script>") || strings.Contains(body, "style=") || strings.Contains(body, "onclick") {
			t.Fatalf("%s has inline script or style", name)
		}
	}
}

func TestSessionFixation(t *testing.T) {
	e := newEnv(t, false)
	e.member("alice@new.example", "")
	c := e.client()
	u, _ := url.Parse(e.ts.URL)
	planted := "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	c.jar.SetCookies(u, []*http.Cookie{{Name: "postern_session", Value: planted, Path: "/"}})
	wantCode(t, c.api("GET", "/api/v1/me", nil), 401, "unauthorized")
	r := c.signinAPI("alice@new.example", testPassword)
	ck := findCookie(r.Response, "postern_session")
	if ck == nil || ck.Value == planted {
		t.Fatalf("session id not renewed at sign-in: %+v", ck)
	}
	// Signing in again rotates the id and ends the old session.
	old := ck.Value
	r = c.signinAPI("alice@new.example", testPassword)
	if ck = findCookie(r.Response, "postern_session"); ck == nil || ck.Value == old {
		t.Fatal("second sign-in kept the id")
	}
	stale := e.client()
	stale.jar.SetCookies(u, []*http.Cookie{{Name: "postern_session", Value: old, Path: "/"}})
	wantCode(t, stale.api("GET", "/api/v1/me", nil), 401, "unauthorized")
	// The database holds only the hash of the token.
	var n int
	e.db.SQL.QueryRow(`SELECT COUNT(*) FROM web_sessions WHERE id = ?`, []byte(ck.Value)).Scan(&n)
	if n != 0 {
		t.Fatal("the plaintext token is stored")
	}
	e.db.SQL.QueryRow(`SELECT COUNT(*) FROM web_sessions WHERE id = ?`, hashToken(ck.Value)).Scan(&n)
	if n != 1 {
		t.Fatal("the session is not stored under the token's hash")
	}
}

const xssName = `"><img src=x onerror=alert(1)>`

func TestHostileAppNameIsInert(t *testing.T) {
	e := newEnv(t, false)
	e.member("alice@new.example", "<script>alert(2)</script>")
	c := e.client()
	wantStatus(t, c.signinForm("alice@new.example", testPassword), 303)
	wantStatus(t, c.api("POST", "/api/v1/me/app-passwords", map[string]string{"name": xssName}), 201)
	for _, path := range []string{"/security/app-passwords", "/messages", "/security"} {
		body := string(c.get(path).body)
		if strings.Contains(body, "<img src=x") || strings.Contains(body, "<script>alert") {
			t.Fatalf("%s renders markup from a name:\n%s", path, body)
		}
	}
	body := string(c.get("/security/app-passwords").body)
	if !strings.Contains(body, "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;") {
		t.Fatalf("the name is not shown as text:\n%s", body)
	}
	// The created page too.
	e.advance(time.Second)
	tok := c.csrf("/security/app-passwords/new")
	r := c.created(c.post("/security/app-passwords", url.Values{"csrf": {tok}, "name": {xssName + "2"}}))
	if strings.Contains(string(r.body), "<img src=x") {
		t.Fatal("created page renders the name as markup")
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"/security": "/security", "": "/x", "//evil.example": "/x", "https://evil.example": "/x",
		"/\\evil.example": "/x", "/a\r\nb": "/x", "security": "/x",
	} {
		if got := safeNext(in, "/x"); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}
