package web

import (
	"bytes"
	"embed"
	"hash/fnv"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/postern/postern/internal/account"
)

//go:embed templates static
var assets embed.FS

var funcs = template.FuncMap{
	"t":     func(l, key string, args ...any) string { return tr(l, key, args...) },
	"date":  func(p *pageData, t time.Time) string { return formatTime(p.L, p.Loc, t) },
	"iso":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"proto": protoName,
}

// protoName is a protocol as people write it.
func protoName(p string) string {
	switch p {
	case "caldav":
		return "CalDAV"
	case "carddav":
		return "CardDAV"
	case "web":
		return "Web"
	}
	return strings.ToUpper(p)
}

// pages are parsed once: each page with the layout, so that every page can
// define its own "content".
var pages = func() map[string]*template.Template {
	out := map[string]*template.Template{}
	names, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		panic(err)
	}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		out[name] = template.Must(template.New(name).Funcs(funcs).ParseFS(assets, "templates/layout.html", n))
	}
	return out
}()

// pageData is what every page template gets.
type pageData struct {
	L           string
	Loc         *time.Location
	Zone        string
	Title       string
	Path        string // this page, for the language links to return to
	Member      *account.Member
	IsAdmin     bool      // the member administers something: the menu links to the console
	Admin       *adminNav // the console's navigation, on its pages
	Unread      int
	CSRF        string
	Initials    string
	AvatarColor string
	Notice      string
	Error       string
	Data        any
}

// newPage fills what the layout needs; rc is nil when signed out.
func (s *Server) newPage(r *http.Request, rc *reqCtx, title string) *pageData {
	l := lang(r, s.cookieName(langCookie))
	p := &pageData{L: l, Loc: location(r), Title: tr(l, title), Path: r.URL.Path}
	if rc != nil {
		m := rc.member
		p.Loc = s.memberZone(r, rc)
		p.Member = &m
		p.CSRF = rc.rec.CSRF
		p.Initials = initials(m.Name, m.Email)
		p.AvatarColor = avatarColor(m.Email)
		if a, err := s.svc.AdminAccess(r.Context(), m); err == nil {
			p.IsAdmin = a.IsAdmin()
		} else {
			s.log.Warn("read admin roles", "err", err)
		}
		if n, err := s.svc.UnreadMessages(r.Context(), m); err == nil {
			p.Unread = n
		} else {
			s.log.Warn("count unread messages", "err", err)
		}
	}
	p.Zone = p.Loc.String()
	if k := r.URL.Query().Get("done"); k != "" {
		if _, ok := catalog["en"]["notice."+k]; ok {
			p.Notice = tr(l, "notice."+k)
		}
	}
	return p
}

// memberZone is the member's time zone. A member who never chose one gets
// the zone the browser reports, recorded as theirs from this first page on
// (the notices to them use it too); UTC when neither is known.
func (s *Server) memberZone(r *http.Request, rc *reqCtx) *time.Location {
	loc, set, err := s.svc.Zone(r.Context(), rc.member.ID)
	if set || err != nil {
		return loc
	}
	if name, bz, ok := browserZone(r); ok {
		if err := s.svc.DefaultTimeZone(r.Context(), rc.member.ID, name); err != nil {
			s.log.Warn("record the member's time zone", "err", err)
		}
		return bz
	}
	return loc
}

// render writes a page; a template error is logged and becomes a 500.
func (s *Server) render(w http.ResponseWriter, status int, name string, p *pageData) {
	var buf bytes.Buffer
	if err := pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		s.log.Error("render page", "page", name, "err", err)
		http.Error(w, "Internal error.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	noStore(w)
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// initials of the avatar: the first letters of the first two words of the
// name (one character for scripts without spaces, as in Japanese names).
func initials(name, email string) string {
	words := strings.Fields(name)
	if len(words) == 0 {
		words = []string{email}
	}
	var out []rune
	for _, w := range words {
		r := []rune(w)
		if !unicode.IsLetter(r[0]) && !unicode.IsDigit(r[0]) {
			continue
		}
		out = append(out, unicode.ToUpper(r[0]))
		if len(out) == 2 || r[0] > unicode.MaxLatin1 {
			break
		}
	}
	if len(out) == 0 {
		out = []rune{'?'}
	}
	return string(out)
}

// avatarColor picks one of a few colours with enough contrast for white
// text (WCAG AA), stable per address.
func avatarColor(email string) string {
	palette := []string{"#1a5fb4", "#26704a", "#9c3d18", "#6d3b9e", "#a3284f", "#2d5f73", "#7a5a00", "#404b8c"}
	h := fnv.New32a()
	h.Write([]byte(email))
	return palette[h.Sum32()%uint32(len(palette))]
}

// staticHandler serves the embedded CSS, JavaScript and icons.
func staticHandler() http.Handler {
	sub, err := fs.Sub(assets, "static")
	if err != nil {
		panic(err)
	}
	fileServer := http.FileServer(http.FS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") || r.URL.Path == "" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		fileServer.ServeHTTP(w, r)
	})
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	rc, _ := s.loadSession(r)
	p := s.newPage(r, rc, "notfound.title")
	p.Data = tr(p.L, "notfound.body")
	s.render(w, http.StatusNotFound, "notfound", p)
}
