package storetest

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/mailstore"
	"github.com/postern/postern/internal/store/sqlstore"
)

func testMailAppend(t *testing.T, e *MailEnv) {
	ctx := context.Background()
	m := e.NewMember(t)
	in := e.Box(t, m, "INBOX")
	if list := e.List(t, in.ID); len(list) != 0 {
		t.Fatalf("new INBOX holds %v", list)
	}
	date := time.Date(2024, 2, 29, 13, 14, 15, 123456000, time.FixedZone("JST", 9*3600))
	body := []byte("From: a@example.test\r\nSubject: hi\r\n\r\nhello\r\n")
	uid, err := e.Mail.Append(ctx, in.ID, []string{`\seen`, "$Label", `\Seen`, `\Recent`, "$label"}, date, body)
	if err != nil || uid != 1 {
		t.Fatalf("append: %d %v", uid, err)
	}
	list := e.List(t, in.ID)
	if len(list) != 1 {
		t.Fatalf("list %v", list)
	}
	got := list[0]
	if got.UID != 1 || got.MailboxID != in.ID || got.Size != int64(len(body)) || !got.InternalDate.Equal(date) {
		t.Errorf("message %+v", got)
	}
	// System flags spelled as RFC 3501 does, duplicates (ignoring case) and
	// \Recent dropped, sorted.
	wantEq(t, "flags", got.Flags, []string{"$Label", `\Seen`})
	b, err := e.Mail.Body(ctx, got.ID)
	if err != nil || !bytes.Equal(b, body) {
		t.Errorf("body %q %v", b, err)
	}
	// A zero date is now; no flags is an empty list.
	before := time.Now().Add(-time.Second)
	if _, err := e.Mail.Append(ctx, in.ID, nil, time.Time{}, []byte{}); err != nil {
		t.Fatal(err)
	}
	second := e.List(t, in.ID)[1]
	if second.InternalDate.Before(before) || second.InternalDate.After(time.Now().Add(time.Second)) || len(second.Flags) != 0 || second.Size != 0 {
		t.Errorf("second %+v", second)
	}
	if b, err := e.Mail.Body(ctx, second.ID); err != nil || len(b) != 0 {
		t.Errorf("empty body %q %v", b, err)
	}
	// Deliver appends to INBOX, unflagged, now.
	if err := e.Mail.Deliver(ctx, m, []byte("delivered")); err != nil {
		t.Fatal(err)
	}
	wantEq(t, "bodies", e.Bodies(t, in.ID)[2], "delivered")
	wantEq(t, "UIDNEXT", e.Box(t, m, "INBOX").UIDNext, uint32(4))
}

// testMailDeliverAll: one SMTP message to several members lands for all of
// them or, when one delivery fails, for none (the client's retry must not
// duplicate it).
func testMailDeliverAll(t *testing.T, e *MailEnv) {
	ctx := context.Background()
	a, b := e.NewMember(t), e.NewMember(t)
	ok := []mailstore.Delivery{{MemberID: a, Body: []byte("for a")}, {MemberID: b, Body: []byte("for b")}}
	if err := e.Mail.DeliverAll(ctx, ok); err != nil {
		t.Fatal(err)
	}
	wantEq(t, "a's INBOX", len(e.Bodies(t, e.Box(t, a, "INBOX").ID)), 1)
	wantEq(t, "b's INBOX", len(e.Bodies(t, e.Box(t, b, "INBOX").ID)), 1)
	// The second delivery is too big: the first must not stay behind.
	bad := []mailstore.Delivery{{MemberID: a, Body: []byte("again for a")}, {MemberID: b, Body: make([]byte, mailstore.MaxMessageSize+1)}}
	WantCode(t, e.Mail.DeliverAll(ctx, bad), account.EINVALID)
	// A member that does not exist fails inside the transaction, after a's copy.
	gone := []mailstore.Delivery{{MemberID: a, Body: []byte("again for a")}, {MemberID: 1 << 40, Body: []byte("x")}}
	if err := e.Mail.DeliverAll(ctx, gone); err == nil {
		t.Fatal("delivery to a missing member succeeded")
	}
	wantEq(t, "a's INBOX after failures", len(e.Bodies(t, e.Box(t, a, "INBOX").ID)), 1)
}

// testMailDeliverJunk: a Junk delivery lands in the member's \Junk mailbox
// in the same transaction as the INBOX copies, writes the mailbox's event
// (IDLE wakes for Junk too), and makes a Junk mailbox for a member who
// deleted it.
func testMailDeliverJunk(t *testing.T, e *MailEnv) {
	ctx := context.Background()
	a, b := e.NewMember(t), e.NewMember(t)
	junk := e.Box(t, a, "Junk")
	wantEq(t, "special use", junk.SpecialUse, mailstore.Junk)
	if err := e.Mail.DeleteMailbox(ctx, b, "Junk"); err != nil {
		t.Fatal(err)
	}
	awaitEvents(t, e.DB)
	seq, err := e.DB.LastEventPos(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ds := []mailstore.Delivery{{MemberID: a, Body: []byte("spam"), Junk: true}, {MemberID: b, Body: []byte("spam"), Junk: true}}
	if err := e.Mail.DeliverAll(ctx, ds); err != nil {
		t.Fatal(err)
	}
	wantEq(t, "a's Junk", e.Bodies(t, junk.ID), []string{"spam"})
	wantEq(t, "a's INBOX", len(e.Bodies(t, e.Box(t, a, "INBOX").ID)), 0)
	bj := e.Box(t, b, "Junk")
	wantEq(t, "b's new Junk", bj.SpecialUse, mailstore.Junk)
	wantEq(t, "b's Junk", e.Bodies(t, bj.ID), []string{"spam"})
	awaitEvents(t, e.DB)
	evs, err := e.DB.EventsAfter(ctx, seq, 100)
	if err != nil {
		t.Fatal(err)
	}
	changed := map[int64]bool{}
	for _, ev := range evs {
		if ev.Kind == account.EventMailboxChanged {
			changed[ev.MemberID] = true
		}
	}
	if !changed[a] || !changed[b] {
		t.Fatalf("mailbox events for %v, want members %d and %d", changed, a, b)
	}
}

// testMailAppendMany: the messages of one MULTIAPPEND get consecutive UIDs
// in order, with their own flags and dates, and a refused one (a bad flag,
// too big, a missing mailbox) leaves none of them behind.
func testMailAppendMany(t *testing.T, e *MailEnv) {
	ctx := context.Background()
	m := e.NewMember(t)
	box := e.Create(t, m, "Batch")
	e.Append(t, box.ID, "first")
	date := time.Date(2024, 2, 29, 13, 14, 15, 0, time.UTC)
	uids, err := e.Mail.AppendMany(ctx, box.ID, []mailstore.NewMessage{
		{Flags: []string{`\seen`}, Date: date, Body: []byte("one")},
		{Body: []byte("two")},
	})
	if err != nil {
		t.Fatal(err)
	}
	wantEq(t, "UIDs", uids, []uint32{2, 3})
	list := e.List(t, box.ID)
	wantEq(t, "bodies", e.Bodies(t, box.ID), []string{"first", "one", "two"})
	wantEq(t, "flags", list[1].Flags, []string{`\Seen`})
	if !list[1].InternalDate.Equal(date) || list[2].InternalDate.IsZero() {
		t.Errorf("dates %v %v", list[1].InternalDate, list[2].InternalDate)
	}
	for _, bad := range [][]mailstore.NewMessage{
		{{Body: []byte("ok")}, {Flags: []string{`\Unknown`}, Body: []byte("bad flag")}},
		{{Body: []byte("ok")}, {Body: make([]byte, mailstore.MaxMessageSize+1)}},
	} {
		_, err := e.Mail.AppendMany(ctx, box.ID, bad)
		WantCode(t, err, account.EINVALID)
	}
	_, err = e.Mail.AppendMany(ctx, 1<<40, []mailstore.NewMessage{{Body: []byte("x")}})
	WantNotFound(t, err)
	wantEq(t, "bodies after refusals", len(e.Bodies(t, box.ID)), 3)
	wantEq(t, "UIDNEXT", e.Box(t, m, "Batch").UIDNext, uint32(4))
}

// testMailSubscribedNames: a mailbox deleted while subscribed leaves its
// name subscribed (RFC 9051 §6.3.7) until it is unsubscribed or a mailbox
// of that name is made again, which is then subscribed; an unsubscribed
// one leaves nothing.
func testMailSubscribedNames(t *testing.T, e *MailEnv) {
	ctx := context.Background()
	m := e.NewMember(t)
	names := func() []string {
		t.Helper()
		n, err := e.Mail.SubscribedNames(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, n := range []string{"A", "B", "C"} {
		e.Create(t, m, n)
	}
	for n, on := range map[string]bool{"A": true, "B": false, "C": true} {
		if err := e.Mail.SetSubscribed(ctx, m, n, on); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"A", "B", "C"} {
		if err := e.Mail.DeleteMailbox(ctx, m, n); err != nil {
			t.Fatal(err)
		}
	}
	wantEq(t, "after deletion", names(), []string{"A", "C"})
	if err := e.Mail.SetSubscribed(ctx, m, "A", false); err != nil {
		t.Fatal(err)
	}
	WantNotFound(t, e.Mail.SetSubscribed(ctx, m, "A", false))
	wantEq(t, "after unsubscribing A", names(), []string{"C"})
	if c := e.Create(t, m, "C"); !c.Subscribed || !e.Box(t, m, "C").Subscribed {
		t.Errorf("C made again is not subscribed: %+v", c)
	}
	wantEq(t, "after C is made again", len(names()), 0)
}

func testMailAppendRules(t *testing.T, e *MailEnv) {
	ctx := context.Background()
	m := e.NewMember(t)
	in := e.Box(t, m, "INBOX")
	big := make([]byte, mailstore.MaxMessageSize+1)
	_, err := e.Mail.Append(ctx, in.ID, nil, time.Time{}, big)
	WantCode(t, err, account.EINVALID)
	WantCode(t, e.Mail.Deliver(ctx, m, big), account.EINVALID)
	if msg := account.ErrorMessage(err); msg == "" || msg == "Internal error." {
		t.Errorf("size limit message %q", msg)
	}
	for _, bad := range []string{"", "a b", "a(b", `\Unknown`, "x\x00", "ü", `a"b`, "a]"} {
		_, err := e.Mail.Append(ctx, in.ID, []string{bad}, time.Time{}, []byte("x"))
		WantCode(t, err, account.EINVALID)
	}
	if len(e.List(t, in.ID)) != 0 || e.Box(t, m, "INBOX").UIDNext != 1 {
		t.Error("refused appends left a trace")
	}
	_, err = e.Mail.Append(ctx, 1<<40, nil, time.Time{}, []byte("x"))
	WantNotFound(t, err)
	_, err = e.Mail.Messages(ctx, 1<<40)
	WantNotFound(t, err)
	_, err = e.Mail.Body(ctx, 1<<40)
	WantNotFound(t, err)
	_, err = e.Mail.StoreFlags(ctx, 1<<40, []uint32{1}, mailstore.FlagsAdd, nil)
	WantNotFound(t, err)
	_, err = e.Mail.Expunge(ctx, 1<<40, nil)
	WantNotFound(t, err)
	WantNotFound(t, e.Mail.Delete(ctx, 1<<40, []uint32{1}))
	_, _, _, err = e.Mail.Copy(ctx, in.ID, []uint32{1}, 1<<40)
	WantNotFound(t, err)
}

func testMailUIDs(t *testing.T, e *MailEnv) {
	ctx := context.Background()
	m := e.NewMember(t)
	box := e.Create(t, m, "Box")
	for i, want := range []uint32{1, 2, 3} {
		if uid := e.Append(t, box.ID, fmt.Sprint(i)); uid != want {
			t.Fatalf("UID %d, want %d", uid, want)
		}
	}
	wantEq(t, "UIDNEXT", e.Box(t, m, "Box").UIDNext, uint32(4))
	if err := e.Mail.Delete(ctx, box.ID, []uint32{3}); err != nil {
		t.Fatal(err)
	}
	// RFC 3501 §2.3.1.1: UIDs are not reused, even the highest after an expunge.
	wantEq(t, "after delete", e.Append(t, box.ID, "d"), uint32(4))
	if _, err := e.Mail.StoreFlags(ctx, box.ID, []uint32{1, 2, 4}, mailstore.FlagsAdd, []string{`\Deleted`}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Mail.Expunge(ctx, box.ID, nil); err != nil {
		t.Fatal(err)
	}
	wantEq(t, "after expunge", e.Append(t, box.ID, "e"), uint32(5))
	wantEq(t, "UIDs", e.UIDs(t, box.ID), []uint32{5})
	after := e.Box(t, m, "Box")
	if after.UIDValidity != box.UIDValidity || after.UIDNext != 6 {
		t.Errorf("after %+v, before %+v", after, box)
	}
}

func testMailStoreFlags(t *testing.T, e *MailEnv) {
	ctx := context.Background()
	m := e.NewMember(t)
	box := e.Create(t, m, "Box")
	e.Append(t, box.ID, "1")
	e.Append(t, box.ID, "2", "$Work")
	e.Append(t, box.ID, "3", `\Flagged`)
	flagsOf := func(list []mailstore.MessageInfo) string {
		var out []string
		for _, mi := range list {
			out = append(out, fmt.Sprintf("%d%v", mi.UID, mi.Flags))
		}
		return fmt.Sprint(out)
	}
	store := func(uids []uint32, op mailstore.FlagOp, flags ...string) string {
		t.Helper()
		list, err := e.Mail.StoreFlags(ctx, box.ID, uids, op, flags)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := flagsOf(list), flagsOf(selectUIDs(e.List(t, box.ID), uids)); got != want {
			t.Fatalf("StoreFlags returned %s, store holds %s", got, want)
		}
		return flagsOf(list)
	}
	// Unknown UIDs are ignored; the result is in UID order.
	wantEq(t, "add", store([]uint32{3, 1, 99}, mailstore.FlagsAdd, `\seen`, "$Work"), "[1[$Work \\Seen] 3[$Work \\Flagged \\Seen]]")
	wantEq(t, "remove", store([]uint32{1, 2, 3}, mailstore.FlagsRemove, "$work"), "[1[\\Seen] 2[] 3[\\Flagged \\Seen]]")
	wantEq(t, "set", store([]uint32{2, 3}, mailstore.FlagsSet, `\Answered`, "$A"), "[2[$A \\Answered] 3[$A \\Answered]]")
	wantEq(t, "set none", store([]uint32{3}, mailstore.FlagsSet), "[3[]]")
	wantEq(t, "no UIDs", store(nil, mailstore.FlagsAdd, `\Seen`), "[]")
	wantEq(t, "all", flagsOf(e.List(t, box.ID)), "[1[\\Seen] 2[$A \\Answered] 3[]]")
	_, err := e.Mail.StoreFlags(ctx, box.ID, []uint32{1}, mailstore.FlagsAdd, []string{"bad flag"})
	WantCode(t, err, account.EINVALID)
	_, err = e.Mail.StoreFlags(ctx, box.ID, []uint32{1}, mailstore.FlagOp(7), nil)
	WantCode(t, err, account.EINVALID)
}

func selectUIDs(list []mailstore.MessageInfo, uids []uint32) []mailstore.MessageInfo {
	var out []mailstore.MessageInfo
	for _, mi := range list {
		if slices.Contains(uids, mi.UID) {
			out = append(out, mi)
		}
	}
	return out
}

func testMailExpunge(t *testing.T, e *MailEnv) {
	ctx := context.Background()
	m := e.NewMember(t)
	box := e.Create(t, m, "Box")
	for i := 1; i <= 5; i++ {
		flags := []string{}
		if i != 2 && i != 5 {
			flags = append(flags, `\Deleted`)
		}
		e.Append(t, box.ID, fmt.Sprint(i), flags...)
	}
	got, err := e.Mail.Expunge(ctx, box.ID, []uint32{})
	if err != nil || len(got) != 0 {
		t.Fatalf("expunge of no UIDs: %v %v", got, err)
	}
	// UID EXPUNGE (RFC 4315 §2.1): only \Deleted messages among the UIDs.
	got, err = e.Mail.Expunge(ctx, box.ID, []uint32{5, 3, 2, 77})
	if err != nil {
		t.Fatal(err)
	}
	wantEq(t, "UID EXPUNGE", got, []uint32{3})
	wantEq(t, "left", e.UIDs(t, box.ID), []uint32{1, 2, 4, 5})
	got, err = e.Mail.Expunge(ctx, box.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantEq(t, "EXPUNGE", got, []uint32{1, 4})
	wantEq(t, "left", e.Bodies(t, box.ID), []string{"2", "5"})
	got, err = e.Mail.Expunge(ctx, box.ID, nil)
	if err != nil || len(got) != 0 {
		t.Fatalf("second expunge: %v %v", got, err)
	}
}

func testMailDelete(t *testing.T, e *MailEnv) {
	ctx := context.Background()
	m := e.NewMember(t)
	box := e.Create(t, m, "Box")
	for i := 1; i <= 4; i++ {
		e.Append(t, box.ID, fmt.Sprint(i), `\Seen`)
	}
	gone := e.List(t, box.ID)[1]
	if err := e.Mail.Delete(ctx, box.ID, []uint32{2, 4, 9}); err != nil {
		t.Fatal(err)
	}
	wantEq(t, "left", e.Bodies(t, box.ID), []string{"1", "3"})
	_, err := e.Mail.Body(ctx, gone.ID)
	WantNotFound(t, err)
	if err := e.Mail.Delete(ctx, box.ID, nil); err != nil {
		t.Fatal(err)
	}
	wantEq(t, "nil deletes nothing", e.UIDs(t, box.ID), []uint32{1, 3})
}

func testMailCopy(t *testing.T, e *MailEnv) {
	ctx := context.Background()
	m := e.NewMember(t)
	src, dst := e.Create(t, m, "Src"), e.Create(t, m, "Dst")
	date := time.Date(2021, 5, 6, 7, 8, 9, 0, time.UTC)
	for i := 1; i <= 3; i++ {
		if _, err := e.Mail.Append(ctx, src.ID, []string{"$N" + fmt.Sprint(i)}, date.Add(time.Duration(i)*time.Hour), []byte(fmt.Sprint("body ", i))); err != nil {
			t.Fatal(err)
		}
	}
	e.Append(t, dst.ID, "already there")
	s, d, v, err := e.Mail.Copy(ctx, src.ID, []uint32{3, 1, 42}, dst.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantEq(t, "src UIDs", s, []uint32{1, 3})
	wantEq(t, "dst UIDs", d, []uint32{2, 3})
	wantEq(t, "UIDVALIDITY", v, dst.UIDValidity)
	wantEq(t, "src untouched", e.UIDs(t, src.ID), []uint32{1, 2, 3})
	copies := e.List(t, dst.ID)[1:]
	originals := e.List(t, src.ID)
	for i, o := range []mailstore.MessageInfo{originals[0], originals[2]} {
		c := copies[i]
		if c.ID == o.ID || c.MailboxID != dst.ID || !c.InternalDate.Equal(o.InternalDate) || c.Size != o.Size || fmt.Sprint(c.Flags) != fmt.Sprint(o.Flags) {
			t.Errorf("copy %+v of %+v", c, o)
		}
	}
	// Copies outlive their originals (they may share the stored body).
	if err := e.Mail.Delete(ctx, src.ID, []uint32{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	wantEq(t, "copies", e.Bodies(t, dst.ID), []string{"already there", "body 1", "body 3"})
	// And the last reference going takes the body with it.
	if err := e.Mail.Delete(ctx, dst.ID, []uint32{2}); err != nil {
		t.Fatal(err)
	}
	_, err = e.Mail.Body(ctx, copies[0].ID)
	WantNotFound(t, err)
	// Copy to the same mailbox, and of nothing.
	s, d, _, err = e.Mail.Copy(ctx, dst.ID, []uint32{3}, dst.ID)
	if err != nil || fmt.Sprint(s, d) != "[3] [4]" {
		t.Errorf("self copy %v %v %v", s, d, err)
	}
	s, d, v, err = e.Mail.Copy(ctx, src.ID, []uint32{1, 2}, dst.ID)
	if err != nil || len(s) != 0 || len(d) != 0 || v != dst.UIDValidity {
		t.Errorf("copy of nothing %v %v %v %v", s, d, v, err)
	}
	// Another member's mailbox does not exist for this one.
	other := e.Box(t, e.NewMember(t), "INBOX")
	_, _, _, err = e.Mail.Copy(ctx, dst.ID, []uint32{1}, other.ID)
	WantNotFound(t, err)
	_, _, _, err = e.Mail.Move(ctx, dst.ID, []uint32{1}, other.ID)
	WantNotFound(t, err)
	wantEq(t, "other INBOX", e.UIDs(t, other.ID), []uint32{})
}

func testMailMove(t *testing.T, e *MailEnv) {
	ctx := context.Background()
	m := e.NewMember(t)
	src, dst := e.Create(t, m, "Src"), e.Create(t, m, "Dst")
	for i := 1; i <= 4; i++ {
		e.Append(t, src.ID, fmt.Sprint(i), `\Seen`)
	}
	e.Append(t, dst.ID, "d1")
	e.Append(t, dst.ID, "d2")
	s, d, v, err := e.Mail.Move(ctx, src.ID, []uint32{4, 2}, dst.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantEq(t, "pairs", fmt.Sprint(s, d, v == dst.UIDValidity), "[2 4] [3 4] true")
	wantEq(t, "src", e.Bodies(t, src.ID), []string{"1", "3"})
	wantEq(t, "dst", e.Bodies(t, dst.ID), []string{"d1", "d2", "2", "4"})
	wantEq(t, "dst UIDs", e.UIDs(t, dst.ID), []uint32{1, 2, 3, 4})
	wantEq(t, "moved flags", e.List(t, dst.ID)[2].Flags, []string{`\Seen`})
	// The source's UIDs are not reused.
	wantEq(t, "src next", e.Append(t, src.ID, "5"), uint32(5))
	// Moving within one mailbox gives new UIDs.
	s, d, _, err = e.Mail.Move(ctx, dst.ID, []uint32{1}, dst.ID)
	if err != nil || fmt.Sprint(s, d) != "[1] [5]" {
		t.Fatalf("self move %v %v %v", s, d, err)
	}
	wantEq(t, "dst UIDs", e.UIDs(t, dst.ID), []uint32{2, 3, 4, 5})
}

func testMailEvents(t *testing.T, e *MailEnv) {
	ctx := context.Background()
	m := e.NewMember(t)
	in := e.Box(t, m, "INBOX")
	box := e.Create(t, m, "Box")
	steps := []struct {
		name string
		do   func() error
		want []int64
	}{
		{"append", func() error { _, err := e.Mail.Append(ctx, box.ID, nil, time.Time{}, []byte("a")); return err }, []int64{box.ID}},
		{"deliver", func() error { return e.Mail.Deliver(ctx, m, []byte("b")) }, []int64{in.ID}},
		{"store", func() error {
			_, err := e.Mail.StoreFlags(ctx, box.ID, []uint32{1}, mailstore.FlagsAdd, []string{`\Deleted`})
			return err
		}, []int64{box.ID}},
		{"store without change", func() error {
			_, err := e.Mail.StoreFlags(ctx, box.ID, []uint32{1}, mailstore.FlagsAdd, []string{`\Deleted`})
			return err
		}, []int64{}},
		{"copy", func() error { _, _, _, err := e.Mail.Copy(ctx, box.ID, []uint32{1}, in.ID); return err }, []int64{in.ID}},
		{"expunge", func() error { _, err := e.Mail.Expunge(ctx, box.ID, nil); return err }, []int64{box.ID}},
		{"expunge of nothing", func() error { _, err := e.Mail.Expunge(ctx, box.ID, nil); return err }, []int64{}},
		{"move", func() error { _, _, _, err := e.Mail.Move(ctx, in.ID, []uint32{1}, box.ID); return err }, []int64{box.ID, in.ID}},
		{"delete", func() error { return e.Mail.Delete(ctx, box.ID, []uint32{2}) }, []int64{box.ID}},
		{"delete mailbox", func() error { return e.Mail.DeleteMailbox(ctx, m, "Box") }, []int64{box.ID}},
	}
	for _, s := range steps {
		seq := e.LastSeq(t)
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		wantEq(t, s.name+" events", e.Changed(t, m, seq), s.want)
	}
}

func testMailConcurrentAppends(t *testing.T, e *MailEnv) {
	m := e.NewMember(t)
	box := e.Create(t, m, "Box")
	const writers, each = 10, 5
	uids := make([][]uint32, writers)
	errs := parallel(writers, func(i int) error {
		for j := range each {
			uid, err := e.Mail.Append(context.Background(), box.ID, nil, time.Time{}, []byte(fmt.Sprintf("%d-%d", i, j)))
			if err != nil {
				return err
			}
			if n := len(uids[i]); n > 0 && uid <= uids[i][n-1] {
				return fmt.Errorf("writer %d got UID %d after %d", i, uid, uids[i][n-1])
			}
			uids[i] = append(uids[i], uid)
		}
		return nil
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var all []uint32
	for _, u := range uids {
		all = append(all, u...)
	}
	slices.Sort(all)
	want := make([]uint32, writers*each)
	for i := range want {
		want[i] = uint32(i + 1)
	}
	wantEq(t, "UIDs handed out", all, want)
	wantEq(t, "UIDs stored", e.UIDs(t, box.ID), want)
	wantEq(t, "UIDNEXT", e.Box(t, m, "Box").UIDNext, uint32(writers*each+1))
	bodies := e.Bodies(t, box.ID)
	slices.Sort(bodies)
	if len(slices.Compact(bodies)) != writers*each {
		t.Errorf("bodies lost or doubled: %v", bodies)
	}
}

func testMailConcurrentDeliveries(t *testing.T, e *MailEnv) {
	m := e.NewMember(t) // no mailboxes yet: every Deliver races to make them
	errs := parallel(10, func(i int) error {
		return e.Mail.Deliver(context.Background(), m, []byte(fmt.Sprint("mail ", i)))
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	wantEq(t, "names", e.Names(t, m), []string{"INBOX", "Drafts", "Junk", "Sent", "Trash"})
	wantEq(t, "INBOX", e.UIDs(t, e.Box(t, m, "INBOX").ID), []uint32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
}

func testMailPersistence(t *testing.T, e *MailEnv) {
	ctx := context.Background()
	m := e.NewMember(t)
	// A second handle on the same database, closed and opened again.
	db, err := sqlstore.Open(ctx, e.DB.DSN)
	if err != nil {
		t.Fatal(err)
	}
	ms := db.Mail()
	box, err := ms.CreateMailbox(ctx, m, "Kept", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ms.Append(ctx, box.ID, []string{`\Flagged`}, EnforcedDate, []byte("kept body")); err != nil {
		t.Fatal(err)
	}
	if _, err := ms.Append(ctx, box.ID, nil, EnforcedDate, []byte("expunged")); err != nil {
		t.Fatal(err)
	}
	if err := ms.Delete(ctx, box.ID, []uint32{2}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = sqlstore.Open(ctx, e.DB.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	again := NewMailEnv(t, db)
	got := again.Box(t, m, "Kept")
	if got.ID != box.ID || got.UIDValidity != box.UIDValidity || got.UIDNext != 3 {
		t.Errorf("reopened %+v, was %+v", got, box)
	}
	list := again.List(t, box.ID)
	if len(list) != 1 || list[0].UID != 1 || !list[0].InternalDate.Equal(EnforcedDate) || fmt.Sprint(list[0].Flags) != `[\Flagged]` {
		t.Errorf("reopened messages %+v", list)
	}
	wantEq(t, "bodies", again.Bodies(t, box.ID), []string{"kept body"})
	wantEq(t, "next UID", again.Append(t, box.ID, "new"), uint32(3))
}

func testMailMemberDeletion(t *testing.T, e *MailEnv) {
	ctx := context.Background()
	m, other := e.NewMember(t), e.NewMember(t)
	in := e.Box(t, m, "INBOX")
	e.Append(t, in.ID, "mine")
	if _, _, _, err := e.Mail.Copy(ctx, in.ID, []uint32{1}, e.Box(t, m, "Trash").ID); err != nil {
		t.Fatal(err)
	}
	e.Append(t, e.Box(t, other, "INBOX").ID, "theirs")
	// No account store method deletes members yet; the schema must still
	// cascade when an operator does.
	q := `DELETE FROM members WHERE id = ?`
	if e.DB.Dialect == sqlstore.Postgres {
		q = `DELETE FROM members WHERE id = $1`
	}
	if _, err := e.DB.SQL.ExecContext(ctx, q, m); err != nil {
		t.Fatal(err)
	}
	_, err := e.Mail.Messages(ctx, in.ID)
	WantNotFound(t, err)
	q = `SELECT COUNT(*) FROM mail_bodies WHERE member_id = ?`
	if e.DB.Dialect == sqlstore.Postgres {
		q = `SELECT COUNT(*) FROM mail_bodies WHERE member_id = $1`
	}
	var n int
	if err := e.DB.SQL.QueryRowContext(ctx, q, m).Scan(&n); err != nil || n != 0 {
		t.Errorf("bodies left: %d %v", n, err)
	}
	wantEq(t, "other", e.Bodies(t, e.Box(t, other, "INBOX").ID), []string{"theirs"})
}
