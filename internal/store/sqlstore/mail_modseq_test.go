package sqlstore_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/postern/postern/internal/mailstore"
	"github.com/postern/postern/internal/store/sqlstore"
	"github.com/postern/postern/internal/store/storetest"
)

// state reads the mailbox with State and checks that HIGHESTMODSEQ covers
// every message's MODSEQ.
func state(t *testing.T, mail *sqlstore.Mail, id int64) (uint64, map[uint32]uint64) {
	t.Helper()
	mb, msgs, err := stateMessages(context.Background(), mail, id)
	if err != nil {
		t.Fatalf("state: %v", err)
	}
	out := map[uint32]uint64{}
	for _, m := range msgs {
		if m.ModSeq == 0 || m.ModSeq > mb.HighestModSeq {
			t.Fatalf("uid %d: modseq %d, highest %d", m.UID, m.ModSeq, mb.HighestModSeq)
		}
		out[m.UID] = m.ModSeq
	}
	return mb.HighestModSeq, out
}

func vanished(t *testing.T, mail *sqlstore.Mail, id int64, since uint64) ([]uint32, bool) {
	t.Helper()
	uids, complete, err := mail.Vanished(context.Background(), id, since)
	if err != nil {
		t.Fatalf("vanished: %v", err)
	}
	return uids, complete
}

// Every change to a mailbox's messages takes a higher mod-sequence, flag
// changes only on the messages whose flags changed, expunges included, and
// the expunged UIDs are remembered with theirs (RFC 7162).
func TestModSeq(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		env := storetest.NewMailEnv(t, db)
		mail := env.Mail
		m := env.NewMember(t)
		in := env.Box(t, m, "INBOX")
		h0, _ := state(t, mail, in.ID)
		for i := 1; i <= 4; i++ {
			env.Append(t, in.ID, fmt.Sprintf("Subject: %d\r\n\r\nx\r\n", i))
		}
		h1, ms := state(t, mail, in.ID)
		if h1 != h0+4 || ms[1] != h0+1 || ms[4] != h0+4 {
			t.Fatalf("after 4 appends: highest %d (was %d), modseqs %v", h1, h0, ms)
		}
		if err := mail.Deliver(ctx, m, []byte("Subject: 5\r\n\r\nx\r\n")); err != nil {
			t.Fatal(err)
		}
		h2, ms := state(t, mail, in.ID)
		if h2 != h1+1 || ms[5] != h2 {
			t.Fatalf("delivery: highest %d, modseqs %v", h2, ms)
		}
		// One STORE is one mod-sequence; unchanged messages keep theirs.
		infos, err := mail.StoreFlags(ctx, in.ID, []uint32{1, 2}, mailstore.FlagsAdd, []string{`\Seen`})
		if err != nil || len(infos) != 2 || infos[0].ModSeq != h2+1 || infos[1].ModSeq != h2+1 {
			t.Fatalf("store: %v %v", infos, err)
		}
		infos, err = mail.StoreFlags(ctx, in.ID, []uint32{1, 3}, mailstore.FlagsAdd, []string{`\Seen`})
		if err != nil || infos[0].ModSeq != h2+1 || infos[1].ModSeq != h2+2 {
			t.Fatalf("store again: %v %v", infos, err)
		}
		h3, ms := state(t, mail, in.ID)
		if h3 != h2+2 || ms[4] != h1 {
			t.Fatalf("after stores: highest %d, modseqs %v", h3, ms)
		}
		if _, err := mail.StoreFlags(ctx, in.ID, []uint32{3}, mailstore.FlagsAdd, []string{`\Seen`}); err != nil {
			t.Fatal(err)
		}
		if h, _ := state(t, mail, in.ID); h != h3 {
			t.Fatalf("a STORE that changed nothing moved HIGHESTMODSEQ %d to %d", h3, h)
		}
		// Expunge: HIGHESTMODSEQ moves, the UIDs are buried at it.
		if _, err := mail.StoreFlags(ctx, in.ID, []uint32{2, 4}, mailstore.FlagsAdd, []string{`\Deleted`}); err != nil {
			t.Fatal(err)
		}
		if gone, err := mail.Expunge(ctx, in.ID, nil); err != nil || !slices.Equal(gone, []uint32{2, 4}) {
			t.Fatalf("expunge: %v %v", gone, err)
		}
		h4, _ := state(t, mail, in.ID)
		if h4 != h3+2 {
			t.Fatalf("expunge: highest %d, want %d", h4, h3+2)
		}
		if uids, complete := vanished(t, mail, in.ID, h3); !complete || !slices.Equal(uids, []uint32{2, 4}) {
			t.Fatalf("vanished since %d: %v %v", h3, uids, complete)
		}
		if uids, complete := vanished(t, mail, in.ID, h4); !complete || len(uids) != 0 {
			t.Fatalf("vanished since %d: %v %v", h4, uids, complete)
		}
		// Copy and move: the arrivals take the destination's next
		// mod-sequence; a move buries its UIDs in the source.
		work := env.Create(t, m, "Work")
		_, dst, _, err := mail.Copy(ctx, in.ID, []uint32{1}, work.ID)
		if err != nil {
			t.Fatal(err)
		}
		wh, wms := state(t, mail, work.ID)
		if wh != work.HighestModSeq+1 || wms[dst[0]] != wh {
			t.Fatalf("copy: highest %d (was %d), modseqs %v", wh, work.HighestModSeq, wms)
		}
		if _, _, _, err := mail.Move(ctx, in.ID, []uint32{3}, work.ID); err != nil {
			t.Fatal(err)
		}
		h5, _ := state(t, mail, in.ID)
		if uids, _ := vanished(t, mail, in.ID, h4); h5 != h4+1 || !slices.Equal(uids, []uint32{3}) {
			t.Fatalf("move: source highest %d, vanished %v", h5, uids)
		}
		if wh2, wms := state(t, mail, work.ID); wh2 != wh+1 || len(wms) != 2 {
			t.Fatalf("move: destination highest %d, modseqs %v", wh2, wms)
		}
		// POP3's Delete buries too.
		if err := mail.Delete(ctx, in.ID, []uint32{5}); err != nil {
			t.Fatal(err)
		}
		if uids, _ := vanished(t, mail, in.ID, h5); !slices.Equal(uids, []uint32{5}) {
			t.Fatalf("delete: vanished %v", uids)
		}
	})
}

// Renaming INBOX moves its messages out: they vanish from INBOX, which
// keeps its UIDVALIDITY, and the new mailbox's HIGHESTMODSEQ covers them.
func TestModSeqRenameInbox(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		env := storetest.NewMailEnv(t, db)
		m := env.NewMember(t)
		in := env.Box(t, m, "INBOX")
		env.Append(t, in.ID, "Subject: a\r\n\r\nx\r\n")
		env.Append(t, in.ID, "Subject: b\r\n\r\nx\r\n")
		h, _ := state(t, env.Mail, in.ID)
		if err := env.Mail.RenameMailbox(ctx, m, "INBOX", "Old"); err != nil {
			t.Fatal(err)
		}
		if uids, complete := vanished(t, env.Mail, in.ID, h); !complete || !slices.Equal(uids, []uint32{1, 2}) {
			t.Fatalf("INBOX vanished: %v %v", uids, complete)
		}
		old := env.Box(t, m, "Old")
		state(t, env.Mail, old.ID) // checks highest ≥ every modseq
	})
}

// UNCHANGEDSINCE: messages changed after it are left alone and reported;
// the test and the change are one step, so of two clients storing with the
// same UNCHANGEDSINCE exactly one wins.
func TestStoreFlagsUnchangedSince(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		env := storetest.NewMailEnv(t, db)
		mail := env.Mail
		m := env.NewMember(t)
		in := env.Box(t, m, "INBOX")
		for i := 0; i < 3; i++ {
			env.Append(t, in.ID, "Subject: x\r\n\r\nx\r\n")
		}
		_, ms := state(t, mail, in.ID)
		// Message 2 changes after ms[2].
		if _, err := mail.StoreFlags(ctx, in.ID, []uint32{2}, mailstore.FlagsAdd, []string{"$Work"}); err != nil {
			t.Fatal(err)
		}
		infos, modified, err := mail.StoreFlagsIf(ctx, in.ID, []uint32{1, 2, 3}, mailstore.FlagsAdd, []string{`\Flagged`}, ms[3])
		if err != nil || !slices.Equal(modified, []uint32{2}) || len(infos) != 2 || infos[0].UID != 1 || infos[1].UID != 3 {
			t.Fatalf("store if: %v %v %v", infos, modified, err)
		}
		list := env.List(t, in.ID)
		if slices.Contains(list[1].Flags, `\Flagged`) || !slices.Contains(list[0].Flags, `\Flagged`) {
			t.Fatalf("flags after: %v", list)
		}
		// UNCHANGEDSINCE 0 is "no condition" to the store (the IMAP layer
		// never passes 0: no mod-sequence is 0).
		if _, modified, err := mail.StoreFlagsIf(ctx, in.ID, []uint32{2}, mailstore.FlagsAdd, []string{`\Seen`}, 0); err != nil || len(modified) != 0 {
			t.Fatalf("no condition: %v %v", modified, err)
		}

		h, _ := state(t, mail, in.ID)
		const n = 8
		var wg sync.WaitGroup
		wins := make(chan int, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				infos, modified, err := mail.StoreFlagsIf(ctx, in.ID, []uint32{1}, mailstore.FlagsAdd, []string{fmt.Sprintf("$K%d", i)}, h)
				if err != nil {
					t.Error(err)
					return
				}
				if len(infos) == 1 && len(modified) == 0 {
					wins <- i
				}
			}(i)
		}
		wg.Wait()
		close(wins)
		var won []int
		for i := range wins {
			won = append(won, i)
		}
		if len(won) != 1 {
			t.Fatalf("%d stores won the same UNCHANGEDSINCE, want 1: %v", len(won), won)
		}
		if flags := env.List(t, in.ID)[0].Flags; !slices.Contains(flags, fmt.Sprintf("$K%d", won[0])) || len(flags) != 2 {
			t.Fatalf("flags of 1: %v (winner %d)", flags, won[0])
		}
	})
}

// Concurrent changes each get their own mod-sequence, every one above the
// HIGHESTMODSEQ before them.
func TestModSeqConcurrent(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		env := storetest.NewMailEnv(t, db)
		mail := env.Mail
		m := env.NewMember(t)
		in := env.Box(t, m, "INBOX")
		const n = 10
		for i := 0; i < n; i++ {
			env.Append(t, in.ID, "Subject: x\r\n\r\nx\r\n")
		}
		h0, _ := state(t, mail, in.ID)
		var wg sync.WaitGroup
		got := make(chan uint64, 2*n)
		for i := 1; i <= n; i++ {
			wg.Add(2)
			go func(uid uint32) {
				defer wg.Done()
				infos, err := mail.StoreFlags(ctx, in.ID, []uint32{uid}, mailstore.FlagsAdd, []string{`\Seen`})
				if err != nil || len(infos) != 1 {
					t.Errorf("store %d: %v %v", uid, infos, err)
					return
				}
				got <- infos[0].ModSeq
			}(uint32(i))
			go func() {
				defer wg.Done()
				uid, err := mail.Append(ctx, in.ID, nil, storetest.EnforcedDate, []byte("Subject: y\r\n\r\ny\r\n"))
				if err != nil {
					t.Errorf("append: %v", err)
					return
				}
				_, ms := state(t, mail, in.ID)
				got <- ms[uid]
			}()
		}
		wg.Wait()
		close(got)
		seen := map[uint64]bool{}
		for v := range got {
			if v <= h0 || seen[v] {
				t.Fatalf("modseq %d reused or not above %d: %v", v, h0, seen)
			}
			seen[v] = true
		}
		if h, _ := state(t, mail, in.ID); h != h0+2*n {
			t.Fatalf("highest %d, want %d", h, h0+2*n)
		}
	})
}

// Tombstones are bounded: past the bound the oldest go, and Vanished says
// so for mod-sequences older than what was kept.
func TestTombstonesPruned(t *testing.T) {
	defer sqlstore.SetMaxTombstones(3)()
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		env := storetest.NewMailEnv(t, db)
		mail := env.Mail
		m := env.NewMember(t)
		in := env.Box(t, m, "INBOX")
		for i := 0; i < 6; i++ {
			env.Append(t, in.ID, "Subject: x\r\n\r\nx\r\n")
		}
		h0, _ := state(t, mail, in.ID)
		var after []uint64 // HIGHESTMODSEQ after each expunge
		for uid := uint32(1); uid <= 5; uid++ {
			if err := mail.Delete(ctx, in.ID, []uint32{uid}); err != nil {
				t.Fatal(err)
			}
			h, _ := state(t, mail, in.ID)
			after = append(after, h)
		}
		if uids, complete := vanished(t, mail, in.ID, h0); complete || !slices.Equal(uids, []uint32{3, 4, 5}) {
			t.Fatalf("since %d: %v complete=%v, want the 3 kept and incomplete", h0, uids, complete)
		}
		if uids, complete := vanished(t, mail, in.ID, after[1]); !complete || !slices.Equal(uids, []uint32{3, 4, 5}) {
			t.Fatalf("since %d: %v complete=%v", after[1], uids, complete)
		}
		if uids, complete := vanished(t, mail, in.ID, after[3]); !complete || !slices.Equal(uids, []uint32{5}) {
			t.Fatalf("since %d: %v complete=%v", after[3], uids, complete)
		}
	})
}

// An expunge counts the tombstones as its statement leaves them and prunes
// after, in a transaction of its own; another session may prune in
// between. Finding none over the bound then is no error: it failed the
// EXPUNGE that had already committed (NO [SERVERBUG] under the imaptest
// stress once a mailbox had buried 10,000 UIDs).
func TestPruneTombstonesAfterAnotherPruned(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		env := storetest.NewMailEnv(t, db)
		m := env.NewMember(t)
		in := env.Box(t, m, "INBOX")
		env.Append(t, in.ID, "Subject: x\r\n\r\nx\r\n", `\Deleted`)
		if _, err := env.Mail.Expunge(ctx, in.ID, nil); err != nil {
			t.Fatal(err)
		}
		if err := db.PruneTombstonesForTest(ctx, in.ID, 20_000); err != nil {
			t.Fatalf("prune with the bound passed by another session's prune: %v", err)
		}
		if uids, complete, err := env.Mail.Vanished(ctx, in.ID, 0); err != nil || !complete || len(uids) != 1 {
			t.Fatalf("tombstones after: %v %v %v, want the one kept", uids, complete, err)
		}
	})
}
