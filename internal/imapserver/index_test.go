package imapserver

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/postern/postern/internal/msgindex"
	"github.com/postern/postern/internal/msgindex/mailcorpus"
)

// appendCorpus stores the fixed corpus in INBOX and returns it.
func appendCorpus(t *testing.T, e *env) [][]byte {
	t.Helper()
	corpus := mailcorpus.Messages()
	in := e.inbox(t)
	for i, body := range corpus {
		date := time.Date(2026, 1, 1+i, 12, 0, 0, 0, time.UTC)
		if _, err := e.mail.Append(context.Background(), in.ID, nil, date, body); err != nil {
			t.Fatal(err)
		}
	}
	return corpus
}

// TestFetchFromIndex: ENVELOPE, BODY and BODYSTRUCTURE from the index are
// the bytes go-imap writes from the raw message, on connections with and
// without UTF-8 quoted strings, and for messages indexed on first use.
func TestFetchFromIndex(t *testing.T) {
	e := newEnv(t, envOptions{noTailer: true})
	corpus := appendCorpus(t, e)
	differs := false
	check := func(what string, utf8 bool) {
		c := dial(t, e.addr)
		c.login()
		if utf8 {
			c.ok("E", "ENABLE UTF8=ACCEPT")
		}
		c.ok("S", "SELECT INBOX")
		out := c.ok("F", "FETCH 1:* (ENVELOPE BODY BODYSTRUCTURE)")
		if len(out) != len(corpus)+1 {
			t.Fatalf("%s: %d responses for %d messages: %q", what, len(out)-1, len(corpus), out)
		}
		for i, body := range corpus {
			bs := imapserver.ExtractBodyStructure(bytes.NewReader(body))
			want := fmt.Sprintf("* %d FETCH (UID %d ENVELOPE %s BODY %s BODYSTRUCTURE %s)", i+1, i+1,
				imapserver.EncodeEnvelope(msgindex.Envelope(body), utf8),
				imapserver.EncodeBodyStructure(bs, false, utf8), imapserver.EncodeBodyStructure(bs, true, utf8))
			if out[i] != want {
				t.Errorf("%s: message %d:\n got %q\nwant %q", what, i+1, out[i], want)
			}
			if !bytes.Equal(imapserver.EncodeEnvelope(msgindex.Envelope(body), false), imapserver.EncodeEnvelope(msgindex.Envelope(body), true)) {
				differs = true
			}
		}
	}
	check("rev1", false)
	check("UTF8=ACCEPT", true)
	if !differs {
		t.Error("no message of the corpus has an envelope that differs with UTF-8 quoted strings: the UTF-8 form is untested")
	}
	if _, err := e.db.SQL.Exec(`DELETE FROM mail_index`); err != nil {
		t.Fatal(err)
	}
	check("indexed on first use", false)
}

// TestSearchIndexMatchesScan: every search the index answers gives the
// UIDs the raw messages give, address fields with display names, comments
// and groups included.
func TestSearchIndexMatchesScan(t *testing.T) {
	e := newEnv(t, envOptions{noTailer: true})
	appendCorpus(t, e)
	c := dial(t, e.addr)
	c.login()
	c.ok("E", "ENABLE UTF8=ACCEPT") // the values below are UTF-8 quoted strings
	c.ok("S", "SELECT INBOX")
	searches := []string{
		`FROM carol`, `FROM user-from@domain.org`, `FROM "user-from (comment)"`, `TO realto`, `FROM "Carol Example"`, `FROM "the boss"`, `FROM "dave (work)"`, `FROM example.net`,
		`TO undisclosed`, `CC friends`, `CC "bob b"`, `CC carol`, `BCC hidden`, `FROM "jürgen"`, `TO "andré"`,
		`SUBJECT budget`, `SUBJECT "re: fwd"`, `SUBJECT "grüße"`, `SUBJECT "folded subject"`, `SUBJECT "a folded subject line"`,
		`HEADER FROM ""`, `HEADER From carol`, `HEADER subject ""`, `HEADER Cc ""`, `HEADER BCC ""`,
		`NOT FROM carol`, `OR FROM carol SUBJECT photos`, `FROM example SUBJECT re`,
		`SENTSINCE 3-Jan-2006`, `SENTBEFORE 3-Jan-2006`, `SENTON 3-Jan-2006`, `NOT SENTBEFORE 8-Jan-2006`,
		`SENTON 2-Jan-2006`, `OR SENTON 8-Jan-2006 FROM ivan`,
		`BODY budget`, `TEXT budget`, `BODY kelvin`, `TEXT "the boss"`, `BODY hidden`, `BODY "weekly numbers"`, `TEXT "grüße"`,
		`BODY photos`, `TEXT "BÜCHER"`, `BODY inner`, `TEXT world`, `BODY elvin`,
	}
	for _, q := range searches {
		searchWithIndex = true
		got := c.ok("A", "UID SEARCH "+q)
		searchWithIndex = false
		want := c.ok("B", "UID SEARCH "+q)
		searchWithIndex = true
		if got[0] != want[0] {
			t.Errorf("%s: index %q, messages %q", q, got[0], want[0])
		}
	}
	for q, want := range map[string]string{
		`FROM carol`:            "* SEARCH 1",
		`CC carol`:              "* SEARCH 2",
		`FROM "the boss"`:       "* SEARCH 2",
		`TO undisclosed`:        "* SEARCH 2",
		`BODY budget`:           "* SEARCH 1 2 3 5 6 7 8 9",
		`SENTON 2-Jan-2006`:     "* SEARCH 1",
		`HEADER FROM ""`:        "* SEARCH 1 2 3 4 5 7 8 9 10 11 12 13 14",
		`SUBJECT "re: fwd"`:     "* SEARCH 2",
		`FROM "jürgen"`:         "* SEARCH 3",
		`SENTBEFORE 3-Jan-2006`: "* SEARCH 1",
	} {
		if got := c.ok("C", "UID SEARCH "+q); got[0] != want {
			t.Errorf("%s: %q, want %q", q, got[0], want)
		}
	}
}

// TestPreview: FETCH PREVIEW and PREVIEW (LAZY) (RFC 8970) give the start of
// the first text part, whitespace made single spaces; PREVIEW is advertised.
func TestPreview(t *testing.T) {
	e := newEnv(t, envOptions{noTailer: true})
	appendCorpus(t, e)
	c := dial(t, e.addr)
	c.login()
	if out := c.ok("C", "CAPABILITY"); !contains(out, " PREVIEW") {
		t.Errorf("PREVIEW not advertised: %q", out)
	}
	c.ok("S", "SELECT INBOX")
	for cmd, want := range map[string]string{
		"FETCH 4 (PREVIEW)":                  `* 4 FETCH (UID 4 PREVIEW "See the photos attached.")`,
		"FETCH 4 PREVIEW":                    `* 4 FETCH (UID 4 PREVIEW "See the photos attached.")`,
		"FETCH 4 (PREVIEW (LAZY))":           `* 4 FETCH (UID 4 PREVIEW "See the photos attached.")`,
		"FETCH 4 PREVIEW (lazy)":             `* 4 FETCH (UID 4 PREVIEW "See the photos attached.")`,
		"UID FETCH 4 (PREVIEW (LAZY) FLAGS)": `* 4 FETCH (UID 4 FLAGS () PREVIEW "See the photos attached.")`,
		"FETCH 9 (PREVIEW)":                  `* 9 FETCH (UID 9 PREVIEW "Hello World &amp; more")`,
		"FETCH 11 (PREVIEW)":                 `* 11 FETCH (UID 11 PREVIEW "")`,
		"FETCH 3 (PREVIEW)":                  "* 3 FETCH (UID 3 PREVIEW {39}\r\nSchöne Grüße, das Budget ist fertig.)",
	} {
		if out := c.ok("F", cmd); out[0] != want {
			t.Errorf("%s: %q, want %q", cmd, out[0], want)
		}
	}
	for _, bad := range []string{"FETCH 4 (PREVIEW (FAST))", "FETCH 4 (PREVIEW ())", "FETCH 4 (PREVIEW (LAZY)"} {
		if out := c.cmd("B", bad); !strings.HasPrefix(out[len(out)-1], "B BAD") {
			t.Errorf("%s: %q", bad, out)
		}
	}
	c.ok("E", "ENABLE UTF8=ACCEPT")
	if out := c.ok("F", "FETCH 3 (PREVIEW)"); out[0] != `* 3 FETCH (UID 3 PREVIEW "Schöne Grüße, das Budget ist fertig.")` {
		t.Errorf("UTF-8 preview: %q", out[0])
	}
}
