package account_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"strings"
	"sync"
	"testing"
	"unicode"

	"github.com/postern/postern/internal/account"
)

// TestGenerateAppPassword draws 10⁵ app passwords (docs/security.md):
// right length and alphabet, a letter and a digit each, no duplicates, and
// every symbol of the alphabet about equally often.
func TestGenerateAppPassword(t *testing.T) {
	const n = 100_000
	if len(account.Alphabet) != 56 {
		t.Fatalf("alphabet of %d symbols", len(account.Alphabet))
	}
	if strings.ContainsAny(account.Alphabet, "0Oo1lI") {
		t.Fatalf("alphabet holds look-alike characters")
	}
	seen := make(map[string]struct{}, n)
	counts := map[rune]int{}
	for range n {
		p := account.GenerateAppPassword()
		if len(p) != account.AppPasswordLen {
			t.Fatalf("%q: length %d", p, len(p))
		}
		letter, digit := false, false
		for _, r := range p {
			if !strings.ContainsRune(account.Alphabet, r) {
				t.Fatalf("%q: %q is not in the alphabet", p, r)
			}
			letter = letter || unicode.IsLetter(r)
			digit = digit || unicode.IsDigit(r)
			counts[r]++
		}
		if !letter || !digit {
			t.Fatalf("%q: needs a letter and a digit", p)
		}
		if _, dup := seen[p]; dup {
			t.Fatalf("duplicate %q", p)
		}
		seen[p] = struct{}{}
	}
	// 2·10⁶ symbols: about 35,700 each, standard deviation about 190; a
	// 10% band is 19 deviations wide, so only a biased generator leaves it.
	// (Rejecting all-letter passwords raises digits by well under 1%.)
	want := float64(n*account.AppPasswordLen) / float64(len(account.Alphabet))
	for _, r := range account.Alphabet {
		if c := float64(counts[r]); c < want*0.9 || c > want*1.1 {
			t.Errorf("symbol %q drawn %v times, expected about %v", r, c, want)
		}
	}
}

func TestGroupAppPassword(t *testing.T) {
	for in, want := range map[string]string{
		"abcdefghijkmnpqrstuv": "abcde fghij kmnpq rstuv",
		"abcde":                "abcde",
		"abcdefg":              "abcde fg",
		"":                     "",
	} {
		if got := account.GroupAppPassword(in); got != want {
			t.Errorf("GroupAppPassword(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestNormalizeAppPassword: the 20 characters and the exact grouped form are
// accepted; nothing else is normalised (no case folding, no trimming, no
// look-alike mapping: docs/security.md).
func TestNormalizeAppPassword(t *testing.T) {
	p := "abcdeFGHJK23456mnpqr"
	cases := []struct {
		in string
		ok bool
	}{
		{p, true},
		{"abcde FGHJK 23456 mnpqr", true},
		{"abcde  FGHJK 23456 mnpqr", false},
		{"abcde FGHJK 23456 mnpqr ", false},
		{" abcde FGHJK 23456 mnpqr", false},
		{" " + p, false},
		{p + " ", false},
		{p + "a", false},
		{p[:19], false},
		{"abcd eFGHJ K2345 6mnpqr", false},
		{"abcde\tFGHJK\t23456\tmnpqr", false},
		{"abcde-FGHJK-23456-mnpqr", false},
		{"abcde\u00a0FGHJK\u00a023456\u00a0mnpqr", false},
		{"abcdeFGHJK23456mnpq0", false}, // zero is not in the alphabet, and is not read as O
		{"abcdeFGHJK23456mnpqO", false},
		{"abcdeFGHJK23456mnpql", false},
		{"abcdeFGHJK23456mnpqｒ", false}, // full-width r
		{"", false},
		{"                       ", false},
	}
	for _, c := range cases {
		got, ok := account.NormalizeAppPassword(c.in)
		if ok != c.ok {
			t.Errorf("NormalizeAppPassword(%q): ok %v, want %v", c.in, ok, c.ok)
			continue
		}
		if ok && got != p {
			t.Errorf("NormalizeAppPassword(%q) = %q, want %q", c.in, got, p)
		}
	}
	// Case is kept: a case variant is a different (wrong) password, never p.
	for _, v := range []string{strings.ToUpper(p), strings.ToLower(p)} {
		if got, ok := account.NormalizeAppPassword(v); ok && got != v {
			t.Errorf("NormalizeAppPassword(%q) = %q: changed case", v, got)
		}
	}
	// Every generated password round-trips through its grouped form.
	for range 1000 {
		g := account.GenerateAppPassword()
		if got, ok := account.NormalizeAppPassword(account.GroupAppPassword(g)); !ok || got != g {
			t.Fatalf("grouped %q: %q %v", g, got, ok)
		}
	}
}

func TestHashAndMatchAppPassword(t *testing.T) {
	key, other := []byte("server key one"), []byte("server key two")
	h := account.HashAppPassword(key, "abcdeFGHJK23456mnpqr")
	if len(h) != 32 || bytes.Equal(h, account.HashAppPassword(other, "abcdeFGHJK23456mnpqr")) ||
		bytes.Equal(h, account.HashAppPassword(key, "abcdeFGHJK23456mnpqs")) {
		t.Fatalf("HMAC-SHA-256 must depend on key and password")
	}
	list := []account.AppPassword{
		{ID: "a", Hash: account.HashAppPassword(key, "x")},
		{ID: "b", Hash: h},
		{ID: "c", Hash: account.HashAppPassword(key, "y")},
	}
	if p, ok := account.MatchAppPassword(list, h); !ok || p.ID != "b" {
		t.Errorf("match: %+v %v", p, ok)
	}
	if _, ok := account.MatchAppPassword(list, h[:31]); ok {
		t.Errorf("a truncated hash matched")
	}
	if _, ok := account.MatchAppPassword(nil, h); ok {
		t.Errorf("matched in an empty list")
	}
	ids := map[string]bool{}
	for range 1000 {
		id := account.NewID()
		if len(id) != 16 || strings.Trim(id, "0123456789abcdef") != "" || ids[id] {
			t.Fatalf("id %q", id)
		}
		ids[id] = true
	}
}

// TestCleanAppName: the app name is hostile input (docs/security.md).
func TestCleanAppName(t *testing.T) {
	const (
		empty   = "Enter the name of the app, for example “Thunderbird on my laptop”."
		long    = "The app name is too long: at most 64 characters."
		control = "The app name cannot contain control characters."
		notText = "The app name is not valid text."
		blank   = "The app name needs at least one visible letter, digit or symbol."
	)
	cases := []struct{ in, want, msg string }{
		{"Thunderbird", "Thunderbird", ""},
		{"  Thunderbird on my laptop\n", "Thunderbird on my laptop", ""},
		{`"><img src=x onerror=alert(1)>`, `"><img src=x onerror=alert(1)>`, ""},
		{"iPhone – Mail", "iPhone – Mail", ""},
		{"日本語のアプリ", "日本語のアプリ", ""},
		{strings.Repeat("x", 64), strings.Repeat("x", 64), ""},
		{" " + strings.Repeat("é", 64) + " ", strings.Repeat("é", 64), ""},
		{"", "", empty},
		{" \t\r\n ", "", empty},
		{strings.Repeat("x", 65), "", long},
		{strings.Repeat("界", 65), "", long},
		{"X\r\nBcc: evil@x", "", control},
		{"X\nBcc: evil@x", "", control},
		{"X\rY", "", control},
		{"a\tb", "", control},
		{"a\x00b", "", control},
		{"a\x1bb", "", control},
		{"a\x7fb", "", control},
		{"a\u0085b", "", control},         // NEL
		{"a\u200bb", "", control},         // zero-width space (format)
		{"abc\u202egnp.exe", "", control}, // right-to-left override
		{"a\u2028b", "", control},
		{"a\u2029b", "", control},
		{"a\ufeffb", "", control},
		{"a\xffb", "", notText},
		{"\U000e0041\U000e0042", "", control}, // tags (format)
		{"\u3164", "", blank},                 // Hangul filler: a letter (Lo) drawn as nothing
		{"\u3164\u3164\u3164", "", blank},
		{"\u115f", "", blank}, // Hangul choseong filler
		{"\u1160", "", blank}, // Hangul jungseong filler
		{"\uffa0", "", blank}, // halfwidth Hangul filler
		{"\u2800", "", blank}, // braille pattern blank (So)
		{"\u2800 \u3164", "", blank},
		{"\ufe0f", "", blank},            // variation selector
		{"\U000e0100", "", blank},        // variation selector supplement
		{"\u034f", "", blank},            // combining grapheme joiner
		{"\u0301\u0301", "", blank},      // combining marks alone
		{"\u17b4", "", blank},            // Khmer vowel inherent (ignorable)
		{"\u3000\u00a0", "", empty},      // spaces only: trimmed
		{"Mail\u3164", "Mail\u3164", ""}, // visible: the key ignores the filler
		{"📱", "📱", ""},
		{"❤\ufe0f", "❤\ufe0f", ""},
		{"-", "-", ""},
	}
	for _, c := range cases {
		got, err := account.CleanAppName(c.in)
		if c.msg == "" {
			if err != nil || got != c.want {
				t.Errorf("CleanAppName(%q) = %q, %v; want %q", c.in, got, err, c.want)
			}
			continue
		}
		if account.ErrorCode(err) != account.EINVALID || account.ErrorMessage(err) != c.msg {
			t.Errorf("CleanAppName(%q): %v; want EINVALID %q", c.in, err, c.msg)
		}
	}
}

// TestHashAppPasswordPooled: the pooled, pre-keyed HMACs give what a fresh
// HMAC gives, for several keys at once and from many goroutines.
func TestHashAppPasswordPooled(t *testing.T) {
	keys := [][]byte{[]byte("key one"), []byte("key two"), bytes.Repeat([]byte{7}, 100)}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				key := keys[(g+i)%len(keys)]
				p := fmt.Sprintf("password %d/%d", g, i)
				m := hmac.New(sha256.New, key)
				m.Write([]byte(p))
				if got, want := account.HashAppPassword(key, p), m.Sum(nil); !bytes.Equal(got, want) {
					t.Errorf("HashAppPassword(%q, %q) = %x, want %x", key, p, got, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}
