package web

import (
	"net/http"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/mailstore"
)

// The console's Domains section: the domains an admin administers, and
// each domain's page.
func init() {
	addAdminSection(adminSection{Order: 10, Key: "admin.nav.domains", Path: "/admin/domains"})
	adminModules = append(adminModules, func(s *Server) {
		s.handleAdmin("GET /admin/domains", s.adminDomainsPage)
	})
}

// domainRow is a domain as the console lists it.
type domainRow struct {
	Name      string
	CreatedAt time.Time
	Enforced  bool   // third-party apps must use app passwords
	Quota     string // the default storage limit, "" for the server's
}

func (s *Server) domainRow(d account.Domain) domainRow {
	row := domainRow{Name: d.Name, CreatedAt: d.CreatedAt,
		Enforced: account.PolicyFor(d.CreatedAt, s.svc.Config.Cutoff) == account.PolicyEnforced}
	if d.MailQuota != nil {
		row.Quota = mailstore.FormatSize(*d.MailQuota)
	}
	return row
}

type adminDomainsData struct {
	List []domainRow
	Org  bool // may add domains
}

func (s *Server) adminDomainsPage(w http.ResponseWriter, r *http.Request, ac *adminCtx) {
	list, err := s.svc.AdminDomains(r.Context(), ac.access)
	if err != nil {
		s.pageError(w, r, ac.reqCtx, err)
		return
	}
	d := adminDomainsData{Org: ac.access.Org}
	for _, dom := range list {
		d.List = append(d.List, s.domainRow(dom))
	}
	p := s.newAdminPage(r, ac, "admin.domains.title")
	p.Data = d
	s.render(w, http.StatusOK, "admin_domains", p)
}
