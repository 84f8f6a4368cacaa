package sasl

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDecodePlain(t *testing.T) {
	long := strings.Repeat("a", 255)
	tests := []struct {
		name    string
		in      string
		z, c, p string
		err     error
	}{
		{"no authzid", "\x00ann@example.com\x00secret", "", "ann@example.com", "secret", nil},
		{"same authzid", "ann@example.com\x00ann@example.com\x00secret", "ann@example.com", "ann@example.com", "secret", nil},
		{"authzid other case", "Ann@Example.com\x00ann@example.com\x00pw", "Ann@Example.com", "ann@example.com", "pw", nil},
		{"password with spaces", "\x00ann\x00abcde fghij kmnpq rstuv", "", "ann", "abcde fghij kmnpq rstuv", nil},
		{"utf8", "\x00jürgen\x00pässwörd", "", "jürgen", "pässwörd", nil},
		{"max fields", long + "\x00" + long + "\x00" + long, long, long, long, nil},
		{"other authzid", "admin\x00ann\x00pw", "", "", "", ErrPlainAuthzid},
		{"one NUL", "ann\x00pw", "", "", "", ErrPlainFormat},
		{"no NUL", "annpw", "", "", "", ErrPlainFormat},
		{"three NULs", "\x00ann\x00pw\x00", "", "", "", ErrPlainFormat},
		{"NUL in password", "\x00ann\x00p\x00w", "", "", "", ErrPlainFormat},
		{"empty", "", "", "", "", ErrPlainFormat},
		{"empty authcid", "\x00\x00pw", "", "", "", ErrPlainEmpty},
		{"empty passwd", "\x00ann\x00", "", "", "", ErrPlainEmpty},
		{"long authcid", "\x00" + long + "a\x00pw", "", "", "", ErrPlainField},
		{"long passwd", "\x00ann\x00" + long + "a", "", "", "", ErrPlainField},
		{"too long overall", strings.Repeat("a", 800) + "\x00a\x00b", "", "", "", ErrPlainField},
		{"bad utf8 authcid", "\x00\xff\xfe\x00pw", "", "", "", ErrPlainUTF8},
		{"bad utf8 passwd", "\x00ann\x00\xc3", "", "", "", ErrPlainUTF8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			z, c, p, err := DecodePlain([]byte(tt.in))
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if z != tt.z || c != tt.c || p != tt.p {
				t.Fatalf("got (%q, %q, %q), want (%q, %q, %q)", z, c, p, tt.z, tt.c, tt.p)
			}
		})
	}
}

// FuzzDecodePlain checks the invariants of a decoded message: accepted input
// re-encodes to itself, fields obey RFC 4616 limits, and errors never leak input.
func FuzzDecodePlain(f *testing.F) {
	for _, s := range []string{
		"\x00ann@example.com\x00secret", "a\x00a\x00b", "a\x00b\x00c", "\x00\x00",
		"\x00a\x00b\x00", "\x00\xff\x00x", strings.Repeat("x", 300) + "\x00a\x00b", "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		z, c, p, err := DecodePlain(b)
		if err != nil {
			if z != "" || c != "" || p != "" {
				t.Fatalf("fields returned with error %v", err)
			}
			// Only the fixed sentinels: an error can then carry no input.
			switch err {
			case ErrPlainFormat, ErrPlainField, ErrPlainEmpty, ErrPlainUTF8, ErrPlainAuthzid:
			default:
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if !bytes.Equal([]byte(z+"\x00"+c+"\x00"+p), b) {
			t.Fatalf("(%q,%q,%q) does not re-encode to %q", z, c, p, b)
		}
		for _, s := range []string{z, c, p} {
			if len(s) > MaxFieldLen || !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
				t.Fatalf("field %q breaks RFC 4616", s)
			}
		}
		if c == "" || p == "" || (z != "" && !strings.EqualFold(z, c)) {
			t.Fatalf("accepted (%q,%q,%q)", z, c, p)
		}
	})
}
