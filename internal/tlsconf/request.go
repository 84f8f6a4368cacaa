package tlsconf

import (
	"context"
	"net"
	"net/http"
	"net/netip"
)

type forwardedTLSKey struct{}

// WithForwardedTLS marks the context of a request whose TLS a trusted load
// balancer ended: it came from an address in --trusted-proxies with
// X-Forwarded-Proto: https. Only the code that checked the real peer
// address may set it; the header from anyone else proves nothing.
func WithForwardedTLS(ctx context.Context) context.Context {
	return context.WithValue(ctx, forwardedTLSKey{}, true)
}

// RequestTLS reports whether r reached this server over TLS, its own or a
// trusted load balancer's (WithForwardedTLS).
func RequestTLS(r *http.Request) bool {
	fwd, _ := r.Context().Value(forwardedTLSKey{}).(bool)
	return r.TLS != nil || fwd
}

// AllowsRequest applies p to an HTTP request carrying a password: over TLS
// always, otherwise as for a mail connection from RemoteAddr (which a
// trusted load balancer's X-Forwarded-For has made the client's address).
func (p Plaintext) AllowsRequest(r *http.Request) bool {
	if RequestTLS(r) {
		return true
	}
	var remote net.Addr
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		remote = net.TCPAddrFromAddrPort(ap)
	}
	return p.Allows(remote, false)
}
