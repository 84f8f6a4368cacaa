package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// adminPathValues fill the wildcards of the console's routes: each names a
// thing of the domain old.example, which the admin of new.example must
// never reach. A section whose routes have another wildcard adds it here.
var adminPathValues = map[string]string{
	"{domain}": "old.example",
	"{email}":  "alice@old.example",
	"{id}":     "0123456789abcdef",
}

// adminPath is pattern's path with its wildcards filled.
func adminPath(t *testing.T, pattern string) (method, path string) {
	method, path, _ = strings.Cut(pattern, " ")
	path = strings.TrimSuffix(path, "{$}")
	for k, v := range adminPathValues {
		path = strings.ReplaceAll(path, k, url.PathEscape(v))
	}
	if strings.Contains(path, "{") {
		t.Fatalf("route %q has a wildcard adminPathValues does not fill", pattern)
	}
	return method, path
}

// adminEnv has an organisation admin, an admin of new.example only, and
// a member who administers nothing.
type adminEnv struct {
	*env
	org, dom, plain *client
}

func newAdminEnv(t *testing.T) *adminEnv {
	e := newEnv(t, false)
	ctx := context.Background()
	e.member("root@new.example", "Root")
	e.member("dom@new.example", "Dom")
	e.member("plain@new.example", "Plain")
	e.member("alice@old.example", "Alice")
	if _, err := e.svc.GrantAdmin(ctx, "root@new.example", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.GrantAdmin(ctx, "dom@new.example", []string{"new.example"}); err != nil {
		t.Fatal(err)
	}
	a := &adminEnv{env: e, org: e.client(), dom: e.client(), plain: e.client()}
	for c, email := range map[*client]string{a.org: "root@new.example", a.dom: "dom@new.example", a.plain: "plain@new.example"} {
		wantStatus(t, c.signinForm(email, testPassword), http.StatusSeeOther)
	}
	return a
}

// request sends the route's request as c, POSTs with c's CSRF token
// unless csrf is false.
func (c *client) adminRequest(method, path string, csrf bool) resp {
	c.t.Helper()
	if method != http.MethodPost {
		req, _ := http.NewRequest(method, c.e.ts.URL+path, nil)
		return c.do(req)
	}
	form := url.Values{}
	if csrf {
		form.Set("csrf", c.csrf("/security"))
	}
	return c.post(path, form)
}

// TestAdminRoutesAuthorisation walks every route of the console: a member
// who administers nothing gets 404 (as for a page that does not exist),
// the admin of another domain gets 404 for what belongs to old.example
// (as for a domain that does not exist) and 403 for organisation-wide
// actions, a POST without the CSRF token is refused, and a POST without a
// fresh re-authentication is sent to re-authenticate.
func TestAdminRoutesAuthorisation(t *testing.T) {
	a := newAdminEnv(t)
	if len(a.srv.adminPatterns) == 0 {
		t.Fatal("no admin routes registered")
	}
	for _, pattern := range a.srv.adminPatterns {
		method, path := adminPath(t, pattern)
		t.Run(pattern, func(t *testing.T) {
			// Signed out: sign in first, like every page.
			r := a.client().adminRequest(method, path, false)
			if method == http.MethodGet {
				wantStatus(t, r, http.StatusSeeOther)
				if loc := r.Header.Get("Location"); !strings.HasPrefix(loc, "/signin") {
					t.Fatalf("signed out: Location %q", loc)
				}
			}
			// Not an administrator: 404, with or without the token.
			wantStatus(t, a.plain.adminRequest(method, path, true), http.StatusNotFound)
			wantStatus(t, a.plain.adminRequest(method, path, false), http.StatusNotFound)
			// The admin of another domain.
			r = a.dom.adminRequest(method, path, true)
			switch {
			case strings.Contains(pattern, "{domain}"):
				wantStatus(t, r, http.StatusNotFound)
			case method == http.MethodPost && r.StatusCode != http.StatusForbidden && r.StatusCode != http.StatusSeeOther:
				t.Fatalf("domain admin: POST %s: %d, want 403 or a redirect", path, r.StatusCode)
			}
			if method != http.MethodPost {
				return
			}
			// CSRF: refused even for the organisation admin.
			wantStatus(t, a.org.adminRequest(method, path, false), http.StatusForbidden)
			// Re-authentication: after the window, a POST goes to /reauth.
			a.advance(a.srv.cfg.ReauthWindow + 1)
			r = a.org.adminRequest(method, path, true)
			wantStatus(t, r, http.StatusSeeOther)
			if loc := r.Header.Get("Location"); loc != "/reauth?next="+url.QueryEscape(path) {
				t.Fatalf("without re-authentication: Location %q", loc)
			}
			// Every client's window has passed: the next route's checks of
			// the domain admin must not stop at re-authentication.
			reauth(t, a.org)
			reauth(t, a.dom)
		})
	}
}

// reauth enters the main password again in c's session.
func reauth(t *testing.T, c *client) {
	t.Helper()
	r := c.post("/reauth", url.Values{"csrf": {c.csrf("/security")}, "reauth_password": {testPassword}, "next": {"/security"}})
	wantStatus(t, r, http.StatusSeeOther)
}

func TestAdminNavigationAndMenu(t *testing.T) {
	a := newAdminEnv(t)
	r := a.org.get("/admin")
	wantStatus(t, r, http.StatusSeeOther)
	if loc := r.Header.Get("Location"); loc != "/admin/domains" {
		t.Fatalf("/admin goes to %q", loc)
	}
	r = a.org.get("/admin/domains")
	wantStatus(t, r, http.StatusOK)
	for _, want := range []string{`aria-current="page">Domains`, "old.example", "new.example"} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("domains page lacks %q", want)
		}
	}
	// The account menu links to the console for admins only.
	if !strings.Contains(string(a.dom.get("/security").body), `href="/admin"`) {
		t.Error("an admin's menu has no link to the console")
	}
	if strings.Contains(string(a.plain.get("/security").body), `href="/admin"`) {
		t.Error("a member who administers nothing sees the console in the menu")
	}
	// A domain admin lists only the domains administered.
	body := string(a.dom.get("/admin/domains").body)
	if !strings.Contains(body, "new.example") || strings.Contains(body, "old.example") {
		t.Errorf("the admin of new.example sees: %s", body)
	}
	wantStatus(t, a.org.get("/admin/no-such-page"), http.StatusNotFound)
	wantStatus(t, a.plain.get("/admin"), http.StatusNotFound)
}
