package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/internal/account"
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
	if _, err := e.svc.GrantAdmin(ctx, "root@new.example", nil, account.Actor{Via: "cli"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.GrantAdmin(ctx, "dom@new.example", []string{"new.example"}, account.Actor{Via: "cli"}); err != nil {
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

// post sends a form with c's CSRF token, after a fresh re-authentication.
func (c *client) adminPost(path string, form url.Values) resp {
	c.t.Helper()
	form.Set("csrf", c.csrf("/security"))
	return c.post(path, form)
}

func TestAdminDomains(t *testing.T) {
	a := newAdminEnv(t)
	ctx := context.Background()

	// Adding: organisation admins only; the creation date decides the policy.
	wantStatus(t, a.dom.get("/admin/domains/new"), http.StatusForbidden)
	wantStatus(t, a.dom.adminPost("/admin/domains/new", url.Values{"name": {"x.example"}}), http.StatusForbidden)
	r := a.org.adminPost("/admin/domains/new", url.Values{"name": {"Legacy.Example"}, "created": {"2021-04-01"}})
	wantStatus(t, r, http.StatusSeeOther)
	if loc := r.Header.Get("Location"); loc != "/admin/domains/legacy.example?done=domain.added" {
		t.Fatalf("after adding: %q", loc)
	}
	d, err := a.svc.Domain(ctx, "legacy.example")
	if err != nil || d.Policy(a.svc.Config.Cutoff) != account.PolicyOptional {
		t.Fatalf("added domain: %+v, %v", d, err)
	}
	r = a.org.adminPost("/admin/domains/new", url.Values{"name": {"legacy.example"}})
	wantStatus(t, r, http.StatusConflict)
	if !strings.Contains(string(r.body), `aria-invalid="true"`) || !strings.Contains(string(r.body), `id="name-err"`) {
		t.Errorf("the error is not at the field: %s", r.body)
	}
	wantStatus(t, a.org.adminPost("/admin/domains/new", url.Values{"name": {"ok.example"}, "created": {"April"}}), http.StatusBadRequest)

	// The domain's page, policy and DNS records.
	r = a.org.get("/admin/domains/legacy.example")
	wantStatus(t, r, http.StatusOK)
	if !strings.Contains(string(r.body), "Each member decides") {
		t.Errorf("domain page: %s", r.body)
	}
	wantStatus(t, a.dom.get("/admin/domains/new.example"), http.StatusOK)
	wantStatus(t, a.dom.get("/admin/domains/new.example/dns"), http.StatusOK)

	// Invalid fields: nothing saved, the errors at the fields.
	r = a.dom.adminPost("/admin/domains/new.example/policy", url.Values{"protocol_imap": {"1"}, "networks": {"10.0.0.0/8\nnot-a-network"}, "expire": {"-3"}, "quota": {"lots"}})
	wantStatus(t, r, http.StatusBadRequest)
	for _, id := range []string{"networks-err", "expire-err", "quota-err"} {
		if !strings.Contains(string(r.body), `id="`+id+`"`) {
			t.Errorf("no %s in %s", id, r.body)
		}
	}
	if d, _ := a.svc.Domain(ctx, "new.example"); d.Security.Protocols != nil {
		t.Fatalf("an invalid form saved: %+v", d.Security)
	}
	r = a.dom.adminPost("/admin/domains/new.example/policy", url.Values{"protocol_imap": {"1"}, "protocol_smtp": {"1"},
		"networks": {"10.0.0.0/8\n192.0.2.7"}, "expire": {"90"}, "quota": {"2GiB"}, "force": {"1"}})
	wantStatus(t, r, http.StatusSeeOther)
	d, _ = a.svc.Domain(ctx, "new.example")
	if got := strings.Join(d.Security.Protocols, ","); got != "imap,smtp" || account.FormatNetworks(d.Security.Networks) != "10.0.0.0/8,192.0.2.7/32" ||
		d.Security.ExpireUnusedDays != 90 || d.Security.ForceAppPasswords || d.MailQuota == nil || *d.MailQuota != 2<<30 {
		t.Fatalf("saved policy: %+v quota %v", d.Security, d.MailQuota)
	}
	// Every protocol checked is "all", including protocols added later.
	form := url.Values{"expire": {"0"}, "force": {"1"}}
	for _, p := range account.ThirdPartyProtocols {
		form.Set("protocol_"+p, "1")
	}
	wantStatus(t, a.org.adminPost("/admin/domains/legacy.example/policy", form), http.StatusSeeOther)
	d, _ = a.svc.Domain(ctx, "legacy.example")
	if d.Security.Protocols != nil || d.Security.Networks != nil || !d.Security.ForceAppPasswords || d.MailQuota != nil {
		t.Fatalf("saved policy: %+v", d.Security)
	}

	// Deleting: organisation admins only; while members exist, only with
	// the second confirmation (TestAdminDeleteDomainWithMembers).
	wantStatus(t, a.dom.get("/admin/domains/new.example/delete"), http.StatusForbidden)
	r = a.org.get("/admin/domains/old.example/delete")
	wantStatus(t, r, http.StatusOK)
	wantBody(t, r, "1 members, with their", `name="with_members"`, `id="confirm_domain"`)
	wantStatus(t, a.org.adminPost("/admin/domains/old.example/delete", url.Values{"confirmed": {"1"}}), http.StatusConflict)
	if _, err := a.svc.Member(ctx, "alice@old.example"); err != nil {
		t.Fatal("a member deleted by the simple confirmation")
	}
	// Without confirmed, the POST only asks.
	wantStatus(t, a.org.adminPost("/admin/domains/legacy.example/delete", url.Values{}), http.StatusOK)
	if _, err := a.svc.Domain(ctx, "legacy.example"); err != nil {
		t.Fatal("deleted without confirmation")
	}
	r = a.org.adminPost("/admin/domains/legacy.example/delete", url.Values{"confirmed": {"1"}})
	wantStatus(t, r, http.StatusSeeOther)
	if _, err := a.svc.Domain(ctx, "legacy.example"); account.ErrorCode(err) != account.ENOTFOUND {
		t.Fatalf("after delete: %v", err)
	}
}

// TestExpiryMessagesJapanese: the expiry's warning and notice read in
// Japanese, with the time in the reader's zone and a link to the list.
func TestExpiryMessagesJapanese(t *testing.T) {
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	p := map[string]string{"email": "a@example.com", "app": "Thunderbird", "days": "30", "at": "2025-04-01T00:00:00Z",
		"link_apps": "https://mail.example.com/security/app-passwords", "time": "2025-03-25T00:00:00Z"}
	warn := localizeMessage("ja", tokyo, account.Message{Kind: account.MsgAppPasswordExpiring, Subject: "English", Params: p})
	if warn.Lang != "ja" || !strings.Contains(warn.Subject, "まもなく削除されます: Thunderbird") ||
		!strings.Contains(warn.Body, "2025年4月1日 09:00 JST") || !strings.Contains(warn.Body, "30 日間") {
		t.Errorf("warning: %+v", warn)
	}
	gone := localizeMessage("ja", tokyo, account.Message{Kind: account.MsgAppPasswordExpired, Subject: "English", Params: p})
	if gone.Lang != "ja" || !strings.Contains(gone.Subject, "削除されました: Thunderbird") || len(gone.Links) != 1 || gone.Links[0].Href != "/security/app-passwords" {
		t.Errorf("notice: %+v", gone)
	}
}

// TestAdminDeleteDomainWithMembers: the page counts what goes; a name
// typed wrong deletes nothing; the right one deletes the members (with
// their mail) and the domain, each in the audit log under the admin's
// address; a domain admin cannot, even of their own domain.
func TestAdminDeleteDomainWithMembers(t *testing.T) {
	a := newAdminEnv(t)
	ctx := context.Background()
	a.member("bob@old.example", "Bob")
	if _, _, err := a.svc.AddAlias(ctx, "team@old.example", []string{"bob@old.example"}, account.Actor{Via: "cli"}); err != nil {
		t.Fatal(err)
	}
	r := a.org.get("/admin/domains/old.example")
	wantBody(t, r, `href="/admin/domains/old.example/delete"`, "Delete the domain and its members")
	r = a.org.get("/admin/domains/old.example/delete")
	wantStatus(t, r, http.StatusOK)
	wantBody(t, r, "2 members, with their", "1 aliases")

	r = a.org.adminPost("/admin/domains/old.example/delete", url.Values{"with_members": {"1"}, "confirm_domain": {"new.example"}})
	wantStatus(t, r, http.StatusBadRequest)
	wantBody(t, r, "not the domain", `aria-invalid="true"`)
	if _, err := a.svc.Member(ctx, "bob@old.example"); err != nil {
		t.Fatal("deleted with the wrong name")
	}
	wantStatus(t, a.dom.adminPost("/admin/domains/new.example/delete", url.Values{"with_members": {"1"}, "confirm_domain": {"new.example"}}), http.StatusForbidden)
	if _, err := a.svc.Member(ctx, "dom@new.example"); err != nil {
		t.Fatal("a domain admin deleted their domain")
	}

	r = a.org.adminPost("/admin/domains/old.example/delete", url.Values{"with_members": {"1"}, "confirm_domain": {" Old.Example "}})
	wantStatus(t, r, http.StatusSeeOther)
	if _, err := a.svc.Domain(ctx, "old.example"); account.ErrorCode(err) != account.ENOTFOUND {
		t.Fatalf("domain after delete: %v", err)
	}
	for _, m := range []string{"alice@old.example", "bob@old.example"} {
		if _, err := a.svc.Member(ctx, m); account.ErrorCode(err) != account.ENOTFOUND {
			t.Fatalf("%s after delete: %v", m, err)
		}
	}
	list, err := a.svc.AuditLog(ctx, account.AuditQuery{Action: "member.deleted"})
	if err != nil || len(list) != 2 || list[0].ActorEmail != "root@new.example" {
		t.Fatalf("member deletions: %+v %v", list, err)
	}
	list, err = a.svc.AuditLog(ctx, account.AuditQuery{Action: "domain.deleted"})
	if err != nil || len(list) != 1 || list[0].ActorEmail != "root@new.example" || list[0].Detail != "with 2 members" {
		t.Fatalf("domain deletion: %+v %v", list, err)
	}
}
