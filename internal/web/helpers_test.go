package web

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/auth"
	"github.com/postern/postern/internal/passhash"
	"github.com/postern/postern/internal/store/sqlstore"
	"github.com/postern/postern/internal/store/storetest"
)

const testPassword = "correct horse battery"

// env is a web server over a real SQLite store and a real authentication
// gateway, with a clock the test moves.
type env struct {
	t   *testing.T
	db  *sqlstore.DB
	svc *account.Service
	gw  *auth.Gateway
	srv *Server
	ts  *httptest.Server

	mu  sync.Mutex
	now time.Time
	off time.Duration // how far advance moved: the gateway's clock is the wall clock plus off
}

// gwNow is the gateway's clock: its throttles sleep real time, so it runs
// with the wall clock, moved forward by advance like the service's.
func (e *env) gwNow() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return time.Now().Add(e.off)
}

func (e *env) Now() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *env) advance(d time.Duration) {
	e.mu.Lock()
	e.now = e.now.Add(d)
	e.off += d
	e.mu.Unlock()
}

func newEnv(t *testing.T, secure bool) *env { return newEnvAuth(t, secure, nil) }

// fastThrottle keeps the per-IP and per-account delays of the gateway at
// milliseconds, so that tests of other things are not slowed by failures.
var fastThrottle = auth.ThrottleConfig{Base: time.Millisecond, Max: 2 * time.Millisecond}

// newEnvAuth is newEnv with mod applied to the gateway's configuration
// (throttles with millisecond delays by default).
func newEnvAuth(t *testing.T, secure bool, mod func(*auth.Config)) *env {
	t.Helper()
	e := &env{t: t, db: storetest.OpenSQLite(t), now: time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)}
	e.svc = account.NewService(e.db, passhash.New(passhash.Params{Memory: 64, Time: 1, Threads: 1}),
		account.Config{Key: []byte("0123456789abcdef0123456789abcdef"), BaseURL: "https://mail.example.com"})
	e.svc.Now = e.Now
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e.svc.Log = log
	acfg := auth.Config{Service: e.svc, Store: e.db, Key: e.svc.Config.Key, Log: log, Now: e.gwNow,
		ThrottleConfig: fastThrottle, WebAccountThrottle: fastThrottle, FlushInterval: 10 * time.Millisecond}
	if mod != nil {
		mod(&acfg)
	}
	gw, err := auth.New(acfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Close() })
	e.gw = gw
	e.srv = New(Config{Service: e.svc, Sessions: e.db, Auth: gw, Log: log, Now: e.Now, Secure: secure, Mail: e.db.Mail(),
		Settings: ServerSettings{Host: "mail.example.com", IMAPSPort: 993, IMAPPort: 143, SubmissionsPort: 465,
			SubmissionPort: 587, POP3SPort: 995, WebPort: 443, WebTLS: true}})
	if secure {
		e.ts = httptest.NewTLSServer(e.srv)
	} else {
		e.ts = httptest.NewServer(e.srv)
	}
	t.Cleanup(e.ts.Close)
	ctx := context.Background()
	if _, err := e.svc.AddDomain(ctx, "old.example", time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.AddDomain(ctx, "new.example", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) member(email, name string) account.Member {
	e.t.Helper()
	m, err := e.svc.AddMember(context.Background(), email, name, testPassword)
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

// client is a cookie-jar client that does not follow redirects, like curl -c -b.
type client struct {
	t   *testing.T
	e   *env
	h   *http.Client
	jar *cookiejar.Jar
}

func (e *env) client() *client {
	jar, _ := cookiejar.New(nil)
	h := e.ts.Client()
	h = &http.Client{Transport: h.Transport, Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &client{t: e.t, e: e, h: h, jar: jar}
}

type resp struct {
	*http.Response
	body []byte
}

func (r resp) json(v any) {
	if err := json.Unmarshal(r.body, v); err != nil {
		panic("decode " + string(r.body) + ": " + err.Error())
	}
}

func (r resp) errCode() string {
	var b apiErrorBody
	json.Unmarshal(r.body, &b)
	return b.Error.Code
}

func (c *client) do(req *http.Request) resp {
	c.t.Helper()
	res, err := c.h.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res, b}
}

// api sends a JSON request as curl -H 'Content-Type: application/json' would.
func (c *client) api(method, path string, body any, hdr ...string) resp {
	c.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.e.ts.URL+path, r)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return c.do(req)
}

func (c *client) get(path string) resp {
	c.t.Helper()
	req, _ := http.NewRequest("GET", c.e.ts.URL+path, nil)
	return c.do(req)
}

func (c *client) post(path string, form url.Values, hdr ...string) resp {
	c.t.Helper()
	req, _ := http.NewRequest("POST", c.e.ts.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return c.do(req)
}

func (c *client) signinAPI(email, pw string) resp {
	c.t.Helper()
	return c.api("POST", "/api/v1/session", map[string]string{"email": email, "password": pw})
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf fetches path and returns the CSRF token of its forms.
func (c *client) csrf(path string) string {
	c.t.Helper()
	r := c.get(path)
	m := csrfRE.FindSubmatch(r.body)
	if m == nil {
		c.t.Fatalf("GET %s: %d, no csrf token in %s", path, r.StatusCode, r.body)
	}
	return string(m[1])
}

// signinForm signs in through the HTML form.
func (c *client) signinForm(email, pw string) resp {
	c.t.Helper()
	tok := c.csrf("/signin")
	return c.post("/signin", url.Values{"csrf": {tok}, "email": {email}, "password": {pw}, "next": {"/security"}})
}

func wantStatus(t *testing.T, r resp, status int) {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d; body: %s", r.Request.Method, r.Request.URL.Path, r.StatusCode, status, r.body)
	}
}

func wantCode(t *testing.T, r resp, status int, code string) {
	t.Helper()
	wantStatus(t, r, status)
	if got := r.errCode(); got != code {
		t.Fatalf("%s %s: error code %q, want %q; body: %s", r.Request.Method, r.Request.URL.Path, got, code, r.body)
	}
}

// created follows the redirect of a successful "Create password" POST (r)
// to the one-time view of the new password, and returns that page.
func (c *client) created(r resp) resp {
	c.t.Helper()
	wantStatus(c.t, r, 303)
	loc := r.Header.Get("Location")
	if !strings.HasPrefix(loc, "/security/app-passwords/created?view=") {
		c.t.Fatalf("create redirected to %q", loc)
	}
	page := c.get(loc)
	wantStatus(c.t, page, 200)
	return page
}
