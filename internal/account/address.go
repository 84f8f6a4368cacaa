package account

import (
	"strings"
	"unicode/utf8"
)

// ParseEmail checks and lower-cases a member address local@domain.
// Usernames are matched case-insensitively everywhere, so we store one form.
func ParseEmail(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	local, domain, ok := strings.Cut(s, "@")
	if !ok || !validLocal(local) {
		return "", Errorf(EINVALID, "%q is not a valid address: use local@domain, for example alice@example.com.", clip(s))
	}
	d, err := ParseDomain(domain)
	if err != nil {
		return "", Errorf(EINVALID, "%q is not a valid address: use local@domain, for example alice@example.com.", clip(s))
	}
	return local + "@" + d, nil
}

// ParseDomain checks and lower-cases a domain name.
func ParseDomain(s string) (string, error) {
	s = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
	labels := strings.Split(s, ".")
	bad := len(s) == 0 || len(s) > 253 || len(labels) < 2
	for _, l := range labels {
		if bad {
			break
		}
		bad = len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-'
		for i := 0; i < len(l) && !bad; i++ {
			c := l[i]
			bad = !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-')
		}
	}
	if bad {
		return "", Errorf(EINVALID, "%q is not a valid domain name, for example example.com.", clip(s))
	}
	return s, nil
}

func validLocal(l string) bool {
	if len(l) == 0 || len(l) > 64 || l[0] == '.' || l[len(l)-1] == '.' || strings.Contains(l, "..") {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte(".-_+", c) >= 0) {
			return false
		}
	}
	return true
}

// clip keeps hostile input short and printable in error messages.
func clip(s string) string {
	if utf8.RuneCountInString(s) > 80 {
		s = string([]rune(s)[:80]) + "…"
	}
	return s
}

// CheckPassword applies the main-password rules (NIST SP 800-63B: length, not
// the address, no trivial repetition; no composition rules).
func CheckPassword(email, pw string) error {
	n := utf8.RuneCountInString(pw)
	switch {
	case !utf8.ValidString(pw):
		return Errorf(EINVALID, "The password is not valid text.")
	case n < 10:
		return Errorf(EINVALID, "The password is too short: use at least 10 characters.")
	case len(pw) > 256:
		return Errorf(EINVALID, "The password is too long: at most 256 bytes.")
	case strings.EqualFold(pw, email) || strings.EqualFold(pw, strings.Split(email, "@")[0]):
		return Errorf(EINVALID, "The password cannot be your address.")
	case strings.Count(pw, pw[:1]) == len(pw):
		return Errorf(EINVALID, "The password is too weak: do not repeat one character.")
	}
	for _, w := range commonPasswords {
		if strings.EqualFold(pw, w) {
			return Errorf(EINVALID, "The password is too common: choose another.")
		}
	}
	return nil
}

// A short deny-list of the passwords that stuffing lists try first.
var commonPasswords = []string{
	"1234567890", "12345678910", "0123456789", "1q2w3e4r5t", "qwertyuiop", "password12",
	"password123", "password1234", "iloveyou12", "qwerty1234", "1qaz2wsx3edc", "abcdefghij",
	"passw0rd123", "letmein123", "welcome123", "administrator", "changeme123",
}
