package main

import (
	"testing"

	"github.com/postern/postern/internal/proxyproto"
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
