package web

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/postern/postern/internal/account"
)

// The sessions list, "Where you're signed in" (docs/security.md, ASVS
// 5.0 7.5.2: users can list and kill their sessions). A session is named by
// its random public id, never by its token or the token's hash.

// sessionView is one web session of the member, as listed.
type sessionView struct {
	ID         string // the public id
	CreatedAt  time.Time
	LastSeenAt time.Time
	IP         string
	UserAgent  string
	Browser    string // "Firefox on Linux", in the reader's language
	Current    bool   // the session of this request
}

// memberSessions lists the live sessions of the member of rc, this one
// first, then the most recently used. Expired sessions that the pruning has
// not yet deleted are left out: they can no longer sign anything in.
func (s *Server) memberSessions(ctx context.Context, rc *reqCtx, l string) ([]sessionView, error) {
	list, err := s.sessions.MemberWebSessions(ctx, rc.member.ID)
	if err != nil {
		return nil, err
	}
	now := s.now()
	out := make([]sessionView, 0, len(list))
	for _, r := range list {
		if now.Sub(r.LastSeenAt) > s.cfg.IdleTimeout || now.Sub(r.CreatedAt) > s.cfg.AbsoluteTimeout {
			continue
		}
		v := sessionView{ID: r.PublicID, CreatedAt: r.CreatedAt, LastSeenAt: r.LastSeenAt, IP: r.IP,
			UserAgent: r.UserAgent, Browser: describeBrowser(l, r.UserAgent), Current: bytes.Equal(r.IDHash, rc.rec.IDHash)}
		if v.Current {
			v.LastSeenAt = rc.rec.LastSeenAt
			out = append([]sessionView{v}, out...)
		} else {
			out = append(out, v)
		}
	}
	return out, nil
}

// signOutSession ends the member's session id (a public id); ending the
// current one also clears this browser's cookie. It reports whether it was
// the current session.
func (s *Server) signOutSession(w http.ResponseWriter, r *http.Request, rc *reqCtx, id string) (current bool, err error) {
	if id == "" || len(id) > 64 {
		return false, account.Errorf(account.ENOTFOUND, "There is no such session.")
	}
	if id == rc.rec.PublicID {
		s.endSession(w, r, rc)
		s.log.Info("web session signed out from the sessions list", "member", rc.member.Email, "current", true)
		return true, nil
	}
	if err := s.sessions.DeleteMemberWebSession(r.Context(), rc.member.ID, id); errors.Is(err, account.ErrNotFound) {
		return false, account.Errorf(account.ENOTFOUND, "There is no such session.")
	} else if err != nil {
		return false, err
	}
	s.log.Info("web session signed out from the sessions list", "member", rc.member.Email, "current", false)
	return false, nil
}

// signOutOthers ends every session of the member but this one.
func (s *Server) signOutOthers(r *http.Request, rc *reqCtx) (int64, error) {
	n, err := s.sessions.DeleteMemberWebSessions(r.Context(), rc.member.ID, rc.rec.IDHash)
	if err != nil {
		return 0, err
	}
	s.log.Info("other web sessions signed out", "member", rc.member.Email, "count", n)
	return n, nil
}

// Pages.

func (s *Server) signOutSessionPage(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	current, err := s.signOutSession(w, r, rc, r.PathValue("id"))
	if account.ErrorCode(err) == account.ENOTFOUND {
		p := s.newPage(r, rc, "notfound.title")
		p.Data = tr(p.L, "notfound.session")
		s.render(w, http.StatusNotFound, "notfound", p)
		return
	} else if err != nil {
		s.pageError(w, r, rc, err)
		return
	}
	if current {
		http.Redirect(w, r, "/signin?done=signedout", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/security?done=session#sessions-h", http.StatusSeeOther)
}

func (s *Server) signOutOthersPage(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if _, err := s.signOutOthers(r, rc); err != nil {
		s.pageError(w, r, rc, err)
		return
	}
	http.Redirect(w, r, "/security?done=sessions#sessions-h", http.StatusSeeOther)
}

// API.

type sessionJSON struct {
	ID         string    `json:"id"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	IP         string    `json:"ip"`
	UserAgent  string    `json:"user_agent"`
	Browser    string    `json:"browser"`
	Current    bool      `json:"current"`
}

func (s *Server) apiSessions(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	list, err := s.memberSessions(r.Context(), rc, lang(r, s.cookieName(langCookie)))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	out := make([]sessionJSON, 0, len(list))
	for _, v := range list {
		out = append(out, sessionJSON{ID: v.ID, CreatedAt: v.CreatedAt.UTC(), LastSeenAt: v.LastSeenAt.UTC(),
			IP: v.IP, UserAgent: v.UserAgent, Browser: v.Browser, Current: v.Current})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) apiDeleteSession(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if _, err := s.signOutSession(w, r, rc, r.PathValue("id")); err != nil {
		s.apiError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) apiDeleteOtherSessions(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	n, err := s.signOutOthers(r, rc)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		SignedOut int64 `json:"signed_out"`
	}{n})
}

// describeBrowser names the client of a User-Agent for people in l:
// "Firefox on Linux", "Firefox（Linux）"; the parser is the one the notices
// use (account.ParseUserAgent).
func describeBrowser(l, ua string) string {
	c := account.ParseUserAgent(ua)
	if !c.Known() {
		return tr(l, "sessions.unknown")
	}
	return c.Format(tr(l, "sessions.on"))
}
