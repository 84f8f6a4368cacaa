package msgindex

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/postern/postern/internal/msgindex/mailcorpus"
)

// TestBaseSubject: RFC 5256 §2.1's extraction, with whether a reply or
// forward marker was taken off.
func TestBaseSubject(t *testing.T) {
	for in, want := range map[string]struct {
		base  string
		reply bool
	}{
		"Budget":                                  {"Budget", false},
		"Re: Budget":                              {"Budget", true},
		"RE:   Budget  ":                          {"Budget", true},
		"Re: re: Fwd: Budget":                     {"Budget", true},
		"Fw: Budget (fwd)":                        {"Budget", true},
		"Budget (FWD)  (fwd)":                     {"Budget", true},
		"[list] Re: Budget":                       {"Budget", true},
		"Re[2]: Budget":                           {"Budget", true},
		"Re [list]: Budget":                       {"Budget", true},
		"[Fwd: Budget]":                           {"Budget", true},
		"re: [fwd: [fwd: re: [fwd: babylon]]]":    {"babylon", true},
		"[foo] Fwd: [bar] Re: fw: b (fWd)  (fwd)": {"b", true},
		"[xyz]":                 {"[xyz]", false},
		"Re: [FWD: c]":          {"c", true},
		"Ad: Re: Ad: Re: Ad: x": {"Ad: Re: Ad: Re: Ad: x", false},
		"Read: me":              {"Read: me", false},
		"\tspaced\t out ":       {"spaced out", false},
		"":                      {"", false},
	} {
		base, reply := BaseSubject(in)
		if base != want.base || reply != want.reply {
			t.Errorf("%q: %q %v, want %q %v", in, base, reply, want.base, want.reply)
		}
	}
}

func TestCompareFold(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{{"abc", "ABC", 0}, {"a", "B", -1}, {"_", "a", 1}, {"ab", "a", 1}, {"", "", 0}, {"é", "e", 1}} {
		if got := CompareFold(tc.a, tc.b); got != tc.want {
			t.Errorf("%q %q: %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestBuildKeys: sort keys, thread ids, preview and attachment of the
// corpus's messages.
func TestBuildKeys(t *testing.T) {
	c := mailcorpus.Messages()
	x := Build(c[1])
	if x.SortFrom != "dave" || x.DisplayFrom != "Dave (work)" || x.SortTo != "undisclosed-recipients" || x.SortCc != "Friends" ||
		x.BaseSubject != "Budget for Q3" || x.MessageID != "r1@example.net" || x.InReplyTo != "q3@example.org" ||
		strings.Join(x.References, " ") != "q3@example.org" || x.Preview != "> The budget is attached below. Thanks." {
		t.Errorf("message 2: %+v", x)
	}
	x = Build(c[3])
	if x.Preview != "See the photos attached." || !x.HasAttachment || x.DisplayTo != "alice@example.com" {
		t.Errorf("message 4: %+v", x)
	}
	x = Build(c[8])
	if x.Preview != "Hello World &amp; more" || x.HasAttachment {
		t.Errorf("html: %q", x.Preview)
	}
	x = Build(c[13])
	if !strings.Contains(string(x.From), "\x01user-from@domain.org") {
		t.Errorf("address without its comments missing: %q", x.From)
	}
	p := Build([]byte("Subject: long\r\n\r\n" + strings.Repeat("word  \r\n", 100))).Preview
	if n := len([]rune(p)); n > 200 || n < 195 || strings.Contains(p, "  ") {
		t.Errorf("long preview (at most 200 characters, no trailing space): %d characters %q", len([]rune(p)), p)
	}
	if x := Build([]byte("From: d\r\nTo: team: a@x, b@y;\r\n\r\n")); x.SortFrom != "d" || x.DisplayFrom != "d" || x.SortTo != "team" {
		t.Errorf("bare name and group: %+v", x)
	}
}

// FuzzBuild: no message makes Build panic, and its text keys are valid
// UTF-8 without NUL (what PostgreSQL's text takes).
func FuzzBuild(f *testing.F) {
	for _, m := range mailcorpus.Messages() {
		f.Add(m)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		x := Build(body)
		for _, s := range []string{x.SortFrom, x.SortTo, x.SortCc, x.DisplayFrom, x.DisplayTo, x.BaseSubject, x.MessageID, x.InReplyTo, x.Preview} {
			if strings.ContainsRune(s, 0) || !utf8.ValidString(s) {
				t.Fatalf("bad key %q", s)
			}
		}
		if len(x.Envelope) == 0 || len(x.BodyStructure) == 0 {
			t.Fatal("no envelope or body structure")
		}
	})
}
