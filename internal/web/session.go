package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/web/websession"
)

// Cookie base names. Under TLS they carry the __Host- prefix, which makes the
// browser insist on Secure, Path=/ and no Domain, so that no sibling host can
// plant or overwrite them.
const (
	sessionCookie = "postern_session"
	preCookie     = "postern_pre" // CSRF token of the sign-in form, before a session exists
	langCookie    = "postern_lang"
	tzCookie      = "postern_tz" // set by static/app.js from the browser's time zone
	// deviceCookie holds the browser's device tokens (auth.Gateway.RememberDevice).
	deviceCookie = "postern_device"
	// deviceMaxAge is how long a browser stays known without signing in:
	// 400 days, the longest that browsers keep a cookie.
	deviceMaxAge    = 400 * 24 * time.Hour
	maxDeviceCookie = 512
)

// touchEvery bounds how often a session's last use is written: the idle
// timeout is an hour, a minute of slack costs nothing and saves a write per request.
const touchEvery = time.Minute

func (s *Server) cookieName(base string) string {
	if s.cfg.Secure {
		return "__Host-" + base
	}
	return base
}

// newToken returns 256 random bits, base64url, and their SHA-256.
func newToken() (string, []byte) {
	b := make([]byte, 32)
	rand.Read(b)
	tok := base64.RawURLEncoding.EncodeToString(b)
	return tok, hashToken(tok)
}

// newPublicID names a session in the sessions list: 128 random bits, hex,
// drawn apart from the token so that it reveals nothing about it.
func newPublicID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func hashToken(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

func (s *Server) setCookie(w http.ResponseWriter, name, value string, maxAge time.Duration, httpOnly bool) {
	c := &http.Cookie{
		Name: s.cookieName(name), Value: value, Path: "/",
		HttpOnly: httpOnly, Secure: s.cfg.Secure, SameSite: http.SameSiteLaxMode,
	}
	if maxAge > 0 {
		c.MaxAge = int(maxAge / time.Second)
	} else if maxAge < 0 {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
}

// devices returns the device tokens r carries, "" when none or too many.
func (s *Server) devices(r *http.Request) string {
	c, err := r.Cookie(s.cookieName(deviceCookie))
	if err != nil || len(c.Value) > maxDeviceCookie {
		return ""
	}
	return c.Value
}

// reqCtx is what a handler of a signed-in request gets.
type reqCtx struct {
	rec    websession.Record
	member account.Member
	token  string // the cookie's session token: keys what is sealed for this session (reveal.go)
}

// startSession signs m in: a new session with a new id (never one the client
// offered: no session fixation), the old session of this browser deleted.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, m account.Member) (*reqCtx, error) {
	if c, err := r.Cookie(s.cookieName(sessionCookie)); err == nil && c.Value != "" {
		if err := s.sessions.DeleteWebSession(r.Context(), hashToken(c.Value)); err != nil {
			s.log.Warn("delete previous web session", "err", err)
		}
	}
	tok, hash := newToken()
	csrf, _ := newToken()
	now := s.now().UTC()
	rec := websession.Record{IDHash: hash, PublicID: newPublicID(), MemberID: m.ID, CreatedAt: now, LastSeenAt: now, ReauthAt: now,
		CSRF: csrf, UserAgent: clipUA(r.UserAgent()), IP: s.cfg.ClientIP(r)}
	if err := s.sessions.CreateWebSession(r.Context(), rec); err != nil {
		return nil, err
	}
	s.setCookie(w, sessionCookie, tok, s.cfg.AbsoluteTimeout, true)
	s.setCookie(w, deviceCookie, s.auth.RememberDevice(m.Email, s.devices(r)), deviceMaxAge, true)
	s.maybePrune()
	return &reqCtx{rec: rec, member: m, token: tok}, nil
}

// errNoSession: no cookie, an unknown or expired session, or a member who
// can no longer sign in.
var errNoSession = errors.New("no web session")

// loadSession returns the signed-in session of r.
func (s *Server) loadSession(r *http.Request) (*reqCtx, error) {
	c, err := r.Cookie(s.cookieName(sessionCookie))
	if err != nil || c.Value == "" || len(c.Value) > 100 {
		return nil, errNoSession
	}
	ctx := r.Context()
	hash := hashToken(c.Value)
	rec, err := s.sessions.WebSession(ctx, hash)
	if errors.Is(err, account.ErrNotFound) {
		return nil, errNoSession
	} else if err != nil {
		return nil, err
	}
	now := s.now()
	if now.Sub(rec.LastSeenAt) > s.cfg.IdleTimeout || now.Sub(rec.CreatedAt) > s.cfg.AbsoluteTimeout {
		if err := s.sessions.DeleteWebSession(ctx, hash); err != nil {
			s.log.Warn("delete expired web session", "err", err)
		}
		return nil, errNoSession
	}
	m, err := s.svc.MemberByID(ctx, rec.MemberID)
	if errors.Is(err, account.ErrNotFound) {
		return nil, errNoSession
	} else if err != nil {
		return nil, err
	}
	if m.State != account.StateActive {
		if err := s.sessions.DeleteWebSession(ctx, hash); err != nil {
			s.log.Warn("delete web session of suspended member", "err", err)
		}
		return nil, errNoSession
	}
	if now.Sub(rec.LastSeenAt) > touchEvery {
		if err := s.sessions.TouchWebSession(ctx, hash, now.UTC()); err != nil {
			s.log.Warn("touch web session", "err", err)
		}
		rec.LastSeenAt = now.UTC()
	}
	return &reqCtx{rec: rec, member: m, token: c.Value}, nil
}

// endSession signs the browser out and clears its cookie.
func (s *Server) endSession(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if rc != nil {
		if err := s.sessions.DeleteWebSession(r.Context(), rc.rec.IDHash); err != nil {
			s.log.Warn("delete web session", "err", err)
		}
	}
	s.setCookie(w, sessionCookie, "", -1, true)
}

// reauthFresh reports whether the main password was entered in this session
// within the re-authentication window (sensitive actions, SPEC §3).
func (s *Server) reauthFresh(rc *reqCtx) bool {
	return s.now().Sub(rc.rec.ReauthAt) <= s.cfg.ReauthWindow
}

// reauthenticate checks the main password and, when right, renews the
// session's re-authentication time. It goes through the gateway like a
// sign-in: throttled, recorded and counted.
func (s *Server) reauthenticate(ctx context.Context, r *http.Request, rc *reqCtx, pw string) error {
	if _, err := s.auth.SignIn(ctx, s.attempt(r, rc.member.Email, pw, "REAUTH")); err != nil {
		if account.ErrorCode(err) == account.EUNAUTHORIZED {
			return account.Errorf(account.EFORBIDDEN, "The password is not correct.")
		}
		return err
	}
	now := s.now().UTC()
	if err := s.sessions.ReauthWebSession(ctx, rc.rec.IDHash, now); err != nil {
		return err
	}
	rc.rec.ReauthAt, rc.rec.LastSeenAt = now, now
	return nil
}

// maybePrune deletes expired sessions at most every ten minutes, in the
// background, so that no separate job is needed.
func (s *Server) maybePrune() {
	s.pruneMu.Lock()
	now := s.now()
	if now.Sub(s.lastPrune) < 10*time.Minute {
		s.pruneMu.Unlock()
		return
	}
	s.lastPrune = now
	s.pruneMu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		n, err := s.sessions.PruneWebSessions(ctx, now.Add(-s.cfg.IdleTimeout).UTC(), now.Add(-s.cfg.AbsoluteTimeout).UTC())
		if err != nil {
			s.log.Warn("prune web sessions", "err", err)
		} else if n > 0 {
			s.log.Info("pruned web sessions", "count", n)
		}
	}()
}

// clipUA keeps a User-Agent short and printable: it is shown in
// notifications and stored with the session.
func clipUA(ua string) string {
	out := make([]rune, 0, 200)
	for _, r := range ua {
		if len(out) == 200 {
			break
		}
		if r >= 0x20 && r != 0x7f {
			out = append(out, r)
		}
	}
	return string(out)
}
