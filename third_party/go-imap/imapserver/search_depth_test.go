package imapserver

import (
	"bufio"
	"errors"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/internal/imapwire"
)

// Postern: SEARCH keys nest at most MaxSearchDepth levels; deeper is a
// client error (BAD), whichever of NOT, OR and parentheses nests.
func TestSearchKeyDepth(t *testing.T) {
	const n = MaxSearchDepth
	cases := []struct {
		name, key string
		ok        bool
	}{
		{"NOT at the limit", strings.Repeat("NOT ", n) + "ALL", true},
		{"NOT past the limit", strings.Repeat("NOT ", n+1) + "ALL", false},
		{"parens at the limit", strings.Repeat("(", n) + "ALL" + strings.Repeat(")", n), true},
		{"parens past the limit", strings.Repeat("(", n+1) + "ALL" + strings.Repeat(")", n+1), false},
		{"OR chain at the limit", strings.Repeat("OR SEEN ", n) + "ALL", true},
		{"OR chain past the limit", strings.Repeat("OR SEEN ", n+1) + "ALL", false},
		{"left OR chain past the limit", strings.Repeat("OR ", n+1) + "ALL" + strings.Repeat(" SEEN", n+1), false},
		{"mixed past the limit", strings.Repeat("NOT (OR SEEN ", (n+1)/2+1) + "ALL" + strings.Repeat(")", (n+1)/2+1), false},
		{"1000 NOT", strings.Repeat("NOT ", 1000) + "ALL", false},
		{"10000 parens", strings.Repeat("(", 10000) + "ALL" + strings.Repeat(")", 10000), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dec := imapwire.NewDecoder(bufio.NewReader(strings.NewReader(tc.key+"\r\n")), imapwire.ConnSideServer)
			var c imap.SearchCriteria
			err := readSearchKey(&c, dec, 0)
			if tc.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var imapErr *imap.Error
			if !errors.As(err, &imapErr) || imapErr.Type != imap.StatusResponseTypeBad {
				t.Fatalf("got %v, want BAD", err)
			}
		})
	}
}

// The decoder's own list bound is a syntax error (BAD), not the server's.
func TestListDepthIsClientError(t *testing.T) {
	dec := imapwire.NewDecoder(bufio.NewReader(strings.NewReader(strings.Repeat("(", 2000)+"\r\n")), imapwire.ConnSideServer)
	var f func() error
	f = func() error { return dec.ExpectList(f) }
	err := f()
	var de *imapwire.DecoderExpectError
	if !errors.As(err, &de) {
		t.Fatalf("got %T %v, want a DecoderExpectError", err, err)
	}
}
