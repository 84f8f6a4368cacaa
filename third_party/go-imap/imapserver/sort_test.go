package imapserver

import (
	"bufio"
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/internal/imapwire"
)

func leaf(n uint32, children ...imap.Thread) imap.Thread {
	return imap.Thread{Num: n, Children: children}
}

// Postern: THREAD responses as RFC 5256 §4 writes them: a chain of single
// children as thread-members, several children as thread-nested, a dummy
// without a number.
func TestWriteThread(t *testing.T) {
	cases := []struct {
		threads []imap.Thread
		want    string
	}{
		// RFC 5256 §4's example.
		{[]imap.Thread{leaf(2), leaf(3, leaf(6, leaf(4, leaf(23)), leaf(44, leaf(7, leaf(96)))))}, "(2)(3 6 (4 23)(44 7 96))"},
		// A dummy parent of two threads (RFC 5256 §4: "((3)(5))").
		{[]imap.Thread{leaf(0, leaf(3), leaf(5))}, "((3)(5))"},
		{[]imap.Thread{leaf(1, leaf(2), leaf(3, leaf(4)))}, "(1 (2)(3 4))"},
		{[]imap.Thread{leaf(1)}, "(1)"},
	}
	for _, tc := range cases {
		var buf bytes.Buffer
		bw := bufio.NewWriter(&buf)
		enc := imapwire.NewEncoder(bw, imapwire.ConnSideServer)
		for i := range tc.threads {
			writeThread(enc, &tc.threads[i])
		}
		bw.Flush()
		if buf.String() != tc.want {
			t.Errorf("got %q, want %q", buf.String(), tc.want)
		}
	}
}

// Postern: SORT's criteria list and the required charset.
func TestReadSortArgs(t *testing.T) {
	for _, tc := range []struct {
		in      string
		bad, no bool
	}{
		{in: "UTF-8 ALL"},
		{in: "us-ascii FROM x SUBJECT y"},
		{in: "UTF-8", bad: true},
		{in: "UTF-8 ", bad: true},
		{in: "KOI8-R ALL", no: true},
	} {
		dec := imapwire.NewDecoder(bufio.NewReader(strings.NewReader(" "+tc.in+"\r\n")), imapwire.ConnSideServer)
		_, err := readCharsetAndCriteria(dec)
		var imapErr *imap.Error
		switch {
		case tc.no:
			if !errors.As(err, &imapErr) || imapErr.Code != imap.ResponseCodeBadCharset {
				t.Errorf("%q: %v, want NO [BADCHARSET]", tc.in, err)
			}
		case tc.bad:
			if err == nil {
				t.Errorf("%q accepted", tc.in)
			}
		case err != nil:
			t.Errorf("%q: %v", tc.in, err)
		}
	}
}

// Postern: FETCH PREVIEW with and without its modifier list.
func TestReadPreview(t *testing.T) {
	for _, tc := range []struct {
		in         string
		lazy, fail bool
	}{
		{in: "\r\n"},
		{in: " (LAZY)\r\n", lazy: true},
		{in: " (lazy)\r\n", lazy: true},
		{in: ")\r\n"},
		{in: " UID)\r\n"},
		{in: " (FAST)\r\n", fail: true},
		{in: " ()\r\n", fail: true},
	} {
		dec := imapwire.NewDecoder(bufio.NewReader(strings.NewReader(tc.in)), imapwire.ConnSideServer)
		var o imap.FetchOptions
		err := readPreviewModifiers(dec, &o)
		if tc.fail != (err != nil) || !o.Preview || o.PreviewLazy != tc.lazy {
			t.Errorf("%q: %+v %v", tc.in, o, err)
		}
	}
}
