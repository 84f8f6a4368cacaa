package imapserver

import (
	"bufio"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/internal/imapwire"
)

// Postern: the CONDSTORE and QRESYNC parsers (RFC 7162). The responses are
// tested byte for byte over a real session in Postern's
// internal/imapserver/condstore_test.go.

func testDecoder(s string) *imapwire.Decoder {
	return imapwire.NewDecoder(bufio.NewReader(strings.NewReader(s)), imapwire.ConnSideServer)
}

func testConn(enabled ...imap.Cap) *Conn {
	c := &Conn{
		server:  &Server{options: Options{Caps: imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapCondStore: {}, imap.CapQResync: {}}}},
		enabled: imap.CapSet{},
	}
	for _, e := range enabled {
		c.enabled[e] = struct{}{}
	}
	return c
}

func isBad(err error) bool {
	var imapErr *imap.Error
	var decErr *imapwire.DecoderExpectError
	return errors.As(err, &imapErr) && imapErr.Type == imap.StatusResponseTypeBad || errors.As(err, &decErr)
}

func TestReadSelectParams(t *testing.T) {
	cases := []struct {
		in   string
		want string // fmt of the options, "" for BAD
	}{
		{"(CONDSTORE)", "cond=true qresync=<nil>"},
		{"(condstore)", "cond=true qresync=<nil>"},
		{"(QRESYNC (67890007 20050715194045000))", "cond=false qresync=67890007 20050715194045000 [] <nil>"},
		{"(QRESYNC (67890007 90060115194045000 41:211,214:541))", "cond=false qresync=67890007 90060115194045000 41:211,214:541 <nil>"},
		{"(QRESYNC (67890007 90060115194045000 1:29997 (5000,7500,9000,9990:9999 15000,22500,27000,29970,29973,29976,29979,29982,29985,29988,29991,29994,29997)))",
			"cond=false qresync=67890007 90060115194045000 1:29997 5000,7500,9000,9990:9999/15000,22500,27000,29970,29973,29976,29979,29982,29985,29988,29991,29994,29997"},
		{"(QRESYNC (1 2 (1 3)))", "cond=false qresync=1 2 [] 1/3"},
		{"(CONDSTORE QRESYNC (1 2))", "cond=true qresync=1 2 [] <nil>"},
		{"(QRESYNC (1))", ""},
		{"(QRESYNC (0 5))", ""},
		{"(QRESYNC (1 x))", ""},
		{"(QRESYNC (1 2 1:5 1:5))", ""},
		{"(QRESYNC (1 2 (1 3) 1:5))", ""},
		{"(QRESYNC (1 2 (1 3) (1 3)))", ""},
		{"(QRESYNC (1 2 ($ 3)))", ""},
		{"(QRESYNC 1 2)", ""},
		{"(FOO)", ""},
		{"CONDSTORE", ""},
	}
	for _, tc := range cases {
		var o imap.SelectOptions
		err := testConn().readSelectParams(testDecoder(tc.in+"\r\n"), &o)
		if tc.want == "" {
			if !isBad(err) {
				t.Errorf("%s: got %v, want BAD", tc.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		got := fmt.Sprintf("cond=%v qresync=<nil>", o.CondStore)
		if q := o.QResync; q != nil {
			known := "[]"
			if q.KnownUIDs != nil {
				known = q.KnownUIDs.String()
			}
			match := "<nil>"
			if q.SeqMatch != nil {
				match = q.SeqMatch.SeqNums.String() + "/" + q.SeqMatch.UIDs.String()
			}
			got = fmt.Sprintf("cond=%v qresync=%d %d %s %s", o.CondStore, q.UIDValidity, q.ModSeq, known, match)
		}
		if got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
}

func TestCheckSelectParams(t *testing.T) {
	q := &imap.SelectOptions{QResync: &imap.SelectQResync{UIDValidity: 1, ModSeq: 1}}
	if err := testConn().checkSelectParams(q); !isBad(err) {
		t.Errorf("QRESYNC before ENABLE: %v", err)
	}
	c := testConn(imap.CapQResync)
	if err := c.checkSelectParams(q); err != nil {
		t.Errorf("QRESYNC after ENABLE: %v", err)
	}
	c = testConn()
	if err := c.checkSelectParams(&imap.SelectOptions{CondStore: true}); err != nil || !c.Enabled(imap.CapCondStore) {
		t.Errorf("SELECT (CONDSTORE) does not enable CONDSTORE: %v", err)
	}
}

func TestReadFetchModifiers(t *testing.T) {
	cases := []struct {
		in      string
		kind    NumKind
		enabled []imap.Cap
		want    string // "" for BAD
	}{
		{"(CHANGEDSINCE 12345)", NumKindSeq, nil, "12345 modseq=true vanished=false"},
		{"(changedsince 0)", NumKindSeq, nil, "0 modseq=true vanished=false"},
		{"(CHANGEDSINCE 12345 VANISHED)", NumKindUID, []imap.Cap{imap.CapQResync}, "12345 modseq=true vanished=true"},
		{"(VANISHED CHANGEDSINCE 1)", NumKindUID, []imap.Cap{imap.CapQResync}, "1 modseq=true vanished=true"},
		{"(CHANGEDSINCE 12345 VANISHED)", NumKindSeq, []imap.Cap{imap.CapQResync}, ""},
		{"(CHANGEDSINCE 12345 VANISHED)", NumKindUID, []imap.Cap{imap.CapCondStore}, ""},
		{"(VANISHED)", NumKindUID, []imap.Cap{imap.CapQResync}, ""},
		{"(CHANGEDSINCE)", NumKindSeq, nil, ""},
		{"(CHANGEDSINCE 99999999999999999999)", NumKindSeq, nil, ""},
		{"(FOO)", NumKindSeq, nil, ""},
	}
	for _, tc := range cases {
		var o imap.FetchOptions
		err := testConn(tc.enabled...).readFetchModifiers(testDecoder(tc.in+"\r\n"), tc.kind, &o)
		if tc.want == "" {
			if !isBad(err) {
				t.Errorf("%s: got %v, want BAD", tc.in, err)
			}
			continue
		}
		if got := fmt.Sprintf("%d modseq=%v vanished=%v", o.ChangedSince, o.ModSeq, o.Vanished); err != nil || got != tc.want {
			t.Errorf("%s: got %s %v, want %s", tc.in, got, err, tc.want)
		}
	}
}

func TestReadStoreModifiers(t *testing.T) {
	cases := []struct{ in, want string }{
		{"(UNCHANGEDSINCE 320162338) ", "320162338 true"},
		{"(unchangedsince 0) ", "0 true"},
		{"+FLAGS ", "0 false"},
		{"(UNCHANGEDSINCE 1 UNCHANGEDSINCE 2) ", ""},
		{"(FOO 1) ", ""},
		{"(UNCHANGEDSINCE) ", ""},
	}
	for _, tc := range cases {
		var o imap.StoreOptions
		_, err := testConn().readStoreModifiers(testDecoder(tc.in+"\r\n"), &o)
		if tc.want == "" {
			if !isBad(err) {
				t.Errorf("%s: got %v, want BAD", tc.in, err)
			}
			continue
		}
		if got := fmt.Sprintf("%d %v", o.UnchangedSince, o.Conditional); err != nil || got != tc.want {
			t.Errorf("%s: got %s %v, want %s", tc.in, got, err, tc.want)
		}
	}
}

func TestReadSearchModSeq(t *testing.T) {
	cases := []struct{ in, want string }{
		{"MODSEQ 20010715194045007", "20010715194045007  "},
		{`MODSEQ "/flags/\\draft" all 620162338`, `620162338 /flags/\draft all`},
		{`MODSEQ "/flags/$label1" PRIV 5`, `5 /flags/$label1 priv`},
		{"MODSEQ 5 MODSEQ 7", "7  "},
		{"MODSEQ 7 MODSEQ 5", "7  "},
		{`MODSEQ "/flags/x" nobody 5`, ""},
		{"MODSEQ", ""},
		{"MODSEQ x", ""},
	}
	for _, tc := range cases {
		var c imap.SearchCriteria
		dec := testDecoder(tc.in + "\r\n")
		var err error
		for {
			if err = readSearchKey(&c, dec, 0); err != nil || !dec.SP() {
				break
			}
		}
		if tc.want == "" {
			if !isBad(err) {
				t.Errorf("%s: got %v, want BAD", tc.in, err)
			}
			continue
		}
		if err != nil || c.ModSeq == nil {
			t.Errorf("%s: %v %v", tc.in, err, c.ModSeq)
			continue
		}
		if got := fmt.Sprintf("%d %s %s", c.ModSeq.ModSeq, c.ModSeq.MetadataName, c.ModSeq.MetadataType); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.in, got, tc.want)
		}
		if !searchUsesModSeq(&c) {
			t.Errorf("%s: searchUsesModSeq false", tc.in)
		}
	}
	nested := imap.SearchCriteria{Or: [][2]imap.SearchCriteria{{{}, {Not: []imap.SearchCriteria{{ModSeq: &imap.SearchCriteriaModSeq{ModSeq: 1}}}}}}}
	if !searchUsesModSeq(&nested) || searchUsesModSeq(&imap.SearchCriteria{Not: []imap.SearchCriteria{{}}}) {
		t.Error("searchUsesModSeq misses a nested MODSEQ or finds one that is not there")
	}
}

// FuzzSelectParams: no input makes the SELECT parameter parser panic or
// accept a QRESYNC without its UIDVALIDITY and mod-sequence.
func FuzzSelectParams(f *testing.F) {
	for _, s := range []string{
		"(CONDSTORE)", "(QRESYNC (1 2))", "(QRESYNC (1 2 3:4 (1:2 3:4)))", "(QRESYNC (1 2 (1 3)))",
		"(QRESYNC ((((", "(QRESYNC (1 2 *:* (* *)))",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var o imap.SelectOptions
		err := testConn().readSelectParams(testDecoder(s+"\r\n"), &o)
		if err == nil && o.QResync != nil && o.QResync.UIDValidity == 0 {
			t.Fatalf("%q: QRESYNC accepted with UIDVALIDITY 0", s)
		}
		var fo imap.FetchOptions
		testConn(imap.CapQResync).readFetchModifiers(testDecoder(s+"\r\n"), NumKindUID, &fo)
		var so imap.StoreOptions
		testConn().readStoreModifiers(testDecoder(s+"\r\n"), &so)
	})
}
