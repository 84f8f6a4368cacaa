package account

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"strings"
	"time"
)

// Message kinds.
const (
	MsgAppPasswordCreated = "apppass.created"
	MsgAppPasswordDeleted = "apppass.deleted"
	MsgSettingChanged     = "setting.changed"
	MsgPasswordChanged    = "password.changed"
	MsgAccountPaused      = "account.paused"
	MsgSendLimited        = "send.limited" // a login reached a sending cap (sending.go)
	// An app password left unused expires under the domain's policy (expiry.go).
	MsgAppPasswordExpiring = "apppass.expiring"
	MsgAppPasswordExpired  = "apppass.expired"
)

func (s *Service) link(path string) string {
	base := strings.TrimSuffix(s.Config.BaseURL, "/")
	if base == "" {
		base = "http://localhost:8080"
	}
	return base + path
}

func describeActor(by Actor) string {
	var parts []string
	if by.IP != "" {
		parts = append(parts, "IP address: "+by.IP)
	}
	if by.UserAgent != "" {
		parts = append(parts, "Browser: "+clip(strings.Map(printable, by.UserAgent)))
	}
	switch by.Via {
	case "cli":
		parts = append(parts, "Made by an administrator with the postern command.")
	case "api":
		parts = append(parts, "Made through the API.")
	}
	return strings.Join(parts, "\n")
}

// printable drops control characters from text that came from a client.
func printable(r rune) rune {
	if r < 0x20 || r == 0x7f {
		return -1
	}
	return r
}

func (s *Service) createdMessage(m Member, p AppPassword, by Actor) Message {
	body := fmt.Sprintf(`A third-party app password was created for your account %s.

App name: %s
Time: %s
%s

If you did not create it yourself, delete it now and change your password:
  Delete the app password: %s
  Change your password: %s
`, m.Email, p.Name, p.CreatedAt.UTC().Format(time.RFC1123), describeActor(by),
		s.link("/security/app-passwords"), s.link("/security/password"))
	return s.message(m, MsgAppPasswordCreated, "A third-party app password was created: "+p.Name, body, p.CreatedAt,
		params(m, by, p.CreatedAt, "app", p.Name, "link_apps", s.link("/security/app-passwords"), "link_password", s.link("/security/password")))
}

func (s *Service) deletedMessage(m Member, p AppPassword, by Actor) Message {
	now := s.Now().UTC()
	body := fmt.Sprintf(`The third-party app password "%s" was deleted from your account %s.
Apps that logged in with it are logged out and cannot log in with it again.

Time: %s
%s

If you did not delete it yourself, change your password now: %s
`, p.Name, m.Email, now.Format(time.RFC1123), describeActor(by), s.link("/security/password"))
	return s.message(m, MsgAppPasswordDeleted, "A third-party app password was deleted: "+p.Name, body, now,
		params(m, by, now, "app", p.Name, "link_password", s.link("/security/password")))
}

func (s *Service) settingMessage(m Member, on bool, by Actor) Message {
	now := s.Now().UTC()
	state, effect := "off", "Third-party apps now log in with your account password; app passwords do not work."
	if on {
		state, effect = "on", "Third-party apps now log in only with third-party app passwords."
	}
	body := fmt.Sprintf(`"Use a third-party app password" was turned %s for your account %s.
%s
Third-party apps that were logged in have been logged out and must log in again.

Time: %s
%s

If you did not change it yourself, change your password now: %s
`, state, m.Email, effect, now.Format(time.RFC1123), describeActor(by), s.link("/security/password"))
	return s.message(m, MsgSettingChanged, "“Use a third-party app password” was turned "+state, body, now,
		params(m, by, now, "state", state, "link_password", s.link("/security/password")))
}

func (s *Service) passwordMessage(m Member, deleted bool, by Actor) Message {
	now := s.Now().UTC()
	extra := ""
	if deleted {
		extra = "All your third-party app passwords were deleted as well.\n"
	}
	body := fmt.Sprintf(`The password of your account %s was changed.
%sOther sessions were signed out.

Time: %s
%s

If you did not change it yourself, contact your administrator now.
`, m.Email, extra, now.Format(time.RFC1123), describeActor(by))
	deletedApps := ""
	if deleted {
		deletedApps = "1"
	}
	return s.message(m, MsgPasswordChanged, "Your password was changed", body, now,
		params(m, by, now, "deleted_apps", deletedApps))
}

// PausedMessage is sent when logins with the main password from
// third-party apps are paused after too many failures: at most once a day
// (auth.Store.RecordAuthFailure), however long the attack goes on.
func (s *Service) PausedMessage(m Member, until time.Time, lastIP string) Message {
	now := s.Now().UTC()
	body := fmt.Sprintf(`There were too many failed logins to your account %s, from third-party
apps or the sign-in page (the last one from %s). Third-party apps cannot log in with your
main password until %s. Your third-party app passwords keep working, and you can
still sign in to the web.

If these were not you or your apps, someone may be guessing your password. Change your
password and check your third-party app passwords: %s
`, m.Email, lastIP, until.UTC().Format(time.RFC1123), s.link("/security"))
	return s.message(m, MsgAccountPaused, "Someone may be guessing your password", body, now,
		params(m, Actor{}, now, "last_ip", lastIP, "until", until.UTC().Format(time.RFC3339), "link_security", s.link("/security")))
}

func (s *Service) message(m Member, kind, subject, body string, at time.Time, p map[string]string) Message {
	return Message{MemberID: m.ID, Kind: kind, Subject: subject, Body: body, CreatedAt: at, Params: p,
		Mail: RenderMail(m, subject, body, at)}
}

// params are the parameters a message of some kind was rendered from, kept
// with it so that the web UI and the API can render it in the member's
// language: the address, the time (RFC 3339, UTC) and the actor (ip, ua,
// via) of every kind, and kv, pairs of the kind's own. Client-supplied text
// is stored as cleaned for the English body; it is escaped where shown.
func params(m Member, by Actor, at time.Time, kv ...string) map[string]string {
	p := map[string]string{"email": m.Email, "time": at.UTC().Format(time.RFC3339)}
	if by.IP != "" {
		p["ip"] = by.IP
	}
	if ua := []rune(strings.Map(printable, by.UserAgent)); len(ua) > 0 {
		// Whole (up to 256 characters), unlike the English body's 80: a
		// client summarises it ("Firefox on Linux") from the product tokens
		// at its end.
		p["ua"] = string(ua[:min(len(ua), 256)])
	}
	if by.Via != "" {
		p["via"] = by.Via
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			p[kv[i]] = kv[i+1]
		}
	}
	return p
}

// encodeSubject RFC 2047-encodes s. A subject that holds "=?" is encoded even
// when it is ASCII: otherwise an app name shaped like an encoded-word would be
// decoded by mail clients into text of the attacker's choosing.
func encodeSubject(s string) string {
	if !strings.Contains(s, "=?") {
		return mime.QEncoding.Encode("utf-8", s)
	}
	return "=?utf-8?b?" + base64.StdEncoding.EncodeToString([]byte(s)) + "?="
}

// RenderMail renders a notification as an RFC 5322 message. Subject and body
// come from checked input (no CR/LF in names), and the subject is RFC 2047
// encoded, so hostile app names cannot add header fields.
func RenderMail(m Member, subject, body string, at time.Time) []byte {
	var b bytes.Buffer
	id := make([]byte, 12)
	rand.Read(id)
	from := "postmaster@" + m.Domain()
	fmt.Fprintf(&b, "From: %s <%s>\r\n", mime.QEncoding.Encode("utf-8", "Postern Security"), from)
	fmt.Fprintf(&b, "To: %s\r\n", m.Email)
	fmt.Fprintf(&b, "Subject: %s\r\n", encodeSubject(strings.Map(printable, subject)))
	fmt.Fprintf(&b, "Date: %s\r\n", at.UTC().Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s@%s>\r\n", hex.EncodeToString(id), m.Domain())
	b.WriteString("Auto-Submitted: auto-generated\r\n")
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	w := quotedprintable.NewWriter(&b)
	w.Write([]byte(strings.ReplaceAll(body, "\n", "\r\n")))
	w.Close()
	return b.Bytes()
}
