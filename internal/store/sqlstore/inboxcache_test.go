package sqlstore_test

import (
	"context"
	"database/sql/driver"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"modernc.org/sqlite"

	"github.com/postern/postern/internal/mailstore"
	"github.com/postern/postern/internal/store/sqlstore"
	"github.com/postern/postern/internal/store/storetest"
)

// The INBOX cache (inboxcache.go) must be exact, as the credential cache is:
// a change to a member's mailboxes committed through any handle of the
// database (another process: a delivery by the CLI, a POP3 QUIT in another
// server) is seen by the very next Open of INBOX on every other handle. As in
// credcache_test.go, the tests open one SQLite file twice (openPair), which
// is what two processes do: each handle has its own cache and maps the same
// generation file.

// inboxView is what Open returns for INBOX.
type inboxView struct {
	Mailbox  mailstore.Mailbox
	Messages []mailstore.MessageInfo
}

// String prints every field, flags, sizes and dates included; a nil and an
// empty listing print alike.
func (v inboxView) String() string { return fmt.Sprintf("%+v %+v", v.Mailbox, v.Messages) }

func (v inboxView) uids() []uint32 {
	out := []uint32{}
	for _, m := range v.Messages {
		out = append(out, m.UID)
	}
	return out
}

func (v inboxView) find(uid uint32) (mailstore.MessageInfo, bool) {
	i := slices.IndexFunc(v.Messages, func(m mailstore.MessageInfo) bool { return m.UID == uid })
	if i < 0 {
		return mailstore.MessageInfo{}, false
	}
	return v.Messages[i], true
}

// openInbox is Open(member, "INBOX") through db.
func openInbox(t testing.TB, db *sqlstore.DB, member int64) inboxView {
	t.Helper()
	mb, msgs, err := db.Mail().Open(context.Background(), member, "INBOX")
	if err != nil {
		t.Fatalf("open INBOX of member %d: %v", member, err)
	}
	return inboxView{mb, msgs}
}

// openInboxAs calls Open and fails unless the cache answered as want says
// ("hit" or "miss"); db must have no other reader meanwhile.
func openInboxAs(t testing.TB, db *sqlstore.DB, member int64, want string) inboxView {
	t.Helper()
	before := db.InboxCacheStats()
	v := openInbox(t, db, member)
	after := db.InboxCacheStats()
	hit := after.Hits == before.Hits+1 && after.Misses == before.Misses
	miss := after.Misses == before.Misses+1 && after.Hits == before.Hits
	if (want == "hit" && !hit) || (want == "miss" && !miss) {
		t.Fatalf("INBOX of member %d: want a %s, got hits %d→%d, misses %d→%d",
			member, want, before.Hits, after.Hits, before.Misses, after.Misses)
	}
	return v
}

// freshInbox reads INBOX without Open (Mailbox and Messages go to the
// database): the reference every cached answer must equal. The database must
// be quiet, as the two reads are two snapshots.
func freshInbox(t testing.TB, db *sqlstore.DB, member int64) inboxView {
	t.Helper()
	ctx := context.Background()
	mb, err := db.Mail().Mailbox(ctx, member, "INBOX")
	if err != nil {
		t.Fatalf("mailbox INBOX of member %d: %v", member, err)
	}
	msgs, err := db.Mail().Messages(ctx, mb.ID)
	if err != nil {
		t.Fatalf("messages of INBOX of member %d: %v", member, err)
	}
	return inboxView{mb, msgs}
}

// warmInbox reads the member's INBOX through db until it is cached: the first
// read is a miss and is kept, the second a hit.
func warmInbox(t testing.TB, db *sqlstore.DB, member int64) inboxView {
	t.Helper()
	openInboxAs(t, db, member, "miss")
	return openInboxAs(t, db, member, "hit")
}

// message is a small RFC 5322 message of a given subject.
func message(subject string) []byte {
	return []byte("From: sender@example.test\r\nTo: user@example.test\r\nSubject: " + subject + "\r\n\r\n" + subject + "\r\n")
}

// TestInboxCacheAcrossHandles: every change to a member's INBOX made through
// handle B is seen by handle A's very next Open, although A was answering
// from its cache just before; the new state is cached again; changes that do
// not touch the INBOX never give a wrong answer.
func TestInboxCacheAcrossHandles(t *testing.T) {
	ctx := context.Background()
	a, b, _ := openPair(t)
	if !a.InboxCacheStats().Enabled || !b.InboxCacheStats().Enabled {
		t.Fatal("the INBOX cache is off on SQLite")
	}
	e := storetest.NewEnv(t, b) // every change goes through B
	aliceM := e.Enforced(t, "alice")
	alice := aliceM.ID
	bob := e.Enforced(t, "bob").ID
	mail := b.Mail()
	warmInbox(t, a, alice)
	warmInbox(t, a, bob)
	box := func(member int64, name string) mailstore.Mailbox {
		t.Helper()
		mb, err := mail.Mailbox(ctx, member, name)
		if err != nil {
			t.Fatalf("mailbox %s: %v", name, err)
		}
		return mb
	}
	inbox, sent := box(alice, "INBOX"), box(alice, "Sent")
	work, err := mail.CreateMailbox(ctx, alice, "Work", "")
	if err != nil {
		t.Fatal(err)
	}

	// step checks that A answers the INBOXes of changed and of others from
	// its cache, makes the change through B, and then that A's very next
	// Open of each INBOX equals the database's (and B's own Open), that
	// each of changed differs from before (so the check means something),
	// and that the next Open is a hit with the same answer.
	step := func(name string, changed, others []int64, change func() error) {
		t.Helper()
		before := map[int64]inboxView{}
		for _, m := range append(slices.Clone(changed), others...) {
			openInbox(t, a, m)
			before[m] = openInboxAs(t, a, m, "hit")
		}
		if err := change(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, m := range append(slices.Clone(changed), others...) {
			want := "" // a change elsewhere may cost a miss
			if slices.Contains(changed, m) {
				want = "miss"
			}
			got := openInboxAs(t, a, m, want)
			fresh := freshInbox(t, b, m)
			if got.String() != fresh.String() {
				t.Fatalf("%s: member %d: handle A's next Open after the change:\n  %v\nthe database has:\n  %v\nbefore the change:\n  %v",
					name, m, got, fresh, before[m])
			}
			if want == "miss" && got.String() == before[m].String() {
				t.Fatalf("%s: member %d: the change did not change INBOX: %v", name, m, got)
			}
			if again := openInboxAs(t, a, m, "hit"); again.String() != fresh.String() {
				t.Fatalf("%s: member %d: the cached copy after the change:\n  %v\nthe database has:\n  %v", name, m, again, fresh)
			}
			if own := openInbox(t, b, m); own.String() != fresh.String() {
				t.Fatalf("%s: member %d: handle B's Open:\n  %v\nthe database has:\n  %v", name, m, own, fresh)
			}
		}
	}
	alone := []int64{alice}
	uidsOf := func(member int64) []uint32 { t.Helper(); return freshInbox(t, b, member).uids() }

	step("deliver", alone, []int64{bob}, func() error { return mail.Deliver(ctx, alice, message("one")) })
	step("deliver to two members at once", []int64{alice, bob}, nil, func() error {
		return mail.DeliverAll(ctx, []mailstore.Delivery{{MemberID: alice, Body: message("two")}, {MemberID: bob, Body: message("to bob")}})
	})
	step("append to INBOX", alone, nil, func() error {
		_, err := mail.Append(ctx, inbox.ID, []string{`\Seen`, "$Label1"}, time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC), message("appended, a little longer"))
		return err
	})
	first := uidsOf(alice)[0]
	step("set flags", alone, nil, func() error {
		_, err := mail.StoreFlags(ctx, inbox.ID, []uint32{first}, mailstore.FlagsSet, []string{`\Flagged`})
		return err
	})
	step("add flags", alone, nil, func() error {
		_, err := mail.StoreFlags(ctx, inbox.ID, []uint32{first}, mailstore.FlagsAdd, []string{`\Seen`, `\Answered`})
		return err
	})
	step("remove flags", alone, nil, func() error {
		_, err := mail.StoreFlags(ctx, inbox.ID, []uint32{first}, mailstore.FlagsRemove, []string{`\Seen`})
		return err
	})
	step("flags that change nothing", nil, alone, func() error {
		_, err := mail.StoreFlags(ctx, inbox.ID, []uint32{first}, mailstore.FlagsAdd, []string{`\Flagged`})
		return err
	})
	step("mark deleted", alone, nil, func() error {
		_, err := mail.StoreFlags(ctx, inbox.ID, []uint32{first}, mailstore.FlagsAdd, []string{`\Deleted`})
		return err
	})
	step("expunge", alone, nil, func() error {
		gone, err := mail.Expunge(ctx, inbox.ID, nil)
		if err == nil && !slices.Equal(gone, []uint32{first}) {
			err = fmt.Errorf("expunged %v, want [%d]", gone, first)
		}
		return err
	})
	step("delete (POP3 DELE)", alone, nil, func() error { return mail.Delete(ctx, inbox.ID, uidsOf(alice)[:1]) })

	// Changes elsewhere: another mailbox of the same member, another member.
	step("append to Sent", nil, []int64{alice, bob}, func() error {
		_, err := mail.Append(ctx, sent.ID, nil, time.Time{}, message("sent"))
		return err
	})
	step("append to another mailbox", nil, []int64{alice, bob}, func() error {
		_, err := mail.Append(ctx, work.ID, []string{`\Seen`}, time.Date(2023, 1, 2, 3, 4, 5, 0, time.UTC), message("work item"))
		return err
	})
	step("deliver to another member", []int64{bob}, alone, func() error { return mail.Deliver(ctx, bob, message("bob only")) })
	step("create a mailbox", nil, alone, func() error {
		_, err := mail.CreateMailbox(ctx, alice, "Projects/2025", "")
		return err
	})
	step("subscribe another mailbox", nil, alone, func() error { return mail.SetSubscribed(ctx, alice, "Work", false) })

	step("copy into INBOX", alone, nil, func() error {
		_, _, _, err := mail.Copy(ctx, work.ID, []uint32{1}, inbox.ID)
		return err
	})
	var movedOut uint32
	step("move out of INBOX", alone, nil, func() error {
		_, dst, _, err := mail.Move(ctx, inbox.ID, uidsOf(alice)[:1], work.ID)
		if err == nil {
			movedOut = dst[0]
		}
		return err
	})
	step("move into INBOX", alone, nil, func() error {
		_, _, _, err := mail.Move(ctx, work.ID, []uint32{movedOut}, inbox.ID)
		return err
	})
	step("unsubscribe INBOX", alone, nil, func() error { return mail.SetSubscribed(ctx, alice, "INBOX", false) })
	step("subscribe INBOX", alone, nil, func() error { return mail.SetSubscribed(ctx, alice, "inbox", true) })
	step("an account notification", alone, []int64{bob}, func() error {
		_, _, err := e.Svc.CreateAppPassword(ctx, e.Reload(t, aliceM), "Phone", storetest.Web)
		return err
	})
	step("rename INBOX", alone, nil, func() error {
		if len(uidsOf(alice)) == 0 {
			return fmt.Errorf("INBOX is empty before the rename")
		}
		return mail.RenameMailbox(ctx, alice, "INBOX", "Old mail")
	})
	if got := openInbox(t, a, alice); len(got.Messages) != 0 || got.Mailbox.ID != inbox.ID {
		t.Fatalf("INBOX after the rename: %v", got)
	}
	step("deliver after the rename", alone, nil, func() error { return mail.Deliver(ctx, alice, message("after the rename")) })

	// INBOX is case-insensitive: every spelling is the one cached mailbox.
	want := freshInbox(t, b, alice)
	before := a.InboxCacheStats()
	mb, msgs, err := a.Mail().Open(ctx, alice, "iNbOx")
	if err != nil || (inboxView{mb, msgs}).String() != want.String() {
		t.Fatalf("Open iNbOx: %v %v, want %v", inboxView{mb, msgs}, err, want)
	}
	if after := a.InboxCacheStats(); after.Hits != before.Hits+1 {
		t.Errorf("Open iNbOx was not answered from the cache: %+v, then %+v", before, after)
	}
	// Other mailboxes are not cached.
	before = a.InboxCacheStats()
	if _, _, err := a.Mail().Open(ctx, alice, "Work"); err != nil {
		t.Fatal(err)
	}
	if after := a.InboxCacheStats(); after.Hits != before.Hits || after.Misses != before.Misses {
		t.Errorf("Open of Work went through the INBOX cache: %+v, then %+v", before, after)
	}
	if st := a.InboxCacheStats(); st.Entries != 2 {
		t.Errorf("%d entries cached, want 2 (alice and bob)", st.Entries)
	}
}

// TestInboxCacheReadDuringCommit: a read of INBOX by handle A while B is
// inside a transaction that changes it (past the counter's first move, before
// the commit) sees, and may cache, the state before the change; once B's
// call has returned, A's next Open must show the change. This is what the
// counter's move after the commit is for: without it A would go on answering
// the state it read during the commit from its cache. A trigger calling a Go
// function holds B's transaction open at the right moment.
func TestInboxCacheReadDuringCommit(t *testing.T) {
	registerPauseFunc(t)
	ctx := context.Background()
	a, b, _ := openPair(t)
	env := storetest.NewMailEnv(t, b)
	m := env.NewMember(t)
	mail := b.Mail()
	inbox := env.Box(t, m, "INBOX")
	env.Append(t, inbox.ID, "already there")
	for _, trig := range []string{
		// After mailboxChanged's first move: its event row.
		`CREATE TRIGGER inbox_test_events AFTER INSERT ON events BEGIN SELECT inbox_test_pause(); END`,
		// Inside SetSubscribed's UPDATE, after its first move.
		`CREATE TRIGGER inbox_test_subscribed AFTER UPDATE OF subscribed ON mailboxes BEGIN SELECT inbox_test_pause(); END`,
	} {
		if _, err := b.SQL.ExecContext(ctx, trig); err != nil {
			t.Fatal(err)
		}
	}

	cases := []struct {
		name   string
		change func() error
	}{
		{"deliver", func() error { return mail.Deliver(ctx, m, message("delivered during a read")) }},
		{"append", func() error {
			_, err := mail.Append(ctx, inbox.ID, []string{`\Seen`}, time.Time{}, message("appended"))
			return err
		}},
		{"flags", func() error {
			_, err := mail.StoreFlags(ctx, inbox.ID, []uint32{1}, mailstore.FlagsAdd, []string{`\Flagged`})
			return err
		}},
		{"delete", func() error { return mail.Delete(ctx, inbox.ID, []uint32{1}) }},
		{"unsubscribe", func() error { return mail.SetSubscribed(ctx, m, "INBOX", false) }},
		{"subscribe", func() error { return mail.SetSubscribed(ctx, m, "INBOX", true) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			openInbox(t, a, m)
			old := openInboxAs(t, a, m, "hit")
			paused, release := armPause(t)
			errc := make(chan error, 1)
			go func() { errc <- tc.change() }()
			select {
			case <-paused:
			case err := <-errc:
				t.Fatalf("the change returned (%v) without pausing in its transaction", err)
			}
			// B holds its transaction open: A reads what is committed, the
			// state before the change, and caches it.
			if got := openInbox(t, a, m); got.String() != old.String() {
				t.Fatalf("during B's transaction A read\n  %v\nnot the committed state\n  %v", got, old)
			}
			openInboxAs(t, a, m, "hit")
			close(release)
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			fresh := freshInbox(t, b, m)
			if fresh.String() == old.String() {
				t.Fatalf("the change did not change INBOX: %v", fresh)
			}
			if got := openInbox(t, a, m); got.String() != fresh.String() {
				t.Fatalf("after B's change returned, A's Open answered\n  %v\n(the state read during the commit: %v)\nthe database has\n  %v",
					got, got.String() == old.String(), fresh)
			}
		})
	}
}

// pauseHook is what the SQL function inbox_test_pause runs, when set.
var (
	pauseOnce sync.Once
	pauseErr  error
	pauseHook atomic.Pointer[func()]
)

// registerPauseFunc registers inbox_test_pause with the SQLite driver, for
// the connections opened after it.
func registerPauseFunc(t *testing.T) {
	t.Helper()
	pauseOnce.Do(func() {
		pauseErr = sqlite.RegisterScalarFunction("inbox_test_pause", 0, func(*sqlite.FunctionContext, []driver.Value) (driver.Value, error) {
			if fn := pauseHook.Load(); fn != nil {
				(*fn)()
			}
			return nil, nil
		})
	})
	if pauseErr != nil {
		t.Fatalf("register inbox_test_pause: %v", pauseErr)
	}
}

// armPause makes the next call of inbox_test_pause close paused and wait
// for release; the calls after it return at once. Release is closed at the
// end of the test if the test has not closed it.
func armPause(t *testing.T) (paused, release chan struct{}) {
	paused, release = make(chan struct{}), make(chan struct{})
	var once sync.Once
	fn := func() {
		first := false
		once.Do(func() { first = true })
		if first {
			close(paused)
			<-release
		}
	}
	pauseHook.Store(&fn)
	t.Cleanup(func() {
		pauseHook.Store(nil)
		select {
		case <-release:
		default:
			close(release)
		}
	})
	return paused, release
}

// TestInboxCacheCopies: what Open returns is the caller's: changing it
// changes neither the cache nor the next answer.
func TestInboxCacheCopies(t *testing.T) {
	ctx := context.Background()
	db := openCredDB(t, filepath.Join(t.TempDir(), "postern.db"))
	env := storetest.NewMailEnv(t, db)
	m := env.NewMember(t)
	inbox := env.Box(t, m, "INBOX")
	env.Append(t, inbox.ID, "first", `\Seen`, `\Flagged`)
	env.Append(t, inbox.ID, "second", `\Answered`)
	want := freshInbox(t, db, m).String()

	scribble := func(msgs []mailstore.MessageInfo) {
		msgs[0].Flags[0] = "$Scribbled"
		msgs[0].Flags = append(msgs[0].Flags, "$More")
		msgs[1].Flags[0] = `\Deleted`
		msgs[1].Size, msgs[1].UID = -1, 99
		_ = append(msgs[:1], mailstore.MessageInfo{UID: 77})
	}
	got := openInboxAs(t, db, m, "miss") // the answer of a read, kept too
	if got.String() != want {
		t.Fatalf("Open: %v, want %v", got, want)
	}
	scribble(got.Messages)
	for i := range 3 {
		got := openInboxAs(t, db, m, "hit")
		if got.String() != want {
			t.Fatalf("hit %d after changing an earlier answer: %v, want %v", i, got, want)
		}
		scribble(got.Messages)
	}
	mb, msgs, err := db.Mail().Open(ctx, m, "INBOX")
	if err != nil || (inboxView{mb, msgs}).String() != want {
		t.Fatalf("Open at last: %v %v, want %v", inboxView{mb, msgs}, err, want)
	}
}

// TestInboxCacheRace: writers on handle B deliver and delete messages for a
// few members while readers on handle A keep opening their INBOXes; each
// writer, as soon as its write returns, finds it in A's next answer.
func TestInboxCacheRace(t *testing.T) {
	ctx := context.Background()
	a, b, _ := openPair(t)
	env := storetest.NewMailEnv(t, b)
	const nMembers, writersPerMember, rounds, readers = 3, 2, 10, 3
	members := make([]int64, nMembers)
	inboxes := make([]int64, nMembers)
	for i := range members {
		members[i] = env.NewMember(t)
		inboxes[i] = env.Box(t, members[i], "INBOX").ID
		warmInbox(t, a, members[i])
	}

	// consistent reports what is wrong with one answer of Open, whatever the
	// moment: a snapshot of the member's INBOX, in UID order below UIDNEXT.
	consistent := func(member int64, v inboxView) error {
		if v.Mailbox.MemberID != member || v.Mailbox.Name != "INBOX" {
			return fmt.Errorf("INBOX of member %d is %+v", member, v.Mailbox)
		}
		last := uint32(0)
		for _, msg := range v.Messages {
			if msg.MailboxID != v.Mailbox.ID || msg.UID <= last || msg.UID >= v.Mailbox.UIDNext {
				return fmt.Errorf("member %d: message %+v in %v", member, msg, v)
			}
			last = msg.UID
		}
		return nil
	}
	open := func(db *sqlstore.DB, member int64) (inboxView, error) {
		mb, msgs, err := db.Mail().Open(ctx, member, "INBOX")
		v := inboxView{mb, msgs}
		if err == nil {
			err = consistent(member, v)
		}
		return v, err
	}

	done := make(chan struct{})
	var readersWG, writersWG sync.WaitGroup
	for r := range readers {
		readersWG.Add(1)
		go func() {
			defer readersWG.Done()
			for k := r; ; k++ {
				select {
				case <-done:
					return
				default:
				}
				if _, err := open(a, members[k%nMembers]); err != nil {
					t.Errorf("reader: %v", err)
					return
				}
			}
		}()
	}
	for i, m := range members {
		for w := range writersPerMember {
			writersWG.Add(1)
			go func() {
				defer writersWG.Done()
				for k := range rounds {
					// A size of its own identifies the writer's message.
					size := 300 + w*rounds + k
					body := message(fmt.Sprintf("member %d writer %d round %d", i, w, k))
					body = append(body, strings.Repeat("x", size-len(body))...)
					if err := b.Mail().Deliver(ctx, m, body); err != nil {
						t.Errorf("member %d writer %d: deliver: %v", i, w, err)
						return
					}
					ref, err := b.Mail().Messages(ctx, inboxes[i])
					if err != nil {
						t.Errorf("member %d writer %d: messages: %v", i, w, err)
						return
					}
					j := slices.IndexFunc(ref, func(msg mailstore.MessageInfo) bool { return msg.Size == int64(size) })
					if j < 0 {
						t.Errorf("member %d writer %d round %d: the delivered message is not in INBOX", i, w, k)
						return
					}
					uid := ref[j].UID
					v, err := open(a, m)
					if err != nil {
						t.Errorf("member %d writer %d: %v", i, w, err)
						return
					}
					if got, ok := v.find(uid); !ok || got.Size != int64(size) {
						t.Errorf("member %d writer %d round %d: UID %d just delivered is not in handle A's answer %v", i, w, k, uid, v)
					}
					if err := b.Mail().Delete(ctx, inboxes[i], []uint32{uid}); err != nil {
						t.Errorf("member %d writer %d: delete: %v", i, w, err)
						return
					}
					v, err = open(a, m)
					if err != nil {
						t.Errorf("member %d writer %d: %v", i, w, err)
						return
					}
					if _, ok := v.find(uid); ok {
						t.Errorf("member %d writer %d round %d: UID %d just deleted is still in handle A's answer %v", i, w, k, uid, v)
					}
				}
			}()
		}
	}
	writersWG.Wait()
	close(done)
	readersWG.Wait()

	// Quiet again: A's answers equal the database's, and are cached.
	for _, m := range members {
		openInbox(t, a, m)
		got := openInboxAs(t, a, m, "hit")
		if fresh := freshInbox(t, b, m); got.String() != fresh.String() || len(got.Messages) != 0 {
			t.Errorf("member %d after the race: handle A has %v, the database %v", m, got, fresh)
		}
	}
}

// TestInboxCacheEngines: PostgreSQL has no INBOX cache (its nodes share no
// memory) and SQLite has one; on both, Open follows every change.
func TestInboxCacheEngines(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		sqlite := db.Dialect == sqlstore.SQLite
		if got := db.InboxCacheStats().Enabled; got != sqlite {
			t.Fatalf("INBOX cache enabled = %v on %s", got, db.Dialect)
		}
		env := storetest.NewMailEnv(t, db)
		m := env.NewMember(t)
		mail := db.Mail()
		same := func(what string) inboxView {
			t.Helper()
			var got inboxView
			for range 2 {
				got = openInbox(t, db, m)
				if fresh := freshInbox(t, db, m); got.String() != fresh.String() {
					t.Fatalf("%s: Open %v, the database has %v", what, got, fresh)
				}
			}
			return got
		}
		if v := same("empty"); len(v.Messages) != 0 {
			t.Fatalf("a new member's INBOX: %v", v)
		}
		if err := mail.Deliver(ctx, m, message("one")); err != nil {
			t.Fatal(err)
		}
		if v := same("after a delivery"); len(v.Messages) != 1 {
			t.Fatalf("after a delivery: %v", v)
		}
		v := same("again")
		if _, err := mail.StoreFlags(ctx, v.Mailbox.ID, []uint32{v.Messages[0].UID}, mailstore.FlagsAdd, []string{`\Seen`}); err != nil {
			t.Fatal(err)
		}
		if v := same("after a flag change"); !slices.Equal(v.Messages[0].Flags, []string{`\Seen`}) {
			t.Fatalf("after a flag change: %v", v)
		}
		if err := mail.Delete(ctx, v.Mailbox.ID, []uint32{v.Messages[0].UID}); err != nil {
			t.Fatal(err)
		}
		if v := same("after a deletion"); len(v.Messages) != 0 {
			t.Fatalf("after a deletion: %v", v)
		}
		st := db.InboxCacheStats()
		if !sqlite && st != (sqlstore.CacheStats{}) {
			t.Errorf("PostgreSQL INBOX cache stats %+v", st)
		}
		if sqlite && (st.Hits == 0 || st.Entries != 1) {
			t.Errorf("SQLite INBOX cache stats %+v: no hit, or not one entry", st)
		}
	})
}

// TestInboxCacheClosed: after Close, Open fails instead of answering from
// the cache.
func TestInboxCacheClosed(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "postern.db")
	db := openCredDB(t, path)
	env := storetest.NewMailEnv(t, db)
	m := env.NewMember(t)
	if err := db.Mail().Deliver(ctx, m, message("before closing")); err != nil {
		t.Fatal(err)
	}
	warmInbox(t, db, m)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if mb, msgs, err := db.Mail().Open(ctx, m, "INBOX"); err == nil {
		t.Fatalf("Open on a closed handle answered %v", inboxView{mb, msgs})
	}
	// A handle opened again starts with an empty cache and reads the file.
	again := openCredDB(t, path)
	if st := again.InboxCacheStats(); !st.Enabled || st.Entries != 0 {
		t.Fatalf("reopened: %+v", st)
	}
	if got := openInboxAs(t, again, m, "miss"); len(got.Messages) != 1 {
		t.Fatalf("reopened: %v", got)
	}
}
