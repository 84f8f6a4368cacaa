package storetest

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/postern/postern/internal/mailstore"
	"github.com/postern/postern/internal/msgindex"
	"github.com/postern/postern/internal/msgindex/mailcorpus"
)

// testMailIndex: every stored message has the index msgindex.Build makes
// of its body, whether it came by APPEND, by delivery (PostgreSQL's
// one-statement INBOX path) or was stored without one (a body from before
// the index, built on first use); copies share it.
func testMailIndex(t *testing.T, e *MailEnv) {
	ctx := context.Background()
	m := e.NewMember(t)
	in := e.Box(t, m, "INBOX")
	corpus := mailcorpus.Messages()
	for i, body := range corpus {
		if i%2 == 0 {
			e.Append(t, in.ID, string(body))
		} else if err := e.Mail.Deliver(ctx, m, body); err != nil {
			t.Fatal(err)
		}
	}
	list := e.List(t, in.ID)
	check := func(what string, fetch bool) {
		t.Helper()
		ids := make([]int64, len(list))
		for i, msg := range list {
			ids[i] = msg.ID
		}
		for _, all := range []bool{false, true} {
			arg := ids
			if all {
				arg = nil
			}
			got, err := e.Mail.Indexes(ctx, in.ID, arg, fetch)
			if err != nil {
				t.Fatalf("%s: indexes: %v", what, err)
			}
			if len(got) != len(corpus) {
				t.Fatalf("%s: %d indexes for %d messages", what, len(got), len(corpus))
			}
			for i, msg := range list {
				if got[msg.ID] == nil {
					t.Fatalf("%s: no index for message %d", what, msg.ID)
				}
				sameIndex(t, what, indexPart(got[msg.ID], fetch), indexPart(msgindex.Build(corpus[i]), fetch))
			}
		}
	}
	for _, fetch := range []bool{true, false} {
		check(fmt.Sprintf("stored, fetch %v", fetch), fetch)
		// Without index rows (as for a body stored before the index) they
		// are built on use; so are those of an older version, and the
		// FETCH items of a body whose large row is missing.
		if _, err := e.DB.SQL.ExecContext(ctx, `DELETE FROM mail_index`); err != nil {
			t.Fatal(err)
		}
		check(fmt.Sprintf("built on use, fetch %v", fetch), fetch)
		for _, table := range []string{"mail_index", "mail_index_bulk"} {
			if _, err := e.DB.SQL.ExecContext(ctx, `UPDATE `+table+` SET version = 0`); err != nil {
				t.Fatal(err)
			}
			check(fmt.Sprintf("older version in %s, fetch %v", table, fetch), fetch)
		}
	}
	if _, err := e.DB.SQL.ExecContext(ctx, `DELETE FROM mail_index_bulk`); err != nil {
		t.Fatal(err)
	}
	check("large row missing", true)
	check("after the large rows' rebuild", false)

	// Copies share the body's index; expunged messages have none.
	trash := e.Box(t, m, "Trash")
	if _, _, _, err := e.Mail.Copy(ctx, in.ID, []uint32{list[0].UID}, trash.ID); err != nil {
		t.Fatal(err)
	}
	copied := e.List(t, trash.ID)[0]
	got, err := e.Mail.Indexes(ctx, trash.ID, []int64{copied.ID, list[1].ID}, true)
	if err != nil || len(got) != 1 {
		t.Fatalf("copy's index: %v %v (another mailbox's message must not be found)", got, err)
	}
	if got[copied.ID] == nil {
		t.Fatal("copy: no index")
	}
	sameIndex(t, "copy", indexPart(got[copied.ID], true), indexPart(msgindex.Build(corpus[0]), true))
}

// indexPart is what Indexes fills in of x, with fetch or without.
func indexPart(x *mailstore.MessageIndex, fetch bool) *mailstore.MessageIndex {
	if fetch {
		return &mailstore.MessageIndex{Envelope: x.Envelope, EnvelopeUTF8: x.EnvelopeUTF8, Body: x.Body, BodyUTF8: x.BodyUTF8,
			BodyStructure: x.BodyStructure, BodyStructureUTF8: x.BodyStructureUTF8, Preview: x.Preview}
	}
	y := *x
	y.Envelope, y.EnvelopeUTF8, y.Body, y.BodyUTF8, y.BodyStructure, y.BodyStructureUTF8 = nil, nil, nil, nil, nil, nil
	y.Preview, y.BodyText, y.HeaderText = "", nil, nil
	return &y
}

// sameIndex compares indexes, times by instant and zone offset.
func sameIndex(t *testing.T, what string, got, want *mailstore.MessageIndex) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: no index", what)
	}
	g, w := *got, *want
	_, go1 := g.SentDate.Zone()
	_, wo := w.SentDate.Zone()
	if !g.SentDate.Equal(w.SentDate) || go1 != wo {
		t.Errorf("%s: sent date %v, want %v", what, g.SentDate, w.SentDate)
	}
	g.SentDate = w.SentDate
	// The BODY and TEXT search texts stay in the database (SearchIndex).
	w.BodyText, w.HeaderText, g.BodyText, g.HeaderText = nil, nil, nil, nil
	if len(w.References) == 0 {
		w.References = nil
	}
	if len(g.References) == 0 {
		g.References = nil
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s: index\n%+v\nwant\n%+v", what, g, w)
	}
}

// testMailSearchIndex: SearchIndex finds exactly the messages whose field's
// search text contains the value (a field present for an empty value), for
// indexed messages and for those indexed on the way.
func testMailSearchIndex(t *testing.T, e *MailEnv) {
	ctx := context.Background()
	m := e.NewMember(t)
	in := e.Box(t, m, "INBOX")
	corpus := mailcorpus.Messages()
	for _, body := range corpus {
		e.Append(t, in.ID, string(body))
	}
	fields := []mailstore.SearchField{mailstore.SearchFrom, mailstore.SearchTo, mailstore.SearchCc, mailstore.SearchBcc, mailstore.SearchSubject,
		mailstore.SearchBody, mailstore.SearchText}
	values := []string{"", "carol", "the budget", "kelvin", "inner", "bücher", "content-type", "hidden", "example", "the boss", "dave (work)", "bob b", "friends", "jürgen", "andré", "budget", "grüße", "re:", "\xe9t\xe9", "zzz", "announce", "a folded subject"}
	run := func(what string) {
		for _, f := range fields {
			for _, v := range values {
				got, err := e.Mail.SearchIndex(ctx, in.ID, f, v)
				if err != nil {
					t.Fatalf("%s: search %s %q: %v", what, f, v, err)
				}
				var want []uint32
				for i, body := range corpus {
					x := msgindex.Build(body)
					text := map[mailstore.SearchField][]byte{mailstore.SearchFrom: x.From, mailstore.SearchTo: x.To,
						mailstore.SearchCc: x.Cc, mailstore.SearchBcc: x.Bcc, mailstore.SearchSubject: x.Subject,
						mailstore.SearchBody: x.BodyText}[f]
					if f == mailstore.SearchText && x.HeaderText != nil {
						text = append(append(append([]byte{}, x.HeaderText...), 1), x.BodyText...)
					}
					if text != nil && bytes.Contains(text, []byte(v)) {
						want = append(want, uint32(i+1))
					}
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s: search %s %q: %v, want %v", what, f, v, got, want)
				}
			}
		}
	}
	run("indexed")
	if _, err := e.DB.SQL.ExecContext(ctx, `DELETE FROM mail_index`); err != nil {
		t.Fatal(err)
	}
	run("half indexed") // the first pass indexes all; delete again between fields
	if _, err := e.DB.SQL.ExecContext(ctx, `DELETE FROM mail_index_bulk`); err != nil {
		t.Fatal(err)
	}
	run("large rows missing")
	for _, table := range []string{"mail_index", "mail_index_bulk"} {
		if _, err := e.DB.SQL.ExecContext(ctx, `UPDATE `+table+` SET version = 0`); err != nil {
			t.Fatal(err)
		}
	}
	got, err := e.Mail.SearchIndex(ctx, in.ID, mailstore.SearchFrom, "carol")
	if err != nil || !slices.Equal(got, []uint32{1}) {
		t.Errorf("old version rows: %v %v", got, err)
	}
	got, err = e.Mail.SearchIndex(ctx, in.ID, mailstore.SearchBody, "budget")
	if err != nil || len(got) == 0 {
		t.Errorf("old version rows, BODY: %v %v", got, err)
	}
}

// testMailCounts: Counts totals messages, unseen, deleted and sizes; a
// STORE on many messages sets each one's own flags.
func testMailCounts(t *testing.T, e *MailEnv) {
	ctx := context.Background()
	m := e.NewMember(t)
	in := e.Box(t, m, "INBOX")
	e.Append(t, in.ID, "a", `\Seen`)
	e.Append(t, in.ID, "bb", `\Deleted`, "$x")
	e.Append(t, in.ID, "ccc", `\Seen`, `\Deleted`)
	e.Append(t, in.ID, "dddd")
	c, err := e.Mail.Counts(ctx, in.ID)
	if err != nil || c != (mailstore.Counts{Messages: 4, Unseen: 2, Deleted: 2, Size: 10, DeletedSize: 5, Recent: 4}) {
		t.Fatalf("counts %+v %v", c, err)
	}
	if c, err := e.Mail.Counts(ctx, e.Box(t, m, "Trash").ID); err != nil || c != (mailstore.Counts{}) {
		t.Fatalf("empty mailbox: %+v %v", c, err)
	}
	out, err := e.Mail.StoreFlags(ctx, in.ID, []uint32{1, 2, 3, 4}, mailstore.FlagsAdd, []string{"$y"})
	if err != nil || len(out) != 4 {
		t.Fatal(out, err)
	}
	want := [][]string{{"$y", `\Seen`}, {"$x", "$y", `\Deleted`}, {"$y", `\Deleted`, `\Seen`}, {"$y"}}
	for i, msg := range e.List(t, in.ID) {
		wantEq(t, "flags", msg.Flags, want[i])
	}
}
