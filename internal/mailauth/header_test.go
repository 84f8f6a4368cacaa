package mailauth

import (
	"bytes"
	"strings"
	"testing"
)

func TestStripAuthResults(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"none", "From: a@b.test\r\nSubject: x\r\n\r\nbody\r\n", "From: a@b.test\r\nSubject: x\r\n\r\nbody\r\n"},
		{"one", "Authentication-Results: mx.postern.test; spf=pass\r\nFrom: a@b.test\r\n\r\nbody\r\n",
			"From: a@b.test\r\n\r\nbody\r\n"},
		{"folded, odd case, several",
			"Received: from x\r\n\tby y\r\nauthentication-RESULTS: evil.test;\r\n\tdkim=pass\r\n header.d=bank.test\r\n" +
				"From: a@b.test\r\nAUTHENTICATION-RESULTS:mx.postern.test; dmarc=pass\r\nSubject: s\r\n\r\nbody\r\n",
			"Received: from x\r\n\tby y\r\nFrom: a@b.test\r\nSubject: s\r\n\r\nbody\r\n"},
		{"blank before the colon", "Authentication-Results  : x; spf=pass\r\nFrom: a@b.test\r\n\r\nb\r\n",
			"From: a@b.test\r\n\r\nb\r\n"},
		{"last field, no body", "From: a@b.test\r\nAuthentication-Results: x;\r\n spf=pass\r\n",
			"From: a@b.test\r\n"},
		{"no final line end", "From: a@b.test\r\nAuthentication-Results: x; spf=pass", "From: a@b.test\r\n"},
		{"in the body: kept", "From: a@b.test\r\n\r\nAuthentication-Results: x; spf=pass\r\n",
			"From: a@b.test\r\n\r\nAuthentication-Results: x; spf=pass\r\n"},
		{"similar names kept", "X-Authentication-Results: x\r\nAuthentication-Results-Original: y\r\n\r\n",
			"X-Authentication-Results: x\r\nAuthentication-Results-Original: y\r\n\r\n"},
		{"bare LF", "Authentication-Results: x;\n spf=pass\nFrom: a@b.test\n\nbody\n", "From: a@b.test\n\nbody\n"},
		{"continuation of a kept field that mentions it",
			"Subject: a\r\n Authentication-Results: not a field\r\n\r\n",
			"Subject: a\r\n Authentication-Results: not a field\r\n\r\n"},
		{"empty", "", ""},
	} {
		if got := string(StripAuthResults([]byte(tc.in))); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

func TestStripAuthResultsLeavesInput(t *testing.T) {
	in := []byte("Authentication-Results: x; spf=pass\r\nFrom: a@b.test\r\n\r\nbody\r\n")
	orig := string(in)
	StripAuthResults(in)
	if string(in) != orig {
		t.Errorf("input changed to %q", in)
	}
}

func TestParseResolver(t *testing.T) {
	r, err := ParseResolver("")
	if r != nil || err != nil {
		t.Errorf(`"": %v, %v; want the system's resolver (nil, nil)`, r, err)
	}
	for _, ok := range []string{"127.0.0.1:53", "127.0.0.2:5353", "[::1]:53", "192.0.2.1"} {
		if r, err := ParseResolver(ok); err != nil || r == nil || !r.PreferGo || r.Dial == nil {
			t.Errorf("%q: %v, %v", ok, r, err)
		}
	}
	for _, bad := range []string{"dns.example:53", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:x",
		"[fe80::1%eth0]:53", "127.0.0.1:", ":53", "localhost"} {
		if _, err := ParseResolver(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// FuzzStripAuthResults: whatever the input, no Authentication-Results field
// is left in the header, stripping again changes nothing, and the body is
// untouched.
func FuzzStripAuthResults(f *testing.F) {
	f.Add("Authentication-Results: x;\r\n spf=pass\r\nFrom: a@b\r\n\r\nbody")
	f.Add(" Authentication-Results: x\r\n\r\n")
	f.Add("A: b\nauthentication-results :x\n\tc\n\nAuthentication-Results: y\n")
	f.Fuzz(func(t *testing.T, in string) {
		out := StripAuthResults([]byte(in))
		if again := StripAuthResults(out); !bytes.Equal(again, out) {
			t.Fatalf("not idempotent: %q → %q → %q", in, out, again)
		}
		for i, line := range strings.SplitAfter(string(headerOf(out)), "\n") {
			if i > 0 && (strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t")) {
				continue // a continuation line belongs to the field before it
			}
			name, _, ok := strings.Cut(line, ":")
			if ok && strings.EqualFold(strings.TrimSpace(name), "Authentication-Results") {
				t.Fatalf("%q left in %q", line, out)
			}
		}
		if body := bodyOf([]byte(in)); !bytes.HasSuffix(out, body) {
			t.Fatalf("body %q changed: %q", body, out)
		}
	})
}

// headerOf and bodyOf split msg at the first empty line, independently of
// headerFields.
func headerOf(msg []byte) []byte {
	for i := 0; i < len(msg); {
		j := bytes.IndexByte(msg[i:], '\n')
		if j < 0 {
			return msg
		}
		line := msg[i : i+j+1]
		if len(bytes.TrimRight(line, "\r\n")) == 0 && (len(line) == 1 || string(line) == "\r\n") {
			return msg[:i]
		}
		i += j + 1
	}
	return msg
}

func bodyOf(msg []byte) []byte { return msg[len(headerOf(msg)):] }
