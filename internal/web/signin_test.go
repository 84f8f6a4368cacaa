package web

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/auth"
)

// slowThrottle lets two failures through, then wants an hour: more than
// its one-minute backlog, so the next attempt is refused at once.
var slowThrottle = auth.ThrottleConfig{Free: 1, Base: time.Hour, Max: time.Hour, Backlog: time.Minute}

// TestSigninThrottle: after the free failures against one address the next
// web attempt (API, form or re-authentication) is refused with 429, even
// with the right password, and unknown addresses alike; a quiet hour forgets.
func TestSigninThrottle(t *testing.T) {
	e := newEnvAuth(t, false, func(c *auth.Config) { c.WebAccountThrottle = slowThrottle })
	e.member("alice@new.example", "")
	c := e.client()
	for i := range 2 {
		wantCode(t, c.signinAPI("alice@new.example", fmt.Sprintf("wrong %d", i)), 401, "unauthorized")
	}
	wantCode(t, c.signinAPI("alice@new.example", testPassword), 429, codeThrottled)
	r := e.client().signinForm("alice@new.example", testPassword)
	wantStatus(t, r, 429)
	if !strings.Contains(string(r.body), "Too many failed sign-in attempts") {
		t.Errorf("form: %s", r.body)
	}
	e.advance(61 * time.Minute)
	wantStatus(t, c.signinAPI("alice@new.example", testPassword), 200)

	// Unknown addresses are throttled alike, so the refusal tells nothing.
	// A password retried (a stale one) does not count again.
	for _, pw := range []string{"wrong 0", "wrong 0", "wrong 1"} {
		wantCode(t, e.client().signinAPI("ghost@new.example", pw), 401, "unauthorized")
	}
	wantCode(t, e.client().signinAPI("ghost@new.example", "wrong 2"), 429, codeThrottled)

	// Re-authentication counts on the same schedule.
	for i := range 2 {
		wantCode(t, c.api("POST", "/api/v1/me/app-passwords", map[string]string{"name": "x", "password": fmt.Sprintf("wrong %d", i)}),
			403, codeReauth)
	}
	wantCode(t, c.api("POST", "/api/v1/me/app-passwords", map[string]string{"name": "x", "password": testPassword}), 429, codeThrottled)
}

// TestSigninKnownDevice: a browser that signed in before keeps its own
// schedule: strangers' failures that make the address's schedule refuse
// every other browser leave it untouched, and its own failures are
// throttled like anyone's. Signing out keeps the browser known.
func TestSigninKnownDevice(t *testing.T) {
	e := newEnvAuth(t, false, func(c *auth.Config) { c.WebAccountThrottle = slowThrottle })
	e.member("alice@new.example", "")
	e.member("bob@new.example", "")
	mine := e.client()
	wantStatus(t, mine.signinForm("alice@new.example", testPassword), 303)
	wantStatus(t, mine.signinAPI("bob@new.example", testPassword), 200) // a second member on the same browser
	wantStatus(t, mine.post("/signout", url.Values{"csrf": {mine.csrf("/security")}}), 303)
	// The attack: strangers fill the account's schedule.
	for i := range 2 {
		wantCode(t, e.client().signinAPI("alice@new.example", fmt.Sprintf("guess %d", i)), 401, "unauthorized")
	}
	wantCode(t, e.client().signinAPI("alice@new.example", testPassword), 429, codeThrottled)
	// The member's browser signs in as either member.
	wantStatus(t, mine.signinForm("alice@new.example", testPassword), 303)
	wantStatus(t, mine.signinAPI("bob@new.example", testPassword), 200)
	// A cookie does not open a faster lane for guessing: its own failures
	// follow the same schedule.
	for i := range 2 {
		wantCode(t, mine.signinAPI("alice@new.example", fmt.Sprintf("typo %d", i)), 401, "unauthorized")
	}
	wantCode(t, mine.signinAPI("alice@new.example", testPassword), 429, codeThrottled)
	// A forged or foreign token is no device.
	forged := e.client()
	forged.jar.SetCookies(mustURL(e.ts.URL), []*http.Cookie{{Name: "postern_device", Value: strings.Repeat("A", 43), Path: "/"}})
	wantCode(t, forged.signinAPI("bob@new.example", "guess"), 401, "unauthorized")
	wantCode(t, forged.signinAPI("bob@new.example", "guess 2"), 401, "unauthorized")
	wantCode(t, forged.signinAPI("bob@new.example", testPassword), 429, codeThrottled)
}

// TestSigninIPThrottle: failures from one address against several accounts
// slow that address down (the gateway's per-IP throttle), for any account.
func TestSigninIPThrottle(t *testing.T) {
	e := newEnvAuth(t, false, func(c *auth.Config) { c.ThrottleConfig = slowThrottle })
	e.member("alice@new.example", "")
	wantCode(t, e.client().signinAPI("bob@new.example", "wrong password"), 401, "unauthorized")
	wantStatus(t, e.client().signinForm("carol@new.example", "wrong password"), 401)
	wantCode(t, e.client().signinAPI("alice@new.example", testPassword), 429, codeThrottled)
}

// waitWebRecords waits until the gateway has written n login records of the
// web for user.
func (e *env) waitWebRecords(user string, n int) []auth.LoginRecord {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		recs, err := e.db.LoginRecords(context.Background(), 0, true, 1000)
		if err != nil {
			e.t.Fatal(err)
		}
		var out []auth.LoginRecord
		for _, r := range recs {
			if r.Protocol == auth.Web && r.Username == user {
				out = append(out, r)
			}
		}
		if len(out) >= n || time.Now().After(deadline) {
			if len(out) != n {
				e.t.Fatalf("%d web login records of %s, want %d: %+v", len(out), user, n, out)
			}
			return out
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSigninLoginRecords: web attempts are login records of protocol "web",
// with how they came in; never the password.
func TestSigninLoginRecords(t *testing.T) {
	e := newEnv(t, false)
	m := e.member("alice@new.example", "")
	for i := range 3 {
		wantCode(t, e.client().signinAPI(m.Email, fmt.Sprintf("wrong %d", i)), 401, "unauthorized")
	}
	wantStatus(t, e.client().signinForm(m.Email, testPassword), 303)
	recs := e.waitWebRecords(m.Email, 4)
	mechs := map[string]int{}
	for _, r := range recs {
		mechs[r.Mechanism+" "+r.Result]++
		if r.MemberID != m.ID || r.IP != "127.0.0.1" || r.TLS {
			t.Errorf("record %+v", r)
		}
		if strings.Contains(fmt.Sprint(r), "wrong") || strings.Contains(fmt.Sprint(r), testPassword) {
			t.Errorf("a password in record %+v", r)
		}
	}
	if mechs["API fail"] != 3 || mechs["FORM ok"] != 1 {
		t.Errorf("records by mechanism and result: %v", mechs)
	}
}

// TestWebFailuresPauseThirdPartyLogins: 100 failures mixing the API and form
// sign-ins, re-authentication, the current password of a password change and
// IMAP pause third-party logins (docs/security.md): the right app
// password then fails over the gateway. The member still signs in to the web
// and deletes the app password; the pause holds until its time.
func TestWebFailuresPauseThirdPartyLogins(t *testing.T) {
	e := newEnv(t, false)
	m := e.member("alice@new.example", "")
	c := e.client()
	wantStatus(t, c.signinAPI(m.Email, testPassword), 200)
	var created struct{ ID, Password string }
	c.api("POST", "/api/v1/me/app-passwords", map[string]string{"name": "Phone"}).json(&created)
	imap := func(secret string) error {
		_, err := e.gw.Authenticate(context.Background(), auth.Attempt{User: m.Email, Secret: secret, Protocol: auth.IMAP,
			Mechanism: "PLAIN", RemoteIP: netip.MustParseAddr("192.0.2.7"), TLS: true})
		return err
	}
	if err := imap(created.Password); err != nil {
		t.Fatalf("app password before: %v", err)
	}
	for i := range 100 {
		guess := fmt.Sprintf("guess number %d", i)
		switch i % 5 {
		case 0:
			wantCode(t, e.client().signinAPI(m.Email, guess), 401, "unauthorized")
		case 1:
			wantStatus(t, e.client().signinForm(m.Email, guess), 401)
		case 2:
			wantCode(t, c.api("POST", "/api/v1/me/app-passwords", map[string]string{"name": "x", "password": guess}), 403, codeReauth)
		case 3:
			wantCode(t, c.api("PUT", "/api/v1/me/password", map[string]string{"current": guess, "new": "a brand new passphrase"}),
				403, account.EFORBIDDEN)
		case 4:
			if err := imap(guess); account.ErrorCode(err) != account.EUNAUTHORIZED {
				t.Fatalf("IMAP guess: %v", err)
			}
		}
	}
	if st, err := e.db.AuthState(context.Background(), m.ID); err != nil || !st.PausedUntil.After(time.Now()) {
		t.Fatalf("after 100 failures: %+v %v, want paused", st, err)
	}
	// The pause holds back the main password only: the member's apps go on.
	if err := imap(created.Password); err != nil {
		t.Fatalf("app password after 100 failures: %v", err)
	}
	// The web is not paused: the member signs in and deletes the app password.
	other := e.client()
	wantStatus(t, other.signinAPI(m.Email, testPassword), 200)
	wantStatus(t, e.client().signinForm(m.Email, testPassword), 303)
	wantStatus(t, other.api("DELETE", "/api/v1/me/app-passwords/"+created.ID, nil), 204)
	if err := imap(testPassword); account.FailureReason(err) != "paused" {
		t.Fatalf("main password over IMAP after the web sign-in: %v, want paused", err)
	}
	msgs, err := e.db.Messages(context.Background(), m.ID)
	if err != nil {
		t.Fatal(err)
	}
	paused := 0
	for _, msg := range msgs {
		if msg.Kind == account.MsgAccountPaused {
			paused++
		}
	}
	if paused != 1 {
		t.Errorf("%d paused messages, want 1", paused)
	}
	e.waitWebRecords(m.Email, 1+80+2)
}

// TestPasswordChangeThroughTheGateway: the current password of a change is
// checked by the gateway (a wrong one counts), and the change goes through.
func TestPasswordChangeThroughTheGateway(t *testing.T) {
	e := newEnv(t, false)
	m := e.member("alice@new.example", "")
	c := e.client()
	wantStatus(t, c.signinAPI(m.Email, testPassword), 200)
	wantCode(t, c.api("PUT", "/api/v1/me/password", map[string]string{"current": "not it at all", "new": "a brand new passphrase"}),
		403, account.EFORBIDDEN)
	if st, err := e.db.AuthState(context.Background(), m.ID); err != nil || st.Failures != 1 {
		t.Fatalf("counter after a wrong current password: %+v %v", st, err)
	}
	wantStatus(t, c.api("PUT", "/api/v1/me/password", map[string]string{"current": testPassword, "new": "a brand new passphrase"}), 204)
	wantCode(t, e.client().signinAPI(m.Email, testPassword), 401, "unauthorized")
	wantStatus(t, e.client().signinForm(m.Email, "a brand new passphrase"), 303)
	if r := e.client().post("/signin", url.Values{"email": {m.Email}}); r.StatusCode != 403 {
		t.Errorf("sign-in without the form's token: %d", r.StatusCode)
	}
}

// TestSigninRecordsLanguage: the language a member signs in with is the
// one Postern's own mail to them is written in.
func TestSigninRecordsLanguage(t *testing.T) {
	e := newEnv(t, false)
	m := e.member("alice@new.example", "")
	c := e.client()
	c.get("/lang/ja")
	wantStatus(t, c.signinForm("alice@new.example", testPassword), 303)
	s, err := e.db.Queue().QueueSender(context.Background(), m.ID)
	if err != nil || s.Language != "ja" || s.Email != "alice@new.example" {
		t.Fatalf("sender %+v, %v", s, err)
	}
}
