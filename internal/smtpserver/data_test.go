package smtpserver

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// The end-of-data sequences of the SMTP smuggling research (CVE-2023-51764,
// -51765, -51766; hannob/smtpsmug): none may end DATA, and the bare LF or CR
// makes the message refused.
var smuggleSeqs = map[string]string{
	`\n.\n`:     "\n.\n",
	`\n.\r\n`:   "\n.\r\n",
	`\r.\r\n`:   "\r.\r\n",
	`\r\n.\n`:   "\r\n.\n",
	`\r\n.\r`:   "\r\n.\r",
	`\r.\n`:     "\r.\n",
	`\n.\r`:     "\n.\r",
	`.\n first`: ".\n",
}

func TestSMTPSmugglingOverSocket(t *testing.T) {
	e := newEnv(t)
	for name, seq := range smuggleSeqs {
		t.Run(name, func(t *testing.T) {
			before := len(e.inbox(e.bob))
			c := dial(t, e.addr)
			c.login(e.alice.Email, alicePass)
			c.wantCmd("MAIL FROM:<alice@example.test>", "250 ")
			c.wantCmd("RCPT TO:<bob@other.test>", "250 ")
			c.wantCmd("DATA", "354 ")
			// One write, as a smuggling sender does: if seq ended DATA, the
			// smuggled transaction's replies would come back first.
			c.send("Subject: outer\r\n\r\nouter" + seq +
				"MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@other.test>\r\nDATA\r\n" +
				"Subject: smuggled\r\n\r\nsmuggled\r\n.\r\n")
			if got := c.reply(); got != "554 5.6.0 Message refused: bare LF or CR; lines must end with CRLF\r\n" {
				t.Fatalf("got %q", got)
			}
			// Nothing else was answered: the next reply is this NOOP's.
			c.wantCmd("NOOP", "250 2.0.0 OK\r\n")
			if got := len(e.inbox(e.bob)); got != before {
				t.Fatalf("%d messages delivered", got-before)
			}
		})
	}
}

func TestBareLFInBodyRefused(t *testing.T) {
	e := newEnv(t)
	c := dial(t, e.addr)
	c.login(e.alice.Email, alicePass)
	c.wantCmd("MAIL FROM:<alice@example.test>", "250 ")
	c.wantCmd("RCPT TO:<bob@other.test>", "250 ")
	c.wantCmd("DATA", "354 ")
	c.send("Subject: lf\n\nunix line ends\n.\r\n")
	// "\n.\r\n" is no terminator: the real one follows.
	c.send("\r\n.\r\n")
	c.want("554 5.6.0 ")
	if n := len(e.inbox(e.bob)); n != 0 {
		t.Fatalf("%d delivered", n)
	}
}

func TestReadData(t *testing.T) {
	cases := []struct {
		name, in, body, rest string
		verdict              error
	}{
		{"empty", ".\r\n", "", "", nil},
		{"one line", "a\r\n.\r\nNOOP\r\n", "a\r\n", "NOOP\r\n", nil},
		{"dot stuffing", "..a\r\n...\r\n.\r\n", ".a\r\n..\r\n", "", nil},
		{"a dot line inside", "a\r\n.b\r\n.\r\n", "a\r\nb\r\n", "", nil},
		{"CRLF dot CRLF only", "a\r\n. \r\n.\r\n", "a\r\n \r\n", "", nil},
		{"bare LF", "a\nb\r\n.\r\n", "", "", errBareNewline},
		{"bare CR", "a\rb\r\n.\r\n", "", "", errBareNewline},
		{"LF dot LF is data", "a\n.\nb\r\n.\r\nX", "", "X", errBareNewline},
		{"LF dot CRLF is data", "a\n.\r\nb\r\n.\r\nX", "", "X", errBareNewline},
		{"CR dot CRLF is data", "a\r.\r\nb\r\n.\r\nX", "", "X", errBareNewline},
		{"CRLF dot LF is data", "a\r\n.\nb\r\n.\r\nX", "", "X", errBareNewline},
		{"NUL", "a\x00\r\n.\r\n", "", "", errNUL},
		{"NUL before a dot", "a\r\n\x00.\r\n.\r\nX", "", "X", errNUL},
		{"too big", "0123456789\r\n.\r\nX", "", "X", errTooBig},
		{"fits exactly", "01234567\r\n.\r\n", "01234567\r\n", "", nil},
		{"line too long", strings.Repeat("x", 40) + "\r\n.\r\n", "", "", errDataLine},
		{"very long line", strings.Repeat("x", 100000) + "\r\n.\r\nX", "", "X", errDataLine},
		{"very long line then LF dot LF", strings.Repeat("x", 100000) + "\n.\nb\r\n.\r\nX", "", "X", errDataLine},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := bufio.NewReaderSize(strings.NewReader(tc.in), 64)
			body, verdict, err := readDataT(r, 32, 10)
			if err != nil {
				t.Fatalf("err %v", err)
			}
			if !errors.Is(verdict, tc.verdict) || string(body) != tc.body {
				t.Fatalf("got %q, %v; want %q, %v", body, verdict, tc.body, tc.verdict)
			}
			rest, _ := io.ReadAll(r)
			if string(rest) != tc.rest {
				t.Fatalf("left %q, want %q", rest, tc.rest)
			}
		})
	}
}

func TestReadDataEOF(t *testing.T) {
	for _, in := range []string{"", "a\r\n", "a\r\n.", "a\r\n.\r", "a\n.\n", strings.Repeat("x", 1000)} {
		r := bufio.NewReaderSize(strings.NewReader(in), 64)
		if _, _, err := readDataT(r, 32, 100); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%q: err %v, want unexpected EOF", in, err)
		}
	}
}

// TestMissingFields: Date and Message-ID are added only when the header
// lacks them, whatever their case or folding; a field of the same name in
// the body, or after a line that ends the header, does not count.
func TestMissingFields(t *testing.T) {
	now := time.Date(2026, 11, 27, 19, 30, 0, 0, time.FixedZone("", 3600))
	const date = "Date: Fri, 27 Nov 2026 19:30:00 +0100\r\n"
	cases := []struct {
		name, msg        string
		wantDate, wantID bool
	}{
		{"both present", "From: a@b\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\nMessage-ID: <x@y>\r\n\r\nbody\r\n", false, false},
		{"other case", "DATE: Thu, 26 Nov 2026 10:00:00 +0000\r\nmessage-id: <x@y>\r\n\r\n", false, false},
		{"folded", "Subject: a\r\n long\r\nMessage-Id:\r\n <x@y>\r\nDate:\r\n\tThu, 26 Nov 2026\r\n\r\nb\r\n", false, false},
		{"neither", "From: a@b\r\nSubject: hi\r\n\r\nDate: in the body\r\n", true, true},
		{"no Message-ID", "Date: Thu, 26 Nov 2026 10:00:00 +0000\r\n\r\n", false, true},
		{"no header at all", "just text\r\nDate: not a field\r\n", true, true},
		{"empty message", "", true, true},
		{"header without body", "Date: Thu, 26 Nov 2026 10:00:00 +0000\r\nMessage-ID: <x@y>", false, false},
		{"name with a space is no field", "Subject: a\r\nNot A: field\r\nDate: late\r\n\r\n", true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := string(missingFields([]byte(tc.msg), now, "mx.example.test", "a@b"))
			if hasDate := strings.Contains(got, date); hasDate != tc.wantDate {
				t.Errorf("Date added: %v, want %v (%q)", hasDate, tc.wantDate, got)
			}
			hasID := strings.HasPrefix(got, "Message-ID: <") || strings.Contains(got, "\r\nMessage-ID: <")
			if hasID != tc.wantID {
				t.Errorf("Message-ID added: %v, want %v (%q)", hasID, tc.wantID, got)
			}
			if hasID && !strings.HasSuffix(got, "@mx.example.test>\r\n") {
				t.Errorf("Message-ID: %q", got)
			}
		})
	}
	a := missingFields(nil, now, "h", "a@b")
	b := missingFields(nil, now, "h", "a@b")
	if string(a) == string(b) {
		t.Error("two messages got the same Message-ID")
	}
}

// readDataT runs readData with the given line and size limits and the
// default header limits.
func readDataT(r *bufio.Reader, maxLine int, maxSize int64) (body []byte, verdict, err error) {
	w := &bodyWriter{maxSize: maxSize, maxLine: maxLine, maxHeader: DefaultMaxHeaderBytes, maxFields: DefaultMaxHeaderFields, lineStart: true}
	if err := readData(r, w, func() {}); err != nil {
		return nil, nil, err
	}
	body, verdict = w.end()
	return body, verdict, nil
}
