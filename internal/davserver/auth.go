package davserver

import (
	"net"
	"net/http"
	"net/netip"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/auth"
	"github.com/postern/postern/internal/tlsconf"
)

// plaintextRefused is the reply to every request that arrives without TLS
// where --plaintext-auth does not allow passwords.
const plaintextRefused = "Use HTTPS: passwords are not accepted over plain HTTP on this server.\n"

// unauthorizedBody is the one reply to every failed or missing login, so
// that nothing tells an unknown user, a wrong password and a main password
// refused by policy apart (SPEC §5).
const unauthorizedBody = "Authentication required.\n"

// authenticate checks the request's Basic credentials through the gateway,
// on every request: no credential is cached, so a deleted app password or a
// changed setting fails on the very next request. Cookies are never looked
// at: the web session does not open DAV. On success the login is tracked
// until done is called, and revocation calls cancel.
//
// Without TLS (the server's or a trusted load balancer's), where
// --plaintext-auth does not allow passwords, every request is refused with
// 403 before its credentials are read: they never reach the gateway (no
// attempt, no failure counted), and no WWW-Authenticate invites the client
// to send a password over this connection.
func (h *handler) authenticate(w http.ResponseWriter, r *http.Request, protocol string, cancel func()) (account.Member, func(), bool) {
	if !h.plaintext.AllowsRequest(r) {
		h.log.Info("dav request without TLS refused by --plaintext-auth", "plaintext_auth", string(h.plaintext), "ip", remoteIP(r.RemoteAddr).String())
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusForbidden)
		w.Write([]byte(plaintextRefused))
		return account.Member{}, nil, false
	}
	user, secret, ok := r.BasicAuth()
	if !ok {
		unauthorized(w)
		return account.Member{}, nil, false
	}
	login, err := h.auth.Authenticate(r.Context(), auth.Attempt{
		User:      user,
		Secret:    secret,
		Protocol:  protocol,
		Mechanism: "BASIC",
		RemoteIP:  remoteIP(r.RemoteAddr),
		TLS:       tlsconf.RequestTLS(r),
		Client:    r.UserAgent(),
	})
	if err != nil {
		if account.ErrorCode(err) == account.EUNAVAILABLE {
			w.Header().Set("Retry-After", "60")
			http.Error(w, "The service is temporarily unavailable; try again later.", http.StatusServiceUnavailable)
			return account.Member{}, nil, false
		}
		unauthorized(w)
		return account.Member{}, nil, false
	}
	done := h.auth.Track(login, protocol, cancel)
	return login.Member, done, true
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Basic realm="Postern", charset="UTF-8"`)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusUnauthorized)
	w.Write([]byte(unauthorizedBody))
}

// remoteIP is the peer address of the connection, IPv4-mapped IPv6
// unmapped so that throttling sees one address per client.
func remoteIP(addr string) netip.Addr {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return ap.Addr().Unmap()
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}
