package web

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // member time zones work on hosts without a zoneinfo database
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

var zones sync.Map // name -> *time.Location

// location returns the member's time zone as the browser reported it in the
// cookie that static/app.js sets, UTC when absent or unknown.
func location(r *http.Request) *time.Location {
	c, err := r.Cookie(tzCookie)
	if err != nil || c.Value == "" || len(c.Value) > 64 {
		return time.UTC
	}
	name := c.Value
	for _, ch := range name {
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || strings.ContainsRune("/_-+", ch)) {
			return time.UTC
		}
	}
	if v, ok := zones.Load(name); ok {
		return v.(*time.Location)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return time.UTC
	}
	zones.Store(name, loc)
	return loc
}

// formatTime renders t for people: in the member's zone, in the UI language.
func formatTime(l string, loc *time.Location, t time.Time) string {
	if t.IsZero() {
		return tr(l, "never")
	}
	t = t.In(loc)
	if l == "ja" {
		return t.Format("2006年1月2日 15:04 MST")
	}
	return t.Format("Jan 2, 2006, 15:04 MST")
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
