package web

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"html"
	"io/fs"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/internal/auth"
)

// signedIn returns a client of a member of the enforced domain, signed in,
// with the UI in language l, and a CSRF token of its session.
func signedIn(t *testing.T, e *env, email, l string) (*client, string) {
	t.Helper()
	c := e.client()
	wantStatus(t, c.get("/lang/"+l), 303)
	wantStatus(t, c.signinForm(email, testPassword), 303)
	return c, c.csrf("/security")
}

func lacks(t *testing.T, r resp, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if strings.Contains(string(r.body), s) {
			t.Fatalf("%s %s: %q in:\n%s", r.Request.Method, r.Request.URL, s, r.body)
		}
	}
}

// TestCreatedPageIsOneTimeView: "Create password" answers with a redirect
// that carries no password, only a random view id; the page it leads to
// shows the password once, uncached; a reload, another session of the same
// member, or the same view after revealTTL get the "cannot be shown again"
// page pointing to Manage; and the database holds no plaintext.
func TestCreatedPageIsOneTimeView(t *testing.T) {
	e := newEnv(t, false)
	e.member("alice@new.example", "Alice")
	c, tok := signedIn(t, e, "alice@new.example", "en")

	post := c.post("/security/app-passwords", url.Values{"csrf": {tok}, "name": {"Thunderbird"}})
	wantStatus(t, post, 303)
	loc := post.Header.Get("Location")
	view := strings.TrimPrefix(loc, "/security/app-passwords/created?view=")
	if view == loc || len(view) != 32 {
		t.Fatalf("redirect to %q", loc)
	}
	page := c.get(loc)
	wantStatus(t, page, 200)
	m := passwordRE.FindSubmatch(page.body)
	if m == nil {
		t.Fatalf("no password on the view:\n%s", page.body)
	}
	plain := string(m[1])
	if strings.Contains(loc, plain) || bytes.Contains(post.body, []byte(plain)) {
		t.Fatal("the password is in the redirect")
	}
	if page.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("Cache-Control %q", page.Header.Get("Cache-Control"))
	}
	var sealed []byte
	if err := e.db.SQL.QueryRow(`SELECT sealed FROM web_reveals`).Scan(&sealed); err == nil {
		t.Fatal("the view outlived its showing")
	}

	// A reload (or a phone restoring the tab) shows no password and no form.
	again := c.get(loc)
	wantStatus(t, again, 410)
	has(t, again, "can’t be shown again", `href="/security/app-passwords" id="manage"`, "Go to Manage")
	lacks(t, again, plain, "data-password")
	if again.Header.Get("Cache-Control") != "no-store" {
		t.Fatal("the gone page may be cached")
	}

	// Bound to the session: another browser of the same member, and the
	// database, see nothing.
	post = c.post("/security/app-passwords", url.Values{"csrf": {tok}, "name": {"Phone"}})
	wantStatus(t, post, 303)
	if err := e.db.SQL.QueryRow(`SELECT sealed FROM web_reveals`).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	other, _ := signedIn(t, e, "alice@new.example", "en")
	wantStatus(t, other.get(post.Header.Get("Location")), 410)
	page = c.created(post)
	m = passwordRE.FindSubmatch(page.body)
	if m == nil || bytes.Contains(sealed, m[1]) {
		t.Fatalf("sealed view holds the plaintext, or no password shown")
	}
	has(t, page, "Your third-party app password for Phone")

	// Expired before it was shown.
	post = c.post("/security/app-passwords", url.Values{"csrf": {tok}, "name": {"Laptop"}})
	wantStatus(t, post, 303)
	e.advance(revealTTL + time.Second)
	wantStatus(t, c.get(post.Header.Get("Location")), 410)

	// Japanese.
	wantStatus(t, c.get("/lang/ja"), 303)
	has(t, c.get(loc), "このパスワードはもう表示できません", "「管理」へ")
}

// TestAppNameErrorAtField: a bad name is said at the field (aria-invalid,
// aria-describedby to the message, focus on it), not in a banner; each case
// has its own Japanese message.
func TestAppNameErrorAtField(t *testing.T) {
	e := newEnv(t, false)
	e.member("alice@new.example", "Alice")
	seen := map[string]string{}
	for _, l := range []string{"en", "ja"} {
		c, tok := signedIn(t, e, "alice@new.example", l)
		for name, key := range map[string]string{" ": "empty", strings.Repeat("x", 65): "too_long",
			"a\x01b": "control", "\u3164": "invisible", "ab\xffc": "encoding"} {
			r := c.post("/security/app-passwords", url.Values{"csrf": {tok}, "name": {name}})
			wantStatus(t, r, 400)
			has(t, r, `<p class="field-error" id="name-error">`, `aria-invalid="true" aria-describedby="name-error name-hint"`,
				`id="name" name="name" type="text" maxlength="64" required autofocus`)
			lacks(t, r, `class="alert"`)
			msg := regexp.MustCompile(`id="name-error"><span class="visually-hidden">[^<]*</span>([^<]*)</p>`).FindSubmatch(r.body)
			if msg == nil {
				t.Fatalf("%s %q: no message", l, name)
			}
			if prev, dup := seen[l+string(msg[1])]; dup {
				t.Errorf("%s: %q and %q get the same message %q", l, prev, key, msg[1])
			}
			seen[l+string(msg[1])] = key
			if l == "ja" && html.UnescapeString(string(msg[1])) != tr("ja", "err.name.invalid."+key) {
				t.Errorf("ja %s: %q", key, msg[1])
			}
		}
		// A duplicate name is about the field too.
		c.created(c.post("/security/app-passwords", url.Values{"csrf": {tok}, "name": {"Mail " + l}}))
		r := c.post("/security/app-passwords", url.Values{"csrf": {tok}, "name": {"MAIL " + l}})
		wantStatus(t, r, 409)
		has(t, r, `aria-invalid="true"`, `id="name-error"`)
		lacks(t, r, `class="alert"`)
	}
	for _, key := range []string{"empty", "too_long", "control", "invisible", "encoding"} {
		if _, ok := catalog["ja"]["err.name.invalid."+key]; !ok {
			t.Errorf("no Japanese message for an app name that is %s", key)
		}
	}
	// Valid again: no error left on the form.
	c, _ := signedIn(t, e, "alice@new.example", "en")
	lacks(t, c.get("/security/app-passwords/new"), "aria-invalid", "name-error")
}

// offTerm returns the places where text names the credential other than by
// language l's one term: "app password" without "third-party" before it,
// アプリパスワード, or アプリ用パスワード without サードパーティ. Paths and
// identifiers (app-passwords, apppass) are not names.
func offTerm(l, text string) []string {
	re, prefix := regexp.MustCompile(`(?i)\bapp passwords?\b`), "third-party "
	if l == "ja" {
		re, prefix = regexp.MustCompile(`アプリパスワード|アプリ用パスワード`), "サードパーティ"
	}
	var out []string
	for _, loc := range re.FindAllStringIndex(text, -1) {
		if !strings.HasSuffix(strings.ToLower(text[:loc[0]]), prefix) {
			out = append(out, text[max(0, loc[0]-30):loc[1]])
		}
	}
	return out
}

// TestOneTermPerLanguage: the UI, the templates and the messages name the
// credential with one term per language, the setting's: "third-party app
// password" and サードパーティアプリ用パスワード.
func TestOneTermPerLanguage(t *testing.T) {
	if got := offTerm("en", "Delete the app password"); len(got) != 1 {
		t.Fatalf("the English check misses a short form: %v", got)
	}
	if got := offTerm("ja", "このアプリパスワード"); len(got) != 1 {
		t.Fatalf("the Japanese check misses a short form: %v", got)
	}
	if got := offTerm("en", "Use a third-party app password; Third-party app passwords, /security/app-passwords"); len(got) != 0 {
		t.Fatalf("the English check flags the term: %v", got)
	}
	for l, msgs := range catalog {
		for k, v := range msgs {
			for _, bad := range offTerm(l, v) {
				t.Errorf("catalog %s %s: %q", l, k, bad)
			}
		}
	}
	tmpls, _ := fs.Glob(assets, "templates/*.html")
	for _, n := range tmpls {
		b, _ := fs.ReadFile(assets, n)
		for _, l := range []string{"en", "ja"} {
			for _, bad := range offTerm(l, string(b)) {
				t.Errorf("%s: %q", n, bad)
			}
		}
	}
	// The messages' text: every string literal of the files that write them.
	for _, f := range []string{"messages.go", "../account/notify.go", "../account/sending.go", "../account/service.go", "../account/apppass.go"} {
		file, err := parser.ParseFile(token.NewFileSet(), f, nil, 0) // no comments
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, _ := strconv.Unquote(lit.Value)
			for _, l := range []string{"en", "ja"} {
				for _, bad := range offTerm(l, s) {
					t.Errorf("%s: %q", f, bad)
				}
			}
			return true
		})
	}
}

// TestManageAndSigninHelp: the Manage list says when to delete a password
// (the seed's advice); a failed sign-in puts the focus on the password,
// marked invalid and described by the error; the throttle's refusal says
// why and how long to wait, with Retry-After.
func TestManageAndSigninHelp(t *testing.T) {
	e := newEnvAuth(t, false, func(c *auth.Config) { c.WebAccountThrottle = slowThrottle })
	e.member("alice@new.example", "Alice")
	for _, l := range []string{"en", "ja"} {
		c, _ := signedIn(t, e, "alice@new.example", l)
		has(t, c.get("/security/app-passwords"), tr(l, "apps.deletehint"))
	}
	has(t, e.client().get("/signin"), `id="email" name="email" type="email" autocomplete="username" required autofocus`)

	c := e.client()
	r := c.signinForm("alice@new.example", "wrong")
	wantStatus(t, r, 401)
	has(t, r, `<div class="alert" role="alert" id="signin-error">`,
		`id="password" name="password" type="password" autocomplete="current-password" required autofocus aria-invalid="true" aria-describedby="signin-error"`,
		`value="alice@new.example"`)
	lacks(t, r, `required autofocus value="alice@new.example"`)

	wantStatus(t, c.signinForm("alice@new.example", "wrong again"), 401)
	r = c.signinForm("alice@new.example", testPassword)
	wantStatus(t, r, 429)
	if r.Header.Get("Retry-After") != "120" {
		t.Errorf("Retry-After %q", r.Header.Get("Retry-After"))
	}
	has(t, r, "Wait 2 minutes", "To stop password guessing")
	wantStatus(t, c.get("/lang/ja"), 303)
	r = c.signinForm("alice@new.example", testPassword)
	wantStatus(t, r, 429)
	has(t, r, "2分待ってから", "パスワードの推測を防ぐため")
}

const chromeUA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36"

// TestMemberTimeZone: the zone the browser sends with the sign-in form is
// the member's until they choose another on the Security page; the pages
// and the notices (English and Japanese, page and INBOX text) show times in
// it and name the browser as people do, with one parser for both languages.
func TestMemberTimeZone(t *testing.T) {
	e := newEnv(t, false)
	m := e.member("alice@new.example", "Alice")
	c := e.client()
	tok := c.csrf("/signin")
	wantStatus(t, c.post("/signin", url.Values{"csrf": {tok}, "email": {"alice@new.example"}, "password": {testPassword},
		"next": {"/security"}, "tz": {"Asia/Tokyo"}}), 303)
	r := c.get("/security")
	has(t, r, "<option selected>Asia/Tokyo</option>", "Times are shown in Asia/Tokyo.")
	tok = c.csrf("/security")

	create := func(name string) {
		t.Helper()
		c.created(c.post("/security/app-passwords", url.Values{"csrf": {tok}, "name": {name}}, "User-Agent", chromeUA))
	}
	create("Thunderbird") // 2025-03-01 09:00 UTC
	list, err := e.db.Messages(t.Context(), m.ID)
	if err != nil || len(list) != 1 {
		t.Fatal(list, err)
	}
	if b := list[0].Body; !strings.Contains(b, "Browser: Chrome on Linux\n") || !strings.Contains(b, "Time: Mar 1, 2025, 18:00 JST\n") || strings.Contains(b, "Mozilla") {
		t.Fatalf("INBOX text:\n%s", b)
	}
	has(t, c.get("/messages"), "Browser: Chrome on Linux", "Mar 1, 2025, 18:00 JST")
	wantStatus(t, c.get("/lang/ja"), 303)
	has(t, c.get("/messages"), "ブラウザ: Chrome（Linux）", "2025年3月1日 18:00 JST")

	// Chosen on the Security page; a later sign-in's browser zone does not
	// override the choice.
	r = c.post("/security/timezone", url.Values{"csrf": {tok}, "tz": {"Mars/Olympus"}})
	wantStatus(t, r, 400)
	has(t, r, "タイムゾーンは一覧から選んでください。")
	wantStatus(t, c.post("/security/timezone", url.Values{"csrf": {tok}, "tz": {"America/New_York"}}), 303)
	has(t, c.get("/security?done=timezone"), "<option selected>America/New_York</option>", "タイムゾーンを保存しました。")
	wantStatus(t, c.post("/security/timezone", url.Values{"tz": {"Asia/Tokyo"}}), 403) // CSRF
	c2 := e.client()
	tok2 := c2.csrf("/signin")
	wantStatus(t, c2.post("/signin", url.Values{"csrf": {tok2}, "email": {"alice@new.example"}, "password": {testPassword},
		"next": {"/security"}, "tz": {"Europe/London"}}), 303)
	has(t, c2.get("/security"), "<option selected>America/New_York</option>")
	wantStatus(t, c.get("/lang/en"), 303)
	e.advance(time.Minute)
	create("Phone")
	has(t, c.get("/messages"), "Time: Mar 1, 2025, 04:01 EST", "Browser: Chrome on Linux")
	if b := e.svc.PausedMessage(t.Context(), m, e.Now().Add(15*time.Minute), "192.0.2.9").Body; !strings.Contains(b, "until Mar 1, 2025, 04:16 EST.") {
		t.Errorf("pause notice:\n%s", b)
	}
}
