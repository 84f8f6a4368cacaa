package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// A device token says "this browser signed in as this member before": a
// random device id and an HMAC of it and the member's address under the
// server key. It is no credential (the password is still asked); it only
// gives the browser a sign-in schedule of its own (SignIn), so that an
// attacker's failures against the address do not queue the member.
const (
	deviceIDLen  = 16
	deviceMACLen = 16
	// MaxDeviceTokens is how many device tokens a browser keeps (one per
	// member signed in on it); the web layer keeps the newest.
	MaxDeviceTokens = 5
)

type deviceID [deviceIDLen]byte

// DeviceToken returns a new device token for the member's address (as
// account.ParseEmail normalises it), for the browser that has just signed
// in to keep and send back in Attempt.Devices.
func (g *Gateway) DeviceToken(email string) string {
	var b [deviceIDLen + deviceMACLen]byte
	rand.Read(b[:deviceIDLen])
	copy(b[deviceIDLen:], g.deviceMAC(email, b[:deviceIDLen]))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// RememberDevice returns what a browser that has just signed in as email
// keeps: its tokens (joined by ".") with one for email in front, the one it
// had or a new one, and at most MaxDeviceTokens in all.
func (g *Gateway) RememberDevice(email, tokens string) string {
	keep := []string{}
	mine := ""
	for i := 0; i < 4*MaxDeviceTokens && tokens != ""; i++ {
		var t string
		t, tokens, _ = strings.Cut(tokens, ".")
		switch {
		case mine == "" && g.isDeviceOf(email, t):
			mine = t
		case len(t) == base64.RawURLEncoding.EncodedLen(deviceIDLen+deviceMACLen):
			keep = append(keep, t)
		}
	}
	if mine == "" {
		mine = g.DeviceToken(email)
	}
	keep = append([]string{mine}, keep[:min(len(keep), MaxDeviceTokens-1)]...)
	return strings.Join(keep, ".")
}

// isDeviceOf reports whether token is a device token of email.
func (g *Gateway) isDeviceOf(email, token string) bool {
	_, ok := g.knownDevice(email, token)
	return ok
}

// knownDevice returns the id of the first of the tokens (joined by ".")
// issued for email.
func (g *Gateway) knownDevice(email, tokens string) (deviceID, bool) {
	for i := 0; i < MaxDeviceTokens && tokens != ""; i++ {
		var t string
		t, tokens, _ = strings.Cut(tokens, ".")
		var b [deviceIDLen + deviceMACLen]byte
		if base64.RawURLEncoding.EncodedLen(len(b)) != len(t) {
			continue
		}
		if n, err := base64.RawURLEncoding.Decode(b[:], []byte(t)); err != nil || n != len(b) {
			continue
		}
		if hmac.Equal(b[deviceIDLen:], g.deviceMAC(email, b[:deviceIDLen])) {
			var id deviceID
			copy(id[:], b[:deviceIDLen])
			return id, true
		}
	}
	return deviceID{}, false
}

func (g *Gateway) deviceMAC(email string, id []byte) []byte {
	h := hmac.New(sha256.New, g.key)
	h.Write([]byte("web-device\x00"))
	h.Write([]byte(email))
	h.Write([]byte{0})
	h.Write(id)
	return h.Sum(nil)[:deviceMACLen]
}
