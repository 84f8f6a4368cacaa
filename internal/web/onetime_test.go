package web

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/postern/postern/internal/account"
)

// TestOneTimePasswordForcesChange: after an administrator's reset, the
// one-time password signs in, and every page sends the member to the
// password change, every API call is refused, until a new password is
// chosen; then everything works and the one-time password is gone.
func TestOneTimePasswordForcesChange(t *testing.T) {
	e := newEnv(t, false)
	m := e.member("alice@old.example", "")
	pw, err := e.svc.ResetPassword(context.Background(), m, account.Actor{Via: "cli"})
	if err != nil {
		t.Fatal(err)
	}
	if r := e.client().signinForm(m.Email, testPassword); r.StatusCode != 401 {
		t.Fatalf("the old password signs in: %d", r.StatusCode)
	}
	c := e.client()
	wantStatus(t, c.signinForm(m.Email, pw), 303)
	for _, path := range []string{"/security", "/security/app-passwords", "/messages", "/security/app-passwords/new"} {
		r := c.get(path)
		if r.StatusCode != 303 || r.Header.Get("Location") != passwordPath {
			t.Errorf("GET %s: %d to %q, want the password change", path, r.StatusCode, r.Header.Get("Location"))
		}
	}
	tok := c.csrf(passwordPath)
	r := c.get(passwordPath)
	if wantNotice := tr("en", "password.onetime"); !strings.Contains(string(r.body), wantNotice[:40]) {
		t.Fatalf("no notice on the password page: %s", r.body)
	}
	if r := c.post("/security/setting", url.Values{"csrf": {tok}, "on": {"1"}}); r.StatusCode != 303 || r.Header.Get("Location") != passwordPath {
		t.Fatalf("POST /security/setting: %d to %q", r.StatusCode, r.Header.Get("Location"))
	}
	api := e.client()
	wantStatus(t, api.signinAPI(m.Email, pw), 200)
	wantCode(t, api.api("GET", "/api/v1/me", nil), 403, codePasswordChange)
	wantCode(t, api.api("GET", "/api/v1/me/app-passwords", nil), 403, codePasswordChange)

	r = c.post(passwordPath, url.Values{"csrf": {tok}, "current": {pw}, "new": {"my very own password"}, "confirm": {"my very own password"}})
	if r.StatusCode != 303 || !strings.HasPrefix(r.Header.Get("Location"), "/security?") {
		t.Fatalf("change: %d to %q: %s", r.StatusCode, r.Header.Get("Location"), r.body)
	}
	wantStatus(t, c.get("/security"), 200)
	wantCode(t, e.client().signinAPI(m.Email, pw), 401, "unauthorized")
	wantStatus(t, e.client().signinAPI(m.Email, "my very own password"), 200)
}
