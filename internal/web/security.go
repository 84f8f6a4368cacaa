package web

import (
	"crypto/subtle"
	"mime"
	"net/http"
	"strings"

	"github.com/postern/postern/internal/tlsconf"
)

// csp allows nothing from another origin and no inline script or style;
// frame-ancestors 'none' (with X-Frame-Options for old browsers) stops
// clickjacking of the Delete and the setting buttons.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

func (s *Server) securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
	if s.cfg.Secure {
		h.Set("Strict-Transport-Security", tlsconf.HSTS)
	}
}

// forbiddenCrossOrigin answers a request that http.CrossOriginProtection
// refused (Sec-Fetch-Site or Origin says another site sent it).
func (s *Server) forbiddenCrossOrigin(w http.ResponseWriter, r *http.Request) {
	if isAPI(r) {
		writeError(w, http.StatusForbidden, "cross_origin", "Cross-origin requests are not allowed.")
		return
	}
	http.Error(w, "Cross-origin requests are not allowed.", http.StatusForbidden)
}

func isAPI(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/api/") }

// validCSRF compares the form's token with the expected one in constant time.
func validCSRF(r *http.Request, want string) bool {
	got := r.PostFormValue("csrf")
	return want != "" && len(got) == len(want) && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// isJSON reports whether the request says its body is JSON. Requiring it on
// the API makes every state-changing API request a non-simple request in the
// CORS sense, which a page of another site cannot send without a preflight
// that we never allow; HTML forms cannot send it at all.
func isJSON(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/json"
}

// safeNext returns p when it is a path on this site, else fallback: the
// "next" of sign-in and re-authentication must not send anyone elsewhere.
func safeNext(p, fallback string) string {
	if p == "" || p[0] != '/' || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\\r\n\t") || len(p) > 200 {
		return fallback
	}
	return p
}

// noStore keeps pages with personal data and secrets out of caches.
func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
}
