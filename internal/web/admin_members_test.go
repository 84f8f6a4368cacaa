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

func wantBody(t *testing.T, r resp, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(string(r.body), w) {
			t.Fatalf("%s %s: no %q in %s", r.Request.Method, r.Request.URL, w, r.body)
		}
	}
}

func wantNoBody(t *testing.T, r resp, not ...string) {
	t.Helper()
	for _, w := range not {
		if strings.Contains(string(r.body), w) {
			t.Fatalf("%s %s: %q in the page", r.Request.Method, r.Request.URL, w)
		}
	}
}

// TestAdminMembersScope: the admin of new.example never sees or touches a
// member of old.example, by search, by a path through its own domain, by
// an import row or by a rename.
func TestAdminMembersScope(t *testing.T) {
	a := newAdminEnv(t)
	e := a.env
	e.member("alice@new.example", "Alice New")

	r := a.dom.get("/admin/members?q=alice")
	wantStatus(t, r, http.StatusOK)
	wantBody(t, r, "alice@new.example")
	wantNoBody(t, r, "alice@old.example")
	wantStatus(t, a.dom.get("/admin/members?domain=old.example"), http.StatusNotFound)
	// The organisation admin finds both.
	wantBody(t, a.org.get("/admin/members?q=alice"), "alice@new.example", "alice@old.example")

	// Through the admin's own domain in the path: still 404.
	wantStatus(t, a.dom.get("/admin/domains/new.example/members/alice@old.example"), http.StatusNotFound)
	r = a.dom.adminPost("/admin/domains/new.example/members/alice@old.example/suspend", url.Values{})
	wantStatus(t, r, http.StatusNotFound)
	if m, _ := e.svc.Member(context.Background(), "alice@old.example"); m.State != "active" {
		t.Fatal("suspended through another domain's path")
	}

	// An import row of another domain is an error; the domain's own is added.
	r = a.dom.adminPost("/admin/domains/new.example/members/import", url.Values{"csv": {"email,name\nbob@old.example,Bob\nbob@new.example,Bob\n"}})
	wantStatus(t, r, http.StatusOK)
	wantBody(t, r, "Line 2:", "bob@old.example", "1 members were added; 1 rows are in error")
	if _, err := e.svc.Member(context.Background(), "bob@old.example"); err == nil {
		t.Fatal("imported into another domain")
	}

	// Renaming into another domain: refused as a domain that does not exist.
	r = a.dom.adminPost("/admin/domains/new.example/members/alice@new.example/rename", url.Values{"new": {"alice2@old.example"}})
	wantStatus(t, r, http.StatusNotFound)
	if _, err := e.svc.Member(context.Background(), "alice@new.example"); err != nil {
		t.Fatal("renamed anyway")
	}
}

// TestAdminMembersFlows: add with a one-time password, import with a dry
// run first, page through the list, manage a member, rename and delete.
func TestAdminMembersFlows(t *testing.T) {
	a := newAdminEnv(t)
	e := a.env
	ctx := context.Background()
	c := a.org

	// Add: the one-time password is shown once and signs in to the web.
	r := c.adminPost("/admin/domains/new.example/members/new", url.Values{"local": {"carol"}, "name": {"Carol"}})
	wantStatus(t, r, http.StatusOK)
	pw := between(string(r.body), `data-password="`, `"`)
	if pw == "" || r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("no one-time password shown: %s", r.body)
	}
	wantStatus(t, e.client().signinForm("carol@new.example", pw), http.StatusSeeOther)

	// Import: the dry run lists the errors and adds nobody.
	file := "email,name,password\nd1@new.example,D One,\nd2@new.example,,a long enough password\nnot-an-address,,\n"
	r = c.adminPost("/admin/domains/new.example/members/import", url.Values{"csv": {file}, "dry_run": {"1"}})
	wantStatus(t, r, http.StatusOK)
	wantBody(t, r, "Dry run: 2 members would be added, 1 rows are in error", "Line 4:")
	if _, err := e.svc.Member(ctx, "d1@new.example"); err == nil {
		t.Fatal("the dry run added a member")
	}
	r = c.adminPost("/admin/domains/new.example/members/import", url.Values{"csv": {file}})
	wantBody(t, r, "2 members were added; 1 rows are in error", "d1@new.example</th><td><code>")
	wantNoBody(t, r, "d2@new.example</th><td><code>") // its password was given

	// The list pages by address, 50 at a time.
	for i := range 60 {
		e.member("p"+string(rune('a'+i/26))+string(rune('a'+i%26))+"@old.example", "")
	}
	r = c.get("/admin/members?domain=old.example")
	next := between(string(r.body), `href="/admin/members?`, `"`)
	if next == "" || !strings.Contains(next, "after=") {
		t.Fatalf("no next page: %s", r.body)
	}
	r = c.get("/admin/members?" + strings.ReplaceAll(next, "&amp;", "&"))
	wantBody(t, r, "pch@old.example")
	wantNoBody(t, r, "paa@old.example")

	// A member's page: third-party app passwords with last use, the setting, sessions.
	alice, _ := e.svc.Member(ctx, "alice@old.example")
	by := account.Actor{Via: "web"}
	if err := e.svc.SetUseAppPasswords(ctx, alice, true, by); err != nil {
		t.Fatal(err)
	}
	alice, _ = e.svc.Member(ctx, alice.Email)
	if _, _, err := e.svc.CreateAppPassword(ctx, alice, "Phone", by); err != nil {
		t.Fatal(err)
	}
	page := "/admin/domains/old.example/members/alice@old.example"
	wantBody(t, c.get(page), "Phone", "Never", "Not signed in to this site anywhere")

	// Delete one third-party app password: the member is told.
	list, _ := e.svc.AppPasswords(ctx, alice)
	r = c.adminPost(page+"/app-passwords/"+list[0].ID+"/delete", url.Values{})
	wantStatus(t, r, http.StatusSeeOther)
	if msgs, _ := e.db.Messages(ctx, alice.ID); len(msgs) == 0 || msgs[0].Kind != "apppass.deleted" {
		t.Fatalf("the member was not told: %+v", msgs)
	}

	// Reset: a one-time password, shown once.
	r = c.adminPost(page+"/reset-password", url.Values{})
	wantStatus(t, r, http.StatusOK)
	if between(string(r.body), `data-password="`, `"`) == "" {
		t.Fatalf("no one-time password: %s", r.body)
	}

	// Delete: the typed address must match.
	wantStatus(t, c.adminPost(page+"/delete", url.Values{"confirm_email": {"someone@old.example"}}), http.StatusBadRequest)
	if _, err := e.svc.Member(ctx, "alice@old.example"); err != nil {
		t.Fatal("deleted without the confirmation")
	}
	// Rename, then delete under the new address.
	r = c.adminPost(page+"/rename", url.Values{"new": {"alicia@old.example"}, "keep_alias": {"1"}})
	wantStatus(t, r, http.StatusSeeOther)
	if loc := r.Header.Get("Location"); loc != "/admin/domains/old.example/members/alicia@old.example?done=m-rename" {
		t.Fatalf("rename went to %q", loc)
	}
	wantBody(t, c.get("/admin/domains/old.example/members/alicia@old.example"), "alice@old.example") // the alias
	r = c.adminPost("/admin/domains/old.example/members/alicia@old.example/delete", url.Values{"confirm_email": {"alicia@old.example"}})
	wantStatus(t, r, http.StatusSeeOther)
	if _, err := e.svc.Member(ctx, "alicia@old.example"); err == nil {
		t.Fatal("not deleted")
	}
}

// between returns the text of s between the first before and the next after.
func between(s, before, after string) string {
	_, rest, ok := strings.Cut(s, before)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, after)
	return v
}

// TestRenamedMessageInJapanese: the member is told of the new address in
// their language, with what to change in their apps.
func TestRenamedMessageInJapanese(t *testing.T) {
	e := newEnv(t, false)
	m := e.member("bob@new.example", "Bob")
	if _, err := e.svc.RenameMember(context.Background(), account.AllDomains, m, "robert@new.example", true, account.Actor{Via: "cli"}); err != nil {
		t.Fatal(err)
	}
	c := e.client()
	wantStatus(t, c.signinAPI("robert@new.example", testPassword), http.StatusOK)
	var list []struct{ Kind, Lang, Subject, Body string }
	r := c.api("GET", "/api/v1/me/messages", nil, "Accept-Language", "ja")
	wantStatus(t, r, http.StatusOK)
	r.json(&list)
	if len(list) == 0 || list[0].Kind != account.MsgAddressChanged || list[0].Lang != "ja" ||
		list[0].Subject != "アカウントのアドレスが robert@new.example になりました" ||
		!strings.Contains(list[0].Body, "各アプリのユーザー名を bob@new.example から robert@new.example に変更") ||
		!strings.Contains(list[0].Body, "エイリアス") {
		t.Fatalf("messages: %+v", list)
	}
}

// TestAdminMemberLiveSessions: the member page lists the apps' sessions
// that every node published, with the client's name, the app password's
// name and the node; a node taken for dead is left out.
func TestAdminMemberLiveSessions(t *testing.T) {
	a := newAdminEnv(t)
	ctx := context.Background()
	m, _ := a.svc.Member(ctx, "alice@old.example")
	if err := a.svc.SetUseAppPasswords(ctx, m, true, account.Actor{Via: "cli"}); err != nil {
		t.Fatal(err)
	}
	m, _ = a.svc.Member(ctx, m.Email)
	p, _, err := a.svc.CreateAppPassword(ctx, m, "Phone", account.Actor{Via: "cli"})
	if err != nil {
		t.Fatal(err)
	}
	page := "/admin/domains/old.example/members/alice@old.example"
	wantBody(t, a.org.get(page), "No app is connected.")
	now := a.svc.Now()
	publish := func(node string, at time.Time, s account.LiveSession) {
		if _, err := a.db.PublishSessions(ctx, node, at, at.Add(-time.Hour), true, []account.LiveSession{s}, nil); err != nil {
			t.Fatal(err)
		}
	}
	publish("mx1-0a0b", now, account.LiveSession{ID: 1, MemberID: m.ID, Protocol: "imap", IP: "192.0.2.9", Client: "Thunderbird 128.5.0",
		AppPasswordID: p.ID, StartedAt: now.Add(-time.Hour)})
	publish("mx2-0c0d", now.Add(-account.LiveSessionTimeout-time.Second), account.LiveSession{ID: 1, MemberID: m.ID, Protocol: "pop3",
		IP: "192.0.2.10", StartedAt: now})
	r := a.org.get(page)
	wantStatus(t, r, http.StatusOK)
	wantBody(t, r, "Thunderbird 128.5.0", "(Phone)", "192.0.2.9", "mx1-0a0b")
	wantNoBody(t, r, "No app is connected.", "mx2-0c0d")
}
