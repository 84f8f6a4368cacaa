package web

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/dnsrecords"
	"github.com/postern/postern/internal/mailstore"
)

// The console's Domains section: the domains an admin administers, each
// domain's page, its security policy and DNS records; organisation admins
// add and delete domains.
func init() {
	addAdminSection(adminSection{Order: 10, Key: "admin.nav.domains", Path: "/admin/domains"})
	adminModules = append(adminModules, func(s *Server) {
		s.handleAdmin("GET /admin/domains", s.adminDomainsPage)
		s.handleAdmin("GET /admin/domains/new", s.adminNewDomainPage)
		s.handleAdmin("POST /admin/domains/new", s.adminAddDomain)
		s.handleAdmin("GET /admin/domains/{domain}", s.adminDomainPage)
		s.handleAdmin("GET /admin/domains/{domain}/policy", s.adminPolicyPage)
		s.handleAdmin("POST /admin/domains/{domain}/policy", s.adminSetPolicy)
		s.handleAdmin("GET /admin/domains/{domain}/dns", s.adminDNSPage)
		s.handleAdmin("GET /admin/domains/{domain}/delete", s.adminDeleteDomainPage)
		s.handleAdmin("POST /admin/domains/{domain}/delete", s.adminDeleteDomain)
	})
}

// domainRow is a domain as the console shows it.
type domainRow struct {
	Name      string
	CreatedAt time.Time
	Enforced  bool   // third-party apps must use app passwords
	Forced    bool   // because the administrators turned the setting on for everyone
	Quota     string // the default storage limit, "" for the server's
	Security  account.SecurityPolicy
}

func (s *Server) domainRow(d account.Domain) domainRow {
	row := domainRow{Name: d.Name, CreatedAt: d.CreatedAt, Enforced: d.Policy(s.svc.Config.Cutoff) == account.PolicyEnforced,
		Forced: d.Security.ForceAppPasswords, Security: d.Security}
	if d.MailQuota != nil {
		row.Quota = mailstore.FormatSize(*d.MailQuota)
	}
	return row
}

// AllProtocols: third-party apps may use every protocol.
func (d domainRow) AllProtocols() bool { return d.Security.Protocols == nil }

// Networks lists the allowlist, nil for any address.
func (d domainRow) Networks() string {
	return strings.ReplaceAll(account.FormatNetworks(d.Security.Networks), ",", ", ")
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

type newDomainData struct {
	Name, Created string
	Cutoff        string // the cut-off date, in the form's terms
	NameErr       string
	CreatedErr    string
}

// dateLayout is how the form's creation date is written (a date input).
const dateLayout = "2006-01-02"

func (s *Server) adminNewDomainPage(w http.ResponseWriter, r *http.Request, ac *adminCtx) {
	if !s.requireOrg(w, r, ac) {
		return
	}
	s.renderNewDomain(w, r, ac, http.StatusOK, newDomainData{})
}

func (s *Server) renderNewDomain(w http.ResponseWriter, r *http.Request, ac *adminCtx, status int, d newDomainData) {
	cutoff := s.svc.Config.Cutoff
	d.Cutoff = cutoff.In(cutoff.Location()).Format(dateLayout)
	p := s.newAdminPage(r, ac, "admin.domains.add.title")
	p.Data = d
	s.render(w, status, "admin_domain_new", p)
}

// adminAddDomain creates a domain: its creation date decides its policy
// against the cut-off, as `postern domain add --created` does (a date in
// the cut-off's time zone).
func (s *Server) adminAddDomain(w http.ResponseWriter, r *http.Request, ac *adminCtx) {
	if !s.requireOrg(w, r, ac) {
		return
	}
	l := lang(r, s.cookieName(langCookie))
	d := newDomainData{Name: strings.TrimSpace(r.PostFormValue("name")), Created: strings.TrimSpace(r.PostFormValue("created"))}
	var created time.Time
	if d.Created != "" {
		t, err := time.ParseInLocation(dateLayout, d.Created, s.svc.Config.Cutoff.Location())
		if err != nil {
			d.CreatedErr = tr(l, "admin.domains.add.baddate")
			s.renderNewDomain(w, r, ac, http.StatusBadRequest, d)
			return
		}
		created = t
	}
	dom, err := s.svc.AddDomainBy(r.Context(), d.Name, created, s.adminActor(r, ac))
	if err != nil {
		code := account.ErrorCode(err)
		if code == account.EINTERNAL || code == account.EUNAVAILABLE {
			s.pageError(w, r, ac.reqCtx, err)
			return
		}
		d.NameErr = s.errText(l, "domain", err)
		s.renderNewDomain(w, r, ac, statusOf(code), d)
		return
	}
	s.log.Info("domain added", "domain", dom.Name, "by", ac.member.Email, "ip", s.cfg.ClientIP(r))
	http.Redirect(w, r, "/admin/domains/"+url.PathEscape(dom.Name)+"?done=domain.added", http.StatusSeeOther)
}

type domainPageData struct {
	domainRow
	Members int
	Org     bool
}

func (s *Server) adminDomainPage(w http.ResponseWriter, r *http.Request, ac *adminCtx) {
	dom, ok := s.adminDomain(w, r, ac)
	if !ok {
		return
	}
	n, err := s.svc.CountMembers(r.Context(), dom)
	if err != nil {
		s.pageError(w, r, ac.reqCtx, err)
		return
	}
	p := s.newAdminPage(r, ac, "admin.domains.title")
	p.Title = dom.Name
	p.Data = domainPageData{domainRow: s.domainRow(dom), Members: n, Org: ac.access.Org}
	s.render(w, http.StatusOK, "admin_domain", p)
}

// policyForm is the security policy form, as entered.
type policyForm struct {
	Domain    string
	Optional  bool // created before the cut-off: the setting can be forced on
	Protocols map[string]bool
	Networks  string
	Expire    string
	Force     bool
	Quota     string
	// Errors, by field.
	NetworksErr, ExpireErr, QuotaErr string
}

// ProtocolList is account.ThirdPartyProtocols, for the checkboxes.
func (policyForm) ProtocolList() []string { return account.ThirdPartyProtocols }

func (s *Server) policyFormOf(d account.Domain) policyForm {
	f := policyForm{Domain: d.Name, Optional: account.PolicyFor(d.CreatedAt, s.svc.Config.Cutoff) == account.PolicyOptional,
		Protocols: map[string]bool{}, Networks: strings.ReplaceAll(account.FormatNetworks(d.Security.Networks), ",", "\n"),
		Expire: strconv.Itoa(d.Security.ExpireUnusedDays), Force: d.Security.ForceAppPasswords}
	for _, p := range account.ThirdPartyProtocols {
		f.Protocols[p] = d.Security.Protocols == nil
	}
	for _, p := range d.Security.Protocols {
		f.Protocols[p] = true
	}
	if d.MailQuota != nil {
		f.Quota = mailstore.FormatSize(*d.MailQuota)
		f.Quota = strings.ReplaceAll(f.Quota, " ", "")
	}
	return f
}

func (s *Server) adminPolicyPage(w http.ResponseWriter, r *http.Request, ac *adminCtx) {
	dom, ok := s.adminDomain(w, r, ac)
	if !ok {
		return
	}
	s.renderPolicy(w, r, ac, http.StatusOK, s.policyFormOf(dom))
}

func (s *Server) renderPolicy(w http.ResponseWriter, r *http.Request, ac *adminCtx, status int, f policyForm) {
	p := s.newAdminPage(r, ac, "admin.policy.title")
	p.Title = tr(p.L, "admin.policy.title.of", f.Domain)
	if f.NetworksErr != "" || f.ExpireErr != "" || f.QuotaErr != "" {
		p.Error = tr(p.L, "admin.policy.invalid")
	}
	p.Data = f
	s.render(w, status, "admin_domain_policy", p)
}

// adminSetPolicy saves the security policy form. Every field is checked
// before anything is saved; the change reaches every node's next login and
// closes the live sessions it refuses (account.Service.SetSecurityPolicy).
func (s *Server) adminSetPolicy(w http.ResponseWriter, r *http.Request, ac *adminCtx) {
	dom, ok := s.adminDomain(w, r, ac)
	if !ok {
		return
	}
	l := lang(r, s.cookieName(langCookie))
	f := s.policyFormOf(dom)
	f.Networks, f.Expire, f.Quota = r.PostFormValue("networks"), strings.TrimSpace(r.PostFormValue("expire")), strings.TrimSpace(r.PostFormValue("quota"))
	f.Force = r.PostFormValue("force") == "1"
	pol := dom.Security
	pol.Protocols = []string{}
	for _, p := range account.ThirdPartyProtocols {
		f.Protocols[p] = r.PostFormValue("protocol_"+p) == "1"
		if f.Protocols[p] {
			pol.Protocols = append(pol.Protocols, p)
		}
	}
	if len(pol.Protocols) == len(account.ThirdPartyProtocols) {
		pol.Protocols = nil // every protocol, including any added later
	}
	var err error
	if pol.Networks, err = account.ParseNetworks(f.Networks); err != nil {
		f.NetworksErr = tr(l, "admin.policy.networks.bad")
	}
	if n, err := strconv.Atoi(f.Expire); f.Expire == "" {
		pol.ExpireUnusedDays = 0
	} else if err != nil || n < 0 || n > account.MaxExpireUnusedDays {
		f.ExpireErr = tr(l, "admin.policy.expire.bad", account.MaxExpireUnusedDays)
	} else {
		pol.ExpireUnusedDays = n
	}
	pol.ForceAppPasswords = f.Force && (f.Optional || dom.Security.ForceAppPasswords)
	var quota *int64
	if f.Quota != "" {
		n, err := mailstore.ParseSize(f.Quota)
		if err != nil {
			f.QuotaErr = tr(l, "admin.policy.quota.bad")
		}
		quota = &n
	}
	if f.NetworksErr != "" || f.ExpireErr != "" || f.QuotaErr != "" {
		s.renderPolicy(w, r, ac, http.StatusBadRequest, f)
		return
	}
	if _, err := s.svc.SetDomainMailQuota(r.Context(), dom.Name, quota, s.adminActor(r, ac)); err != nil {
		s.pageError(w, r, ac.reqCtx, err)
		return
	}
	if _, err := s.svc.SetSecurityPolicy(r.Context(), dom.Name, pol, s.adminActor(r, ac)); err != nil {
		s.pageError(w, r, ac.reqCtx, err)
		return
	}
	http.Redirect(w, r, "/admin/domains/"+url.PathEscape(dom.Name)+"?done=policy.saved", http.StatusSeeOther)
}

type dnsData struct {
	Domain  string
	Records []dnsrecords.Record
}

func (s *Server) adminDNSPage(w http.ResponseWriter, r *http.Request, ac *adminCtx) {
	dom, ok := s.adminDomain(w, r, ac)
	if !ok {
		return
	}
	d := dnsData{Domain: dom.Name}
	if s.cfg.DNSRecords != nil {
		recs, err := s.cfg.DNSRecords(r.Context(), dom.Name)
		if err != nil {
			s.pageError(w, r, ac.reqCtx, err)
			return
		}
		d.Records = recs
	}
	p := s.newAdminPage(r, ac, "admin.dns.title")
	p.Title = tr(p.L, "admin.dns.title.of", dom.Name)
	p.Data = d
	s.render(w, http.StatusOK, "admin_domain_dns", p)
}

// adminDeleteDomainPage asks for confirmation. A domain with members asks
// more: the page counts what goes with it (members, their messages,
// aliases) and the admin types the domain's name, as for a member.
func (s *Server) adminDeleteDomainPage(w http.ResponseWriter, r *http.Request, ac *adminCtx) {
	dom, ok := s.adminDomain(w, r, ac)
	if !ok || !s.requireOrg(w, r, ac) {
		return
	}
	s.confirmDeleteDomain(w, r, ac, dom, http.StatusOK)
}

func (s *Server) confirmDeleteDomain(w http.ResponseWriter, r *http.Request, ac *adminCtx, dom account.Domain, status int) {
	n, err := s.svc.CountMembers(r.Context(), dom)
	if err != nil {
		s.pageError(w, r, ac.reqCtx, err)
		return
	}
	if n > 0 {
		s.confirmDeleteDomainWithMembers(w, r, ac, dom, status, "")
		return
	}
	p := s.newAdminPage(r, ac, "admin.domains.delete.title")
	p.Title = tr(p.L, "admin.domains.delete.title.of", dom.Name)
	back := "/admin/domains/" + url.PathEscape(dom.Name)
	p.Data = confirmData{Title: p.Title, Body: tr(p.L, "admin.domains.delete.body"), Strong: tr(p.L, "admin.domains.delete.strong"),
		Action: back + "/delete", Submit: tr(p.L, "delete"), Kind: "danger", Cancel: back}
	s.render(w, status, "confirm", p)
}

// deleteAllData is the confirmation of a domain's deletion with its members.
type deleteAllData struct {
	Domain   string
	Contents account.DomainContents
	Err      string // the typed name did not match
}

func (s *Server) confirmDeleteDomainWithMembers(w http.ResponseWriter, r *http.Request, ac *adminCtx, dom account.Domain, status int, errKey string) {
	c, err := s.svc.DomainContents(r.Context(), dom)
	if err != nil {
		s.pageError(w, r, ac.reqCtx, err)
		return
	}
	p := s.newAdminPage(r, ac, "admin.domains.delete.title")
	p.Title = tr(p.L, "admin.domains.delete.title.of", dom.Name)
	d := deleteAllData{Domain: dom.Name, Contents: c}
	if errKey != "" {
		d.Err = tr(p.L, errKey)
	}
	p.Data = d
	s.render(w, status, "admin_domain_delete", p)
}

func (s *Server) adminDeleteDomain(w http.ResponseWriter, r *http.Request, ac *adminCtx) {
	dom, ok := s.adminDomain(w, r, ac)
	if !ok || !s.requireOrg(w, r, ac) {
		return
	}
	if r.PostFormValue("with_members") == "1" {
		if !strings.EqualFold(strings.TrimSpace(r.PostFormValue("confirm_domain")), dom.Name) {
			s.confirmDeleteDomainWithMembers(w, r, ac, dom, http.StatusBadRequest, "admin.domains.deleteall.mismatch")
			return
		}
		n, err := s.svc.DeleteDomainWithMembers(r.Context(), dom.Name, s.adminActor(r, ac))
		if err != nil {
			s.pageError(w, r, ac.reqCtx, err)
			return
		}
		s.log.Info("domain deleted with its members", "domain", dom.Name, "members", n, "by", ac.member.Email, "ip", s.cfg.ClientIP(r))
		http.Redirect(w, r, "/admin/domains?done=domain.deleted", http.StatusSeeOther)
		return
	}
	if r.PostFormValue("confirmed") != "1" {
		s.confirmDeleteDomain(w, r, ac, dom, http.StatusOK)
		return
	}
	if err := s.svc.DeleteDomain(r.Context(), dom.Name, s.adminActor(r, ac)); err != nil {
		if account.ErrorCode(err) == account.ECONFLICT {
			s.confirmDeleteDomain(w, r, ac, dom, http.StatusConflict)
			return
		}
		s.pageError(w, r, ac.reqCtx, err)
		return
	}
	http.Redirect(w, r, "/admin/domains?done=domain.deleted", http.StatusSeeOther)
}
