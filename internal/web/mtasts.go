package web

import (
	"net"
	"net/http"
	"strings"

	"github.com/postern/postern/internal/account"
)

// mtaSTS serves the MTA-STS policy (RFC 8461 §3.3) of a local domain to a
// sender that asks https://mta-sts.DOMAIN/.well-known/mta-sts.txt (the
// mta-sts name points at this listener, `postern domain dns`). Any other
// host, or a domain not served here, gets 404: the policy promises that
// this server's MX receives the domain's mail.
func (s *Server) mtaSTS(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	domain, ok := strings.CutPrefix(strings.TrimSuffix(strings.ToLower(host), "."), "mta-sts.")
	if !ok || s.cfg.MTASTSPolicy == "" {
		http.NotFound(w, r)
		return
	}
	if _, err := s.svc.Domain(r.Context(), domain); err != nil {
		if c := account.ErrorCode(err); c == account.ENOTFOUND || c == account.EINVALID {
			http.NotFound(w, r)
			return
		}
		// A failed fetch makes senders keep their cached policy (§5); a
		// 404 would say there is none.
		s.log.Warn("mta-sts policy: domain lookup failed", "domain", domain, "err", err)
		http.Error(w, "Temporary failure, try again later.", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "max-age=300")
	w.Write([]byte(s.cfg.MTASTSPolicy))
}
