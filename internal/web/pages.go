package web

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/auth"
)

// page wraps a handler of a signed-in page: without a session it sends the
// browser to sign in (and back here afterwards, for a GET); every POST must
// carry the session's CSRF token.
func (s *Server) page(h func(http.ResponseWriter, *http.Request, *reqCtx)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rc, ok := s.pageSession(w, r)
		if ok && s.pageCSRF(w, r, rc) {
			h(w, r, rc)
		}
	}
}

// pageSession returns the session of a signed-in page's request; without
// one it sends the browser to sign in (and back here afterwards, for a GET)
// and returns false. A member signed in with a one-time password is sent to
// the password change from every other page, the console's included.
func (s *Server) pageSession(w http.ResponseWriter, r *http.Request) (*reqCtx, bool) {
	limit := int64(maxBody)
	if n, ok := bodyLimits[r.Pattern]; ok {
		limit = n
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	rc, err := s.loadSession(r)
	if errors.Is(err, errNoSession) {
		to := "/signin"
		if r.Method == http.MethodGet && r.URL.Path != "/" {
			to += "?next=" + url.QueryEscape(r.URL.Path)
		}
		http.Redirect(w, r, to, http.StatusSeeOther)
		return nil, false
	} else if err != nil {
		s.pageError(w, r, nil, err)
		return nil, false
	}
	if rc.member.MustChangePassword && r.URL.Path != passwordPath && r.URL.Path != "/signout" {
		http.Redirect(w, r, passwordPath, http.StatusSeeOther)
		return nil, false
	}
	return rc, true
}

// pageCSRF refuses a POST without the session's CSRF token.
func (s *Server) pageCSRF(w http.ResponseWriter, r *http.Request, rc *reqCtx) bool {
	if r.Method == http.MethodPost && !validCSRF(r, rc.rec.CSRF) {
		p := s.newPage(r, rc, "err.csrf")
		p.Data = tr(p.L, "err.csrf")
		s.render(w, http.StatusForbidden, "notfound", p)
		return false
	}
	return true
}

// pageError shows err on a page of its own: the client-safe message for
// errors of the rules, a generic one (and a log line) for the rest.
func (s *Server) pageError(w http.ResponseWriter, r *http.Request, rc *reqCtx, err error) {
	code := account.ErrorCode(err)
	if code == account.EINTERNAL || code == account.EUNAVAILABLE {
		s.log.Error("page request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	p := s.newPage(r, rc, "err.internal")
	p.Data = s.errText(p.L, "", err)
	s.render(w, statusOf(code), "notfound", p)
}

// errText is what a page says about err: in English the service's own
// message (it names the rule); in other languages the translation of the
// code in this context when there is one.
func (s *Server) errText(l, context string, err error) string {
	code := account.ErrorCode(err)
	switch code {
	case account.EINTERNAL, account.EUNAVAILABLE:
		return tr(l, "err.internal")
	case codeThrottled:
		return throttledText(l)
	}
	if l != "en" {
		keys := []string{"err." + context + "." + code, "err." + code}
		if reason := account.ErrorReason(err); reason != "" {
			keys = append([]string{"err." + context + "." + code + "." + reason}, keys...)
		}
		for _, k := range keys {
			if msg, ok := catalog[l][k]; ok {
				return msg
			}
		}
		switch code {
		case account.ELIMIT:
			return tr(l, "apps.reason.limit")
		case account.ENOTFOUND:
			return tr(l, "notfound.apppassword")
		}
	}
	return account.ErrorMessage(err)
}

func (s *Server) home(w http.ResponseWriter, r *http.Request) {
	if _, err := s.loadSession(r); err == nil {
		http.Redirect(w, r, "/security", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

type signinData struct {
	Next, Email string
	Error       string // why the last attempt failed, shown in the form
	Failed      bool   // the password was wrong: focus goes to it
}

// throttleWait is how long a refused sign-in should wait: the backlog of
// the gateway's per-IP and per-account queues, beyond which an attempt is
// refused unchecked (auth.ThrottleConfig.Backlog).
var throttleWait = auth.DefaultWebAccountThrottle.Backlog

// throttledText explains a refusal by the throttle: why, and how long to wait.
func throttledText(l string) string {
	return tr(l, "err.throttled", int((throttleWait+time.Minute-1)/time.Minute))
}

// signinPage shows the sign-in form. Before a session exists the form's
// CSRF token is a random value also held in a cookie (double submit), so
// that another site cannot sign a browser in to an account of its choosing.
func (s *Server) signinPage(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"), "/security")
	if _, err := s.loadSession(r); err == nil {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	s.renderSignin(w, r, http.StatusOK, signinData{Next: next}, "")
}

func (s *Server) renderSignin(w http.ResponseWriter, r *http.Request, status int, d signinData, errKey string) {
	tok, _ := newToken()
	s.setCookie(w, preCookie, tok, time.Hour, true)
	p := s.newPage(r, nil, "signin.title")
	p.CSRF = tok
	switch errKey {
	case "":
	case "err.throttled":
		d.Error = throttledText(p.L)
		w.Header().Set("Retry-After", strconv.Itoa(int(throttleWait/time.Second)))
	default:
		d.Error = tr(p.L, errKey)
	}
	d.Failed = errKey == "err.signin"
	p.Data = d
	s.render(w, status, "signin", p)
}

func (s *Server) signin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	d := signinData{Next: safeNext(r.PostFormValue("next"), "/security"), Email: strings.TrimSpace(r.PostFormValue("email"))}
	c, err := r.Cookie(s.cookieName(preCookie))
	if err != nil || c.Value == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue("csrf"))) != 1 {
		s.renderSignin(w, r, http.StatusForbidden, d, "err.csrf")
		return
	}
	m, err := s.checkSignin(r, d.Email, r.PostFormValue("password"), "FORM")
	switch account.ErrorCode(err) {
	case "":
	case account.EUNAUTHORIZED:
		s.renderSignin(w, r, http.StatusUnauthorized, d, "err.signin")
		return
	case codeThrottled:
		s.renderSignin(w, r, http.StatusTooManyRequests, d, "err.throttled")
		return
	default:
		s.log.Error("sign in", "err", err)
		s.renderSignin(w, r, http.StatusServiceUnavailable, d, "err.internal")
		return
	}
	if _, err := s.startSession(w, r, m); err != nil {
		s.log.Error("start web session", "err", err)
		s.renderSignin(w, r, http.StatusServiceUnavailable, d, "err.internal")
		return
	}
	s.setCookie(w, preCookie, "", -1, true)
	// The language the member signs in with is the one Postern's own mail
	// to them (delivery reports) is written in.
	if err := s.svc.SetLanguage(r.Context(), m.ID, lang(r, s.cookieName(langCookie))); err != nil {
		s.log.Warn("record the member's language", "err", err)
	}
	// The browser's time zone (static/app.js fills the field) is the
	// member's until they choose one on the Security page.
	if err := s.svc.DefaultTimeZone(r.Context(), m.ID, r.PostFormValue("tz")); err != nil {
		s.log.Warn("record the member's time zone", "err", err)
	}
	http.Redirect(w, r, d.Next, http.StatusSeeOther)
}

// checkSignin verifies a main password for the web UI or the API through
// the authentication gateway (Authenticator), which throttles, records and
// counts the attempt like a third-party login. App passwords never sign in
// here; every failure is the same account.ErrAuthFailed.
func (s *Server) checkSignin(r *http.Request, email, pw, mechanism string) (account.Member, error) {
	return s.auth.SignIn(r.Context(), s.attempt(r, email, pw, mechanism))
}

// attempt describes a main-password check of request r for the gateway.
func (s *Server) attempt(r *http.Request, email, pw, mechanism string) auth.Attempt {
	ip, _ := netip.ParseAddr(s.cfg.ClientIP(r)) // unparsable: the zero Addr, the gateway's "unknown peer"
	return auth.Attempt{User: email, Secret: pw, Protocol: auth.Web, Mechanism: mechanism,
		RemoteIP: ip, TLS: r.TLS != nil || s.cfg.Secure, Devices: s.devices(r), Client: r.UserAgent()}
}

func (s *Server) signout(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	s.endSession(w, r, rc)
	http.Redirect(w, r, "/signin?done=signedout", http.StatusSeeOther)
}

// field is a hidden form field carried through a re-authentication or a
// confirmation page.
type field struct{ Name, Value string }

type reauthData struct {
	Action, Cancel string
	Fields         []field
}

// renderReauth asks for the main password again; the form goes to action
// with fields, so that the action it interrupted goes on afterwards.
func (s *Server) renderReauth(w http.ResponseWriter, r *http.Request, rc *reqCtx, status int, d reauthData, errKey string) {
	p := s.newPage(r, rc, "reauth.title")
	p.Data = d
	switch errKey {
	case "":
	case "err.throttled":
		p.Error = throttledText(p.L)
	default:
		p.Error = tr(p.L, errKey)
	}
	s.render(w, status, "reauth", p)
}

// pageReauth lets a sensitive POST through when the main password was
// entered within the window or comes with the request (reauth_password);
// otherwise it answers with the re-authentication form and returns false.
func (s *Server) pageReauth(w http.ResponseWriter, r *http.Request, rc *reqCtx, cancel string, fields []field) bool {
	d := reauthData{Action: r.URL.Path, Cancel: cancel, Fields: fields}
	if pw := r.PostFormValue("reauth_password"); pw != "" {
		err := s.reauthenticate(r.Context(), r, rc, pw)
		switch account.ErrorCode(err) {
		case "":
			return true
		case account.EFORBIDDEN:
			s.renderReauth(w, r, rc, http.StatusForbidden, d, "err.badpassword")
		case codeThrottled:
			w.Header().Set("Retry-After", strconv.Itoa(int(throttleWait/time.Second)))
			s.renderReauth(w, r, rc, http.StatusTooManyRequests, d, "err.throttled")
		default:
			s.pageError(w, r, rc, err)
		}
		return false
	}
	if s.reauthFresh(rc) {
		return true
	}
	s.renderReauth(w, r, rc, http.StatusOK, d, "")
	return false
}

// reauthPage asks for the password before showing a sensitive form.
func (s *Server) reauthPage(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	next := safeNext(r.URL.Query().Get("next"), "/security")
	s.renderReauth(w, r, rc, http.StatusOK, reauthData{Action: "/reauth", Cancel: "/security", Fields: []field{{"next", next}}}, "")
}

func (s *Server) reauth(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	next := safeNext(r.PostFormValue("next"), "/security")
	if s.pageReauth(w, r, rc, "/security", []field{{"next", next}}) {
		http.Redirect(w, r, next, http.StatusSeeOther)
	}
}

type securityData struct {
	Zone         string   // the member's time zone, as the page shows times
	Zones        []string // the zones to choose from
	Enforced, On bool
	Count, Max   int
	Sessions     []sessionView
	Storage      *storageView // nil: no mail store to ask
}

func (s *Server) securityPage(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	s.renderSecurity(w, r, rc, http.StatusOK, "")
}

func (s *Server) renderSecurity(w http.ResponseWriter, r *http.Request, rc *reqCtx, status int, errMsg string) {
	list, err := s.svc.AppPasswords(r.Context(), rc.member)
	if err != nil {
		s.pageError(w, r, rc, err)
		return
	}
	p := s.newPage(r, rc, "security.title")
	sessions, err := s.memberSessions(r.Context(), rc, p.L)
	if err != nil {
		s.pageError(w, r, rc, err)
		return
	}
	used, limit, ok, err := s.storage(r.Context(), rc.member.ID)
	if err != nil {
		s.pageError(w, r, rc, err)
		return
	}
	p.Error = errMsg
	m := rc.member
	d := securityData{Zone: p.Zone, Zones: zoneChoices(p.Zone), Enforced: s.svc.Policy(m) == account.PolicyEnforced,
		On: m.AppPasswordsOnly(s.svc.Config.Cutoff), Count: len(list), Max: account.MaxAppPasswords, Sessions: sessions}
	if ok {
		d.Storage = newStorageView(used, limit)
	}
	p.Data = d
	s.render(w, status, "security", p)
}

// zoneChoices is zoneNames with current among them.
func zoneChoices(current string) []string {
	if slices.Contains(zoneNames, current) {
		return zoneNames
	}
	out := append([]string{current}, zoneNames...)
	slices.Sort(out)
	return out
}

// setTimeZone records the zone the member chose; not a sensitive action:
// it changes how times read, nothing about access.
func (s *Server) setTimeZone(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if err := s.svc.SetTimeZone(r.Context(), rc.member.ID, r.PostFormValue("tz")); err != nil {
		l := lang(r, s.cookieName(langCookie))
		s.renderSecurity(w, r, rc, statusOf(account.ErrorCode(err)), s.errText(l, "timezone", err))
		return
	}
	http.Redirect(w, r, "/security?done=timezone#timezone-h", http.StatusSeeOther)
}

type confirmData struct {
	Title, Subject, Body, Strong string
	Action, Submit, Kind, Cancel string
	Fields                       []field
}

// setting turns "Use a third-party app password" on or off: confirmed (the
// dialog, or the page below without JavaScript), then re-authenticated.
func (s *Server) setting(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	on := r.PostFormValue("on") == "1"
	l := lang(r, s.cookieName(langCookie))
	if s.svc.Policy(rc.member) == account.PolicyEnforced {
		s.renderSecurity(w, r, rc, http.StatusConflict, tr(l, "setting.enforced"))
		return
	}
	fields := []field{{"on", r.PostFormValue("on")}}
	if r.PostFormValue("confirmed") != "1" {
		d := confirmData{Title: tr(l, "setting.confirm.off.title"), Body: tr(l, "setting.confirm.off.body"),
			Strong: tr(l, "setting.confirm.logout"), Action: "/security/setting", Submit: tr(l, "setting.turnoff"),
			Kind: "primary", Cancel: "/security", Fields: fields}
		if on {
			d.Title, d.Body, d.Submit = tr(l, "setting.confirm.on.title"), tr(l, "setting.confirm.on.body"), tr(l, "setting.turnon")
		}
		p := s.newPage(r, rc, "security.title")
		p.Title = d.Title
		p.Data = d
		s.render(w, http.StatusOK, "confirm", p)
		return
	}
	if !s.pageReauth(w, r, rc, "/security", append(fields, field{"confirmed", "1"})) {
		return
	}
	if err := s.svc.SetUseAppPasswords(r.Context(), rc.member, on, s.actor(r, "web")); err != nil {
		s.renderSecurity(w, r, rc, statusOf(account.ErrorCode(err)), s.errText(l, "setting", err))
		return
	}
	done := "setting.off"
	if on {
		done = "setting.on"
	}
	http.Redirect(w, r, "/security?done="+done, http.StatusSeeOther)
}

type passwordData struct{ DeleteApps bool }

// passwordPath is the page of the password change, the only page (with
// signing out) that a member whose password is a one-time password sees.
const passwordPath = "/security/password"

func (s *Server) passwordPage(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	p := s.newPasswordPage(r, rc)
	p.Data = passwordData{}
	s.render(w, http.StatusOK, "password", p)
}

// newPasswordPage tells a member signed in with a one-time password why
// this page came first.
func (s *Server) newPasswordPage(r *http.Request, rc *reqCtx) *pageData {
	p := s.newPage(r, rc, "password.title")
	if rc.member.MustChangePassword {
		p.Notice = tr(p.L, "password.onetime")
	}
	return p
}

// changePassword: the current password is the re-authentication.
func (s *Server) changePassword(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	p := s.newPasswordPage(r, rc)
	del := r.PostFormValue("delete_app_passwords") == "1"
	p.Data = passwordData{DeleteApps: del}
	newPw := r.PostFormValue("new")
	if newPw != r.PostFormValue("confirm") {
		p.Error = tr(p.L, "password.mismatch")
		s.render(w, http.StatusBadRequest, "password", p)
		return
	}
	if err := s.changePasswordFor(r, rc, r.PostFormValue("current"), newPw, del, "web"); err != nil {
		code := account.ErrorCode(err)
		switch code {
		case account.EFORBIDDEN:
			p.Error = tr(p.L, "err.badpassword")
		default:
			p.Error = s.errText(p.L, "password", err)
		}
		if code == account.EINTERNAL {
			s.log.Error("change password", "err", err)
		}
		s.render(w, statusOf(code), "password", p)
		return
	}
	http.Redirect(w, r, "/security?done=password", http.StatusSeeOther)
}

type messagesData struct{ List []messageView }

// messagesPage lists the messages newest first, marked as they were, and
// marks them read: opening Messages is reading them, as in any mail client.
func (s *Server) messagesPage(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	list, err := s.svc.OpenMessages(r.Context(), rc.member)
	if err != nil {
		s.pageError(w, r, rc, err)
		return
	}
	p := s.newPage(r, rc, "messages.title")
	p.Data = messagesData{List: localizeMessages(p.L, p.Loc, list)}
	s.render(w, http.StatusOK, "messages", p)
}
