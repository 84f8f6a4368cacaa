// Package sasl holds the SASL pieces shared by the protocol servers: the
// PLAIN message decoder (RFC 4616). It is tiny and dependency-free so that it
// can be fuzzed on its own and imported by POP3, SMTP and IMAP alike.
package sasl

import (
	"bytes"
	"errors"
	"strings"
	"unicode/utf8"
)

// MaxFieldLen is the longest authzid, authcid or passwd, in octets
// (RFC 4616 §2: each is "up to 255 octets").
const MaxFieldLen = 255

// MaxPlainLen is the longest well-formed PLAIN message: three fields and two
// NULs. Callers may use it to bound their base64 input before decoding.
const MaxPlainLen = 3*MaxFieldLen + 2

// Errors of DecodePlain. They name the rule that was broken and never carry
// any part of the input, so they are safe to log.
var (
	ErrPlainFormat  = errors.New("sasl: PLAIN message needs exactly two NUL separators")
	ErrPlainField   = errors.New("sasl: PLAIN field longer than 255 octets")
	ErrPlainEmpty   = errors.New("sasl: PLAIN authcid or passwd is empty")
	ErrPlainUTF8    = errors.New("sasl: PLAIN field is not valid UTF-8")
	ErrPlainAuthzid = errors.New("sasl: PLAIN authzid differs from authcid")
)

// DecodePlain parses a decoded (not base64) SASL PLAIN message,
//
//	message = [authzid] UTF8NUL authcid UTF8NUL passwd   (RFC 4616 §2)
//
// and enforces the grammar: exactly two NULs, authcid and passwd non-empty,
// each field at most 255 octets of valid UTF-8 (NUL excluded by construction).
//
// Authorization identity: Postern has no proxy authorization (no admin may act
// as a member), so DecodePlain itself refuses an authzid that is neither empty
// nor equal to authcid, ignoring case because addresses are case-insensitive
// (SPEC §5); RFC 4616 §2 lets the server refuse such a request. Callers log in
// as authcid and need not check authzid again.
//
// The returned error never contains input bytes; a caller answers every error
// with its protocol's generic failure or syntax reply.
func DecodePlain(b []byte) (authzid, authcid, passwd string, err error) {
	if len(b) > MaxPlainLen {
		return "", "", "", ErrPlainField
	}
	if bytes.Count(b, []byte{0}) != 2 {
		return "", "", "", ErrPlainFormat
	}
	z, rest, _ := bytes.Cut(b, []byte{0})
	c, p, _ := bytes.Cut(rest, []byte{0})
	for _, f := range [][]byte{z, c, p} {
		if len(f) > MaxFieldLen {
			return "", "", "", ErrPlainField
		}
		if !utf8.Valid(f) {
			return "", "", "", ErrPlainUTF8
		}
	}
	if len(c) == 0 || len(p) == 0 {
		return "", "", "", ErrPlainEmpty
	}
	authzid, authcid, passwd = string(z), string(c), string(p)
	if authzid != "" && !strings.EqualFold(authzid, authcid) {
		return "", "", "", ErrPlainAuthzid
	}
	return authzid, authcid, passwd, nil
}
