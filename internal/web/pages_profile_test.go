package web

import (
	"bytes"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer collects a server's log lines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var profileIDRE = regexp.MustCompile(`name="id" value="([^"]+)"`)

// createOnPage creates an app password through the page and returns its id
// and plaintext as the result page carries them to the profile form.
func createOnPage(t *testing.T, c *client, tok, name string) (id, plain string) {
	t.Helper()
	r := c.created(c.post("/security/app-passwords", url.Values{"csrf": {tok}, "name": {name}}))
	m, n := passwordRE.FindSubmatch(r.body), profileIDRE.FindSubmatch(r.body)
	if m == nil || n == nil {
		t.Fatalf("no password or id in the result page:\n%s", r.body)
	}
	if !bytes.Contains(r.body, []byte(`<input type="hidden" name="password" value="`+string(m[1])+`">`)) {
		t.Fatal("the profile form does not carry the password in its body")
	}
	return string(n[1]), string(m[1])
}

// TestProfileDownloadStateless: the Apple configuration profile is made from
// the id and password the browser POSTs back, checked against the stored
// hash, so a second node that never saw the creation serves it. A wrong
// password, another member's id, an old password, a missing CSRF token and a
// GET are refused, and no password reaches the log.
func TestProfileDownloadStateless(t *testing.T) {
	e := newEnv(t, false)
	bob := e.member("bob@old.example", "Bob")
	if err := e.svc.SetUseAppPasswords(t.Context(), bob, true, e.srv.actor(httptest.NewRequest("GET", "/", nil), "web")); err != nil {
		t.Fatal(err)
	}
	e.member("alice@new.example", "Alice")

	// A second node: its own Server over the same database, its own log.
	var logs lockedBuffer
	node2 := &env{t: t, db: e.db, svc: e.svc}
	node2.srv = New(Config{Service: e.svc, Sessions: e.db, Auth: e.gw, Now: e.Now, Log: slog.New(slog.NewTextHandler(&logs, nil)),
		Settings: ServerSettings{Host: "mail.example.com", IMAPSPort: 993, SubmissionsPort: 465, WebPort: 443, WebTLS: true}})
	node2.ts = httptest.NewServer(node2.srv)
	t.Cleanup(node2.ts.Close)

	c := e.client()
	wantStatus(t, c.signinForm("bob@old.example", testPassword), 303)
	tok := c.csrf("/security")
	id1, pw1 := createOnPage(t, c, tok, "iPhone")
	id2, pw2 := createOnPage(t, c, tok, "Mac")
	on2 := &client{t: t, e: node2, h: c.h, jar: c.jar} // the same browser, routed to node 2

	profile := func(cl *client, tok, id, pw string) resp {
		return cl.post("/security/app-passwords/profile", url.Values{"csrf": {tok}, "id": {id}, "password": {pw}})
	}
	r := profile(on2, tok, id1, pw1)
	wantStatus(t, r, 200)
	if !bytes.Contains(r.body, []byte("<string>"+pw1+"</string>")) || !bytes.Contains(r.body, []byte("bob@old.example (iPhone)")) {
		t.Fatalf("profile from node 2:\n%s", r.body)
	}
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Fatal("the profile may be cached")
	}
	// Wrong passwords and ids.
	wantStatus(t, profile(on2, tok, id1, pw1+"x"), 410)
	wantStatus(t, profile(on2, tok, id1, pw2), 410) // another password of the same member
	wantStatus(t, profile(on2, tok, id1, ""), 410)  // none
	wantStatus(t, profile(on2, tok, "nope", pw1), 410)
	wantStatus(t, profile(on2, "", id1, pw1), 403) // no CSRF token
	wantStatus(t, on2.get("/security/app-passwords/profile?id="+id1+"&password="+pw1), 404)

	// Another member's id with its right password, posted in bob's session.
	a := e.client()
	wantStatus(t, a.signinForm("alice@new.example", testPassword), 303)
	atok := a.csrf("/security")
	aid, apw := createOnPage(t, a, atok, "Alice phone")
	wantStatus(t, profile(on2, tok, aid, apw), 410)
	wantStatus(t, profile(&client{t: t, e: node2, h: a.h, jar: a.jar}, atok, aid, apw), 200)

	// Deleted: refused at once.
	wantStatus(t, c.post("/security/app-passwords/"+id2+"/delete", url.Values{"csrf": {tok}, "confirmed": {"1"}}), 303)
	wantStatus(t, profile(on2, tok, id2, pw2), 410)

	// Old: 10 minutes after the creation the right password is refused too
	// (the session stays signed in: 11 min is under the idle timeout).
	e.advance(11 * time.Minute)
	r = profile(on2, tok, id1, pw1)
	wantStatus(t, r, 410)
	if !strings.Contains(string(r.body), "10 minutes") {
		t.Fatalf("refusal page: %s", r.body)
	}

	out := logs.String()
	if !strings.Contains(out, "configuration profile refused") {
		t.Fatalf("refusals are not logged:\n%s", out)
	}
	for _, pw := range []string{pw1, pw2, apw} {
		if strings.Contains(out, pw) {
			t.Fatalf("a password reached the log:\n%s", out)
		}
	}
}
