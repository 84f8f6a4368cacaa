package web

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/postern/postern/internal/account"
)

// Languages of the UI; the first is the default.
var languages = []string{"en", "ja"}

// lang picks the UI language: the cookie set by the language links, else the
// best of Accept-Language (RFC 9110 §12.5.4), else English.
func lang(r *http.Request, cookieName string) string {
	if c, err := r.Cookie(cookieName); err == nil {
		for _, l := range languages {
			if c.Value == l {
				return l
			}
		}
	}
	best, bestQ := "en", -1.0
	for _, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		base, _, _ := strings.Cut(strings.ToLower(tag), "-")
		for _, l := range languages {
			if base == l && q > bestQ && q > 0 {
				best, bestQ = l, q
			}
		}
	}
	return best
}

// setLang stores the language choice of the footer links and goes back. A
// preference cookie, not account state, so a GET link is fine.
func (s *Server) setLang(w http.ResponseWriter, r *http.Request) {
	l := r.PathValue("lang")
	for _, ok := range languages {
		if l == ok {
			s.setCookie(w, langCookie, l, 365*24*time.Hour, true)
		}
	}
	http.Redirect(w, r, safeNext(r.URL.Query().Get("next"), "/"), http.StatusSeeOther)
}

// browserZone returns the time zone the browser reported in the cookie
// that static/app.js sets; ok is false when absent or unknown.
func browserZone(r *http.Request) (name string, loc *time.Location, ok bool) {
	c, err := r.Cookie(tzCookie)
	if err != nil {
		return "", nil, false
	}
	loc, ok = account.LoadZone(c.Value)
	return c.Value, loc, ok
}

// location returns the time zone the browser reports, UTC when it reports
// none (a signed-in member's pages use the member's zone: Server.memberZone).
func location(r *http.Request) *time.Location {
	if _, loc, ok := browserZone(r); ok {
		return loc
	}
	return time.UTC
}

// formatTime renders t for people: in the member's zone, in the UI language.
func formatTime(l string, loc *time.Location, t time.Time) string {
	if t.IsZero() {
		return tr(l, "never")
	}
	if l == "ja" {
		return t.In(loc).Format("2006年1月2日 15:04 MST")
	}
	return account.FormatTime(loc, t)
}

// tr translates key into l, formatting args into it.
func tr(l, key string, args ...any) string {
	msg, ok := catalog[l][key]
	if !ok {
		msg, ok = catalog["en"][key]
	}
	if !ok {
		return key
	}
	if len(args) > 0 {
		return fmt.Sprintf(msg, args...)
	}
	return msg
}

// Text returns the UI string key in language l ("en", "ja"), as the pages
// show it: browser tests of the real binary find buttons and labels by it.
func Text(l, key string, args ...any) string { return tr(l, key, args...) }

// addCatalog adds the strings of one part of the UI (each admin console
// section keeps its own, in its own file) to catalog; a key defined twice
// is a programming error.
func addCatalog(strings map[string]map[string]string) {
	for l, m := range strings {
		for k, v := range m {
			if _, dup := catalog[l][k]; dup {
				panic("web: catalog key defined twice: " + k)
			}
			catalog[l][k] = v
		}
	}
}
