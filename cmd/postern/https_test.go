package main

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/postern/postern/internal/proxyproto"
)

// servedHere is the status of the routes behind the redirect in these tests.
const servedHere = 299

func TestHTTPSRedirect(t *testing.T) {
	trusted, err := proxyproto.ParseTrusted("10.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{flags: &serveFlags{}}
	s.flags.scaleout.trusted = trusted
	routes := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(servedHere) })
	port := 8443
	h := s.forwarded(&httpsRedirect{next: routes, port: func() int { return port }})

	for _, c := range []struct {
		method, target, host, peer, proto string
		port                              int
		code                              int
		location                          string
	}{
		{"GET", "/security?x=1", "mail.example.com:8080", "192.0.2.1:1", "", 8443, 301, "https://mail.example.com:8443/security?x=1"},
		{"HEAD", "/", "mail.example.com", "192.0.2.1:1", "", 443, 301, "https://mail.example.com/"},
		{"POST", "/signin", "mail.example.com", "192.0.2.1:1", "", 443, 308, "https://mail.example.com/signin"},
		{"PUT", "/dav/calendars/a/b/c.ics", "mail.example.com", "192.0.2.1:1", "", 443, 308, "https://mail.example.com/dav/calendars/a/b/c.ics"},
		{"GET", "/", "[2001:db8::1]:8080", "192.0.2.1:1", "", 443, 301, "https://[2001:db8::1]/"},
		{"GET", "/", "[2001:db8::1]:8080", "192.0.2.1:1", "", 8443, 301, "https://[2001:db8::1]:8443/"},
		{"OPTIONS", "*", "mail.example.com", "192.0.2.1:1", "", 443, 308, "https://mail.example.com/"},
		{"GET", "/.well-known/mta-sts.txt", "mta-sts.example.com", "192.0.2.1:1", "", 443, 301, "https://mta-sts.example.com/.well-known/mta-sts.txt"},
		// What stays on plain HTTP.
		{"GET", "/.well-known/acme-challenge/abc", "mail.example.com", "192.0.2.1:1", "", 443, servedHere, ""},
		{"GET", "/.well-known/autoconfig/mail/config-v1.1.xml", "mail.example.com", "192.0.2.1:1", "", 443, servedHere, ""},
		{"GET", "/mail/config-v1.1.xml?emailaddress=a@example.com", "autoconfig.example.com", "192.0.2.1:1", "", 443, servedHere, ""},
		{"POST", "/autodiscover/autodiscover.xml", "autodiscover.example.com", "192.0.2.1:1", "", 443, servedHere, ""},
		{"POST", "/Autodiscover/Autodiscover.xml", "autodiscover.example.com", "192.0.2.1:1", "", 443, servedHere, ""},
		{"GET", "/healthz", "127.0.0.1:8080", "127.0.0.1:1", "", 443, servedHere, ""},
		{"GET", "/readyz", "127.0.0.1:8080", "127.0.0.1:1", "", 443, servedHere, ""},
		{"GET", "/healthz/x", "mail.example.com", "192.0.2.1:1", "", 443, 301, "https://mail.example.com/healthz/x"},
		// A trusted load balancer that ended TLS: already HTTPS.
		{"GET", "/security", "mail.example.com", "10.0.0.5:1", "https", 443, servedHere, ""},
		// The same header from anyone else proves nothing.
		{"GET", "/security", "mail.example.com", "192.0.2.1:1", "https", 443, 301, "https://mail.example.com/security"},
	} {
		port = c.port
		r := httptest.NewRequest(c.method, "http://placeholder/", nil)
		r.RequestURI = c.target
		if c.target == "*" {
			r.URL.Path, r.URL.RawQuery = "*", ""
		} else {
			r.URL, _ = r.URL.Parse(c.target)
		}
		r.Host, r.RemoteAddr = c.host, c.peer
		if c.proto != "" {
			r.Header.Set("X-Forwarded-Proto", c.proto)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != c.code || w.Header().Get("Location") != c.location {
			t.Errorf("%s %s (Host %s, from %s): %d %q, want %d %q", c.method, c.target, c.host, c.peer,
				w.Code, w.Header().Get("Location"), c.code, c.location)
		}
	}
}

func TestHSTSOnlyOverTLS(t *testing.T) {
	h := hsts(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	r := httptest.NewRequest("GET", "/", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if v := w.Header().Get("Strict-Transport-Security"); v != "" {
		t.Errorf("plain HTTP: HSTS %q", v)
	}
	r.TLS = &tls.ConnectionState{}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if v := w.Header().Get("Strict-Transport-Security"); v != "max-age=31536000" {
		t.Errorf("HTTPS: HSTS %q, want max-age=31536000", v)
	}

	// Without --https-addr the web listener serves everything itself.
	s := &server{flags: &serveFlags{}, web: http.NewServeMux()}
	s.web.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(servedHere) })
	web, https := s.webHandlers()
	if https != nil {
		t.Error("an HTTPS handler without --https-addr")
	}
	w = httptest.NewRecorder()
	web.ServeHTTP(w, httptest.NewRequest("GET", "/security", nil))
	if w.Code != servedHere {
		t.Errorf("without --https-addr GET /security: %d", w.Code)
	}
}
