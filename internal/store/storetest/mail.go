package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/mailstore"
	"github.com/postern/postern/internal/store/sqlstore"
)

// RunMail runs the mail store conformance suite (mailstore.Store) over a
// store that open returns. The tests share it, each with members of its own,
// which keeps the suite fast on PostgreSQL (a schema per test would cost more
// than the tests).
func RunMail(t *testing.T, open func(testing.TB) *sqlstore.DB) {
	tests := []struct {
		name string
		fn   func(*testing.T, *MailEnv)
	}{
		{"DefaultMailboxes", testMailDefaults},
		{"DefaultsRaceFree", testMailDefaultsRace},
		{"Open", testMailOpen},
		{"MailboxNames", testMailboxNames},
		{"CreateParents", testMailCreateParents},
		{"DeleteMailbox", testMailDeleteMailbox},
		{"RenameMailbox", testMailRename},
		{"RenameInbox", testMailRenameInbox},
		{"Subscribe", testMailSubscribe},
		{"SubscriptionsOutliveMailboxes", testMailSubscribedNames},
		{"AppendListBody", testMailAppend},
		{"AppendRules", testMailAppendRules},
		{"AppendManyAllOrNothing", testMailAppendMany},
		{"UIDsNeverReused", testMailUIDs},
		{"StoreFlags", testMailStoreFlags},
		{"Recent", testMailRecent},
		{"Expunge", testMailExpunge},
		{"Delete", testMailDelete},
		{"Copy", testMailCopy},
		{"Move", testMailMove},
		{"Events", testMailEvents},
		{"ConcurrentAppends", testMailConcurrentAppends},
		{"ConcurrentFirstDeliveries", testMailConcurrentDeliveries},
		{"DeliverAllOrNothing", testMailDeliverAll},
		{"DeliverJunk", testMailDeliverJunk},
		{"Usage", testMailUsage},
		{"UsageConcurrent", testMailUsageConcurrent},
		{"QuotaLimits", testMailQuotaLimits},
		{"AppendTarget", testMailAppendTarget},
		{"AppendIf", testMailAppendIf},
		{"Persistence", testMailPersistence},
		{"MemberDeletion", testMailMemberDeletion},
		{"Index", testMailIndex},
		{"SearchIndex", testMailSearchIndex},
		{"Counts", testMailCounts},
	}
	env := NewMailEnv(t, open(t))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, env) })
	}
}

// MailEnv is a mail store over a fresh database, with helpers that fail the
// test on errors.
type MailEnv struct {
	DB   *sqlstore.DB
	Mail *sqlstore.Mail
	n    int
}

// NewMailEnv returns a MailEnv over db.
func NewMailEnv(t testing.TB, db *sqlstore.DB) *MailEnv {
	return &MailEnv{DB: db, Mail: db.Mail()}
}

// NewMember creates a member (and a domain of its own) through the account
// store and returns its ID.
func (e *MailEnv) NewMember(t testing.TB) int64 {
	t.Helper()
	return NewMailMember(t, e.DB, &e.n)
}

// NewMailMember creates a member, and a domain of its own, through the
// account store; n numbers the addresses.
func NewMailMember(t testing.TB, db *sqlstore.DB, n *int) int64 {
	t.Helper()
	ctx := context.Background()
	*n++
	d := account.Domain{Name: fmt.Sprintf("mail%d-%s.test", *n, randomHex(4)), CreatedAt: EnforcedDate}
	if err := db.CreateDomain(ctx, &d); err != nil {
		t.Fatalf("create domain: %v", err)
	}
	m := account.Member{DomainID: d.ID, Email: "user@" + d.Name, Name: "User", PasswordHash: "$argon2id$unused", State: account.StateActive}
	if err := db.CreateMember(ctx, &m); err != nil {
		t.Fatalf("create member: %v", err)
	}
	return m.ID
}

// Box returns the member's mailbox name.
func (e *MailEnv) Box(t testing.TB, member int64, name string) mailstore.Mailbox {
	t.Helper()
	mb, err := e.Mail.Mailbox(context.Background(), member, name)
	if err != nil {
		t.Fatalf("mailbox %q: %v", name, err)
	}
	return mb
}

// Create makes the mailbox name.
func (e *MailEnv) Create(t testing.TB, member int64, name string) mailstore.Mailbox {
	t.Helper()
	mb, err := e.Mail.CreateMailbox(context.Background(), member, name, "")
	if err != nil {
		t.Fatalf("create mailbox %q: %v", name, err)
	}
	return mb
}

// Append appends body with flags and a zero date.
func (e *MailEnv) Append(t testing.TB, mailbox int64, body string, flags ...string) uint32 {
	t.Helper()
	uid, err := e.Mail.Append(context.Background(), mailbox, flags, EnforcedDate, []byte(body))
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return uid
}

// List returns the mailbox's messages.
func (e *MailEnv) List(t testing.TB, mailbox int64) []mailstore.MessageInfo {
	t.Helper()
	list, err := e.Mail.Messages(context.Background(), mailbox)
	if err != nil {
		t.Fatalf("messages of %d: %v", mailbox, err)
	}
	return list
}

// UIDs returns the UIDs of the mailbox's messages, in order.
func (e *MailEnv) UIDs(t testing.TB, mailbox int64) []uint32 {
	t.Helper()
	out := []uint32{}
	for _, m := range e.List(t, mailbox) {
		out = append(out, m.UID)
	}
	return out
}

// Bodies returns the bodies of the mailbox's messages, in UID order.
func (e *MailEnv) Bodies(t testing.TB, mailbox int64) []string {
	t.Helper()
	out := []string{}
	for _, m := range e.List(t, mailbox) {
		b, err := e.Mail.Body(context.Background(), m.ID)
		if err != nil {
			t.Fatalf("body %d: %v", m.ID, err)
		}
		out = append(out, string(b))
	}
	return out
}

// Names returns the names of the member's mailboxes, in listing order.
func (e *MailEnv) Names(t testing.TB, member int64) []string {
	t.Helper()
	list, err := e.Mail.Mailboxes(context.Background(), member)
	if err != nil {
		t.Fatalf("mailboxes: %v", err)
	}
	out := make([]string, len(list))
	for i, mb := range list {
		out[i] = mb.Name
	}
	return out
}

// LastSeq returns where the outbox ends now.
func (e *MailEnv) LastSeq(t testing.TB) account.EventPos {
	t.Helper()
	awaitEvents(t, e.DB)
	pos, err := e.DB.LastEventPos(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return pos
}

// Changed returns the mailbox IDs of the member's mailbox.changed events
// after pos, in order.
func (e *MailEnv) Changed(t testing.TB, member int64, seq account.EventPos) []int64 {
	t.Helper()
	awaitEvents(t, e.DB)
	list, err := e.DB.EventsAfter(context.Background(), seq, 100000)
	if err != nil {
		t.Fatal(err)
	}
	out := []int64{}
	for _, ev := range list {
		if ev.Kind == account.EventMailboxChanged && ev.MemberID == member {
			out = append(out, ev.MailboxID)
		}
	}
	return out
}

func wantEq[T any](t testing.TB, what string, got, want T) {
	t.Helper()
	if g, w := fmt.Sprint(got), fmt.Sprint(want); g != w {
		t.Fatalf("%s = %s, want %s", what, g, w)
	}
}

func testMailDefaults(t *testing.T, e *MailEnv) {
	ctx := context.Background()
	m := e.NewMember(t)
	list, err := e.Mail.Mailboxes(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]mailstore.Mailbox{}
	validities := map[uint32]bool{}
	for _, mb := range list {
		got[mb.Name] = mb
		validities[mb.UIDValidity] = true
		if mb.MemberID != m || mb.UIDNext != 1 || mb.UIDValidity == 0 || !mb.Subscribed {
			t.Errorf("default mailbox %+v", mb)
		}
	}
	wantEq(t, "names", e.Names(t, m), []string{"INBOX", "Drafts", "Junk", "Sent", "Trash"})
	if len(validities) != len(list) {
		t.Errorf("UIDVALIDITY values repeat: %+v", list)
	}
	for _, d := range mailstore.DefaultMailboxes {
		if got[d.Name].SpecialUse != d.SpecialUse {
			t.Errorf("%s: special use %q, want %q", d.Name, got[d.Name].SpecialUse, d.SpecialUse)
		}
	}
	// Listing again creates nothing new.
	again, err := e.Mail.Mailboxes(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	wantEq(t, "second listing", again, list)
	// INBOX is case-insensitive; the others are not (RFC 3501 §5.1).
	for _, name := range []string{"INBOX", "inbox", "InBoX"} {
		if mb := e.Box(t, m, name); mb.ID != got["INBOX"].ID || mb.Name != "INBOX" {
			t.Errorf("Mailbox(%q) = %+v", name, mb)
		}
	}
	_, err = e.Mail.Mailbox(ctx, m, "drafts")
	WantNotFound(t, err)
	// A deleted default stays deleted: defaults are made on first use only.
	if err := e.Mail.DeleteMailbox(ctx, m, "Junk"); err != nil {
		t.Fatal(err)
	}
	wantEq(t, "after deleting Junk", e.Names(t, m), []string{"INBOX", "Drafts", "Sent", "Trash"})
	// A member that does not exist has no mailboxes.
	_, err = e.Mail.Mailboxes(ctx, 1<<40)
	WantNotFound(t, err)
	_, err = e.Mail.Mailbox(ctx, 1<<40, "INBOX")
	WantNotFound(t, err)
	WantNotFound(t, e.Mail.Deliver(ctx, 1<<40, []byte("x")))
}

// testMailOpen: Open gives what Mailbox and Messages give, in one read,
// creates the defaults on first use, and finds no mailbox that is not there.
func testMailOpen(t *testing.T, e *MailEnv) {
	ctx := context.Background()
	fresh := e.NewMember(t)
	mb, msgs, err := e.Mail.Open(ctx, fresh, "INBOX") // a first use, as a first POP3 login
	if err != nil || mb.Name != "INBOX" || len(msgs) != 0 {
		t.Fatalf("Open of a new member's INBOX: %+v, %v, %v", mb, msgs, err)
	}
	wantEq(t, "defaults made", e.Names(t, fresh), []string{"INBOX", "Drafts", "Junk", "Sent", "Trash"})

	m := e.NewMember(t)
	in := e.Box(t, m, "INBOX")
	e.Append(t, in.ID, "Subject: one\r\n\r\n1\r\n", `\Seen`)
	e.Append(t, in.ID, "Subject: two\r\n\r\n2\r\n")
	e.Append(t, in.ID, "Subject: three\r\n\r\n3\r\n", `\Flagged`, "$label")
	if err := e.Mail.Delete(ctx, in.ID, []uint32{2}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"INBOX", "inbox"} {
		mb, msgs, err := e.Mail.Open(ctx, m, name)
		if err != nil {
			t.Fatal(err)
		}
		wantEq(t, "mailbox", mb, e.Box(t, m, "INBOX"))
		wantEq(t, "messages", msgs, e.List(t, in.ID))
	}
	sent := e.Box(t, m, "Sent")
	mb, msgs, err = e.Mail.Open(ctx, m, "Sent")
	if err != nil || mb.ID != sent.ID || len(msgs) != 0 {
		t.Errorf("Open of an empty mailbox: %+v, %v, %v", mb, msgs, err)
	}
	for _, name := range []string{"Nope", "a//b", "", "sent"} {
		_, _, err := e.Mail.Open(ctx, m, name)
		WantNotFound(t, err)
	}
	_, _, err = e.Mail.Open(ctx, 1<<40, "INBOX")
	WantNotFound(t, err)
}

func testMailDefaultsRace(t *testing.T, e *MailEnv) {
	m := e.NewMember(t)
	errs := parallel(10, func(i int) error {
		list, err := e.Mail.Mailboxes(context.Background(), m)
		if err == nil && len(list) != len(mailstore.DefaultMailboxes) {
			err = fmt.Errorf("goroutine %d saw %d mailboxes", i, len(list))
		}
		return err
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	wantEq(t, "names", e.Names(t, m), []string{"INBOX", "Drafts", "Junk", "Sent", "Trash"})
}

func testMailboxNames(t *testing.T, e *MailEnv) {
	ctx := context.Background()
	m := e.NewMember(t)
	for _, name := range []string{"", "/a", "a/", "a//b", "/", "a\x00b", "a\tb", "a\r\nb", "a\x7fb", "a*", "%", strings.Repeat("x", 256), "\xff\xfe"} {
		_, err := e.Mail.CreateMailbox(ctx, m, name, "")
		WantCode(t, err, account.EINVALID)
	}
	if _, err := e.Mail.CreateMailbox(ctx, m, strings.Repeat("x", 255), ""); err != nil {
		t.Errorf("255-byte name: %v", err)
	}
	for _, name := range []string{"INBOX", "inbox", "Drafts", "Trash"} {
		_, err := e.Mail.CreateMailbox(ctx, m, name, "")
		WantCode(t, err, account.ECONFLICT)
	}
	// Other names are case-sensitive: "drafts" is not "Drafts".
	d := e.Create(t, m, "drafts")
	if d.Name != "drafts" || d.ID == e.Box(t, m, "Drafts").ID {
		t.Errorf("drafts = %+v", d)
	}
	_, err := e.Mail.CreateMailbox(ctx, m, "drafts", "")
	WantCode(t, err, account.ECONFLICT)
	// INBOX's children fold INBOX too.
	sub := e.Create(t, m, "inbox/Sub")
	wantEq(t, "inbox/Sub", sub.Name, "INBOX/Sub")
	wantEq(t, "lookup INBOX/sub", e.Box(t, m, "Inbox/Sub").ID, sub.ID)
	_, err = e.Mail.Mailbox(ctx, m, "INBOX/sub")
	WantNotFound(t, err)
	// Special use.
	arch, err := e.Mail.CreateMailbox(ctx, m, "Archive", `\Archive`)
	if err != nil || arch.SpecialUse != `\Archive` || e.Box(t, m, "Archive").SpecialUse != `\Archive` {
		t.Errorf("archive %+v %v", arch, err)
	}
	_, err = e.Mail.CreateMailbox(ctx, m, "Odd", `\Odd`)
	WantCode(t, err, account.EINVALID)
	// Names that cannot exist are simply not found.
	_, err = e.Mail.Mailbox(ctx, m, "a//b")
	WantNotFound(t, err)
	_, err = e.Mail.Mailbox(ctx, m, "Nope")
	WantNotFound(t, err)
	// UTF-8 names (IMAP's modified UTF-7 is the frontend's business).
	if _, err := e.Mail.CreateMailbox(ctx, m, "Reçus/日本", ""); err != nil {
		t.Errorf("UTF-8 name: %v", err)
	}
}

func testMailCreateParents(t *testing.T, e *MailEnv) {
	m := e.NewMember(t)
	c := e.Create(t, m, "a/b/c")
	if c.Name != "a/b/c" {
		t.Fatalf("created %+v", c)
	}
	wantEq(t, "names", e.Names(t, m), []string{"INBOX", "Drafts", "Junk", "Sent", "Trash", "a", "a/b", "a/b/c"})
	e.Create(t, m, "a/d")
	_, err := e.Mail.CreateMailbox(context.Background(), m, "a/b", "")
	WantCode(t, err, account.ECONFLICT)
}

func testMailDeleteMailbox(t *testing.T, e *MailEnv) {
	ctx := context.Background()
	m := e.NewMember(t)
	WantCode(t, e.Mail.DeleteMailbox(ctx, m, "INBOX"), account.ECONFLICT)
	WantCode(t, e.Mail.DeleteMailbox(ctx, m, "inbox"), account.ECONFLICT)
	WantNotFound(t, e.Mail.DeleteMailbox(ctx, m, "Nope"))
	old := e.Create(t, m, "Old")
	e.Append(t, old.ID, "one")
	e.Append(t, old.ID, "two")
	e.Create(t, m, "Old/Child")
	// DELETE must not remove inferiors (RFC 3501 §6.3.4).
	WantCode(t, e.Mail.DeleteMailbox(ctx, m, "Old"), account.ECONFLICT)
	if err := e.Mail.DeleteMailbox(ctx, m, "Old/Child"); err != nil {
		t.Fatal(err)
	}
	msgs := e.List(t, old.ID)
	seq := e.LastSeq(t)
	if err := e.Mail.DeleteMailbox(ctx, m, "Old"); err != nil {
		t.Fatal(err)
	}
	wantEq(t, "events", e.Changed(t, m, seq), []int64{old.ID})
	_, err := e.Mail.Mailbox(ctx, m, "Old")
	WantNotFound(t, err)
	_, err = e.Mail.Messages(ctx, old.ID)
	WantNotFound(t, err)
	_, err = e.Mail.Body(ctx, msgs[0].ID)
	WantNotFound(t, err)
	_, err = e.Mail.Append(ctx, old.ID, nil, EnforcedDate, []byte("x"))
	WantNotFound(t, err)
	// The same name again is a new mailbox: new UIDVALIDITY, UIDs from 1
	// (RFC 3501 §2.3.1.1).
	again := e.Create(t, m, "Old")
	if again.UIDValidity == old.UIDValidity || again.UIDNext != 1 || again.ID == old.ID {
		t.Errorf("recreated %+v, old %+v", again, old)
	}
	if len(e.List(t, again.ID)) != 0 {
		t.Error("recreated mailbox has messages")
	}
}

func testMailRename(t *testing.T, e *MailEnv) {
	ctx := context.Background()
	m := e.NewMember(t)
	a := e.Create(t, m, "a")
	ax := e.Create(t, m, "a/x")
	e.Create(t, m, "ab") // not a child of "a"
	e.Append(t, a.ID, "in a")
	e.Append(t, ax.ID, "in a/x")
	if err := e.Mail.RenameMailbox(ctx, m, "a", "b"); err != nil {
		t.Fatal(err)
	}
	wantEq(t, "names", e.Names(t, m), []string{"INBOX", "Drafts", "Junk", "Sent", "Trash", "ab", "b", "b/x"})
	b, bx := e.Box(t, m, "b"), e.Box(t, m, "b/x")
	// The mailboxes themselves moved: same IDs, UIDs and UIDVALIDITY.
	if b.ID != a.ID || bx.ID != ax.ID || b.UIDValidity != a.UIDValidity || b.UIDNext != 2 {
		t.Errorf("b %+v a %+v", b, a)
	}
	wantEq(t, "b", e.Bodies(t, b.ID), []string{"in a"})
	wantEq(t, "b/x", e.Bodies(t, bx.ID), []string{"in a/x"})

	WantNotFound(t, e.Mail.RenameMailbox(ctx, m, "a", "c"))
	WantCode(t, e.Mail.RenameMailbox(ctx, m, "b", "ab"), account.ECONFLICT)
	WantCode(t, e.Mail.RenameMailbox(ctx, m, "b", "b"), account.ECONFLICT)
	WantCode(t, e.Mail.RenameMailbox(ctx, m, "b", "INBOX"), account.ECONFLICT)
	WantCode(t, e.Mail.RenameMailbox(ctx, m, "b", "b/y"), account.EINVALID)
	WantCode(t, e.Mail.RenameMailbox(ctx, m, "b", "bad//name"), account.EINVALID)
	// "c" exists as the superior of "c/x".
	e.Create(t, m, "c/x")
	WantCode(t, e.Mail.RenameMailbox(ctx, m, "b", "c"), account.ECONFLICT)
	wantEq(t, "unchanged", e.Names(t, m), []string{"INBOX", "Drafts", "Junk", "Sent", "Trash", "ab", "b", "b/x", "c", "c/x"})
	// Missing superiors of the new name are created.
	if err := e.Mail.RenameMailbox(ctx, m, "b/x", "p/q/x"); err != nil {
		t.Fatal(err)
	}
	wantEq(t, "names", e.Names(t, m), []string{"INBOX", "Drafts", "Junk", "Sent", "Trash", "ab", "b", "c", "c/x", "p", "p/q", "p/q/x"})
	wantEq(t, "p/q/x", e.Bodies(t, e.Box(t, m, "p/q/x").ID), []string{"in a/x"})
	// Special use follows the mailbox.
	if err := e.Mail.RenameMailbox(ctx, m, "Trash", "Bin"); err != nil {
		t.Fatal(err)
	}
	wantEq(t, "Bin special use", e.Box(t, m, "Bin").SpecialUse, mailstore.Trash)
}

func testMailRenameInbox(t *testing.T, e *MailEnv) {
	ctx := context.Background()
	m := e.NewMember(t)
	in := e.Box(t, m, "INBOX")
	e.Append(t, in.ID, "first", `\Seen`)
	e.Append(t, in.ID, "second")
	child := e.Create(t, m, "INBOX/Keep")
	seq := e.LastSeq(t)
	if err := e.Mail.RenameMailbox(ctx, m, "inbox", "Old/Mail"); err != nil {
		t.Fatal(err)
	}
	moved := e.Box(t, m, "Old/Mail")
	wantEq(t, "events", e.Changed(t, m, seq), []int64{in.ID, moved.ID})
	// RFC 3501 §6.3.5: INBOX's messages move, INBOX stays, empty; its
	// inferiors are not renamed.
	wantEq(t, "INBOX after", e.UIDs(t, in.ID), []uint32{})
	wantEq(t, "moved bodies", e.Bodies(t, moved.ID), []string{"first", "second"})
	wantEq(t, "moved flags", e.List(t, moved.ID)[0].Flags, []string{`\Seen`})
	wantEq(t, "INBOX/Keep", e.Box(t, m, "INBOX/Keep").ID, child.ID)
	e.Box(t, m, "Old")
	if moved.UIDValidity == in.UIDValidity {
		t.Error("the new mailbox has INBOX's UIDVALIDITY")
	}
	// INBOX never reuses a UID.
	after := e.Box(t, m, "INBOX")
	if after.ID != in.ID || after.UIDValidity != in.UIDValidity || after.UIDNext != 3 {
		t.Errorf("INBOX after rename %+v, before %+v", after, in)
	}
	wantEq(t, "next INBOX UID", e.Append(t, in.ID, "third"), uint32(3))
	// The new mailbox goes on above the moved UIDs.
	if uid := e.Append(t, moved.ID, "x"); uid <= 2 {
		t.Errorf("append to the moved mailbox got UID %d", uid)
	}
}

func testMailSubscribe(t *testing.T, e *MailEnv) {
	ctx := context.Background()
	m := e.NewMember(t)
	e.Create(t, m, "Lists/Go")
	if e.Box(t, m, "Lists").Subscribed || e.Box(t, m, "Lists/Go").Subscribed {
		t.Error("a created mailbox or its parent is subscribed: subscribing is the client's choice (RFC 3501 §6.3.6)")
	}
	if err := e.Mail.SetSubscribed(ctx, m, "Lists", true); err != nil {
		t.Fatal(err)
	}
	if !e.Box(t, m, "Lists").Subscribed {
		t.Error("not subscribed")
	}
	if err := e.Mail.SetSubscribed(ctx, m, "Lists", false); err != nil {
		t.Fatal(err)
	}
	if e.Box(t, m, "Lists").Subscribed {
		t.Error("still subscribed")
	}
	if err := e.Mail.SetSubscribed(ctx, m, "inbox", false); err != nil {
		t.Fatal(err)
	}
	if e.Box(t, m, "INBOX").Subscribed {
		t.Error("INBOX still subscribed")
	}
	if err := e.Mail.SetSubscribed(ctx, m, "Lists", true); err != nil {
		t.Fatal(err)
	}
	if !e.Box(t, m, "Lists").Subscribed {
		t.Error("not subscribed again")
	}
	WantNotFound(t, e.Mail.SetSubscribed(ctx, m, "Nope", true))
	WantNotFound(t, e.Mail.SetSubscribed(ctx, m, "lists", true))
}

// parallel runs fn(0..n-1) on n goroutines started together and returns
// their errors.
func parallel(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	done := make(chan int)
	for i := range n {
		go func() {
			<-start
			errs[i] = fn(i)
			done <- i
		}()
	}
	close(start)
	for range n {
		<-done
	}
	return slices.Clip(errs)
}
