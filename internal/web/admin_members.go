package web

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/postern/postern/internal/account"
)

// The console's Members section: search and page through the members an
// admin administers, add one or import many into a domain, and each
// member's page with what an administrator may do to them. Everything of a
// member is reached through its domain (/admin/domains/{domain}/members/
// {email}), which adminMember checks, so that an admin of one domain never
// reaches a member of another, whatever the path or the form says.
func init() {
	addAdminSection(adminSection{Order: 20, Key: "admin.nav.members", Path: "/admin/members"})
	adminModules = append(adminModules, func(s *Server) {
		s.handleAdmin("GET /admin/members", s.adminMembersPage)
		s.handleAdmin("GET /admin/domains/{domain}/members/new", s.adminNewMemberPage)
		s.handleAdmin("POST /admin/domains/{domain}/members/new", s.adminNewMember)
		s.handleAdmin("GET /admin/domains/{domain}/members/import", s.adminImportPage)
		s.handleAdmin("POST /admin/domains/{domain}/members/import", s.adminImport)
		s.handleAdmin("GET /admin/domains/{domain}/members/{email}", s.adminMemberPage)
		for _, a := range memberActions {
			s.handleAdmin("GET "+memberBase+"/"+a.name, s.adminMemberActionPage(a))
			s.handleAdmin("POST "+memberBase+"/"+a.name, s.adminMemberAction(a))
		}
		s.handleAdmin("GET "+memberBase+"/app-passwords/{id}/delete", s.adminDeleteAppPasswordPage)
		s.handleAdmin("POST "+memberBase+"/app-passwords/{id}/delete", s.adminDeleteAppPassword)
	})
}

const memberBase = "/admin/domains/{domain}/members/{email}"

// bodyLimits raise the request body limit of a page's route (by its
// pattern) above maxBody: an import file of 10,000 members is about 500 KB.
var bodyLimits = map[string]int64{
	"POST /admin/domains/{domain}/members/import": 4 << 20,
}

// memberURL is the path of m's page.
func memberURL(m account.Member) string {
	return "/admin/domains/" + url.PathEscape(m.Domain()) + "/members/" + url.PathEscape(m.Email)
}

// adminMember returns the member of the path's {domain} and {email} when
// the admin administers that domain and the member belongs to it;
// otherwise 404, the same for a member that does not exist.
func (s *Server) adminMember(w http.ResponseWriter, r *http.Request, ac *adminCtx) (account.Member, bool) {
	d, ok := s.adminDomain(w, r, ac)
	if !ok {
		return account.Member{}, false
	}
	m, err := s.svc.AdminMember(r.Context(), ac.access, r.PathValue("email"))
	if account.ErrorCode(err) == account.ENOTFOUND || account.ErrorCode(err) == account.EINVALID || err == nil && m.DomainID != d.ID {
		s.notFound(w, r)
		return account.Member{}, false
	} else if err != nil {
		s.pageError(w, r, ac.reqCtx, err)
		return account.Member{}, false
	}
	return m, true
}

// newMembersPage is newAdminPage with Members as the current section: a
// member's pages are under their domain's path, which is the Domains
// section's.
func (s *Server) newMembersPage(r *http.Request, ac *adminCtx, title string) *pageData {
	p := s.newAdminPage(r, ac, title)
	p.Admin.Current = "/admin/members"
	return p
}

// memberRow is a member as the list shows it.
type memberRow struct {
	Email, Name, URL string
	Suspended        bool
	OneTime          bool // has a one-time password not yet changed
}

type adminMembersData struct {
	Domains       []string // the admin's, for the filter and the add links
	Domain, Query string
	List          []memberRow
	Next          string // the next page's URL; "" on the last
	Searched      bool
}

// adminMembersPage lists the members a page at a time (keyset, by
// address), optionally of one domain and matching a prefix of the address
// or name.
func (s *Server) adminMembersPage(w http.ResponseWriter, r *http.Request, ac *adminCtx) {
	ctx := r.Context()
	q := r.URL.Query()
	domains, err := s.svc.AdminDomains(ctx, ac.access)
	if err != nil {
		s.pageError(w, r, ac.reqCtx, err)
		return
	}
	d := adminMembersData{Domain: q.Get("domain"), Query: q.Get("q"), Searched: q.Get("q") != "" || q.Get("domain") != ""}
	for _, dom := range domains {
		d.Domains = append(d.Domains, dom.Name)
	}
	page, err := s.svc.SearchMembers(ctx, ac.access, d.Domain, d.Query, q.Get("after"), account.DefaultPageSize)
	if account.ErrorCode(err) == account.ENOTFOUND {
		s.notFound(w, r)
		return
	} else if err != nil {
		s.pageError(w, r, ac.reqCtx, err)
		return
	}
	for _, m := range page.Members {
		d.List = append(d.List, memberRow{Email: m.Email, Name: m.Name, URL: memberURL(m),
			Suspended: m.State != account.StateActive, OneTime: m.MustChangePassword})
	}
	if page.Next != "" {
		next := url.Values{"after": {page.Next}}
		if d.Domain != "" {
			next.Set("domain", d.Domain)
		}
		if d.Query != "" {
			next.Set("q", d.Query)
		}
		d.Next = "/admin/members?" + next.Encode()
	}
	p := s.newMembersPage(r, ac, "admin.members.title")
	p.Data = d
	s.render(w, http.StatusOK, "admin_members", p)
}

// memberFormData is the add, import, rename and delete forms.
type memberFormData struct {
	Kind   string // "new", "import", "rename", "delete"
	Domain string
	Action string
	Cancel string
	Email  string // the member (rename, delete) or the address typed (new)
	Name   string
	CSV    string
	DryRun bool
	Keep   bool
	Report *importView // after an import or its dry run
}

func (s *Server) renderMemberForm(w http.ResponseWriter, r *http.Request, ac *adminCtx, status int, title string, d memberFormData, errText string) {
	p := s.newMembersPage(r, ac, title)
	p.Data, p.Error = d, errText
	s.render(w, status, "admin_members_form", p)
}

func (s *Server) adminNewMemberPage(w http.ResponseWriter, r *http.Request, ac *adminCtx) {
	dom, ok := s.adminDomain(w, r, ac)
	if !ok {
		return
	}
	s.renderMemberForm(w, r, ac, http.StatusOK, "admin.members.new.title",
		memberFormData{Kind: "new", Domain: dom.Name, Action: r.URL.Path, Cancel: "/admin/members"}, "")
}

// adminNewMember creates a member of the path's domain with a one-time
// password, shown once.
func (s *Server) adminNewMember(w http.ResponseWriter, r *http.Request, ac *adminCtx) {
	dom, ok := s.adminDomain(w, r, ac)
	if !ok {
		return
	}
	local := strings.TrimSpace(r.PostFormValue("local"))
	d := memberFormData{Kind: "new", Domain: dom.Name, Action: r.URL.Path, Cancel: "/admin/members", Email: local, Name: r.PostFormValue("name")}
	only := account.AdminAccess{Domains: []string{dom.Name}}
	m, pw, err := s.svc.AddMemberOneTime(r.Context(), only, local+"@"+dom.Name, d.Name, s.adminActor(r, ac))
	if err != nil {
		s.renderMemberForm(w, r, ac, statusOf(account.ErrorCode(err)), "admin.members.new.title", d, s.errText(lang(r, s.cookieName(langCookie)), "", err))
		return
	}
	s.renderSecret(w, r, ac, m, "admin.members.created", pw)
}

// secretData shows a one-time password once.
type secretData struct {
	Text, Email, Password, Back string
}

func (s *Server) renderSecret(w http.ResponseWriter, r *http.Request, ac *adminCtx, m account.Member, key, pw string) {
	p := s.newMembersPage(r, ac, key)
	p.Data = secretData{Text: tr(p.L, key+".text", m.Email), Email: m.Email, Password: pw, Back: memberURL(m)}
	w.Header().Set("Cache-Control", "no-store")
	s.render(w, http.StatusOK, "admin_members_secret", p)
}

// importView is an import's report as the page shows it.
type importView struct {
	DryRun      bool
	OK, Failed  int
	Errors      []importLine
	Passwords   []importLine // created rows with a generated one-time password
	OneTimeRows int
}

type importLine struct {
	Line                int
	Email, Text, Secret string
}

func (s *Server) adminImportPage(w http.ResponseWriter, r *http.Request, ac *adminCtx) {
	dom, ok := s.adminDomain(w, r, ac)
	if !ok {
		return
	}
	s.renderMemberForm(w, r, ac, http.StatusOK, "admin.members.import.title",
		memberFormData{Kind: "import", Domain: dom.Name, Action: r.URL.Path, Cancel: "/admin/members", DryRun: true}, "")
}

// adminImport checks (dry run) or imports the CSV pasted into the form,
// into the path's domain only: a row of another domain is reported as a
// domain that does not exist.
func (s *Server) adminImport(w http.ResponseWriter, r *http.Request, ac *adminCtx) {
	dom, ok := s.adminDomain(w, r, ac)
	if !ok {
		return
	}
	l := lang(r, s.cookieName(langCookie))
	d := memberFormData{Kind: "import", Domain: dom.Name, Action: r.URL.Path, Cancel: "/admin/members",
		CSV: r.PostFormValue("csv"), DryRun: r.PostFormValue("dry_run") == "1"}
	rows, err := account.ReadMembersCSV(strings.NewReader(d.CSV))
	if err != nil {
		s.renderMemberForm(w, r, ac, statusOf(account.ErrorCode(err)), "admin.members.import.title", d, s.errText(l, "", err))
		return
	}
	only := account.AdminAccess{Domains: []string{dom.Name}}
	rep, err := s.svc.ImportMembers(r.Context(), only, rows, d.DryRun, s.adminActor(r, ac))
	if err != nil {
		s.renderMemberForm(w, r, ac, statusOf(account.ErrorCode(err)), "admin.members.import.title", d, s.errText(l, "", err))
		return
	}
	v := &importView{DryRun: rep.DryRun, OK: rep.OK, Failed: rep.Failed}
	for _, row := range rep.Rows {
		switch {
		case row.Err != nil:
			v.Errors = append(v.Errors, importLine{Line: row.Line, Email: row.Email, Text: s.errText(l, "import", row.Err)})
		case row.OneTimePassword != "":
			v.Passwords = append(v.Passwords, importLine{Line: row.Line, Email: row.Email, Secret: row.OneTimePassword})
		}
	}
	d.Report = v
	if !d.DryRun {
		d.CSV = "" // imported: the form is for the next file
		w.Header().Set("Cache-Control", "no-store")
	}
	s.renderMemberForm(w, r, ac, http.StatusOK, "admin.members.import.title", d, "")
}

// adminMemberData is a member's page.
type adminMemberData struct {
	M            account.Member
	URL          string
	Enforced     bool
	AppsOnly     bool // third-party apps log in with third-party app passwords only
	Paused       bool
	Pause        account.Pause
	AppPasswords []account.AppPasswordView
	Sessions     []adminSessionView
	Live         []account.LiveSession // third-party sessions open on every node
	Aliases      []string
}

type adminSessionView struct {
	account.WebSession
	Browser string
}

func (s *Server) adminMemberPage(w http.ResponseWriter, r *http.Request, ac *adminCtx) {
	m, ok := s.adminMember(w, r, ac)
	if !ok {
		return
	}
	ctx := r.Context()
	l := lang(r, s.cookieName(langCookie))
	d := adminMemberData{M: m, URL: memberURL(m), Enforced: s.svc.Policy(m) == account.PolicyEnforced,
		AppsOnly: m.AppPasswordsOnly(s.svc.Config.Cutoff)}
	var err error
	if d.Pause, err = s.svc.Pause(ctx, m); err == nil {
		d.Paused = d.Pause.Paused(s.now())
		d.AppPasswords, err = s.svc.AppPasswords(ctx, m)
	}
	var sessions []account.WebSession
	if err == nil {
		sessions, err = s.svc.WebSessions(ctx, m)
	}
	if err == nil {
		d.Aliases, err = s.svc.MemberAliases(ctx, m)
	}
	if err == nil {
		d.Live, err = s.svc.LiveSessions(ctx, m)
	}
	if err != nil {
		s.pageError(w, r, ac.reqCtx, err)
		return
	}
	for _, ws := range sessions {
		d.Sessions = append(d.Sessions, adminSessionView{ws, describeBrowser(l, ws.UserAgent)})
	}
	p := s.newMembersPage(r, ac, "admin.member.title")
	p.Data = d
	s.render(w, http.StatusOK, "admin_member", p)
}

// memberAction is one of the member page's buttons that needs nothing but
// a confirmation: a GET shows it (and is where re-authentication comes
// back to), the POST does it.
type memberAction struct {
	name string // the path's last segment and the catalog keys' middle
	kind string // the button's class: "danger" or "primary"
	// do acts; it returns the one-time password to show, if any.
	do func(s *Server, r *http.Request, m account.Member, by account.Actor) (string, error)
}

var memberActions = []memberAction{
	{name: "suspend", kind: "danger", do: func(s *Server, r *http.Request, m account.Member, by account.Actor) (string, error) {
		return "", s.svc.SetState(r.Context(), m, account.StateSuspended, by)
	}},
	{name: "resume", kind: "primary", do: func(s *Server, r *http.Request, m account.Member, by account.Actor) (string, error) {
		return "", s.svc.SetState(r.Context(), m, account.StateActive, by)
	}},
	{name: "reset-password", kind: "danger", do: func(s *Server, r *http.Request, m account.Member, by account.Actor) (string, error) {
		return s.svc.ResetPassword(r.Context(), m, by)
	}},
	{name: "unpause", kind: "primary", do: func(s *Server, r *http.Request, m account.Member, by account.Actor) (string, error) {
		_, err := s.svc.LiftPause(r.Context(), m, by)
		return "", err
	}},
	{name: "end-sessions", kind: "danger", do: func(s *Server, r *http.Request, m account.Member, by account.Actor) (string, error) {
		_, err := s.svc.EndSessions(r.Context(), m, by)
		return "", err
	}},
	{name: "app-passwords-delete", kind: "danger", do: func(s *Server, r *http.Request, m account.Member, by account.Actor) (string, error) {
		_, err := s.svc.DeleteAllAppPasswords(r.Context(), m, by)
		return "", err
	}},
	{name: "setting-on", kind: "primary", do: func(s *Server, r *http.Request, m account.Member, by account.Actor) (string, error) {
		return "", s.svc.SetUseAppPasswords(r.Context(), m, true, by)
	}},
	{name: "setting-off", kind: "danger", do: func(s *Server, r *http.Request, m account.Member, by account.Actor) (string, error) {
		return "", s.svc.SetUseAppPasswords(r.Context(), m, false, by)
	}},
	{name: "rename", kind: "primary"},
	{name: "delete", kind: "danger"},
}

func (s *Server) adminMemberActionPage(a memberAction) adminHandler {
	return func(w http.ResponseWriter, r *http.Request, ac *adminCtx) {
		m, ok := s.adminMember(w, r, ac)
		if !ok {
			return
		}
		switch a.name {
		case "rename", "delete":
			s.renderMemberForm(w, r, ac, http.StatusOK, "admin.member."+a.name+".title",
				memberFormData{Kind: a.name, Domain: m.Domain(), Action: r.URL.Path, Cancel: memberURL(m), Email: m.Email}, "")
			return
		}
		s.renderMemberConfirm(w, r, ac, m, a.name, a.kind)
	}
}

// renderMemberConfirm asks to confirm the action named by the catalog keys
// admin.member.<name>.title, .body and .submit, with a button of kind.
func (s *Server) renderMemberConfirm(w http.ResponseWriter, r *http.Request, ac *adminCtx, m account.Member, name, kind string) {
	p := s.newMembersPage(r, ac, "admin.member."+name+".title")
	p.Data = confirmData{Title: p.Title, Subject: m.Email, Body: tr(p.L, "admin.member."+name+".body", m.Email),
		Action: r.URL.Path, Submit: tr(p.L, "admin.member."+name+".submit"), Kind: kind, Cancel: memberURL(m)}
	s.render(w, http.StatusOK, "confirm", p)
}

func (s *Server) adminMemberAction(a memberAction) adminHandler {
	return func(w http.ResponseWriter, r *http.Request, ac *adminCtx) {
		m, ok := s.adminMember(w, r, ac)
		if !ok {
			return
		}
		switch a.name {
		case "rename":
			s.adminRename(w, r, ac, m)
			return
		case "delete":
			s.adminDelete(w, r, ac, m)
			return
		}
		pw, err := a.do(s, r, m, s.adminActor(r, ac))
		if err != nil {
			s.pageError(w, r, ac.reqCtx, err)
			return
		}
		if pw != "" {
			s.renderSecret(w, r, ac, m, "admin.member.reset-password.done", pw)
			return
		}
		http.Redirect(w, r, memberURL(m)+"?done=m-"+a.name, http.StatusSeeOther)
	}
}

// adminRename moves the member to another address of a domain the admin
// administers.
func (s *Server) adminRename(w http.ResponseWriter, r *http.Request, ac *adminCtx, m account.Member) {
	d := memberFormData{Kind: "rename", Domain: m.Domain(), Action: r.URL.Path, Cancel: memberURL(m), Email: m.Email,
		Name: strings.TrimSpace(r.PostFormValue("new")), Keep: r.PostFormValue("keep_alias") == "1"}
	renamed, err := s.svc.RenameMember(r.Context(), ac.access, m, d.Name, d.Keep, s.adminActor(r, ac))
	if err != nil {
		s.renderMemberForm(w, r, ac, statusOf(account.ErrorCode(err)), "admin.member.rename.title", d, s.errText(lang(r, s.cookieName(langCookie)), "", err))
		return
	}
	http.Redirect(w, r, memberURL(renamed)+"?done=m-rename", http.StatusSeeOther)
}

// adminDelete deletes the member once the admin has typed its address.
func (s *Server) adminDelete(w http.ResponseWriter, r *http.Request, ac *adminCtx, m account.Member) {
	if !strings.EqualFold(strings.TrimSpace(r.PostFormValue("confirm_email")), m.Email) {
		d := memberFormData{Kind: "delete", Domain: m.Domain(), Action: r.URL.Path, Cancel: memberURL(m), Email: m.Email}
		l := lang(r, s.cookieName(langCookie))
		s.renderMemberForm(w, r, ac, http.StatusBadRequest, "admin.member.delete.title", d, tr(l, "admin.member.delete.mismatch"))
		return
	}
	if err := s.svc.DeleteMember(r.Context(), m, s.adminActor(r, ac)); err != nil {
		s.pageError(w, r, ac.reqCtx, err)
		return
	}
	http.Redirect(w, r, "/admin/members?done=m-delete&domain="+url.QueryEscape(m.Domain()), http.StatusSeeOther)
}

func (s *Server) adminDeleteAppPasswordPage(w http.ResponseWriter, r *http.Request, ac *adminCtx) {
	m, ok := s.adminMember(w, r, ac)
	if !ok {
		return
	}
	s.renderMemberConfirm(w, r, ac, m, "app-password-delete", "danger")
}

// adminDeleteAppPassword deletes one third-party app password of the member; the member
// is told by a message, as when they delete it themselves.
func (s *Server) adminDeleteAppPassword(w http.ResponseWriter, r *http.Request, ac *adminCtx) {
	m, ok := s.adminMember(w, r, ac)
	if !ok {
		return
	}
	err := s.svc.DeleteAppPassword(r.Context(), m, r.PathValue("id"), s.adminActor(r, ac))
	if account.ErrorCode(err) == account.ENOTFOUND {
		s.notFound(w, r)
		return
	} else if err != nil {
		s.pageError(w, r, ac.reqCtx, err)
		return
	}
	http.Redirect(w, r, memberURL(m)+"?done=m-app-password-delete", http.StatusSeeOther)
}
