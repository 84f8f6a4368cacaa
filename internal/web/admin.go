package web

import (
	"net/http"
	"net/url"
	"slices"

	"github.com/postern/postern/internal/account"
)

// The admin console lives under /admin on the web listener, for members
// with an admin role (account.AdminAccess). It is made of the member UI's
// parts: sessions, CSRF, security headers, re-authentication, i18n and the
// layout. Every route goes through Server.admin, which decides, in this
// order and the same way for every page:
//
//   - no session: sign in first (like every page);
//   - not an administrator: 404, as if /admin did not exist;
//   - a POST without the session's CSRF token: 403;
//   - a POST without a fresh re-authentication (ReauthWindow): 303 to
//     /reauth, which comes back to the GET of the same path.
//
// A handler then scopes what it shows with adminCtx: adminDomain gives a
// domain only to its admins (a domain that another admin may not see
// answers 404, exactly like one that does not exist), requireOrg refuses
// organisation-wide actions to domain admins (403). See "Admin console" in
// docs/architecture.md for how to add a page.

// adminCtx is what an admin page's handler gets.
type adminCtx struct {
	*reqCtx
	access account.AdminAccess
}

// adminHandler handles one route of the console.
type adminHandler func(http.ResponseWriter, *http.Request, *adminCtx)

// adminSection is an entry of the console's navigation.
type adminSection struct {
	Order int    // place in the navigation, smallest first
	Key   string // catalog key of its name
	Path  string // its first page; a page belongs to it when its path starts with Path
}

// adminModules register the console's routes and navigation; each section
// adds its own from an init function of its own file, so that sections do
// not touch each other's code.
var adminModules []func(s *Server)

// adminSections is the navigation, in Order.
var adminSections []adminSection

func addAdminSection(sec adminSection) {
	adminSections = append(adminSections, sec)
	slices.SortStableFunc(adminSections, func(a, b adminSection) int { return a.Order - b.Order })
}

func (s *Server) adminRoutes() {
	s.mux.HandleFunc("GET /admin", s.admin(s.adminHome))
	s.mux.HandleFunc("GET /admin/{$}", s.admin(s.adminHome))
	for _, register := range adminModules {
		register(s)
	}
	// Unknown paths under /admin answer an administrator with 404, and
	// anyone else with the same 404 as every other page.
	s.mux.HandleFunc("/admin/", s.admin(func(w http.ResponseWriter, r *http.Request, ac *adminCtx) { s.notFound(w, r) }))
}

// handleAdmin registers a route of the console; pattern is a ServeMux
// pattern with its method, under /admin/.
func (s *Server) handleAdmin(pattern string, h adminHandler) {
	s.adminPatterns = append(s.adminPatterns, pattern)
	s.mux.HandleFunc(pattern, s.admin(h))
}

// admin wraps every route of the console: see the order above.
func (s *Server) admin(h adminHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rc, ok := s.pageSession(w, r)
		if !ok {
			return
		}
		access, err := s.svc.AdminAccess(r.Context(), rc.member)
		if err != nil {
			s.pageError(w, r, rc, err)
			return
		}
		if !access.IsAdmin() {
			s.notFound(w, r)
			return
		}
		if !s.pageCSRF(w, r, rc) {
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead && !s.reauthFresh(rc) {
			http.Redirect(w, r, "/reauth?next="+url.QueryEscape(r.URL.Path), http.StatusSeeOther)
			return
		}
		h(w, r, &adminCtx{reqCtx: rc, access: access})
	}
}

// adminHome opens the first section.
func (s *Server) adminHome(w http.ResponseWriter, r *http.Request, ac *adminCtx) {
	http.Redirect(w, r, adminSections[0].Path, http.StatusSeeOther)
}

// adminDomain returns the domain named by the path's {domain} when the
// admin administers it; otherwise it answers 404 (the same for a domain
// that does not exist) and returns false.
func (s *Server) adminDomain(w http.ResponseWriter, r *http.Request, ac *adminCtx) (account.Domain, bool) {
	d, err := s.svc.AdminDomain(r.Context(), ac.access, r.PathValue("domain"))
	if account.ErrorCode(err) == account.ENOTFOUND {
		s.notFound(w, r)
		return account.Domain{}, false
	} else if err != nil {
		s.pageError(w, r, ac.reqCtx, err)
		return account.Domain{}, false
	}
	return d, true
}

// requireOrg answers 403 to a domain admin and returns false: the action
// concerns the whole organisation.
func (s *Server) requireOrg(w http.ResponseWriter, r *http.Request, ac *adminCtx) bool {
	if ac.access.Org {
		return true
	}
	p := s.newAdminPage(r, ac, "admin.forbidden.title")
	p.Data = tr(p.L, "admin.forbidden.org")
	s.render(w, http.StatusForbidden, "notfound", p)
	return false
}

// adminNav is the navigation of the console's pages.
type adminNav struct {
	Sections []adminSection
	Current  string // Path of the section of this page
	Org      bool   // an organisation admin
}

// newAdminPage is newPage for the console: the layout adds its navigation.
func (s *Server) newAdminPage(r *http.Request, ac *adminCtx, title string) *pageData {
	p := s.newPage(r, ac.reqCtx, title)
	nav := &adminNav{Sections: adminSections, Org: ac.access.Org}
	for _, sec := range adminSections {
		if r.URL.Path == sec.Path || len(r.URL.Path) > len(sec.Path) && r.URL.Path[:len(sec.Path)+1] == sec.Path+"/" {
			nav.Current = sec.Path
		}
	}
	p.Admin = nav
	return p
}
