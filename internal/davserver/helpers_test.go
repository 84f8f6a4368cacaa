package davserver_test

import (
	"context"
	"encoding/xml"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/auth"
	"github.com/postern/postern/internal/davserver"
	"github.com/postern/postern/internal/passhash"
	"github.com/postern/postern/internal/store/sqlstore"
	"github.com/postern/postern/internal/store/storetest"
)

// env is a DAV handler over the real authentication gateway and a real
// store, served on a loopback socket.
type env struct {
	t      testing.TB
	db     *sqlstore.DB
	svc    *account.Service
	gw     *auth.Gateway
	rec    *recordingAuth
	h      http.Handler
	srv    *httptest.Server
	client *http.Client

	alice, bob         account.Member
	alicePass, bobPass string // app passwords (the domain is enforced)
}

const mainPassword = "correct horse battery staple"

func newEnv(t testing.TB) *env {
	return newEnvOn(t, storetest.OpenSQLite(t))
}

func newEnvOn(t testing.TB, db *sqlstore.DB) *env {
	t.Helper()
	return newEnvWith(t, db, nil)
}

// newEnvWith is newEnvOn with the handler's configuration changed by
// configure (nil: the defaults but for a 64 KiB object limit).
func newEnvWith(t testing.TB, db *sqlstore.DB, configure func(*davserver.Config)) *env {
	t.Helper()
	ctx := context.Background()
	key := []byte("test key of the dav server tests")
	svc := account.NewService(db, passhash.New(passhash.Params{Memory: 64, Time: 1, Threads: 1}), account.Config{Key: key})
	svc.Log = slog.New(slog.DiscardHandler)
	gw, err := auth.New(auth.Config{
		Service: svc, Store: db, Key: key, Log: slog.New(slog.DiscardHandler),
		// No throttling delays: these tests fail logins on purpose.
		ThrottleConfig: auth.ThrottleConfig{Free: 1 << 20},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Close() })
	e := &env{t: t, db: db, svc: svc, gw: gw}
	if _, err := svc.AddDomain(ctx, "example.com", time.Now()); err != nil {
		t.Fatal(err)
	}
	e.alice, e.alicePass = e.member("alice@example.com")
	e.bob, e.bobPass = e.member("bob@example.com")
	e.rec = &recordingAuth{Authenticator: gw}
	cfg := davserver.Config{Auth: e.rec, Store: db.DAV(), Log: slog.New(slog.DiscardHandler), MaxObjectSize: 64 << 10}
	if configure != nil {
		configure(&cfg)
	}
	e.h = davserver.New(cfg)
	e.srv = httptest.NewServer(e.h)
	t.Cleanup(e.srv.Close)
	e.client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return e
}

func (e *env) member(email string) (account.Member, string) {
	e.t.Helper()
	ctx := context.Background()
	m, err := e.svc.AddMember(ctx, email, "Name of "+email, mainPassword)
	if err != nil {
		e.t.Fatal(err)
	}
	_, pw, err := e.svc.CreateAppPassword(ctx, m, "dav test", account.Actor{})
	if err != nil {
		e.t.Fatal(err)
	}
	return m, pw
}

// reply is a response with its body read.
type reply struct {
	*http.Response
	body string
}

// do sends a request as user:pass ("" user: no credentials); hdr is
// alternating header names and values.
func (e *env) do(method, path, user, pass, body string, hdr ...string) reply {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp, string(b)}
}

// as sends a request as alice.
func (e *env) as(method, path, body string, hdr ...string) reply {
	e.t.Helper()
	return e.do(method, path, e.alice.Email, e.alicePass, body, hdr...)
}

func (e *env) want(r reply, status int) reply {
	e.t.Helper()
	if r.StatusCode != status {
		e.t.Fatalf("%s %s: status %d, want %d\n%s", r.Request.Method, r.Request.URL.Path, r.StatusCode, status, r.body)
	}
	return r
}

// recordingAuth records every attempt (secret blanked) and can fail as a
// database outage would.
type recordingAuth struct {
	auth.Authenticator
	mu          sync.Mutex
	attempts    []auth.Attempt
	unavailable bool
}

func (a *recordingAuth) Authenticate(ctx context.Context, at auth.Attempt) (auth.Login, error) {
	a.mu.Lock()
	rec := at
	rec.Secret = ""
	a.attempts = append(a.attempts, rec)
	down := a.unavailable
	a.mu.Unlock()
	if down {
		return auth.Login{}, &account.Error{Code: account.EUNAVAILABLE, Message: "Temporary failure."}
	}
	return a.Authenticator.Authenticate(ctx, at)
}

func (a *recordingAuth) last() auth.Attempt {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.attempts[len(a.attempts)-1]
}

func (a *recordingAuth) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.attempts)
}

// multistatus is a parsed 207 body.
type msResponse struct {
	Href     string `xml:"href"`
	Status   string `xml:"status"`
	Propstat []struct {
		Prop struct {
			Props []struct {
				XMLName xml.Name
				Inner   string `xml:",innerxml"`
			} `xml:",any"`
		} `xml:"prop"`
		Status string `xml:"status"`
	} `xml:"propstat"`
}

type ms struct {
	Responses []msResponse `xml:"response"`
	SyncToken string       `xml:"sync-token"`
}

func parseMS(t testing.TB, r reply) ms {
	t.Helper()
	if r.StatusCode != http.StatusMultiStatus {
		t.Fatalf("%s %s: status %d, want 207\n%s", r.Request.Method, r.Request.URL.Path, r.StatusCode, r.body)
	}
	var m ms
	if err := xml.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("parse multistatus: %v\n%s", err, r.body)
	}
	return m
}

// prop returns the inner XML of a property found (200) for href, and
// whether it was.
func (m ms) prop(href, local string) (string, bool) {
	for _, r := range m.Responses {
		if r.Href != href {
			continue
		}
		for _, ps := range r.Propstat {
			if !strings.Contains(ps.Status, " 200 ") {
				continue
			}
			for _, p := range ps.Prop.Props {
				if p.XMLName.Local == local {
					return p.Inner, true
				}
			}
		}
	}
	return "", false
}

func (m ms) hrefs() []string {
	var out []string
	for _, r := range m.Responses {
		out = append(out, r.Href)
	}
	return out
}

func (m ms) status(href string) string {
	for _, r := range m.Responses {
		if r.Href == href {
			return r.Status
		}
	}
	return ""
}

const propfindAll = `<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>`

func event(uid, start, end string, extra ...string) string {
	return "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:" + uid +
		"\r\nDTSTAMP:20300101T000000Z\r\nDTSTART:" + start + "\r\nDTEND:" + end + "\r\nSUMMARY:Event " + uid + "\r\n" +
		strings.Join(extra, "") + "END:VEVENT\r\nEND:VCALENDAR\r\n"
}

func card(uid, fn, email string) string {
	return "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:" + uid + "\r\nFN:" + fn + "\r\nN:" + fn + ";;;;\r\nEMAIL:" + email + "\r\nEND:VCARD\r\n"
}
