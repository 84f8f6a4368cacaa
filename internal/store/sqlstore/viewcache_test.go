package sqlstore_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/mailstore"
	"github.com/postern/postern/internal/store/sqlstore"
	"github.com/postern/postern/internal/store/storetest"
)

// sameState checks that State on db (through its view cache) returns
// exactly what a whole read returns.
func sameState(t *testing.T, step string, db *sqlstore.DB, id int64) {
	t.Helper()
	ctx := context.Background()
	mb, got, err := stateMessages(ctx, db.Mail(), id)
	if err != nil {
		t.Fatalf("%s: state: %v", step, err)
	}
	wantMB, want, err := db.FullStateForTest(ctx, id)
	if err != nil {
		t.Fatalf("%s: full state: %v", step, err)
	}
	if mb != wantMB {
		t.Fatalf("%s: mailbox %+v, want %+v", step, mb, wantMB)
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d messages, want %d", step, len(got), len(want))
	}
	for i := range got {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("%s: message %d is %+v, want %+v", step, i, got[i], want[i])
		}
	}
}

// The view cache returns what a whole read returns after every kind of
// change, made by this store or by another one on the same database (a
// second node), and after the tombstones it would need were pruned.
func TestViewCacheExact(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		other := storetest.OpenOther(t, db)
		env := storetest.NewMailEnv(t, db)
		m := env.NewMember(t)
		in := env.Box(t, m, "INBOX")
		box := env.Create(t, m, "Box")
		for i := 0; i < 6; i++ {
			env.Append(t, in.ID, fmt.Sprintf("Subject: %d\r\n\r\nx\r\n", i))
			env.Append(t, box.ID, fmt.Sprintf("Subject: b%d\r\n\r\nx\r\n", i), `\Flagged`)
		}
		// Both nodes hold a view of both mailboxes from here on.
		check := func(step string) {
			t.Helper()
			for _, d := range []*sqlstore.DB{db, other} {
				sameState(t, step, d, in.ID)
				sameState(t, step, d, box.ID)
			}
		}
		check("start")
		mails := map[string]*sqlstore.Mail{"this node": db.Mail(), "other node": other.Mail()}
		for _, node := range []string{"this node", "other node"} {
			mail := mails[node]
			step := func(what string, err error) {
				t.Helper()
				if err != nil {
					t.Fatalf("%s: %s: %v", node, what, err)
				}
				check(node + ": " + what)
			}
			_, err := mail.Append(ctx, in.ID, []string{`\Draft`}, storetest.EnforcedDate, []byte("Subject: new\r\n\r\nx\r\n"))
			step("append", err)
			step("deliver", mail.Deliver(ctx, m, []byte("Subject: delivered\r\n\r\nx\r\n")))
			_, err = mail.StoreFlags(ctx, in.ID, []uint32{1, 3}, mailstore.FlagsAdd, []string{`\Seen`, "$Label"})
			step("flags", err)
			uids := env.UIDs(t, in.ID)
			_, err = mail.StoreFlags(ctx, in.ID, uids[:2], mailstore.FlagsAdd, []string{`\Deleted`})
			step("flag deleted", err)
			_, err = mail.Expunge(ctx, in.ID, nil)
			step("expunge", err)
			step("delete", mail.Delete(ctx, in.ID, env.UIDs(t, in.ID)[:1]))
			_, _, _, err = mail.Copy(ctx, box.ID, env.UIDs(t, box.ID)[:2], in.ID)
			step("copy in", err)
			_, _, _, err = mail.Copy(ctx, in.ID, env.UIDs(t, in.ID)[:1], box.ID)
			step("copy out", err)
			_, _, _, err = mail.Move(ctx, box.ID, env.UIDs(t, box.ID)[:1], in.ID)
			step("move in", err)
			_, _, _, err = mail.Move(ctx, in.ID, env.UIDs(t, in.ID)[:1], box.ID)
			step("move out", err)
			_, _, _, err = mail.Move(ctx, in.ID, env.UIDs(t, in.ID)[:1], in.ID)
			step("move within", err)
		}
		// Renaming INBOX moves its messages to a new mailbox and buries
		// them in INBOX.
		if err := other.Mail().RenameMailbox(ctx, m, "INBOX", "Old"); err != nil {
			t.Fatal(err)
		}
		check("rename INBOX")
		env.Append(t, in.ID, "Subject: after rename\r\n\r\nx\r\n")
		check("append after rename")
		if _, patches, _ := db.ViewCacheCounts(); patches == 0 {
			t.Fatal("no view was brought up to date from the changes: the test tests nothing")
		}
		if hits, _, _ := other.ViewCacheCounts(); hits == 0 {
			t.Fatal("no view was used as cached")
		}

		// Tombstones pruned past this node's view: it must read the
		// mailbox whole, as the changes alone no longer tell what went.
		defer sqlstore.SetMaxTombstones(1)()
		for i := 0; i < 3; i++ {
			env.Append(t, in.ID, "Subject: more\r\n\r\nx\r\n")
		}
		sameState(t, "before pruning", db, in.ID)
		for _, u := range env.UIDs(t, in.ID)[:3] {
			if err := other.Mail().Delete(ctx, in.ID, []uint32{u}); err != nil {
				t.Fatal(err)
			}
		}
		_, _, misses := db.ViewCacheCounts()
		sameState(t, "after pruning", db, in.ID)
		if _, _, after := db.ViewCacheCounts(); after != misses+1 {
			t.Fatalf("pruned tombstones: %d whole reads, want 1", after-misses)
		}
	})
}

// The cache holds at most its budget of messages, least recently used
// views going first, and a mailbox above it is read whole every time.
func TestViewCacheBudget(t *testing.T) {
	db := storetest.OpenSQLite(t)
	db.SetViewBudget(5)
	env := storetest.NewMailEnv(t, db)
	m := env.NewMember(t)
	a, b := env.Create(t, m, "A"), env.Create(t, m, "B")
	for i := 0; i < 3; i++ {
		env.Append(t, a.ID, "Subject: a\r\n\r\nx\r\n")
		env.Append(t, b.ID, "Subject: b\r\n\r\nx\r\n")
	}
	read := func(id int64) {
		t.Helper()
		if _, _, err := stateMessages(context.Background(), db.Mail(), id); err != nil {
			t.Fatal(err)
		}
	}
	counts := func() [3]uint64 {
		h, p, m := db.ViewCacheCounts()
		return [3]uint64{h, p, m}
	}
	read(a.ID)
	read(a.ID)
	if c := counts(); c != [3]uint64{1, 0, 1} {
		t.Fatalf("A twice: hits, patches, misses %v", c)
	}
	read(b.ID) // 3 + 3 > 5: A goes
	read(a.ID)
	if c := counts(); c != [3]uint64{1, 0, 3} {
		t.Fatalf("after B: hits, patches, misses %v", c)
	}
	env.Append(t, a.ID, "Subject: a\r\n\r\nx\r\n")
	env.Append(t, a.ID, "Subject: a\r\n\r\nx\r\n")
	env.Append(t, a.ID, "Subject: a\r\n\r\nx\r\n")
	read(a.ID) // patched to 6 messages: over the budget, not kept
	read(a.ID)
	if c := counts(); c != [3]uint64{1, 1, 4} {
		t.Fatalf("A above the budget: hits, patches, misses %v", c)
	}
}

// A STORE planned on this node's cached view is right even when another
// node changed the mailbox since the view: the write finds its messages
// moved on and the STORE is planned again on a read. On PostgreSQL a
// STORE is planned on the view without a read when its messages are as
// the view has them, whatever else changed.
func TestStoreOnCachedView(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		other := storetest.OpenOther(t, db)
		env := storetest.NewMailEnv(t, db)
		in := env.Box(t, env.NewMember(t), "INBOX")
		for i := 0; i < 4; i++ {
			env.Append(t, in.ID, fmt.Sprintf("Subject: %d\r\n\r\nx\r\n", i))
		}
		mail := db.Mail()
		flagsOf := func(infos []mailstore.MessageInfo, uid uint32) []string {
			t.Helper()
			for _, m := range infos {
				if m.UID == uid {
					return m.Flags
				}
			}
			t.Fatalf("uid %d not in %+v", uid, infos)
			return nil
		}
		store := func(step string, uid uint32, op mailstore.FlagOp, flag string, want ...string) {
			t.Helper()
			out, err := mail.StoreFlags(ctx, in.ID, []uint32{uid}, op, []string{flag})
			if err != nil {
				t.Fatalf("%s: %v", step, err)
			}
			if got := flagsOf(out, uid); !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Fatalf("%s: flags %q, want %q", step, got, want)
			}
			sameState(t, step, db, in.ID)
			sameState(t, step, other, in.ID)
		}
		sameState(t, "start", db, in.ID)
		stores := db.ViewStores()
		// A current view: the STOREs one after another need no read.
		store("store on the view", 1, mailstore.FlagsAdd, `\Seen`, `\Seen`)
		store("store on the view again", 1, mailstore.FlagsAdd, `\Flagged`, `\Flagged`, `\Seen`)
		if db.Dialect == sqlstore.Postgres && db.ViewStores() == stores {
			t.Fatal("no STORE was planned on the view: the test tests nothing")
		}
		// Another node adds a flag after this node's view: planned on the
		// view alone, \Answered would be lost.
		if _, err := other.Mail().StoreFlags(ctx, in.ID, []uint32{2}, mailstore.FlagsAdd, []string{`\Answered`}); err != nil {
			t.Fatal(err)
		}
		store("store after another node's", 2, mailstore.FlagsAdd, `\Seen`, `\Answered`, `\Seen`)
		// Another node sets \Seen after this node's view: the view says
		// there is nothing to remove.
		if _, err := other.Mail().StoreFlags(ctx, in.ID, []uint32{3}, mailstore.FlagsAdd, []string{`\Seen`}); err != nil {
			t.Fatal(err)
		}
		store("remove what another node set", 3, mailstore.FlagsRemove, `\Seen`)
		// Another node changes message 3 after this node's view: a STORE of
		// message 2 planned on the view still holds, and the state after
		// it shows both changes.
		if _, err := other.Mail().StoreFlags(ctx, in.ID, []uint32{3}, mailstore.FlagsAdd, []string{`\Deleted`}); err != nil {
			t.Fatal(err)
		}
		stores = db.ViewStores()
		store("store on the view beside another node's", 2, mailstore.FlagsAdd, `\Flagged`, `\Answered`, `\Flagged`, `\Seen`)
		if db.Dialect == sqlstore.Postgres && db.ViewStores() == stores {
			t.Fatal("a change to another message sent the STORE off the view")
		}
		// UNCHANGEDSINCE on the view: message 1 changed after the
		// mod-sequence given.
		mb, msgs, err := stateMessages(ctx, mail, in.ID)
		if err != nil {
			t.Fatal(err)
		}
		_, modified, err := mail.StoreFlagsIf(ctx, in.ID, []uint32{1, 4}, mailstore.FlagsAdd, []string{`\Draft`}, msgs[0].ModSeq-1)
		if err != nil || !reflect.DeepEqual(modified, []uint32{1}) {
			t.Fatalf("unchangedsince: modified %v, %v", modified, err)
		}
		after, msgs, err := stateMessages(ctx, mail, in.ID)
		if err != nil || after.HighestModSeq != mb.HighestModSeq+1 || !reflect.DeepEqual(flagsOf(msgs, 4), []string{`\Draft`}) || slices.Contains(flagsOf(msgs, 1), `\Draft`) {
			t.Fatalf("after unchangedsince: %+v %+v %v", after, msgs, err)
		}
		sameState(t, "end", other, in.ID)
	})
}

// On PostgreSQL the flag changes a re-read needs come from mail_changes:
// each STORE logs its UIDs at its mod-sequence, a mailbox keeps the log of
// its last mail_changes_kept() mod-sequences, and a view older than that is
// read whole; one within it is brought up to date from the log. A STORE on
// more than mail_changes_max_uids() messages logs no UIDs, and a view
// older than it is read whole too.
func TestChangeLogPruned(t *testing.T) {
	db := storetest.OpenPostgres(t)
	ctx := context.Background()
	for _, f := range []string{`mail_changes_kept() RETURNS bigint LANGUAGE sql IMMUTABLE AS 'SELECT 3::bigint'`,
		`mail_changes_max_uids() RETURNS bigint LANGUAGE sql IMMUTABLE AS 'SELECT 2::bigint'`} {
		if _, err := db.SQL.ExecContext(ctx, `CREATE OR REPLACE FUNCTION `+f); err != nil {
			t.Fatal(err)
		}
	}
	other := storetest.OpenOther(t, db)
	env := storetest.NewMailEnv(t, db)
	in := env.Box(t, env.NewMember(t), "INBOX")
	for i := 0; i < 6; i++ {
		env.Append(t, in.ID, fmt.Sprintf("Subject: %d\r\n\r\nx\r\n", i))
	}
	sameState(t, "start", db, in.ID)
	store := func(uids []uint32, flag string) {
		t.Helper()
		if _, err := other.Mail().StoreFlags(ctx, in.ID, uids, mailstore.FlagsAdd, []string{flag}); err != nil {
			t.Fatal(err)
		}
	}
	logged := func() (n int, oldest, highest int64) {
		t.Helper()
		if err := db.SQL.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(MIN(c.modseq), 0), MAX(b.highest_modseq)
			FROM mailboxes b LEFT JOIN mail_changes c ON c.mailbox_id = b.id WHERE b.id = $1`, in.ID).Scan(&n, &oldest, &highest); err != nil {
			t.Fatal(err)
		}
		return n, oldest, highest
	}

	// Within the log: brought up to date from it.
	store([]uint32{1, 2}, `\Seen`)
	store([]uint32{2, 3}, `\Flagged`)
	var uids string
	if err := db.SQL.QueryRowContext(ctx, `SELECT array_to_string(ARRAY(SELECT unnest(uids) ORDER BY 1), ',') FROM mail_changes WHERE mailbox_id = $1 ORDER BY modseq DESC LIMIT 1`, in.ID).Scan(&uids); err != nil || uids != "2,3" {
		t.Fatalf("logged %v, %v", uids, err)
	}
	_, patches, misses := db.ViewCacheCounts()
	sameState(t, "within the log", db, in.ID)
	if _, p, m := db.ViewCacheCounts(); p != patches+1 || m != misses {
		t.Fatalf("within the log: %d patches, %d whole reads, want 1 and 0", p-patches, m-misses)
	}

	// Past it: the oldest rows are pruned, and the view is read whole.
	for _, f := range []string{`$A`, `$B`, `$C`, `$D`} {
		store([]uint32{4}, f)
	}
	n, oldest, highest := logged()
	if n != 3 || oldest != highest-2 {
		t.Fatalf("log of %d rows from mod-sequence %d at %d, want the last 3", n, oldest, highest)
	}
	_, _, misses = db.ViewCacheCounts()
	sameState(t, "past the log", db, in.ID)
	if _, _, m := db.ViewCacheCounts(); m != misses+1 {
		t.Fatalf("past the log: %d whole reads, want 1", m-misses)
	}
	// And arrivals, which the log leaves out, with a change logged.
	env.Append(t, in.ID, "Subject: new\r\n\r\nx\r\n")
	store([]uint32{5}, `\Seen`)
	_, patches, _ = db.ViewCacheCounts()
	sameState(t, "arrival", db, in.ID)
	if _, p, _ := db.ViewCacheCounts(); p != patches+1 {
		t.Fatal("arrival: the view was not brought up to date")
	}

	// Too many UIDs to log: read whole, and brought up to date after.
	store([]uint32{1, 5, 6}, `$E`)
	var hasRow bool
	if err := db.SQL.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM mailboxes b JOIN mail_changes c ON c.mailbox_id = b.id AND c.modseq = b.highest_modseq WHERE b.id = $1)`, in.ID).Scan(&hasRow); err != nil || hasRow {
		t.Fatalf("a change of 3 messages logged its UIDs (%v)", err)
	}
	_, patches, misses = db.ViewCacheCounts()
	sameState(t, "too many to log", db, in.ID)
	store([]uint32{6}, `$F`)
	sameState(t, "after too many to log", db, in.ID)
	if _, p, m := db.ViewCacheCounts(); m != misses+1 || p != patches+1 {
		t.Fatalf("too many to log: %d whole reads and %d patches, want 1 and 1", m-misses, p-patches)
	}
}

// stateMessages is Mail.State with the listing as a slice.
func stateMessages(ctx context.Context, mail *sqlstore.Mail, id int64) (mailstore.Mailbox, []mailstore.MessageInfo, error) {
	mb, l, err := mail.State(ctx, id)
	return mb, l.Messages(), err
}

// StateHeard returns the cached view, without a read, when it was read
// after the events the caller heard of; a change whose event this process
// has not read yet is then not in it, and shows once the events are read
// and the caller asks with the later count. Heard 0 reads.
func TestStateHeard(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		env := storetest.NewMailEnv(t, db)
		mail := env.Mail
		m := env.NewMember(t)
		in := env.Box(t, m, "INBOX")
		env.Append(t, in.ID, "Subject: a\r\n\r\na\r\n")
		if _, err := db.EventsAfter(ctx, account.EventPos{}, 1000); err != nil {
			t.Fatal(err)
		}
		heard := mail.Heard()
		if heard == 0 {
			t.Fatal("Heard is 0 after the events were read")
		}
		if _, _, err := mail.State(ctx, in.ID); err != nil {
			t.Fatal(err)
		}

		// Another node appends; this one has not read its event.
		other := storetest.NewMailEnv(t, storetest.OpenOther(t, db))
		other.Append(t, in.ID, "Subject: b\r\n\r\nb\r\n")
		mb, list, err := mail.StateHeard(ctx, in.ID, heard, 0)
		if err != nil || list.Len() != 1 || mb.UIDNext != 2 {
			t.Fatalf("state for what was heard: %d messages, UIDNEXT %d, %v; want the cached 1, 2", list.Len(), mb.UIDNext, err)
		}
		// A caller whose own view is later than the cached one reads.
		if _, list, err := mail.StateHeard(ctx, in.ID, heard, mb.HighestModSeq+1); err != nil || list.Len() != 2 {
			t.Fatalf("state no older than %d: %d messages %v, want 2", mb.HighestModSeq+1, list.Len(), err)
		}
		other.Append(t, in.ID, "Subject: b2\r\n\r\nb2\r\n")
		if _, list, err := mail.StateHeard(ctx, in.ID, 0, 0); err != nil || list.Len() != 3 {
			t.Fatalf("state of everything: %d messages %v, want 3", list.Len(), err)
		}

		// Another change, heard of this time.
		other.Append(t, in.ID, "Subject: c\r\n\r\nc\r\n")
		if _, err := db.EventsAfter(ctx, account.EventPos{}, 1000); err != nil {
			t.Fatal(err)
		}
		if mail.Heard() <= heard {
			t.Fatalf("Heard %d after a read of the events, was %d", mail.Heard(), heard)
		}
		if _, list, err := mail.StateHeard(ctx, in.ID, mail.Heard(), 0); err != nil || list.Len() != 4 {
			t.Fatalf("state for the later events: %d messages %v, want 4", list.Len(), err)
		}
		sameState(t, "after", db, in.ID)
	})
}

// On PostgreSQL State reads the mailbox row alone first, to learn whether
// the view is current, except when this process has read an event of a
// change to the mailbox since the view was read: the view is then patched
// at once, one read instead of two.
func TestStatePatchesAtOnceAfterAnEvent(t *testing.T) {
	db := storetest.OpenPostgres(t)
	ctx := context.Background()
	env := storetest.NewMailEnv(t, db)
	m := env.NewMember(t)
	in := env.Box(t, m, "INBOX")
	env.Append(t, in.ID, "Subject: a\r\n\r\na\r\n")
	if _, _, err := env.Mail.State(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	checks := db.ViewChecks()
	if _, list, err := env.Mail.State(ctx, in.ID); err != nil || list.Len() != 1 {
		t.Fatalf("state: %d messages %v", list.Len(), err)
	}
	if db.ViewChecks() != checks+1 {
		t.Fatalf("State of a view with no event since made %d checks, want 1", db.ViewChecks()-checks)
	}

	other := storetest.NewMailEnv(t, storetest.OpenOther(t, db))
	other.Append(t, in.ID, "Subject: b\r\n\r\nb\r\n")
	if _, err := db.EventsAfter(ctx, account.EventPos{}, 1000); err != nil {
		t.Fatal(err)
	}
	checks = db.ViewChecks()
	if _, list, err := env.Mail.State(ctx, in.ID); err != nil || list.Len() != 2 {
		t.Fatalf("state after the event: %d messages %v, want 2", list.Len(), err)
	}
	if db.ViewChecks() != checks {
		t.Fatalf("State after an event of the mailbox read its row first (%d checks)", db.ViewChecks()-checks)
	}
	sameState(t, "after", db, in.ID)
}
