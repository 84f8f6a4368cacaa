// Package tlsconf holds the TLS settings shared by every listener: where the
// certificate comes from (a Source: files reloaded when they change, or a
// certificate self-signed into the data folder), TLS 1.2 as
// the floor (RFC 8996), and the rule for plaintext authentication before TLS.
package tlsconf

import (
	"fmt"
	"net"
	"net/netip"
)

// Plaintext says whether a password may be sent on a connection without TLS.
type Plaintext string

const (
	PlaintextNever    Plaintext = "never"
	PlaintextLoopback Plaintext = "loopback" // the default: local tests and tools only
	PlaintextAlways   Plaintext = "always"
)

// ParsePlaintext checks a --plaintext-auth value.
func ParsePlaintext(s string) (Plaintext, error) {
	switch p := Plaintext(s); p {
	case PlaintextNever, PlaintextLoopback, PlaintextAlways:
		return p, nil
	case "":
		return PlaintextLoopback, nil
	}
	return "", fmt.Errorf("--plaintext-auth must be never, loopback or always, not %q", s)
}

// Allows reports whether a connection from remote, with or without TLS, may
// authenticate with a plaintext password (RFC 3501 §6.2.3, RFC 4954 §4).
func (p Plaintext) Allows(remote net.Addr, isTLS bool) bool {
	if isTLS || p == PlaintextAlways {
		return true
	}
	if p != PlaintextLoopback || remote == nil {
		return false
	}
	ap, err := netip.ParseAddrPort(remote.String())
	return err == nil && ap.Addr().Unmap().IsLoopback()
}
