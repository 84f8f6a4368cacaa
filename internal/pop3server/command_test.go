package pop3server

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		in   string
		want Command
		err  bool
	}{
		{in: "STAT\r\n", want: Command{Name: "STAT"}},
		{in: "stat", want: Command{Name: "STAT"}},
		{in: "list 3\n", want: Command{Name: "LIST", Rest: "3", Args: []string{"3"}}},
		{in: "TOP 1 10\r\n", want: Command{Name: "TOP", Rest: "1 10", Args: []string{"1", "10"}}},
		{in: "PASS abcde fghij kmnpq rstuv\r\n", want: Command{Name: "PASS", Rest: "abcde fghij kmnpq rstuv",
			Args: []string{"abcde", "fghij", "kmnpq", "rstuv"}}},
		{in: "PASS  lead\r\n", want: Command{Name: "PASS", Rest: " lead", Args: []string{"lead"}}},
		{in: "PASS pässwörd\r\n", want: Command{Name: "PASS", Rest: "pässwörd", Args: []string{"pässwörd"}}},
		{in: "USER \r\n", want: Command{Name: "USER"}},
		{in: "", err: true},
		{in: "\r\n", err: true},
		{in: " STAT\r\n", err: true},
		{in: "ST4T\r\n", err: true},
		{in: "VERYLONGCMD\r\n", err: true},
		{in: "USER a\x00b\r\n", err: true},
		{in: "USER a\rb\r\n", err: true},
		{in: "USER a\tb\r\n", err: true},
		{in: "USER \xff\r\n", err: true},
		{in: "USER a\x7f\r\n", err: true},
		{in: "STAT\r\r\n", err: true},
	}
	for _, tt := range tests {
		got, err := ParseCommand([]byte(tt.in))
		if (err != nil) != tt.err {
			t.Errorf("ParseCommand(%q) err = %v, want error %v", tt.in, err, tt.err)
			continue
		}
		if !tt.err && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseCommand(%q) = %#v, want %#v", tt.in, got, tt.want)
		}
	}
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"STAT\r\n", "LIST 1", "TOP 1 0\r\n", "PASS a b  c\r\n", "USER x@y\n",
		"AUTH PLAIN AGFubgBwdw==\r\n", "", "\r\n", "a\x00b", "QUIT\r\r\n", "é\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cmd, err := ParseCommand(b)
		if err != nil {
			return
		}
		if cmd.Name == "" || len(cmd.Name) > 8 || cmd.Name != strings.ToUpper(cmd.Name) {
			t.Fatalf("bad name %q", cmd.Name)
		}
		if !utf8.ValidString(cmd.Rest) {
			t.Fatalf("invalid UTF-8 in %q", cmd.Rest)
		}
		for _, c := range []byte(cmd.Name + cmd.Rest) {
			if c < 0x20 || c == 0x7f {
				t.Fatalf("control character in %#v", cmd)
			}
		}
		for _, a := range cmd.Args {
			if a == "" || strings.Contains(a, " ") || !strings.Contains(cmd.Rest, a) {
				t.Fatalf("bad arg %q of %#v", a, cmd)
			}
		}
		// The line is the name, then the rest after one space, then the EOL.
		line := string(trimEOL(b))
		if !strings.EqualFold(line, cmd.Name) && !strings.EqualFold(line, cmd.Name+" "+cmd.Rest) {
			t.Fatalf("%q parsed to %#v", b, cmd)
		}
		// Message numbers never panic and are positive.
		for _, a := range cmd.Args {
			if n, ok := parseMsgNum(a); ok && n <= 0 {
				t.Fatalf("parseMsgNum(%q) = %d", a, n)
			}
		}
	})
}

func TestParseMsgNum(t *testing.T) {
	for in, want := range map[string]int{"1": 1, "42": 42, "007": 7, "999999999": 999999999} {
		if n, ok := parseMsgNum(in); !ok || n != want {
			t.Errorf("parseMsgNum(%q) = %d, %v", in, n, ok)
		}
	}
	for _, in := range []string{"", "0", "-1", "+1", "1a", " 1", "1234567890", "99999999999999999999", "١"} {
		if n, ok := parseMsgNum(in); ok {
			t.Errorf("parseMsgNum(%q) = %d, want refusal", in, n)
		}
	}
	if n, ok := parseCount("0"); !ok || n != 0 {
		t.Errorf("parseCount(0) = %d, %v", n, ok)
	}
}

func TestReadLine(t *testing.T) {
	long := strings.Repeat("x", 5000)
	in := "ONE\r\n" + long + "\r\nTWO\r\n" + strings.Repeat("y", 300) + "\r\nLAST"
	r := bufio.NewReaderSize(strings.NewReader(in), maxAuthLine)
	expect := func(want string, wantErr error) {
		t.Helper()
		got, err := readLine(r, maxAuthLine)
		if !errors.Is(err, wantErr) || (err == nil && string(got) != want) {
			t.Fatalf("readLine = %q, %v; want %q, %v", got, err, want, wantErr)
		}
	}
	expect("ONE\r\n", nil)
	expect("", errLineTooLong)
	expect("TWO\r\n", nil)
	expect(strings.Repeat("y", 300)+"\r\n", nil)
	expect("", io.ErrUnexpectedEOF)

	// A line that never ends is cut off after maxDiscard octets.
	r = bufio.NewReaderSize(io.MultiReader(strings.NewReader("a"), zeros{}), maxAuthLine)
	expect("", errFlood)
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'z'
	}
	return len(p), nil
}

func TestWriteMessage(t *testing.T) {
	msg := "Subject: hi\nFrom: a@b\r\n\n.dot line\r\nline 2\n..two dots\n.\nlast"
	tests := []struct {
		lines int
		want  string
	}{
		{-1, "Subject: hi\r\nFrom: a@b\r\n\r\n..dot line\r\nline 2\r\n...two dots\r\n..\r\nlast\r\n.\r\n"},
		{0, "Subject: hi\r\nFrom: a@b\r\n\r\n.\r\n"},
		{2, "Subject: hi\r\nFrom: a@b\r\n\r\n..dot line\r\nline 2\r\n.\r\n"},
		{100, "Subject: hi\r\nFrom: a@b\r\n\r\n..dot line\r\nline 2\r\n...two dots\r\n..\r\nlast\r\n.\r\n"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		w := bufio.NewWriter(&buf)
		if err := writeMessage(w, []byte(msg), tt.lines); err != nil {
			t.Fatal(err)
		}
		w.Flush()
		if buf.String() != tt.want {
			t.Errorf("lines %d:\n got %q\nwant %q", tt.lines, buf.String(), tt.want)
		}
	}
	// Header only, no blank line: TOP gives all of it.
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	writeMessage(w, []byte("A: 1\r\nB: 2\r\n"), 0)
	w.Flush()
	if buf.String() != "A: 1\r\nB: 2\r\n.\r\n" {
		t.Errorf("header only: %q", buf.String())
	}
}

// FuzzWriteMessage checks that a multi-line response always ends at its own
// terminator and un-stuffs back to the message with CRLF line ends.
func FuzzWriteMessage(f *testing.F) {
	f.Add([]byte("A: b\r\n\r\n.\r\nbody\n..x\n"), -1)
	f.Add([]byte(".\n.\r\n\r\r\n"), 1)
	f.Add([]byte(""), 0)
	f.Fuzz(func(t *testing.T, msg []byte, lines int) {
		if lines < -1 {
			lines = -1
		}
		var buf bytes.Buffer
		w := bufio.NewWriter(&buf)
		if err := writeMessage(w, msg, lines); err != nil {
			t.Fatal(err)
		}
		w.Flush()
		out := buf.Bytes()
		if !bytes.HasSuffix(out, []byte(".\r\n")) {
			t.Fatalf("no terminator: %q", out)
		}
		body := out[:len(out)-3]
		if bytes.Contains(append([]byte("\r\n"), body...), []byte("\r\n.\r\n")) {
			t.Fatalf("early terminator in %q", out)
		}
		if lines >= 0 {
			return
		}
		var un []byte
		for _, l := range bytes.SplitAfter(body, []byte("\r\n")) {
			un = append(un, bytes.TrimPrefix(l, []byte("."))...)
		}
		want := bytes.ReplaceAll(msg, []byte("\r\n"), []byte("\n"))
		want = bytes.ReplaceAll(want, []byte("\n"), []byte("\r\n"))
		// An unterminated last line gets its CRLF; a CR it ends with is
		// taken as the start of that CRLF.
		if len(want) > 0 && !bytes.HasSuffix(want, []byte("\r\n")) {
			want = append(bytes.TrimSuffix(want, []byte("\r")), "\r\n"...)
		}
		if !bytes.Equal(un, want) {
			t.Fatalf("round trip of %q gave %q", msg, un)
		}
	})
}

func TestDecodeResponse(t *testing.T) {
	if b, err := decodeResponse("="); err != nil || len(b) != 0 {
		t.Errorf(`"=" = %q, %v`, b, err)
	}
	if b, err := decodeResponse("AGFubgBwdw=="); err != nil || string(b) != "\x00ann\x00pw" {
		t.Errorf("valid = %q, %v", b, err)
	}
	for _, in := range []string{"", "=AAA", "AAA=BBB", "AGFubgBwdw", "AGFub gBwdw==", "!!!!", strings.Repeat("A", 2000)} {
		if _, err := decodeResponse(in); err == nil {
			t.Errorf("decodeResponse(%q) accepted", in)
		}
	}
}
