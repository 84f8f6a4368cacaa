package main

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/postern/postern/internal/proxyproto"
	"github.com/postern/postern/internal/tlsconf"
)

func TestForwardedClient(t *testing.T) {
	trusted, err := proxyproto.ParseTrusted("10.0.0.0/8,2001:db8:ffff::/48")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		peer string
		xff  []string
		want string // "" = keep the peer
	}{
		{"10.0.0.5:4000", []string{"203.0.113.7"}, "203.0.113.7"},
		// The client wrote the leftmost entries itself: the rightmost
		// untrusted one is the address the load balancer saw.
		{"10.0.0.5:4000", []string{"1.1.1.1, 203.0.113.7"}, "203.0.113.7"},
		{"10.0.0.5:4000", []string{"1.1.1.1", "203.0.113.7, 10.0.0.9"}, "203.0.113.7"},
		{"[2001:db8:ffff::1]:80", []string{"2001:db8::7"}, "2001:db8::7"},
		{"10.0.0.5:4000", []string{"[2001:db8::7]:5555"}, "2001:db8::7"},
		{"10.0.0.5:4000", []string{"::ffff:203.0.113.7"}, "203.0.113.7"},
		{"10.0.0.5:4000", []string{"10.0.0.8, 10.0.0.9"}, "10.0.0.8"}, // all trusted: the leftmost
		{"10.0.0.5:4000", nil, ""}, // health check: the balancer itself
		{"10.0.0.5:4000", []string{"garbage"}, ""},
		{"10.0.0.5:4000", []string{"1.1.1.1, unknown"}, ""},
		{"192.0.2.1:4000", []string{"203.0.113.7"}, ""}, // not from a balancer: ignored
		{"[::ffff:10.0.0.5]:4000", []string{"203.0.113.7"}, "203.0.113.7"},
	} {
		ip, ok := forwardedClient(c.peer, c.xff, trusted)
		got := ""
		if ok {
			got = ip.String()
		}
		if got != c.want {
			t.Errorf("peer %s, X-Forwarded-For %q: got %q, want %q", c.peer, c.xff, got, c.want)
		}
	}
}

// X-Forwarded-Proto: https counts only from a trusted load balancer, and
// only when no entry says otherwise; the middleware decides it on the real
// peer, before X-Forwarded-For replaces RemoteAddr with the client.
func TestForwardedTLS(t *testing.T) {
	trusted, err := proxyproto.ParseTrusted("10.0.0.0/8,127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		peer  string
		proto []string
		want  bool
	}{
		{"10.0.0.5:4000", []string{"https"}, true},
		{"10.0.0.5:4000", []string{"HTTPS"}, true},
		{"[::ffff:10.0.0.5]:4000", []string{"https"}, true},
		{"127.0.0.1:4000", []string{"https"}, true},
		{"10.0.0.5:4000", []string{"http"}, false},
		{"10.0.0.5:4000", nil, false},
		{"10.0.0.5:4000", []string{"https, http"}, false},
		{"10.0.0.5:4000", []string{"https", "http"}, false},
		{"192.0.2.1:4000", []string{"https"}, false}, // not a balancer: the client's own header
		{"127.0.0.2:4000", []string{"https"}, false},
		{"garbage", []string{"https"}, false},
	} {
		if got := forwardedTLS(c.peer, c.proto, trusted); got != c.want {
			t.Errorf("peer %s, X-Forwarded-Proto %q: %v, want %v", c.peer, c.proto, got, c.want)
		}
	}

	s := &server{flags: &serveFlags{}}
	s.flags.scaleout.trusted = trusted
	var gotTLS bool
	var gotRemote string
	h := s.forwarded(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotTLS, gotRemote = tlsconf.RequestTLS(r), r.RemoteAddr
	}))
	for _, c := range []struct {
		peer, xff string
		want      bool
		remote    string
	}{
		// The balancer forwards the client (an untrusted address) with
		// https: TLS counts although RemoteAddr is then the client's.
		{"10.0.0.5:4000", "203.0.113.7", true, "203.0.113.7:0"},
		// The client itself claims https (and a forwarded address).
		{"203.0.113.7:4000", "10.0.0.5", false, "203.0.113.7:4000"},
	} {
		r := httptest.NewRequest("PROPFIND", "/dav/", nil)
		r.RemoteAddr = c.peer
		r.Header.Set("X-Forwarded-For", c.xff)
		r.Header.Set("X-Forwarded-Proto", "https")
		h.ServeHTTP(httptest.NewRecorder(), r)
		if gotTLS != c.want || gotRemote != c.remote {
			t.Errorf("peer %s: TLS %v from %s, want %v from %s", c.peer, gotTLS, gotRemote, c.want, c.remote)
		}
	}
}
