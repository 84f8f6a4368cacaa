package sqlstore_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/internal/mailstore"
	"github.com/postern/postern/internal/store/sqlstore"
	"github.com/postern/postern/internal/store/storetest"
)

// Changes racing on one mailbox, on both engines (on PostgreSQL written
// together, several in one pipeline: groupwrite.go): UIDs and
// mod-sequences are never handed out twice, a reader never sees a UID
// before every lower one is committed (with no expunge, a view is always
// 1..UIDNEXT-1), and UIDNEXT and HIGHESTMODSEQ never go back.
func TestConcurrentChangesOrdered(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		concurrentChanges(t, db)
		if db.Dialect == sqlstore.Postgres {
			if pipelines, statements := db.GroupWrites(); statements <= pipelines {
				t.Fatalf("%d pipelines of %d statements: the racing changes were never written together", pipelines, statements)
			}
		}
	})
}

func concurrentChanges(t *testing.T, db *sqlstore.DB) {
	ctx := context.Background()
	env := storetest.NewMailEnv(t, db)
	mail := env.Mail
	m := env.NewMember(t)
	in := env.Box(t, m, "INBOX")

	const writers, each = 6, 12
	var mu sync.Mutex
	uids := map[uint32]bool{}
	modseqs := map[uint64]bool{}
	stop := make(chan struct{})
	errs := make(chan error, writers+2)

	// Readers: views gap-free and consistent, never going back.
	var readers sync.WaitGroup
	for range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			var lastNext uint32
			var lastHighest uint64
			for {
				select {
				case <-stop:
					return
				default:
				}
				mb, msgs, err := stateMessages(ctx, mail, in.ID)
				if err != nil {
					errs <- err
					return
				}
				if mb.UIDNext < lastNext || mb.HighestModSeq < lastHighest {
					errs <- fmt.Errorf("went back: UIDNEXT %d after %d, HIGHESTMODSEQ %d after %d", mb.UIDNext, lastNext, mb.HighestModSeq, lastHighest)
					return
				}
				lastNext, lastHighest = mb.UIDNext, mb.HighestModSeq
				if int(mb.UIDNext) != len(msgs)+1 {
					errs <- fmt.Errorf("view of %d messages with UIDNEXT %d", len(msgs), mb.UIDNext)
					return
				}
				for i, msg := range msgs {
					if msg.UID != uint32(i+1) {
						errs <- fmt.Errorf("view has UID %d at %d: a UID seen before a lower one was committed", msg.UID, i+1)
						return
					}
					if msg.ModSeq > mb.HighestModSeq {
						errs <- fmt.Errorf("UID %d at MODSEQ %d above HIGHESTMODSEQ %d", msg.UID, msg.ModSeq, mb.HighestModSeq)
						return
					}
				}
			}
		}()
	}

	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				uid, err := mail.Append(ctx, in.ID, nil, time.Time{}, fmt.Appendf(nil, "Subject: %d-%d\r\n\r\nx\r\n", w, i))
				if err != nil {
					errs <- err
					return
				}
				// State reads after the call, even when shared with
				// other sessions' (the change is in the listing).
				if mb, msgs, err := stateMessages(ctx, mail, in.ID); err != nil || mb.UIDNext <= uid || len(msgs) < int(uid) || msgs[uid-1].UID != uid {
					errs <- fmt.Errorf("state after appending UID %d: UIDNEXT %d, %d messages, %v", uid, mb.UIDNext, len(msgs), err)
					return
				}
				infos, err := mail.StoreFlags(ctx, in.ID, []uint32{uid}, mailstore.FlagsAdd, []string{`\Flagged`})
				if err != nil || len(infos) != 1 {
					errs <- fmt.Errorf("store %d: %v %v", uid, infos, err)
					return
				}
				if mb, msgs, err := stateMessages(ctx, mail, in.ID); err != nil || mb.HighestModSeq < infos[0].ModSeq || msgs[uid-1].ModSeq < infos[0].ModSeq {
					errs <- fmt.Errorf("state after STORE at MODSEQ %d: HIGHESTMODSEQ %d, %v", infos[0].ModSeq, mb.HighestModSeq, err)
					return
				}
				mu.Lock()
				if uids[uid] || modseqs[infos[0].ModSeq] {
					mu.Unlock()
					errs <- fmt.Errorf("UID %d or MODSEQ %d handed out twice", uid, infos[0].ModSeq)
					return
				}
				uids[uid], modseqs[infos[0].ModSeq] = true, true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(uids) != writers*each {
		t.Fatalf("%d UIDs, want %d", len(uids), writers*each)
	}

	// Expunges racing with appends: UIDs keep rising, none comes back.
	if _, err := mail.StoreFlags(ctx, in.ID, nil, mailstore.FlagsAdd, []string{`\Deleted`}); err != nil {
		t.Fatal(err)
	}
	before, _, err := stateMessages(ctx, mail, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	var got [][]uint32
	errs = make(chan error, 8)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []uint32
			for i := range each {
				if w == 0 && i%3 == 0 {
					if _, err := mail.Expunge(ctx, in.ID, nil); err != nil {
						errs <- err
						return
					}
					continue
				}
				uid, err := mail.Append(ctx, in.ID, nil, time.Time{}, []byte("Subject: y\r\n\r\ny\r\n"))
				if err != nil {
					errs <- err
					return
				}
				if len(mine) > 0 && uid <= mine[len(mine)-1] {
					errs <- fmt.Errorf("UID %d after %d", uid, mine[len(mine)-1])
					return
				}
				mine = append(mine, uid)
			}
			mu.Lock()
			got = append(got, mine)
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[uint32]bool{}
	for _, mine := range got {
		for _, u := range mine {
			if u < before.UIDNext || seen[u] {
				t.Fatalf("UID %d reused (UIDNEXT was %d before)", u, before.UIDNext)
			}
			seen[u] = true
		}
	}
	mb, msgs, err := stateMessages(ctx, mail, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	fmb, full, err := db.FullStateForTest(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if mb.HighestModSeq != fmb.HighestModSeq || mb.UIDNext != fmb.UIDNext || len(msgs) != len(full) {
		t.Fatalf("cached state %+v (%d messages), read whole %+v (%d)", mb, len(msgs), fmb, len(full))
	}
	for i := range msgs {
		if msgs[i].UID != full[i].UID || msgs[i].ModSeq != full[i].ModSeq || !slices.Equal(msgs[i].Flags, full[i].Flags) {
			t.Fatalf("cached %+v, read whole %+v", msgs[i], full[i])
		}
	}
}

// durable makes every commit made before it reach the disk, one made
// without waiting for the flush included.
func TestDurableFlushesEarlierCommits(t *testing.T) {
	db := storetest.OpenPostgres(t)
	ctx := context.Background()
	env := storetest.NewMailEnv(t, db)
	in := env.Box(t, env.NewMember(t), "INBOX")
	async := db.EphemeralForTest()
	if _, err := async.ExecContext(ctx, `UPDATE mailboxes SET subscribed = NOT subscribed WHERE id = $1`, in.ID); err != nil {
		t.Fatal(err)
	}
	var lsn string
	if err := async.QueryRowContext(ctx, `SELECT pg_current_wal_insert_lsn()::text`).Scan(&lsn); err != nil {
		t.Fatal(err)
	}
	if err := db.DurableForTest(ctx); err != nil {
		t.Fatal(err)
	}
	var flushed bool
	if err := db.SQL.QueryRowContext(ctx, `SELECT pg_current_wal_flush_lsn() >= $1::pg_lsn`, lsn).Scan(&flushed); err != nil || !flushed {
		t.Fatalf("WAL flushed up to %s: %v %v", lsn, flushed, err)
	}
}

// A change committed by another node without waiting for the flush is
// shown only once it is on disk: State waits for a flush when it reads a
// HIGHESTMODSEQ this process does not know durable, and not again after.
// A change made through db.async waits for the flush before it returns.
func TestReadsWaitForTheFlushOfWhatTheyShow(t *testing.T) {
	db := storetest.OpenPostgres(t)
	ctx := context.Background()
	env := storetest.NewMailEnv(t, db)
	mail := env.Mail
	in := env.Box(t, env.NewMember(t), "INBOX")
	env.Append(t, in.ID, "Subject: a\r\n\r\na\r\n")
	if _, _, err := stateMessages(ctx, mail, in.ID); err != nil {
		t.Fatal(err)
	}

	async := db.EphemeralForTest()
	if _, err := async.ExecContext(ctx, `WITH mb AS (
		UPDATE mailboxes SET highest_modseq = highest_modseq + 1 WHERE id = $1 RETURNING highest_modseq
	) UPDATE mail_messages SET flags = '\Seen', modseq = mb.highest_modseq FROM mb WHERE mailbox_id = $1`, in.ID); err != nil {
		t.Fatal(err)
	}
	var lsn string
	if err := async.QueryRowContext(ctx, `SELECT pg_current_wal_insert_lsn()::text`).Scan(&lsn); err != nil {
		t.Fatal(err)
	}
	rounds := db.FlushRounds()
	_, msgs, err := stateMessages(ctx, mail, in.ID)
	if err != nil || len(msgs) != 1 || !slices.Contains(msgs[0].Flags, `\Seen`) {
		t.Fatalf("state: %+v %v", msgs, err)
	}
	if db.FlushRounds() == rounds {
		t.Fatal("State showed a change not known durable without a flush")
	}
	var flushed bool
	if err := db.SQL.QueryRowContext(ctx, `SELECT pg_current_wal_flush_lsn() >= $1::pg_lsn`, lsn).Scan(&flushed); err != nil || !flushed {
		t.Fatalf("WAL flushed up to %s: %v %v", lsn, flushed, err)
	}
	rounds = db.FlushRounds()
	if _, _, err := stateMessages(ctx, mail, in.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := mail.Mailbox(ctx, in.MemberID, "INBOX"); err != nil {
		t.Fatal(err)
	}
	if db.FlushRounds() != rounds {
		t.Fatal("a read of what is known durable waited for a flush")
	}

	// One's own change commits with the flush (group writes on the main
	// settings: synchronous_commit on), and the state after it needs none.
	var sync string
	if err := db.PlannedForTest().QueryRowContext(ctx, `SHOW synchronous_commit`).Scan(&sync); err != nil || sync != "on" {
		t.Fatalf("group writes' pool: synchronous_commit %q, %v", sync, err)
	}
	env.Append(t, in.ID, "Subject: b\r\n\r\nb\r\n")
	if _, _, err := stateMessages(ctx, mail, in.ID); err != nil {
		t.Fatal(err)
	}
	if db.FlushRounds() != rounds {
		t.Fatal("the state after one's own change waited for another flush")
	}
}
