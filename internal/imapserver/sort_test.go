package imapserver

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// threadMailbox stores messages whose threads RFC 5256's rules decide:
// a reply chain by In-Reply-To and References, a thread joined by subject
// only, two replies to a message that is not there (a dummy parent).
func threadMailbox(t *testing.T, e *env) {
	msgs := []struct{ id, refs, inReplyTo, subject, from string }{
		{"<a@x>", "", "", "x", "Zed <zed@example.com>"},
		{"<b@x>", "", "<a@x>", "Re: x", "amy@example.com"},
		{"<c@x>", "<a@x> <b@x>", "", "Re: [list] x", "Bob <bob@example.com>"},
		{"<d@x>", "", "", "other", "carl@example.com"},
		{"<e@x>", "<missing@x>", "", "lonely", "dan@example.com"},
		{"<f@x>", "<missing@x>", "", "lonely2", "eve@example.com"},
		{"", "", "", "Re: other", "fay@example.com"},
	}
	in := e.inbox(t)
	for i, m := range msgs {
		var b strings.Builder
		fmt.Fprintf(&b, "From: %s\r\nSubject: %s\r\nDate: Mon, %02d Jan 2024 10:00:00 +0000\r\n", m.from, m.subject, i+1)
		if m.id != "" {
			fmt.Fprintf(&b, "Message-ID: %s\r\n", m.id)
		}
		if m.refs != "" {
			fmt.Fprintf(&b, "References: %s\r\n", m.refs)
		}
		if m.inReplyTo != "" {
			fmt.Fprintf(&b, "In-Reply-To: %s\r\n", m.inReplyTo)
		}
		b.WriteString("\r\n" + strings.Repeat("x", 10*(7-i)) + "\r\n")
		date := time.Date(2026, 1, 10-i, 0, 0, 0, 0, time.UTC) // arrival in reverse
		if _, err := e.mail.Append(context.Background(), in.ID, nil, date, []byte(b.String())); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSortThread: SORT and THREAD responses, byte for byte, for each key
// and algorithm; capabilities advertised.
func TestSortThread(t *testing.T) {
	e := newEnv(t, envOptions{noTailer: true})
	threadMailbox(t, e)
	c := dial(t, e.addr)
	c.login()
	caps := c.ok("C", "CAPABILITY")
	for _, want := range []string{" SORT ", " SORT=DISPLAY ", " THREAD=ORDEREDSUBJECT ", " THREAD=REFERENCES "} {
		if !contains(caps, want) {
			t.Errorf("%s not advertised: %q", want, caps)
		}
	}
	c.ok("S", "SELECT INBOX")
	c.ok("D", "STORE 2 +FLAGS (\\Seen)")
	for cmd, want := range map[string]string{
		"SORT (SUBJECT) UTF-8 ALL":                  "* SORT 5 6 4 7 1 2 3",
		"SORT (REVERSE SUBJECT) UTF-8 ALL":          "* SORT 1 2 3 4 7 6 5",
		"SORT (DATE) US-ASCII ALL":                  "* SORT 1 2 3 4 5 6 7",
		"SORT (REVERSE DATE) UTF-8 ALL":             "* SORT 7 6 5 4 3 2 1",
		"SORT (ARRIVAL) UTF-8 ALL":                  "* SORT 7 6 5 4 3 2 1",
		"SORT (SIZE) UTF-8 ALL":                     "* SORT 7 4 6 5 1 2 3",
		"SORT (FROM) UTF-8 ALL":                     "* SORT 2 3 4 5 6 7 1",
		"SORT (DISPLAYFROM) UTF-8 ALL":              "* SORT 2 3 4 5 6 7 1",
		"SORT (REVERSE DISPLAYFROM) UTF-8 ALL":      "* SORT 1 7 6 5 4 3 2",
		"SORT (TO SUBJECT) UTF-8 ALL":               "* SORT 5 6 4 7 1 2 3",
		"SORT (SUBJECT REVERSE ARRIVAL) UTF-8 ALL":  "* SORT 5 6 4 7 1 2 3",
		"SORT (SUBJECT) UTF-8 SUBJECT x":            "* SORT 1 2 3",
		"SORT (SUBJECT) UTF-8 UNSEEN NOT SUBJECT x": "* SORT 5 6 4 7",
		"SORT (SUBJECT) UTF-8 SUBJECT nothing":      "* SORT",
		"UID SORT (REVERSE SIZE) UTF-8 1:3":         "* SORT 3 2 1",
		"THREAD REFERENCES UTF-8 ALL":               "* THREAD (1 2 3)(4 7)((5)(6))",
		"THREAD ORDEREDSUBJECT UTF-8 ALL":           "* THREAD (1 (2)(3))(4 7)(5)(6)",
		"UID THREAD REFERENCES UTF-8 NOT 2":         "* THREAD (1 3)(4 7)((5)(6))",
		"THREAD REFERENCES UTF-8 SUBJECT nothing":   "* THREAD",
	} {
		if out := c.ok("T", cmd); out[0] != want {
			t.Errorf("%s: %q, want %q", cmd, out[0], want)
		}
	}
	for _, bad := range []string{"SORT () UTF-8 ALL", "SORT (NAME) UTF-8 ALL", "SORT (SUBJECT) UTF-8", "THREAD CHAOS UTF-8 ALL", "SORT SUBJECT UTF-8 ALL"} {
		if out := c.cmd("B", bad); !strings.HasPrefix(out[len(out)-1], "B BAD") {
			t.Errorf("%s: %q", bad, out)
		}
	}
	if out := c.cmd("N", "SORT (SUBJECT) KOI8-R ALL"); !strings.HasPrefix(out[len(out)-1], "N NO [BADCHARSET]") {
		t.Errorf("unknown charset: %q", out)
	}
}
