package account

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"hash"
	"io"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Alphabet of app passwords: letters and digits without the look-alikes
// 0 O o 1 l I. 56 symbols, 20 of them: 116 bits.
const Alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// AppPasswordLen is the number of characters of an app password.
const AppPasswordLen = 20

// GenerateAppPassword returns a new app password from crypto/rand with at
// least one letter and one digit.
func GenerateAppPassword() string {
	for {
		// rand.Text-style rejection sampling: 256 % 56 != 0, so drop bytes >= 224.
		b := make([]byte, 0, AppPasswordLen)
		var buf [64]byte
		for len(b) < AppPasswordLen {
			if _, err := rand.Read(buf[:]); err != nil {
				panic("crypto/rand: " + err.Error()) // never fails on Linux (Go 1.24+ does not return errors)
			}
			for _, c := range buf {
				if c < 224 && len(b) < AppPasswordLen {
					b = append(b, Alphabet[c%56])
				}
			}
		}
		s := string(b)
		if strings.ContainsAny(s, "23456789") && strings.IndexFunc(s, unicode.IsLetter) >= 0 {
			return s
		}
	}
}

// GroupAppPassword formats p for reading: "abcde fghij kmnpq rstuv".
func GroupAppPassword(p string) string {
	var sb strings.Builder
	for i := 0; i < len(p); i += 5 {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(p[i:min(i+5, len(p))])
	}
	return sb.String()
}

// NormalizeAppPassword accepts an app password typed with or without the
// reading spaces and returns the 20 characters. ok is false when s does not
// have the shape of an app password; nothing but the spaces is normalised.
func NormalizeAppPassword(s string) (string, bool) {
	if len(s) == AppPasswordLen+3 && s[5] == ' ' && s[11] == ' ' && s[17] == ' ' {
		s = s[0:5] + s[6:11] + s[12:17] + s[18:]
	}
	if len(s) != AppPasswordLen {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(Alphabet, s[i]) < 0 {
			return "", false
		}
	}
	return s, true
}

// HashAppPassword returns HMAC-SHA-256(key, p). A keyed fast hash is enough for
// a 116-bit random secret and keeps verification in microseconds.
func HashAppPassword(key []byte, p string) []byte {
	pool := macPool(key)
	m := pool.Get().(hash.Hash)
	m.Reset()
	io.WriteString(m, p)
	sum := m.Sum(make([]byte, 0, sha256.Size))
	pool.Put(m)
	return sum
}

// macs holds, per key, a pool of HMACs already keyed: a login's HMAC then
// costs no key schedule; it allocates the sum and a copy of p. A server has one
// key (tests have a few), so the pools are never dropped.
var macs sync.Map // string(key) -> *sync.Pool of hash.Hash

func macPool(key []byte) *sync.Pool {
	if p, ok := macs.Load(string(key)); ok {
		return p.(*sync.Pool)
	}
	k := bytes.Clone(key)
	p, _ := macs.LoadOrStore(string(k), &sync.Pool{New: func() any { return hmac.New(sha256.New, k) }})
	return p.(*sync.Pool)
}

// MatchAppPassword returns the app password whose hash is hash, comparing
// every candidate in constant time.
func MatchAppPassword(list []AppPassword, hash []byte) (AppPassword, bool) {
	var found AppPassword
	ok := false
	for _, p := range list {
		if subtle.ConstantTimeCompare(p.Hash, hash) == 1 {
			found, ok = p, true
		}
	}
	return found, ok
}

// NewID returns a random identifier for app passwords (16 hex characters).
func NewID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// CleanAppName trims and checks the name of a third-party app: 1–64
// characters, no control or format characters (so no CR/LF header splitting,
// no bidi overrides, no zero-width characters or tags), valid UTF-8, and at
// least one visible character (VisibleRune): a name of Hangul fillers or
// braille blanks shows as nothing in a list, and a member could not tell
// which password it names.
//
// The store compares names by a key that ignores case, invisible characters
// and confusable look-alikes (Unicode TS #39 skeletons), so that
// "Thunderbird" and "Тhunderbird" with a Cyrillic Т cannot both exist.
func CleanAppName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if !utf8.ValidString(name) {
		return "", Errorf(EINVALID, "The app name is not valid text.").withReason("encoding")
	}
	n := utf8.RuneCountInString(name)
	if n == 0 {
		return "", Errorf(EINVALID, "Enter the name of the app, for example “Thunderbird on my laptop”.").withReason("empty")
	}
	if n > 64 {
		return "", Errorf(EINVALID, "The app name is too long: at most 64 characters.").withReason("too_long")
	}
	visible := false
	for _, r := range name {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029' {
			return "", Errorf(EINVALID, "The app name cannot contain control characters.").withReason("control")
		}
		visible = visible || VisibleRune(r)
	}
	if !visible {
		return "", Errorf(EINVALID, "The app name needs at least one visible letter, digit or symbol.").withReason("invisible")
	}
	return name, nil
}

// VisibleRune reports whether r draws something: a letter, number,
// punctuation or symbol (general categories L, N, P, S) that is not a
// Default_Ignorable_Code_Point (UAX #44: format characters, variation
// selectors, and the Hangul fillers U+115F, U+1160, U+3164, U+FFA0, which are
// letters yet blank), nor the braille blank U+2800, a symbol drawn as
// nothing. Marks (M) alone draw only on what they combine with, and
// separators (Z) draw nothing.
func VisibleRune(r rune) bool {
	if !unicode.In(r, unicode.L, unicode.N, unicode.P, unicode.S) {
		return false
	}
	return !IgnorableRune(r) && r != '\u2800'
}

// IgnorableRune reports whether r is a Default_Ignorable_Code_Point, as
// far as Go's Unicode tables tell: Other_Default_Ignorable_Code_Point, the
// format characters (Cf) and the variation selectors. Renderers draw none
// of them, so names that differ only by them look the same.
func IgnorableRune(r rune) bool {
	return unicode.In(r, unicode.Other_Default_Ignorable_Code_Point, unicode.Cf, unicode.Variation_Selector)
}
