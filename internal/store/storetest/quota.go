package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/mailstore"
	"github.com/postern/postern/internal/store/sqlstore"
)

// used returns the member's usage counter (Quota.Used).
func (e *MailEnv) used(t testing.TB, member int64) int64 {
	t.Helper()
	q, err := e.Mail.Quota(context.Background(), member)
	if err != nil {
		t.Fatal(err)
	}
	return q.Used
}

// summed adds up the member's message sizes the slow way, to check the
// counter against.
func (e *MailEnv) summed(t testing.TB, member int64) int64 {
	t.Helper()
	q := `SELECT COALESCE(SUM(m.size), 0) FROM mailboxes b JOIN mail_messages m ON m.mailbox_id = b.id WHERE b.member_id = ?`
	if e.DB.Dialect == sqlstore.Postgres {
		q = `SELECT COALESCE(SUM(m.size), 0) FROM mailboxes b JOIN mail_messages m ON m.mailbox_id = b.id WHERE b.member_id = $1`
	}
	var n int64
	if err := e.DB.SQL.QueryRowContext(context.Background(), q, member).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// testMailUsage: the usage counter follows every change to the member's
// messages exactly — deliveries (Junk too), APPEND, COPY (a copy counts),
// MOVE, EXPUNGE, POP3's Delete, a mailbox's deletion, INBOX's rename, a
// submission's local copies — and counts only the member's own.
func testMailUsage(t *testing.T, e *MailEnv) {
	ctx := context.Background()
	a, b := e.NewMember(t), e.NewMember(t)
	check := func(step string, want int64) {
		t.Helper()
		if got, sum := e.used(t, a), e.summed(t, a); got != want || sum != want {
			t.Fatalf("after %s: counter %d, sum of sizes %d, want %d", step, got, sum, want)
		}
	}
	check("nothing", 0)
	ds := []mailstore.Delivery{{MemberID: b, Body: []byte("1")}, {MemberID: a, Body: []byte("12345")}, {MemberID: a, Header: []byte("X: y\r\n"), Body: []byte("123"), Junk: true}}
	if err := e.Mail.DeliverAll(ctx, ds); err != nil {
		t.Fatal(err)
	}
	check("DeliverAll", 5+9)
	wantEq(t, "b", e.used(t, b), int64(1))
	sent := e.Box(t, a, "Sent")
	e.Append(t, sent.ID, "1234567")
	e.Append(t, sent.ID, "12", `\Deleted`)
	check("Append", 14+7+2)
	if err := e.Mail.Deliver(ctx, a, []byte("1234")); err != nil {
		t.Fatal(err)
	}
	check("Deliver", 23+4)
	box := e.Create(t, a, "Box")
	if _, _, _, err := e.Mail.Copy(ctx, sent.ID, []uint32{1, 2}, box.ID); err != nil {
		t.Fatal(err)
	}
	check("Copy", 27+9)
	if _, _, _, err := e.Mail.Copy(ctx, sent.ID, []uint32{99}, box.ID); err != nil {
		t.Fatal(err)
	}
	check("Copy of nothing", 36)
	if _, _, _, err := e.Mail.Move(ctx, box.ID, []uint32{1}, sent.ID); err != nil {
		t.Fatal(err)
	}
	check("Move", 36)
	if _, err := e.Mail.Expunge(ctx, sent.ID, nil); err != nil {
		t.Fatal(err)
	}
	check("Expunge", 36-2)
	in := e.Box(t, a, "INBOX")
	if err := e.Mail.Delete(ctx, in.ID, []uint32{2}); err != nil {
		t.Fatal(err)
	}
	check("Delete", 34-4)
	if err := e.Mail.DeleteMailbox(ctx, a, "Box"); err != nil { // holds the copy of "12" (\Deleted)
		t.Fatal(err)
	}
	check("DeleteMailbox", 30-2)
	if err := e.Mail.RenameMailbox(ctx, a, "INBOX", "Old"); err != nil {
		t.Fatal(err)
	}
	check("RenameMailbox INBOX", 28)
	if err := e.Mail.Submit(ctx, mailstore.Submission{MemberID: b, Local: []mailstore.Delivery{{MemberID: a, Body: []byte("123456")}}, Recipients: 1}); err != nil {
		t.Fatal(err)
	}
	check("Submit", 28+6)
	wantEq(t, "b at the end", e.used(t, b), int64(1))
}

// testMailUsageConcurrent: appends to several mailboxes of one member at
// once, and deliveries to two members given in opposite orders, leave the
// counter exact (and do not deadlock on PostgreSQL).
func testMailUsageConcurrent(t *testing.T, e *MailEnv) {
	ctx := context.Background()
	a, b := e.NewMember(t), e.NewMember(t)
	boxes := []int64{e.Box(t, a, "INBOX").ID, e.Create(t, a, "One").ID, e.Create(t, a, "Two").ID}
	const writers, each = 8, 5
	errs := parallel(writers, func(i int) error {
		for j := range each {
			body := []byte(fmt.Sprintf("%d-%d", i, j))
			switch i % 4 {
			case 3:
				ds := []mailstore.Delivery{{MemberID: a, Body: body}, {MemberID: b, Body: body}}
				if i%8 == 7 {
					ds[0], ds[1] = ds[1], ds[0]
				}
				if err := e.Mail.DeliverAll(ctx, ds); err != nil {
					return err
				}
			default:
				if _, err := e.Mail.Append(ctx, boxes[i%3], nil, time.Time{}, body); err != nil {
					return err
				}
			}
		}
		return nil
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range []int64{a, b} {
		if got, sum := e.used(t, m), e.summed(t, m); got != sum || got == 0 {
			t.Fatalf("member %d: counter %d, sum of sizes %d", m, got, sum)
		}
	}
}

// testMailQuotaLimits: the member's own limit, the domain's default and
// unset (nil) are stored and read back; Limit takes the member's, else the
// domain's, else the server's; 0 is no limit.
func testMailQuotaLimits(t *testing.T, e *MailEnv) {
	ctx := context.Background()
	m := e.NewMember(t)
	mem, err := e.DB.MemberByID(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	quota := func() mailstore.Quota {
		t.Helper()
		q, err := e.Mail.Quota(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	n := func(v int64) *int64 { return &v }
	q := quota()
	if q.Member != nil || q.Domain != nil || q.Limit(300) != 300 || q.Limit(0) != 0 {
		t.Fatalf("new member: %+v", q)
	}
	e.Append(t, e.Box(t, m, "INBOX").ID, "0123456789")
	if err := e.DB.SetDomainMailQuota(ctx, mem.DomainID, n(50)); err != nil {
		t.Fatal(err)
	}
	q = quota()
	if q.Domain == nil || *q.Domain != 50 || q.Limit(300) != 50 || !q.Fits(40, 300) || q.Fits(41, 300) {
		t.Fatalf("domain default: %+v", q)
	}
	d, err := e.DB.DomainByName(ctx, mem.Domain())
	if err != nil || d.MailQuota == nil || *d.MailQuota != 50 {
		t.Fatalf("DomainByName: %+v %v", d, err)
	}
	if err := e.DB.SetMailQuota(ctx, m, n(0)); err != nil {
		t.Fatal(err)
	}
	if q = quota(); q.Member == nil || *q.Member != 0 || q.Limit(300) != 0 || !q.Fits(1<<40, 300) {
		t.Fatalf("member unlimited: %+v", q)
	}
	if err := e.DB.SetMailQuota(ctx, m, n(20)); err != nil {
		t.Fatal(err)
	}
	if q = quota(); q.Limit(300) != 20 || !q.Fits(10, 0) || q.Fits(11, 0) {
		t.Fatalf("member's own: %+v", q)
	}
	if err := e.DB.SetMailQuota(ctx, m, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.DB.SetDomainMailQuota(ctx, mem.DomainID, nil); err != nil {
		t.Fatal(err)
	}
	if q = quota(); q.Member != nil || q.Domain != nil || q.Limit(300) != 300 || q.Used != 10 {
		t.Fatalf("back to the server's: %+v", q)
	}
	_, err = e.Mail.Quota(ctx, 1<<40)
	WantNotFound(t, err)
	WantNotFound(t, e.DB.SetMailQuota(ctx, 1<<40, nil))
	if err := e.DB.SetDomainMailQuota(ctx, 1<<40, nil); account.ErrorCode(err) != account.ENOTFOUND {
		t.Fatalf("missing domain: %v", err)
	}
}

// testMailAppendTarget: AppendTarget reads what Quota and Mailbox read, in
// one: the quota as Quota has it, the mailbox as Mailbox finds it (INBOX
// by any case), and found false, with the quota, for a name that has no
// mailbox (or cannot have one).
func testMailAppendTarget(t *testing.T, e *MailEnv) {
	ctx := context.Background()
	m := e.NewMember(t)
	in := e.Box(t, m, "INBOX")
	e.Append(t, in.ID, "0123456789")
	limit := int64(1000)
	if err := e.DB.SetMailQuota(ctx, m, &limit); err != nil {
		t.Fatal(err)
	}
	box, err := e.Mail.CreateMailbox(ctx, m, "Lists/Go", "")
	if err != nil {
		t.Fatal(err)
	}
	want, err := e.Mail.Quota(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	same := func(q mailstore.Quota) bool {
		return q.Used == want.Used && q.Limit(0) == want.Limit(0) && q.Used == 10 && q.Limit(0) == 1000 && q.Domain == nil
	}
	for name, wantMB := range map[string]mailstore.Mailbox{"INBOX": in, "inbox": in, "Lists/Go": box} {
		mb, found, q, err := e.Mail.AppendTarget(ctx, m, name)
		if err != nil || !found || !same(q) {
			t.Fatalf("%s: found %v, %+v, %v", name, found, q, err)
		}
		if mb.ID != wantMB.ID || mb.UIDValidity != wantMB.UIDValidity || mb.Name != wantMB.Name || mb.MemberID != m {
			t.Fatalf("%s: %+v, want %+v", name, mb, wantMB)
		}
	}
	for _, name := range []string{"Lists/Rust", "", "a//b"} {
		mb, found, q, err := e.Mail.AppendTarget(ctx, m, name)
		if err != nil || found || mb.ID != 0 || !same(q) {
			t.Fatalf("%q: %+v found %v, %+v, %v", name, mb, found, q, err)
		}
	}
	_, _, _, err = e.Mail.AppendTarget(ctx, 1<<40, "INBOX")
	WantNotFound(t, err)
}

// testMailAppendIf: AppendIf stores as Append does while the mailbox id
// still has the name (INBOX by any case) and the message fits under the
// quota (the member's limit, else the domain's, else the default given; 0
// none); otherwise it writes nothing and says why: account.ErrNotFound
// for a mailbox gone or renamed, ErrOverQuota (ELIMIT) over the limit.
func testMailAppendIf(t *testing.T, e *MailEnv) {
	ctx := context.Background()
	m := e.NewMember(t)
	in := e.Box(t, m, "INBOX")
	box := e.Create(t, m, "Lists")
	body := []byte("Subject: if\r\n\r\n" + strings.Repeat("x", 100) + "\r\n")
	size := int64(len(body))
	state := func() (int, int64) {
		t.Helper()
		q, err := e.Mail.Quota(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		return len(e.List(t, in.ID)) + len(e.List(t, box.ID)), q.Used
	}
	uid, err := e.Mail.AppendIf(ctx, m, in.ID, "inbox", 0, []string{`\Seen`}, time.Time{}, body)
	if err != nil || uid != 1 {
		t.Fatalf("INBOX: uid %d, %v", uid, err)
	}
	if list := e.List(t, in.ID); len(list) != 1 || list[0].Size != size || !slices.Equal(list[0].Flags, []string{`\Seen`}) {
		t.Fatalf("INBOX: %+v", list)
	}
	// Room for exactly one more under the default limit, then none.
	if uid, err := e.Mail.AppendIf(ctx, m, box.ID, "Lists", 2*size, nil, time.Time{}, body); err != nil || uid != 1 {
		t.Fatalf("at the default limit: uid %d, %v", uid, err)
	}
	n, used := state()
	refused := func(what string, err error, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Fatalf("%s: %v, want %v", what, err, want)
		}
		if n2, used2 := state(); n2 != n || used2 != used {
			t.Fatalf("%s: %d messages, %d used, want %d, %d: something was written", what, n2, used2, n, used)
		}
	}
	_, err = e.Mail.AppendIf(ctx, m, box.ID, "Lists", 2*size, nil, time.Time{}, body)
	refused("over the default limit", err, mailstore.ErrOverQuota)
	if account.ErrorCode(err) != account.ELIMIT {
		t.Fatalf("over quota: %v, want ELIMIT", err)
	}
	limit := 3 * size
	if err := e.DB.SetMailQuota(ctx, m, &limit); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Mail.AppendIf(ctx, m, box.ID, "Lists", 2*size, nil, time.Time{}, body); err != nil {
		t.Fatalf("under the member's own limit: %v", err)
	}
	n, used = state()
	_, err = e.Mail.AppendIf(ctx, m, box.ID, "Lists", 0, nil, time.Time{}, body)
	refused("over the member's limit", err, mailstore.ErrOverQuota)
	zero := int64(0)
	if err := e.DB.SetMailQuota(ctx, m, &zero); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Mail.AppendIf(ctx, m, box.ID, "Lists", size, nil, time.Time{}, body); err != nil {
		t.Fatalf("member without a limit: %v", err)
	}
	n, used = state()

	_, err = e.Mail.AppendIf(ctx, m, box.ID, "INBOX", 0, nil, time.Time{}, body)
	refused("another mailbox's name", err, account.ErrNotFound)
	if err := e.Mail.RenameMailbox(ctx, m, "Lists", "Lists2"); err != nil {
		t.Fatal(err)
	}
	_, err = e.Mail.AppendIf(ctx, m, box.ID, "Lists", 0, nil, time.Time{}, body)
	refused("renamed", err, account.ErrNotFound)
	again := e.Create(t, m, "Lists")
	_, err = e.Mail.AppendIf(ctx, m, box.ID, "Lists", 0, nil, time.Time{}, body)
	refused("made again under the name", err, account.ErrNotFound)
	_, err = e.Mail.AppendIf(ctx, 1<<40, in.ID, "INBOX", 0, nil, time.Time{}, body)
	refused("another member", err, account.ErrNotFound)
	if uid, err := e.Mail.AppendIf(ctx, m, again.ID, "Lists", 0, nil, time.Time{}, body); err != nil || uid != 1 {
		t.Fatalf("the mailbox made again: uid %d, %v", uid, err)
	}
	if _, err := e.Mail.AppendIf(ctx, m, in.ID, "INBOX", 0, []string{"bad flag"}, time.Time{}, body); err == nil {
		t.Fatal("a bad flag was taken")
	}
}
