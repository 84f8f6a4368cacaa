package imapserver

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
)

// env writes addresses as ENVELOPE does, NIL for empty.
func envAddrs(l []imap.Address) string {
	nstr := func(s string) string {
		if s == "" {
			return "NIL"
		}
		return fmt.Sprintf("%q", s)
	}
	var b strings.Builder
	for _, a := range l {
		fmt.Fprintf(&b, "(%s %s %s %s)", nstr(a.Name), nstr(a.Route), nstr(a.Mailbox), nstr(a.Host))
	}
	return b.String()
}

func TestParseAddressList(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"user@domain", `(NIL NIL "user" "domain")`},
		{"From Real <fromuser@fromdomain.org>", `("From Real" NIL "fromuser" "fromdomain.org")`},
		{`"Real, Name" <a@b>, c@d`, `("Real, Name" NIL "a" "b")(NIL NIL "c" "d")`},
		{"user@domain (Real Name)", `("Real Name" NIL "user" "domain")`},
		{"<@route:user@domain>", `(NIL "@route" "user" "domain")`},
		{"<@r1, @r2:user@domain>", `(NIL "@r1,@r2" "user" "domain")`},
		// imaptest's fetch-envelope: groups, empty ones and one with a comment.
		{"group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;",
			`(NIL NIL "group" NIL)(NIL NIL "g1" "d1.org")(NIL NIL "g2" "d2.org")(NIL NIL NIL NIL)(NIL NIL "group2" NIL)(NIL NIL "g3" "d3.org")(NIL NIL NIL NIL)`},
		{"group:;, group2: (foo) ;", `(NIL NIL "group" NIL)(NIL NIL NIL NIL)(NIL NIL "group2" NIL)(NIL NIL NIL NIL)`},
		{"undisclosed-recipients:;", `(NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL)`},
		{"Team: Ann <ann@x.org>", `(NIL NIL "Team" NIL)("Ann" NIL "ann" "x.org")(NIL NIL NIL NIL)`}, // no ";"
		{"<user-from (comment)@ (comment) domain.org>", `(NIL NIL "user-from" "domain.org")`},
		{"John Q. Public <jqp@x.org>", `("John Q. Public" NIL "jqp" "x.org")`},
		{"first.last@[192.0.2.1]", `(NIL NIL "first.last" "[192.0.2.1]")`},
		{"=?utf-8?q?J=C3=B6rg?= <j@x.org>", `("Jörg" NIL "j" "x.org")`},
		{"user", `(NIL NIL "user" "MISSING_DOMAIN")`},
		{"<>, , ;", ``},
		{"", ``},
		{"a@b,\r\n c@d", `(NIL NIL "a" "b")(NIL NIL "c" "d")`},
	} {
		if got := envAddrs(ParseAddressList(tc.in)); got != tc.want {
			t.Errorf("ParseAddressList(%q)\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
}

// FuzzParseAddressList: any header value parses without panicking, and
// group markers pair up.
func FuzzParseAddressList(f *testing.F) {
	for _, s := range []string{"a@b", "g: a@b;", `"x\" <a@b>`, "<@r:a@b", "(((", "a (b\\", "[", "\"", "g:<a@b>:c;;", ":0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		depth := 0
		for _, a := range ParseAddressList(s) {
			switch {
			case a.IsGroupStart():
				depth++
			case a.IsGroupEnd():
				depth--
			}
			if depth < 0 || depth > 1 {
				t.Fatalf("%q: unbalanced groups", s)
			}
			if utf8.ValidString(s) && !utf8.ValidString(a.Name+a.Mailbox+a.Host) {
				t.Fatalf("%q: invalid UTF-8 out of valid input", s)
			}
		}
		if depth != 0 {
			t.Fatalf("%q: a group is not closed", s)
		}
	})
}
