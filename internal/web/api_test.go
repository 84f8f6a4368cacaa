package web

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/internal/account"
)

func TestAPISessionAndMe(t *testing.T) {
	e := newEnv(t, false)
	e.member("alice@new.example", "Alice Liddell")
	c := e.client()

	wantCode(t, c.api("GET", "/api/v1/me", nil), 401, "unauthorized")
	wantCode(t, c.signinAPI("alice@new.example", "wrong password!"), 401, "unauthorized")
	wantCode(t, c.signinAPI("nobody@new.example", testPassword), 401, "unauthorized")
	wantCode(t, c.api("POST", "/api/v1/session", "not an object"), 400, "invalid")
	req := c.api("POST", "/api/v1/session", nil) // no Content-Type
	wantCode(t, req, 415, "unsupported_media_type")

	r := c.signinAPI("ALICE@new.example", testPassword)
	wantStatus(t, r, 200)
	var me meJSON
	r.json(&me)
	if me.Storage == nil || me.Storage.Used != 0 || me.Storage.Limit != nil {
		t.Fatalf("session's storage: %+v", me.Storage)
	}
	me.Storage = nil
	if me != (meJSON{Email: "alice@new.example", Name: "Alice Liddell", Domain: "new.example", Policy: "enforced", UseAppPasswords: true}) {
		t.Fatalf("session: %+v", me)
	}
	r = c.api("GET", "/api/v1/me", nil)
	wantStatus(t, r, 200)
	r.json(&me)
	if me.Email != "alice@new.example" {
		t.Fatalf("me: %+v", me)
	}
	wantCode(t, c.api("GET", "/api/v1/nope", nil), 404, "not_found")

	wantStatus(t, c.api("DELETE", "/api/v1/session", nil), 204)
	wantCode(t, c.api("GET", "/api/v1/me", nil), 401, "unauthorized")
}

func TestAPISettings(t *testing.T) {
	e := newEnv(t, false)
	e.member("ann@new.example", "")
	e.member("bob@old.example", "")

	enforced := e.client()
	wantStatus(t, enforced.signinAPI("ann@new.example", testPassword), 200)
	wantCode(t, enforced.api("PUT", "/api/v1/me/settings", map[string]bool{"use_app_passwords": false}), 409, "conflict")

	c := e.client()
	wantStatus(t, c.signinAPI("bob@old.example", testPassword), 200)
	var me meJSON
	c.api("GET", "/api/v1/me", nil).json(&me)
	if me.Policy != "optional" || me.UseAppPasswords {
		t.Fatalf("optional member: %+v", me)
	}
	// Setting off: app passwords cannot be created.
	wantCode(t, c.api("POST", "/api/v1/me/app-passwords", map[string]string{"name": "Thunderbird"}), 403, "forbidden")
	wantCode(t, c.api("PUT", "/api/v1/me/settings", map[string]any{}), 400, "invalid")
	wantCode(t, c.api("PUT", "/api/v1/me/settings", map[string]any{"use_app_passwords": true, "extra": 1}), 400, "invalid")
	r := c.api("PUT", "/api/v1/me/settings", map[string]bool{"use_app_passwords": true})
	wantStatus(t, r, 200)
	r.json(&me)
	if !me.UseAppPasswords {
		t.Fatalf("after turning on: %+v", me)
	}
	wantStatus(t, c.api("POST", "/api/v1/me/app-passwords", map[string]string{"name": "Thunderbird"}), 201)
	// Off again: the password is kept, inactive.
	wantStatus(t, c.api("PUT", "/api/v1/me/settings", map[string]bool{"use_app_passwords": false}), 200)
	var list []appPasswordJSON
	c.api("GET", "/api/v1/me/app-passwords", nil).json(&list)
	if len(list) != 1 || list[0].Active {
		t.Fatalf("after turning off: %+v", list)
	}
}

func TestAPIAppPasswords(t *testing.T) {
	e := newEnv(t, false)
	e.member("alice@new.example", "Alice")
	c := e.client()
	wantStatus(t, c.signinAPI("alice@new.example", testPassword), 200)

	wantCode(t, c.api("POST", "/api/v1/me/app-passwords", map[string]string{"name": "  "}), 400, "invalid")
	wantCode(t, c.api("POST", "/api/v1/me/app-passwords", map[string]string{"name": strings.Repeat("x", 65)}), 400, "invalid")
	wantCode(t, c.api("POST", "/api/v1/me/app-passwords", map[string]string{"name": "X\r\nBcc: evil@example.com"}), 400, "invalid")

	r := c.api("POST", "/api/v1/me/app-passwords", map[string]string{"name": "Thunderbird"})
	wantStatus(t, r, 201)
	var created struct {
		ID, Name, Password string
		CreatedAt          time.Time `json:"created_at"`
	}
	r.json(&created)
	if len(created.Password) != 20 || created.Name != "Thunderbird" || created.ID == "" || created.CreatedAt.IsZero() {
		t.Fatalf("created: %+v", created)
	}
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("Cache-Control %q", r.Header.Get("Cache-Control"))
	}
	wantCode(t, c.api("POST", "/api/v1/me/app-passwords", map[string]string{"name": "THUNDERBIRD"}), 409, "conflict")
	for i := 2; i <= 5; i++ {
		e.advance(time.Second)
		wantStatus(t, c.api("POST", "/api/v1/me/app-passwords", map[string]string{"name": fmt.Sprintf("App %d", i)}), 201)
	}
	r = c.api("POST", "/api/v1/me/app-passwords", map[string]string{"name": "Sixth"})
	wantCode(t, r, 409, "limit")

	var list []appPasswordJSON
	c.api("GET", "/api/v1/me/app-passwords", nil).json(&list)
	if len(list) != 5 || list[0].Name != "Thunderbird" || !list[0].Active || list[0].LastUsedAt != nil {
		t.Fatalf("list: %+v", list)
	}
	// The raw JSON has exactly the fields of SPEC §6, last_used_at null.
	raw := string(c.api("GET", "/api/v1/me/app-passwords", nil).body)
	for _, f := range []string{`"id"`, `"name"`, `"created_at"`, `"last_used_at":null`, `"last_used_protocol"`, `"last_used_ip"`, `"active":true`} {
		if !strings.Contains(raw, f) {
			t.Fatalf("list JSON lacks %s: %s", f, raw)
		}
	}
	if strings.Contains(raw, created.Password) {
		t.Fatal("the list shows a password")
	}

	wantStatus(t, c.api("DELETE", "/api/v1/me/app-passwords/"+created.ID, nil), 204)
	wantCode(t, c.api("DELETE", "/api/v1/me/app-passwords/"+created.ID, nil), 404, "not_found")
	wantStatus(t, c.api("POST", "/api/v1/me/app-passwords", map[string]string{"name": "Sixth"}), 201)

	// Messages: one per create and delete, newest first.
	var msgs []messageJSON
	c.api("GET", "/api/v1/me/messages", nil).json(&msgs)
	if len(msgs) != 7 || !strings.Contains(msgs[0].Subject, "Sixth") || !strings.Contains(msgs[1].Subject, "deleted: Thunderbird") || msgs[0].Read {
		t.Fatalf("messages: %+v", msgs)
	}
	wantStatus(t, c.api("POST", "/api/v1/me/messages/read", map[string][]int64{"ids": {msgs[0].ID}}), 204)
	c.api("GET", "/api/v1/me/messages", nil).json(&msgs)
	if !msgs[0].Read || msgs[1].Read {
		t.Fatalf("after marking one read: %+v", msgs[:2])
	}
}

func TestAPIIDOR(t *testing.T) {
	e := newEnv(t, false)
	e.member("alice@new.example", "")
	e.member("mallory@new.example", "")
	a, m := e.client(), e.client()
	wantStatus(t, a.signinAPI("alice@new.example", testPassword), 200)
	wantStatus(t, m.signinAPI("mallory@new.example", testPassword), 200)
	var created struct{ ID string }
	a.api("POST", "/api/v1/me/app-passwords", map[string]string{"name": "Phone"}).json(&created)

	wantCode(t, m.api("DELETE", "/api/v1/me/app-passwords/"+created.ID, nil), 404, "not_found")
	var list []appPasswordJSON
	m.api("GET", "/api/v1/me/app-passwords", nil).json(&list)
	if len(list) != 0 {
		t.Fatalf("mallory sees %+v", list)
	}
	a.api("GET", "/api/v1/me/app-passwords", nil).json(&list)
	if len(list) != 1 {
		t.Fatalf("alice lost her password: %+v", list)
	}
	// Nor through the page.
	tok := m.csrf("/security")
	r := m.post("/security/app-passwords/"+created.ID+"/delete", map[string][]string{"csrf": {tok}, "confirmed": {"1"}})
	wantStatus(t, r, 404)
}

func TestAPIReauth(t *testing.T) {
	e := newEnv(t, false)
	e.member("bob@old.example", "")
	c := e.client()
	wantStatus(t, c.signinAPI("bob@old.example", testPassword), 200)
	e.advance(11 * time.Minute)

	wantCode(t, c.api("PUT", "/api/v1/me/settings", map[string]bool{"use_app_passwords": true}), 403, "reauth_required")
	wantCode(t, c.api("PUT", "/api/v1/me/settings", map[string]any{"use_app_passwords": true, "password": "wrong password"}), 403, "reauth_required")
	wantStatus(t, c.api("PUT", "/api/v1/me/settings", map[string]any{"use_app_passwords": true, "password": testPassword}), 200)
	// The password renewed the window.
	wantStatus(t, c.api("POST", "/api/v1/me/app-passwords", map[string]string{"name": "One"}), 201)

	e.advance(10*time.Minute + time.Second)
	wantCode(t, c.api("POST", "/api/v1/me/app-passwords", map[string]string{"name": "Two"}), 403, "reauth_required")
	// Reading is not sensitive.
	wantStatus(t, c.api("GET", "/api/v1/me/app-passwords", nil), 200)
	// Signing in again renews it too.
	wantStatus(t, c.signinAPI("bob@old.example", testPassword), 200)
	wantStatus(t, c.api("POST", "/api/v1/me/app-passwords", map[string]string{"name": "Two"}), 201)
}

func TestAPITimeouts(t *testing.T) {
	e := newEnv(t, false)
	e.member("bob@old.example", "")
	c := e.client()
	wantStatus(t, c.signinAPI("bob@old.example", testPassword), 200)
	e.advance(61 * time.Minute)
	wantCode(t, c.api("GET", "/api/v1/me", nil), 401, "unauthorized") // idle

	wantStatus(t, c.signinAPI("bob@old.example", testPassword), 200)
	for i := 0; i < 28; i++ { // active all day: 28 × 50 min > 23 h
		e.advance(50 * time.Minute)
		wantStatus(t, c.api("GET", "/api/v1/me", nil), 200)
	}
	e.advance(50 * time.Minute)
	wantCode(t, c.api("GET", "/api/v1/me", nil), 401, "unauthorized") // absolute
}

func TestAPIChangePassword(t *testing.T) {
	e := newEnv(t, false)
	e.member("alice@new.example", "")
	c, other := e.client(), e.client()
	wantStatus(t, c.signinAPI("alice@new.example", testPassword), 200)
	wantStatus(t, other.signinAPI("alice@new.example", testPassword), 200)
	wantStatus(t, c.api("POST", "/api/v1/me/app-passwords", map[string]string{"name": "Laptop"}), 201)

	body := map[string]any{"current": "not it at all", "new": "a brand new passphrase", "delete_app_passwords": true}
	wantCode(t, c.api("PUT", "/api/v1/me/password", body), 403, "forbidden")
	body["current"], body["new"] = testPassword, "short"
	wantCode(t, c.api("PUT", "/api/v1/me/password", body), 400, "invalid")
	body["new"] = "a brand new passphrase"
	wantStatus(t, c.api("PUT", "/api/v1/me/password", body), 204)

	wantStatus(t, c.api("GET", "/api/v1/me", nil), 200)
	wantCode(t, other.api("GET", "/api/v1/me", nil), 401, "unauthorized")
	var list []appPasswordJSON
	c.api("GET", "/api/v1/me/app-passwords", nil).json(&list)
	if len(list) != 0 {
		t.Fatalf("app passwords kept: %+v", list)
	}
	wantCode(t, other.signinAPI("alice@new.example", testPassword), 401, "unauthorized")
	wantStatus(t, other.signinAPI("alice@new.example", "a brand new passphrase"), 200)
}

func TestAppPasswordNeverSignsIn(t *testing.T) {
	e := newEnv(t, false)
	e.member("alice@new.example", "")
	c := e.client()
	wantStatus(t, c.signinAPI("alice@new.example", testPassword), 200)
	var created struct{ Password string }
	c.api("POST", "/api/v1/me/app-passwords", map[string]string{"name": "Mail"}).json(&created)
	wantCode(t, e.client().signinAPI("alice@new.example", created.Password), 401, "unauthorized")
	if r := e.client().signinForm("alice@new.example", created.Password); r.StatusCode != 401 {
		t.Fatalf("form sign-in with an app password: %d", r.StatusCode)
	}
}

func TestSuspendedMemberSignedOut(t *testing.T) {
	e := newEnv(t, false)
	m := e.member("alice@new.example", "")
	c := e.client()
	wantStatus(t, c.signinAPI("alice@new.example", testPassword), 200)
	if err := e.svc.SetState(t.Context(), m, "suspended", account.Actor{Via: "cli"}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, c.api("GET", "/api/v1/me", nil), 401, "unauthorized")
	wantCode(t, c.signinAPI("alice@new.example", testPassword), 401, "unauthorized")
}

func TestAPIMethodAndBodyRules(t *testing.T) {
	e := newEnv(t, false)
	e.member("alice@new.example", "")
	c := e.client()
	wantStatus(t, c.signinAPI("alice@new.example", testPassword), 200)
	req, _ := http.NewRequest("POST", e.ts.URL+"/api/v1/me/app-passwords", strings.NewReader(`{"name":"x"}`))
	req.Header.Set("Content-Type", "text/plain") // a simple request another site could send
	wantCode(t, c.do(req), 415, "unsupported_media_type")
	req, _ = http.NewRequest("POST", e.ts.URL+"/api/v1/me/app-passwords", strings.NewReader(`{"name":"x"} {"name":"y"}`))
	req.Header.Set("Content-Type", "application/json")
	wantCode(t, c.do(req), 400, "invalid")
}
