package davserver_test

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/auth"
	"github.com/postern/postern/internal/davserver"
	"github.com/postern/postern/internal/store/storetest"
	"github.com/postern/postern/internal/tlsconf"
)

const wwwAuth = `Basic realm="Postern", charset="UTF-8"`

// Every failure is the same 401: no credentials, an unknown user, a wrong
// password, and the main password refused by the enforced domain's policy.
func TestAuthFailuresIdentical(t *testing.T) {
	e := newEnv(t)
	path := "/dav/calendars/alice@example.com/"
	cases := map[string]reply{
		"none":          e.do("PROPFIND", path, "", "", ""),
		"unknown user":  e.do("PROPFIND", path, "nobody@example.com", e.alicePass, ""),
		"wrong":         e.do("PROPFIND", path, e.alice.Email, e.alicePass+"x", ""),
		"main password": e.do("PROPFIND", path, e.alice.Email, mainPassword, ""),
		"other's pass":  e.do("PROPFIND", path, e.alice.Email, e.bobPass, ""),
	}
	var first string
	for name, r := range cases {
		if r.StatusCode != http.StatusUnauthorized || r.Header.Get("WWW-Authenticate") != wwwAuth {
			t.Errorf("%s: %d %q", name, r.StatusCode, r.Header.Get("WWW-Authenticate"))
		}
		if first == "" {
			first = r.body
		}
		if r.body != first {
			t.Errorf("%s: body %q differs from %q", name, r.body, first)
		}
	}
	// The right app password, with its spaces, in upper-case user name.
	grouped := account.GroupAppPassword(e.alicePass)
	e.want(e.do("PROPFIND", path, strings.ToUpper(e.alice.Email), grouped, "", "Depth", "0"), http.StatusMultiStatus)
}

// The web session cookie never opens DAV: only Basic credentials count.
func TestCookieNotAccepted(t *testing.T) {
	e := newEnv(t)
	r := e.do("PROPFIND", "/dav/", "", "", "", "Cookie", "__Host-session=whatever; session=x")
	if r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("cookie only: %d", r.StatusCode)
	}
}

// Each request authenticates (no cache): deleting the app password or
// turning the setting off fails the very next request.
func TestNoCredentialCache(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	path := "/dav/calendars/alice@example.com/"
	before := e.rec.count()
	for range 3 {
		e.want(e.as("PROPFIND", path, "", "Depth", "0"), http.StatusMultiStatus)
	}
	if n := e.rec.count() - before; n != 3 {
		t.Fatalf("%d authentications for 3 requests", n)
	}
	list, err := e.svc.AppPasswords(ctx, e.alice)
	if err != nil || len(list) != 1 {
		t.Fatalf("app passwords: %v %v", list, err)
	}
	if err := e.svc.DeleteAppPassword(ctx, e.alice, list[0].ID, account.Actor{}); err != nil {
		t.Fatal(err)
	}
	e.want(e.as("PROPFIND", path, "", "Depth", "0"), http.StatusUnauthorized)
}

// The attempt carries the protocol by path, BASIC, and the unmapped peer IP.
func TestAttempt(t *testing.T) {
	e := newEnv(t)
	e.as("PROPFIND", "/dav/calendars/alice@example.com/", "", "Depth", "0")
	if a := e.rec.last(); a.Protocol != auth.CalDAV || a.Mechanism != "BASIC" || a.User != "alice@example.com" || a.RemoteIP != netip.MustParseAddr("127.0.0.1") || a.TLS {
		t.Fatalf("caldav attempt: %+v", a)
	}
	e.as("PROPFIND", "/dav/addressbooks/alice@example.com/", "", "Depth", "0")
	if a := e.rec.last(); a.Protocol != auth.CardDAV {
		t.Fatalf("carddav attempt: %+v", a)
	}
	req := httptest.NewRequest("PROPFIND", "/dav/", nil)
	req.RemoteAddr = "[::ffff:192.0.2.7]:4444"
	req.TLS = &tls.ConnectionState{}
	req.SetBasicAuth(e.alice.Email, e.alicePass)
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, req)
	if a := e.rec.last(); a.RemoteIP != netip.MustParseAddr("192.0.2.7") || !a.TLS {
		t.Fatalf("mapped address not unmapped, or TLS not seen: %+v", a)
	}
}

// A database outage is a 503, not a 401 that would make clients ask for a
// new password.
func TestUnavailable(t *testing.T) {
	e := newEnv(t)
	e.rec.unavailable = true
	r := e.as("PROPFIND", "/dav/", "")
	if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("WWW-Authenticate") != "" {
		t.Fatalf("outage: %d %q", r.StatusCode, r.body)
	}
}

// Throttling and the policy are the gateway's: a member of an optional
// domain with the setting off logs in with the main password, and turning
// the setting on refuses it on the next request.
func TestSettingChange(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	if _, err := e.svc.AddDomain(ctx, "old.example", account.DefaultCutoff.AddDate(-1, 0, 0)); err != nil {
		t.Fatal(err)
	}
	m, err := e.svc.AddMember(ctx, "carol@old.example", "Carol", mainPassword)
	if err != nil {
		t.Fatal(err)
	}
	path := "/dav/calendars/carol@old.example/"
	e.want(e.do("PROPFIND", path, m.Email, mainPassword, "", "Depth", "0"), http.StatusMultiStatus)
	if err := e.svc.SetUseAppPasswords(ctx, m, true, account.Actor{}); err != nil {
		t.Fatal(err)
	}
	e.want(e.do("PROPFIND", path, m.Email, mainPassword, "", "Depth", "0"), http.StatusUnauthorized)
}

// Another member's tree, and anything outside the known layout, is 404.
func TestIsolation(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{
		"/dav/principals/bob@example.com/",
		"/dav/calendars/bob@example.com/",
		"/dav/calendars/bob@example.com/default/",
		"/dav/addressbooks/bob@example.com/default/",
		"/dav/calendars/alice@example.com/default/x/y",
		"/dav/elsewhere/",
	} {
		if r := e.as("PROPFIND", p, "", "Depth", "0"); r.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d", p, r.StatusCode)
		}
	}
	body := event("x", "20300101T100000Z", "20300101T110000Z")
	if r := e.as("PUT", "/dav/calendars/bob@example.com/default/x.ics", body); r.StatusCode != http.StatusNotFound {
		t.Errorf("PUT into bob's calendar: %d", r.StatusCode)
	}
	if r := e.as("DELETE", "/dav/calendars/bob@example.com/default/", ""); r.StatusCode != http.StatusNotFound {
		t.Errorf("DELETE bob's calendar: %d", r.StatusCode)
	}
}

// --plaintext-auth: without TLS (the server's or a trusted load balancer's,
// which cmd/postern marks in the context), a password is taken only where
// the mode allows it. A refused request gets 403 with the reason and no
// WWW-Authenticate, and its credentials never reach the gateway.
func TestPlaintextAuth(t *testing.T) {
	modes := map[tlsconf.Plaintext]*env{}
	for _, p := range []tlsconf.Plaintext{tlsconf.PlaintextNever, tlsconf.PlaintextLoopback, tlsconf.PlaintextAlways} {
		modes[p] = newEnvWith(t, storetest.OpenSQLite(t), func(c *davserver.Config) { c.Plaintext = p })
	}
	type request struct {
		remote   string
		tls      bool
		fwdTLS   bool   // marked by the trusted-proxy check
		fwdProto string // the header alone proves nothing
	}
	for _, tc := range []struct {
		name string
		req  request
		ok   map[tlsconf.Plaintext]bool
	}{
		{"loopback", request{remote: "127.0.0.1:5000"}, map[tlsconf.Plaintext]bool{tlsconf.PlaintextLoopback: true, tlsconf.PlaintextAlways: true}},
		{"loopback v6", request{remote: "[::1]:5000"}, map[tlsconf.Plaintext]bool{tlsconf.PlaintextLoopback: true, tlsconf.PlaintextAlways: true}},
		{"remote", request{remote: "192.0.2.7:5000"}, map[tlsconf.Plaintext]bool{tlsconf.PlaintextAlways: true}},
		{"remote with X-Forwarded-Proto", request{remote: "192.0.2.7:5000", fwdProto: "https"}, map[tlsconf.Plaintext]bool{tlsconf.PlaintextAlways: true}},
		{"remote over TLS", request{remote: "192.0.2.7:5000", tls: true}, map[tlsconf.Plaintext]bool{tlsconf.PlaintextNever: true, tlsconf.PlaintextLoopback: true, tlsconf.PlaintextAlways: true}},
		{"through a trusted proxy's TLS", request{remote: "192.0.2.7:0", fwdTLS: true}, map[tlsconf.Plaintext]bool{tlsconf.PlaintextNever: true, tlsconf.PlaintextLoopback: true, tlsconf.PlaintextAlways: true}},
	} {
		for p, e := range modes {
			for _, creds := range []bool{true, false} {
				req := httptest.NewRequest("PROPFIND", "/dav/calendars/alice@example.com/", nil)
				req.RemoteAddr = tc.req.remote
				req.Header.Set("Depth", "0")
				if tc.req.tls {
					req.TLS = &tls.ConnectionState{}
				}
				if tc.req.fwdTLS {
					req = req.WithContext(tlsconf.WithForwardedTLS(req.Context()))
				}
				if tc.req.fwdProto != "" {
					req.Header.Set("X-Forwarded-Proto", tc.req.fwdProto)
				}
				if creds {
					req.SetBasicAuth(e.alice.Email, e.alicePass)
				}
				before := e.rec.count()
				w := httptest.NewRecorder()
				e.h.ServeHTTP(w, req)
				attempts := e.rec.count() - before
				switch {
				case !tc.ok[p]:
					if w.Code != http.StatusForbidden || w.Header().Get("WWW-Authenticate") != "" ||
						!strings.Contains(w.Body.String(), "Use HTTPS: passwords are not accepted over plain HTTP") || attempts != 0 {
						t.Errorf("%s, %s, credentials %v: %d %q %q, %d attempts; want 403, refused unchecked", tc.name, p, creds, w.Code, w.Header().Get("WWW-Authenticate"), w.Body.String(), attempts)
					}
				case creds:
					if w.Code != http.StatusMultiStatus || attempts != 1 {
						t.Errorf("%s, %s: %d, %d attempts; want 207", tc.name, p, w.Code, attempts)
					}
				default:
					if w.Code != http.StatusUnauthorized || w.Header().Get("WWW-Authenticate") != wwwAuth {
						t.Errorf("%s, %s, no credentials: %d; want 401", tc.name, p, w.Code)
					}
				}
			}
		}
	}
}
