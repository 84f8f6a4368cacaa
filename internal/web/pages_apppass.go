package web

import (
	"net/http"

	"github.com/postern/postern/internal/account"
)

type appPasswordsData struct {
	List       []account.AppPasswordView
	Max        int
	Active     bool   // the member's app passwords work (setting on or enforced)
	Reason     string // why "Create new password" is disabled; "" when it is not
	SettingOff bool
}

// createBlocked says why a new app password cannot be created now, in l.
func (s *Server) createBlocked(l string, m account.Member, count int) (reason string, settingOff bool) {
	switch {
	case !m.AppPasswordsOnly(s.svc.Config.Cutoff):
		return tr(l, "apps.reason.off"), true
	case count >= account.MaxAppPasswords:
		return tr(l, "apps.reason.limit"), false
	}
	return "", false
}

func (s *Server) appPasswordsPage(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	list, err := s.svc.AppPasswords(r.Context(), rc.member)
	if err != nil {
		s.pageError(w, r, rc, err)
		return
	}
	p := s.newPage(r, rc, "apps.title")
	d := appPasswordsData{List: list, Max: account.MaxAppPasswords, Active: rc.member.AppPasswordsOnly(s.svc.Config.Cutoff)}
	d.Reason, d.SettingOff = s.createBlocked(p.L, rc.member, len(list))
	p.Data = d
	s.render(w, http.StatusOK, "apppasswords", p)
}

type newData struct {
	Name  string
	Error string // what is wrong with Name, shown at the field
}

// newAppPasswordPage asks for the app's name, after the password when the
// last one was entered too long ago (so that the name is not typed twice).
func (s *Server) newAppPasswordPage(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	list, err := s.svc.AppPasswords(r.Context(), rc.member)
	if err != nil {
		s.pageError(w, r, rc, err)
		return
	}
	l := lang(r, s.cookieName(langCookie))
	if reason, _ := s.createBlocked(l, rc.member, len(list)); reason != "" {
		http.Redirect(w, r, "/security/app-passwords", http.StatusSeeOther)
		return
	}
	if !s.reauthFresh(rc) {
		s.renderReauth(w, r, rc, http.StatusOK, reauthData{Action: "/reauth", Cancel: "/security/app-passwords",
			Fields: []field{{"next", "/security/app-passwords/new"}}}, "")
		return
	}
	p := s.newPage(r, rc, "new.title")
	p.Data = newData{}
	s.render(w, http.StatusOK, "newapppassword", p)
}

type createdData struct {
	Name, Plain, Grouped string
	Servers              []serverRow
	DAV                  string
	ID                   string // for the profile download, with Plain
	Gone                 bool   // the one-time view was shown already, or expired
}

// createAppPassword creates the password and redirects to a one-time view
// of it (POST-redirect-GET): reloading that page, or a phone restoring the
// tab, never re-sends the form. The password is never stored in plaintext,
// never put in a URL (only the view's random id is), and no page is cached.
func (s *Server) createAppPassword(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	name := r.PostFormValue("name")
	if !s.pageReauth(w, r, rc, "/security/app-passwords", []field{{"name", name}}) {
		return
	}
	ap, plain, err := s.svc.CreateAppPassword(r.Context(), rc.member, name, s.actor(r, "web"))
	if err != nil {
		p := s.newPage(r, rc, "new.title")
		d := newData{Name: name}
		switch code := account.ErrorCode(err); code {
		case account.EINVALID, account.ECONFLICT: // about the name: said at the field
			d.Error = s.errText(p.L, "name", err)
		default:
			p.Error = s.errText(p.L, "name", err)
		}
		p.Data = d
		s.render(w, statusOf(account.ErrorCode(err)), "newapppassword", p)
		return
	}
	v := revealed{ID: ap.ID, Name: ap.Name, Password: plain}
	id, err := s.putReveal(r, rc, v)
	if err != nil {
		// The password exists: show it in this response rather than lose it.
		s.log.Error("keep the one-time view of a new third-party app password", "err", err)
		s.renderCreated(w, r, rc, http.StatusCreated, v)
		return
	}
	http.Redirect(w, r, "/security/app-passwords/created?view="+id, http.StatusSeeOther)
}

// createdPage shows a new password once: the view is deleted as it is read,
// and afterwards (or after revealTTL) the page says so and points to Manage.
func (s *Server) createdPage(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	v, ok, err := s.takeReveal(r, rc, r.URL.Query().Get("view"))
	if err != nil {
		s.pageError(w, r, rc, err)
		return
	}
	if !ok {
		p := s.newPage(r, rc, "created.gone.title")
		p.Data = createdData{Gone: true}
		s.render(w, http.StatusGone, "created", p)
		return
	}
	s.renderCreated(w, r, rc, http.StatusOK, v)
}

func (s *Server) renderCreated(w http.ResponseWriter, r *http.Request, rc *reqCtx, status int, v revealed) {
	p := s.newPage(r, rc, "created.title")
	p.Title = tr(p.L, "created.title", v.Name)
	p.Notice = tr(p.L, "notice.created")
	set := s.serverSettings(r)
	p.Data = createdData{Name: v.Name, Plain: v.Password, Grouped: account.GroupAppPassword(v.Password),
		Servers: set.rows(p.L), DAV: set.davURL(), ID: v.ID}
	s.render(w, status, "created", p)
}

// downloadProfile renders the Apple configuration profile of a password
// just created. Nothing is kept on the server between the creation and the
// download: the result page's form POSTs the password's id and the password
// itself (in the body, never a URL, with the CSRF token), and the profile is
// made only when that password hashes to the stored hash of that id of the
// signed-in member, and the id was created within profileWindow. Any node of
// a multi-node deployment can answer. The password is never logged.
func (s *Server) downloadProfile(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	ap, ok, err := s.profilePassword(r, rc, r.PostFormValue("id"), r.PostFormValue("password"))
	if err != nil {
		s.pageError(w, r, rc, err)
		return
	}
	if !ok {
		s.log.Info("configuration profile refused", "member", rc.member.Email, "ip", s.cfg.ClientIP(r))
		p := s.newPage(r, rc, "setup.apple")
		p.Data = tr(p.L, "setup.gone")
		s.render(w, http.StatusGone, "notfound", p)
		return
	}
	body := mobileconfig(s.serverSettings(r), rc.member, ap.Name, r.PostFormValue("password"))
	h := w.Header()
	h.Set("Content-Type", "application/x-apple-aspen-config")
	h.Set("Content-Disposition", `attachment; filename="`+profileFilename(rc.member)+`"`)
	noStore(w)
	w.Write(body)
}

// profilePassword finds the member's app password id and reports whether pw
// is that password (keyed hash, constant-time compare) and still within
// profileWindow of its creation.
func (s *Server) profilePassword(r *http.Request, rc *reqCtx, id, pw string) (account.AppPassword, bool, error) {
	if id == "" || pw == "" || len(pw) > 64 {
		return account.AppPassword{}, false, nil
	}
	ap, match, err := s.svc.FindAppPassword(r.Context(), rc.member, id, pw)
	if err != nil || ap.ID == "" {
		return ap, false, err
	}
	age := s.now().Sub(ap.CreatedAt)
	return ap, match && age >= 0 && age <= profileWindow, nil
}

func (s *Server) findAppPassword(r *http.Request, rc *reqCtx, id string) (account.AppPasswordView, bool, error) {
	list, err := s.svc.AppPasswords(r.Context(), rc.member)
	if err != nil {
		return account.AppPasswordView{}, false, err
	}
	for _, p := range list {
		if p.ID == id {
			return p, true, nil
		}
	}
	return account.AppPasswordView{}, false, nil
}

// deleteAppPasswordPage is the confirmation without JavaScript (with it,
// a dialog on the list asks the same question).
func (s *Server) deleteAppPasswordPage(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	s.confirmDelete(w, r, rc, r.PathValue("id"))
}

func (s *Server) confirmDelete(w http.ResponseWriter, r *http.Request, rc *reqCtx, id string) {
	ap, ok, err := s.findAppPassword(r, rc, id)
	if err != nil {
		s.pageError(w, r, rc, err)
		return
	}
	if !ok {
		s.pageError(w, r, rc, account.Errorf(account.ENOTFOUND, "This third-party app password does not exist any more."))
		return
	}
	p := s.newPage(r, rc, "delete.title.generic")
	p.Title = tr(p.L, "delete.title", ap.Name)
	p.Data = confirmData{Title: p.Title, Body: tr(p.L, "delete.body"), Action: "/security/app-passwords/" + ap.ID + "/delete",
		Submit: tr(p.L, "delete"), Kind: "danger", Cancel: "/security/app-passwords"}
	s.render(w, http.StatusOK, "confirm", p)
}

func (s *Server) deleteAppPassword(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	id := r.PathValue("id")
	if r.PostFormValue("confirmed") != "1" {
		s.confirmDelete(w, r, rc, id)
		return
	}
	if err := s.svc.DeleteAppPassword(r.Context(), rc.member, id, s.actor(r, "web")); err != nil {
		s.pageError(w, r, rc, err)
		return
	}
	http.Redirect(w, r, "/security/app-passwords?done=deleted", http.StatusSeeOther)
}
