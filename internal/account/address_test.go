package account_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/postern/postern/internal/account"
)

func TestParseEmail(t *testing.T) {
	cases := []struct{ in, want string }{
		{"alice@example.com", "alice@example.com"},
		{"  Alice@Example.COM ", "alice@example.com"},
		{"a.b-c_d+tag@mail.sub.example.co", "a.b-c_d+tag@mail.sub.example.co"},
		{"alice@example.com.", "alice@example.com"},
		{strings.Repeat("a", 64) + "@x.io", strings.Repeat("a", 64) + "@x.io"},
		{"", ""},
		{"alice", ""},
		{"@example.com", ""},
		{"alice@", ""},
		{"alice@localhost", ""},
		{".alice@example.com", ""},
		{"alice.@example.com", ""},
		{"al..ice@example.com", ""},
		{"al ice@example.com", ""},
		{"a@b@example.com", ""},
		{"\"alice\"@example.com", ""},
		{"ålice@example.com", ""},
		{"alice@exa_mple.com", ""},
		{"alice@-example.com", ""},
		{"alice\r\n@example.com", ""},
		{strings.Repeat("a", 65) + "@x.io", ""},
	}
	for _, c := range cases {
		got, err := account.ParseEmail(c.in)
		if c.want != "" {
			if err != nil || got != c.want {
				t.Errorf("ParseEmail(%q) = %q, %v; want %q", c.in, got, err, c.want)
			}
			continue
		}
		if account.ErrorCode(err) != account.EINVALID {
			t.Errorf("ParseEmail(%q) = %q, %v; want EINVALID", c.in, got, err)
		}
	}
	// Hostile input is clipped in the message.
	_, err := account.ParseEmail(strings.Repeat("<x>", 1000))
	if n := utf8.RuneCountInString(account.ErrorMessage(err)); n > 200 {
		t.Errorf("error message of %d characters", n)
	}
}

func TestParseDomain(t *testing.T) {
	label63 := strings.Repeat("a", 63)
	cases := []struct{ in, want string }{
		{"example.com", "example.com"},
		{" Example.COM. ", "example.com"},
		{"a-b.c0.example", "a-b.c0.example"},
		{"xn--bcher-kva.example", "xn--bcher-kva.example"},
		{label63 + ".com", label63 + ".com"},
		{"", ""},
		{".", ""},
		{"com", ""},
		{"example..com", ""},
		{".example.com", ""},
		{"-example.com", ""},
		{"example-.com", ""},
		{"exa_mple.com", ""},
		{"exa mple.com", ""},
		{"bücher.example", ""},
		{label63 + "a.com", ""},
		{strings.Repeat(label63+".", 4) + "com", ""}, // 259 characters
	}
	for _, c := range cases {
		got, err := account.ParseDomain(c.in)
		if c.want != "" {
			if err != nil || got != c.want {
				t.Errorf("ParseDomain(%q) = %q, %v; want %q", c.in, got, err, c.want)
			}
			continue
		}
		if account.ErrorCode(err) != account.EINVALID {
			t.Errorf("ParseDomain(%q) = %q, %v; want EINVALID", c.in, got, err)
		}
	}
}

func TestCheckPassword(t *testing.T) {
	const email = "alice12345@example.com"
	cases := []struct {
		pw string
		ok bool
	}{
		{"correct horse battery staple", true},
		{"0123456789x", true},
		{"パスワードパスワード", true}, // 10 characters, 30 bytes
		{strings.Repeat("ab", 128), true},
		{strings.Repeat("ab", 128) + "c", false}, // 257 bytes
		{"xyzzy", false},
		{"123456789", false},
		{"パスワード", false},
		{"aaaaaaaaaaaa", false},
		{"1234567890", false},
		{"Password123", false},
		{"QWERTYUIOP", false},
		{"alice12345", false},
		{"ALICE12345@EXAMPLE.COM", false},
		{"valid\xffbytes", false},
	}
	for _, c := range cases {
		err := account.CheckPassword(email, c.pw)
		if c.ok != (err == nil) {
			t.Errorf("CheckPassword(%q) = %v, want ok %v", c.pw, err, c.ok)
		}
		if err != nil {
			if account.ErrorCode(err) != account.EINVALID {
				t.Errorf("CheckPassword(%q): code %s", c.pw, account.ErrorCode(err))
			}
			if strings.Contains(account.ErrorMessage(err), c.pw) {
				t.Errorf("CheckPassword(%q): the message repeats the password", c.pw)
			}
		}
	}
}
