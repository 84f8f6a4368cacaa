package web

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/web/websession"
)

// revealTTL is how long the page after "Create password" can show the new
// password: long enough for a slow redirect or a phone that switches apps
// before the page loads, short enough that a forgotten tab shows nothing.
const revealTTL = 5 * time.Minute

// revealed is what the created page shows, sealed in a websession.Reveal.
type revealed struct {
	ID       string `json:"id"` // the app password's id, for the profile download
	Name     string `json:"name"`
	Password string `json:"password"`
}

// revealKey derives the AEAD key of a session's reveals from its cookie
// token. The store holds only the token's SHA-256, so neither a copy of the
// database nor another session can open a sealed password.
func revealKey(token string) cipher.AEAD {
	mac := hmac.New(sha256.New, []byte(token))
	mac.Write([]byte("postern web reveal v1"))
	block, err := aes.NewCipher(mac.Sum(nil))
	if err != nil {
		panic(err) // a 32-byte key is always valid
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return aead
}

// putReveal seals v for the session of rc and returns the view's id, the
// only part of it the redirect's URL carries.
func (s *Server) putReveal(r *http.Request, rc *reqCtx, v revealed) (string, error) {
	id := newPublicID()
	plain, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	aead := revealKey(rc.token)
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	sealed := aead.Seal(nonce, nonce, plain, revealAAD(id, rc.rec.IDHash))
	err = s.sessions.PutReveal(r.Context(), websession.Reveal{ID: id, SessionID: rc.rec.IDHash,
		ExpiresAt: s.now().Add(revealTTL).UTC(), Sealed: sealed})
	return id, err
}

// takeReveal returns the view id of the session of rc and deletes it; ok is
// false when there is no such view for this session, or it has expired.
func (s *Server) takeReveal(r *http.Request, rc *reqCtx, id string) (v revealed, ok bool, err error) {
	if id == "" || len(id) > 64 {
		return v, false, nil
	}
	rv, err := s.sessions.TakeReveal(r.Context(), id, rc.rec.IDHash)
	if errors.Is(err, account.ErrNotFound) {
		return v, false, nil
	} else if err != nil {
		return v, false, err
	}
	if !s.now().Before(rv.ExpiresAt) {
		return v, false, nil
	}
	aead := revealKey(rc.token)
	n := aead.NonceSize()
	if len(rv.Sealed) < n {
		return v, false, nil
	}
	plain, err := aead.Open(nil, rv.Sealed[:n], rv.Sealed[n:], revealAAD(id, rc.rec.IDHash))
	if err != nil || json.Unmarshal(plain, &v) != nil {
		return revealed{}, false, nil
	}
	return v, true, nil
}

// revealAAD binds a sealed view to its id and session.
func revealAAD(id string, session []byte) []byte {
	return append([]byte(id+"\x00"), session...)
}
