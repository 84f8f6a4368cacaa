package tlsconf

import (
	"crypto/tls"
	"net/http/httptest"
	"testing"
)

func TestAllowsRequest(t *testing.T) {
	for _, tc := range []struct {
		remote      string
		tls, fwdTLS bool
		never, loop bool
		always      bool
	}{
		{"192.0.2.1:4711", false, false, false, false, true},
		{"127.0.0.1:4711", false, false, false, true, true},
		{"[::1]:4711", false, false, false, true, true},
		{"[::ffff:127.0.0.1]:4711", false, false, false, true, true},
		{"192.0.2.1:4711", true, false, true, true, true},
		{"192.0.2.1:0", false, true, true, true, true},
		{"garbage", false, false, false, false, true},
	} {
		r := httptest.NewRequest("PROPFIND", "/dav/", nil)
		r.RemoteAddr = tc.remote
		r.TLS = nil
		if tc.tls {
			r.TLS = &tls.ConnectionState{}
		}
		if tc.fwdTLS {
			r = r.WithContext(WithForwardedTLS(r.Context()))
		}
		for p, want := range map[Plaintext]bool{PlaintextNever: tc.never, PlaintextLoopback: tc.loop, PlaintextAlways: tc.always} {
			if got := p.AllowsRequest(r); got != want {
				t.Errorf("%s from %s tls=%v forwarded=%v: %v, want %v", p, tc.remote, tc.tls, tc.fwdTLS, got, want)
			}
		}
	}
}
