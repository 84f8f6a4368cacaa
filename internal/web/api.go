package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/auth"
)

// maxBody bounds every request body: the largest legitimate one is a
// password change, a few hundred bytes.
const maxBody = 64 << 10

// statusOf maps an error code to its HTTP status, in this one place.
func statusOf(code string) int {
	switch code {
	case account.EINVALID:
		return http.StatusBadRequest
	case account.ENOTFOUND:
		return http.StatusNotFound
	case account.ECONFLICT, account.ELIMIT:
		return http.StatusConflict
	case account.EFORBIDDEN, codeReauth:
		return http.StatusForbidden
	case account.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case account.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	case codeThrottled:
		return http.StatusTooManyRequests
	}
	return http.StatusInternalServerError
}

// codeReauth: the action needs the main password entered within the
// re-authentication window.
const codeReauth = "reauth_required"

// codePasswordChange: the member signed in with a one-time password and
// must choose a new one before anything else.
const codePasswordChange = "password_change_required"

// codeThrottled: a sign-in or password check refused unchecked because too
// many attempts of the client or against the account are waiting (429).
const codeThrottled = auth.CodeThrottled

type apiErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	noStore(w)
	w.WriteHeader(status)
	if v != nil {
		json.NewEncoder(w).Encode(v)
	}
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	var b apiErrorBody
	b.Error.Code, b.Error.Message = code, msg
	writeJSON(w, status, b)
}

// apiError answers err: its code and client-safe message, or for anything
// unexpected "internal" with a generic message while the cause goes to the log.
func (s *Server) apiError(w http.ResponseWriter, r *http.Request, err error) {
	code := account.ErrorCode(err)
	if code == account.EINTERNAL {
		s.log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeError(w, statusOf(code), code, account.ErrorMessage(err))
}

// decode reads one JSON object into v, refusing unknown fields and trailing data.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return account.Errorf(account.EINVALID, "The request body is not the JSON object this endpoint takes.")
	}
	if _, err := dec.Token(); err != io.EOF {
		return account.Errorf(account.EINVALID, "The request body has data after the JSON object.")
	}
	return nil
}

// api wraps a handler that needs a signed-in session: JSON bodies only, and
// the errors as JSON.
func (s *Server) api(h func(http.ResponseWriter, *http.Request, *reqCtx)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		if (r.Method == http.MethodPost || r.Method == http.MethodPut) && !isJSON(r) {
			writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "Send the request body as JSON with Content-Type: application/json.")
			return
		}
		rc, err := s.loadSession(r)
		if errors.Is(err, errNoSession) {
			writeError(w, http.StatusUnauthorized, account.EUNAUTHORIZED, "Sign in first: POST /api/v1/session.")
			return
		} else if err != nil {
			s.apiError(w, r, err)
			return
		}
		if rc.member.MustChangePassword && !(r.Method == http.MethodPut && r.URL.Path == "/api/v1/me/password") &&
			!(r.Method == http.MethodDelete && r.URL.Path == "/api/v1/session") {
			writeError(w, http.StatusForbidden, codePasswordChange, "The password is a one-time password: choose a new one first with PUT /api/v1/me/password.")
			return
		}
		h(w, r, rc)
	}
}

func (s *Server) actor(r *http.Request, via string) account.Actor {
	return account.Actor{Via: via, IP: s.cfg.ClientIP(r), UserAgent: clipUA(r.UserAgent())}
}

type meJSON struct {
	Email           string `json:"email"`
	Name            string `json:"name"`
	Domain          string `json:"domain"`
	Policy          string `json:"policy"`
	UseAppPasswords bool   `json:"use_app_passwords"`
	// Storage is the member's mail storage; absent when the server has no
	// mail store to ask.
	Storage *storageJSON `json:"storage,omitempty"`
}

// storageJSON is the octets of all the member's messages, every folder
// together, and the limit that applies to them (null: none).
type storageJSON struct {
	Used  int64  `json:"used"`
	Limit *int64 `json:"limit"`
}

func (s *Server) me(ctx context.Context, m account.Member) (meJSON, error) {
	// For an enforced domain the setting is on, whatever the stored value.
	j := meJSON{Email: m.Email, Name: m.Name, Domain: m.Domain(), Policy: string(s.svc.Policy(m)),
		UseAppPasswords: m.AppPasswordsOnly(s.svc.Config.Cutoff)}
	used, limit, ok, err := s.storage(ctx, m.ID)
	if err != nil || !ok {
		return j, err
	}
	j.Storage = &storageJSON{Used: used}
	if limit > 0 {
		j.Storage.Limit = &limit
	}
	return j, nil
}

// writeMe answers with the me object.
func (s *Server) writeMe(w http.ResponseWriter, r *http.Request, m account.Member) {
	j, err := s.me(r.Context(), m)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, j)
}

func (s *Server) apiSignin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if !isJSON(r) {
		writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "Send the request body as JSON with Content-Type: application/json.")
		return
	}
	var in struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	if err := decode(r, &in); err != nil {
		s.apiError(w, r, err)
		return
	}
	m, err := s.checkSignin(r, in.Email, in.Password, "API")
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	if _, err := s.startSession(w, r, m); err != nil {
		s.apiError(w, r, err)
		return
	}
	s.writeMe(w, r, m)
}

func (s *Server) apiSignout(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	s.endSession(w, r, rc)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) apiNotFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, account.ENOTFOUND, "No such API endpoint or method.")
}

func (s *Server) apiMe(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	s.writeMe(w, r, rc.member)
}

// apiReauth lets a sensitive API call through when the session entered the
// main password within the window, or when the request carries it in its
// "password" field (then the window starts again).
func (s *Server) apiReauth(w http.ResponseWriter, r *http.Request, rc *reqCtx, pw *string) bool {
	if pw != nil && *pw != "" {
		if err := s.reauthenticate(r.Context(), r, rc, *pw); err != nil {
			if account.ErrorCode(err) == account.EFORBIDDEN {
				writeError(w, http.StatusForbidden, codeReauth, "The password is not correct.")
			} else {
				s.apiError(w, r, err)
			}
			return false
		}
		return true
	}
	if s.reauthFresh(rc) {
		return true
	}
	writeError(w, http.StatusForbidden, codeReauth,
		"Enter your password again: repeat the request with a \"password\" field, or sign in again with POST /api/v1/session.")
	return false
}

func (s *Server) apiSettings(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	var in struct {
		UseAppPasswords *bool   `json:"use_app_passwords"`
		Password        *string `json:"password"`
	}
	if err := decode(r, &in); err != nil {
		s.apiError(w, r, err)
		return
	}
	if in.UseAppPasswords == nil {
		writeError(w, http.StatusBadRequest, account.EINVALID, "Send {\"use_app_passwords\": true} or false.")
		return
	}
	m := rc.member
	if s.svc.Policy(m) == account.PolicyEnforced {
		// The rule is the service's; asking it answers 409 before any password prompt.
		s.apiError(w, r, s.svc.SetUseAppPasswords(r.Context(), m, *in.UseAppPasswords, s.actor(r, "api")))
		return
	}
	if !s.apiReauth(w, r, rc, in.Password) {
		return
	}
	if err := s.svc.SetUseAppPasswords(r.Context(), m, *in.UseAppPasswords, s.actor(r, "api")); err != nil {
		s.apiError(w, r, err)
		return
	}
	m.UseAppPasswords = *in.UseAppPasswords
	s.writeMe(w, r, m)
}

type appPasswordJSON struct {
	ID               string     `json:"id"`
	Name             string     `json:"name"`
	CreatedAt        time.Time  `json:"created_at"`
	LastUsedAt       *time.Time `json:"last_used_at"`
	LastUsedProtocol string     `json:"last_used_protocol"`
	LastUsedIP       string     `json:"last_used_ip"`
	Active           bool       `json:"active"`
	Sent24h          int        `json:"sent_24h"` // messages submitted with it in the last 24 hours
}

func (s *Server) apiAppPasswords(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	list, err := s.svc.AppPasswords(r.Context(), rc.member)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	out := make([]appPasswordJSON, 0, len(list))
	for _, p := range list {
		j := appPasswordJSON{ID: p.ID, Name: p.Name, CreatedAt: p.CreatedAt.UTC(),
			LastUsedProtocol: p.LastUsedProtocol, LastUsedIP: p.LastUsedIP, Active: p.Active, Sent24h: p.Sent24h}
		if !p.LastUsedAt.IsZero() {
			t := p.LastUsedAt.UTC()
			j.LastUsedAt = &t
		}
		out = append(out, j)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) apiCreateAppPassword(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	var in struct {
		Name     string  `json:"name"`
		Password *string `json:"password"`
	}
	if err := decode(r, &in); err != nil {
		s.apiError(w, r, err)
		return
	}
	if !s.apiReauth(w, r, rc, in.Password) {
		return
	}
	p, plain, err := s.svc.CreateAppPassword(r.Context(), rc.member, in.Name, s.actor(r, "api"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, struct {
		ID        string    `json:"id"`
		Name      string    `json:"name"`
		Password  string    `json:"password"`
		CreatedAt time.Time `json:"created_at"`
	}{p.ID, p.Name, plain, p.CreatedAt.UTC()})
}

func (s *Server) apiDeleteAppPassword(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if err := s.svc.DeleteAppPassword(r.Context(), rc.member, r.PathValue("id"), s.actor(r, "api")); err != nil {
		s.apiError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type messageJSON struct {
	ID        int64             `json:"id"`
	Kind      string            `json:"kind"`
	Lang      string            `json:"lang"`
	Subject   string            `json:"subject"`
	Body      string            `json:"body"`
	CreatedAt time.Time         `json:"created_at"`
	Read      bool              `json:"read"`
	Params    map[string]string `json:"params"`
}

// apiMessages lists the messages, newest first, with subject and body in
// the language of the request (the language cookie, else Accept-Language;
// English by default) and, for clients that render their own, the kind and
// parameters. Reading them here marks nothing: GET changes no state; POST
// /api/v1/me/messages/read does.
func (s *Server) apiMessages(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	list, err := s.svc.Messages(r.Context(), rc.member)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	l := lang(r, s.cookieName(langCookie))
	out := make([]messageJSON, 0, len(list))
	loc, set, _ := s.svc.Zone(r.Context(), rc.member.ID)
	if !set {
		loc = location(r)
	}
	for _, v := range localizeMessages(l, loc, list) {
		p := v.Params
		if p == nil {
			p = map[string]string{}
		}
		out = append(out, messageJSON{ID: v.ID, Kind: v.Kind, Lang: v.Lang, Subject: v.Subject, Body: v.Body,
			CreatedAt: v.CreatedAt.UTC(), Read: v.Read, Params: p})
	}
	w.Header().Set("Vary", "Accept-Language, Cookie")
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) apiMarkRead(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	var in struct {
		IDs []int64 `json:"ids"`
	}
	if err := decode(r, &in); err != nil {
		s.apiError(w, r, err)
		return
	}
	if len(in.IDs) > 1000 {
		writeError(w, http.StatusBadRequest, account.EINVALID, "At most 1000 ids at once.")
		return
	}
	if err := s.svc.MarkMessagesRead(r.Context(), rc.member, in.IDs); err != nil {
		s.apiError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) apiPassword(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	var in struct {
		Current            string `json:"current"`
		New                string `json:"new"`
		DeleteAppPasswords bool   `json:"delete_app_passwords"`
	}
	if err := decode(r, &in); err != nil {
		s.apiError(w, r, err)
		return
	}
	if err := s.changePasswordFor(r, rc, in.Current, in.New, in.DeleteAppPasswords, "api"); err != nil {
		s.apiError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// changePasswordFor changes the main password (the current one is the
// re-authentication, checked by the gateway like a sign-in), then signs out
// every other web session of the member.
func (s *Server) changePasswordFor(r *http.Request, rc *reqCtx, current, newPw string, deleteApps bool, via string) error {
	ctx := r.Context()
	ip := s.cfg.ClientIP(r)
	if _, err := s.auth.SignIn(ctx, s.attempt(r, rc.member.Email, current, "PASSWORD-CHANGE")); err != nil {
		if account.ErrorCode(err) == account.EUNAUTHORIZED {
			return account.Errorf(account.EFORBIDDEN, "The current password is not correct.")
		}
		return err
	}
	// skipCurrent: SignIn has just checked it, and a second hash would only
	// double the cost.
	if err := s.svc.ChangePassword(ctx, rc.member, "", newPw, true, deleteApps, s.actor(r, via)); err != nil {
		return err
	}
	n, err := s.sessions.DeleteMemberWebSessions(ctx, rc.member.ID, rc.rec.IDHash)
	if err != nil {
		return err
	}
	s.log.Info("main password changed", "member", rc.member.Email, "via", via, "ip", ip, "other_web_sessions_ended", n)
	now := s.now().UTC()
	if err := s.sessions.ReauthWebSession(ctx, rc.rec.IDHash, now); err != nil {
		return err
	}
	rc.rec.ReauthAt = now
	return nil
}
