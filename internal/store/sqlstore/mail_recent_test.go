package sqlstore_test

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/internal/store/sqlstore"
	"github.com/postern/postern/internal/store/storetest"
)

// \Recent claims (RFC 3501 §2.3.2): each UID is claimed by one caller only,
// even when many claim at once while messages arrive; a claim reports what
// it took, Mailbox, State and Counts show the horizon it left, and a new
// mailbox starts with every message recent.
func TestClaimRecent(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		env := storetest.NewMailEnv(t, db)
		mail := env.Mail
		m := env.NewMember(t)
		in := env.Box(t, m, "INBOX")
		if in.RecentUID != 1 {
			t.Fatalf("new INBOX: RecentUID %d, want 1", in.RecentUID)
		}
		for range 3 {
			env.Append(t, in.ID, "Subject: x\r\n\r\nx\r\n")
		}
		if c, err := mail.Counts(ctx, in.ID); err != nil || c.Recent != 3 {
			t.Fatalf("counts before a claim: %+v %v", c, err)
		}
		first, next, err := mail.ClaimRecent(ctx, in)
		if err != nil || first != 1 || next != 4 {
			t.Fatalf("first claim: [%d, %d) %v, want [1, 4)", first, next, err)
		}
		if first, next, err := mail.ClaimRecent(ctx, in); err != nil || first != next {
			t.Fatalf("second claim took [%d, %d) %v, want nothing", first, next, err)
		}
		mb, _, err := stateMessages(ctx, mail, in.ID)
		if err != nil || mb.RecentUID != 4 {
			t.Fatalf("state after the claim: RecentUID %d %v, want 4", mb.RecentUID, err)
		}
		if mb := env.Box(t, m, "INBOX"); mb.RecentUID != 4 {
			t.Fatalf("mailbox after the claim: RecentUID %d, want 4", mb.RecentUID)
		}
		if c, err := mail.Counts(ctx, in.ID); err != nil || c.Recent != 0 {
			t.Fatalf("counts after the claim: %+v %v", c, err)
		}

		// Claims racing with appends: every UID claimed exactly once.
		const n = 8
		claimed := make(chan [2]uint32, 4*n)
		var wg sync.WaitGroup
		for range n {
			wg.Add(2)
			go func() {
				defer wg.Done()
				if _, err := mail.Append(ctx, in.ID, nil, storetest.EnforcedDate, []byte("Subject: y\r\n\r\ny\r\n")); err != nil {
					t.Errorf("append: %v", err)
				}
			}()
			go func() {
				defer wg.Done()
				for range 3 {
					mb, _, err := mail.State(ctx, in.ID)
					if err != nil {
						t.Errorf("state: %v", err)
						return
					}
					first, next, err := mail.ClaimRecent(ctx, mb)
					if err != nil {
						t.Errorf("claim: %v", err)
						return
					}
					claimed <- [2]uint32{first, next}
				}
			}()
		}
		wg.Wait()
		last, _, err := mail.State(ctx, in.ID)
		if err != nil {
			t.Fatal(err)
		}
		first, next, err = mail.ClaimRecent(ctx, last)
		if err != nil {
			t.Fatal(err)
		}
		claimed <- [2]uint32{first, next}
		close(claimed)
		seen := map[uint32]bool{}
		for r := range claimed {
			for u := r[0]; u < r[1]; u++ {
				if seen[u] {
					t.Fatalf("UID %d claimed twice", u)
				}
				seen[u] = true
			}
		}
		for u := uint32(4); u < 4+n; u++ {
			if !seen[u] {
				t.Fatalf("UID %d never claimed: %v", u, seen)
			}
		}
		if len(seen) != n {
			t.Fatalf("claimed %v, want UIDs 4 to %d", seen, 3+n)
		}
	})
}

// On PostgreSQL a claim does not wait for a change in progress on the
// mailbox (which holds the mailbox row until its commit is on disk), and
// claims only what is committed: the change's UID stays for a later claim.
func TestClaimRecentBesideLockedMailbox(t *testing.T) {
	db := storetest.OpenPostgres(t)
	ctx := context.Background()
	env := storetest.NewMailEnv(t, db)
	m := env.NewMember(t)
	in := env.Box(t, m, "INBOX")
	env.Append(t, in.ID, "Subject: x\r\n\r\nx\r\n")

	// The other node, in the middle of an APPEND: the mailbox row locked,
	// UID 2 handed out, nothing committed.
	other := storetest.OpenOther(t, db)
	tx, err := other.SQL.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `UPDATE mailboxes SET uid_next = uid_next + 1, highest_modseq = highest_modseq + 1 WHERE id = $1`, in.ID); err != nil {
		t.Fatal(err)
	}

	type result struct {
		first, next uint32
		err         error
	}
	done := make(chan result, 1)
	go func() {
		first, next, err := db.Mail().ClaimRecent(ctx, in)
		done <- result{first, next, err}
	}()
	var r result
wait:
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		select {
		case r = <-done:
			break wait
		default:
		}
		var waiting int
		if err := other.SQL.QueryRowContext(ctx, `SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database() AND query LIKE '%mailbox_recent%'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			t.Fatal("the claim waits for the lock of the change in progress")
		}
		if time.Now().After(deadline) {
			t.Fatal("the claim never returned")
		}
	}
	if r.err != nil || r.first != 1 || r.next != 2 {
		t.Fatalf("claim beside the change: [%d, %d) %v, want [1, 2)", r.first, r.next, r.err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if first, next, err := db.Mail().ClaimRecent(ctx, in); err != nil || first != 2 || next != 3 {
		t.Fatalf("claim after the commit: [%d, %d) %v, want [2, 3)", first, next, err)
	}
}

// Bodies reads the raw messages of the ids that exist, in one statement
// per chunk, on both engines.
func TestBodiesByID(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		env := storetest.NewMailEnv(t, db)
		m := env.NewMember(t)
		in := env.Box(t, m, "INBOX")
		for i := 1; i <= 3; i++ {
			env.Append(t, in.ID, fmt.Sprintf("Subject: %d\r\n\r\nx\r\n", i))
		}
		list := env.List(t, in.ID)
		want := map[int64]string{list[0].ID: "Subject: 1\r\n\r\nx\r\n", list[2].ID: "Subject: 3\r\n\r\nx\r\n"}
		got := map[int64]string{}
		err := env.Mail.Bodies(ctx, []int64{list[2].ID, list[0].ID, list[2].ID + 1000}, func(id int64, body []byte) error {
			got[id] = string(body)
			return nil
		})
		if err != nil || !maps.Equal(got, want) {
			t.Fatalf("bodies: %v %v, want %v", got, err, want)
		}
	})
}

// A claim for UIDs this process's sessions have claimed already asks the
// database nothing: every session of a mailbox claims after each arrival,
// and all but the first would otherwise each spend a write that fails and
// a read. Shown with the mailbox's claim row locked elsewhere, where a
// claim that went to the database would wait.
func TestClaimRecentKnownClaimedAsksNothing(t *testing.T) {
	db := storetest.OpenPostgres(t)
	ctx := context.Background()
	env := storetest.NewMailEnv(t, db)
	m := env.NewMember(t)
	in := env.Box(t, m, "INBOX")
	env.Append(t, in.ID, "Subject: x\r\n\r\nx\r\n")
	env.Append(t, in.ID, "Subject: y\r\n\r\ny\r\n")
	mb, _, err := env.Mail.State(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if first, next, err := env.Mail.ClaimRecent(ctx, mb); err != nil || first != 1 || next != 3 {
		t.Fatalf("first claim: [%d, %d) %v, want [1, 3)", first, next, err)
	}

	other := storetest.OpenOther(t, db)
	tx, err := other.SQL.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT 1 FROM mailbox_recent WHERE mailbox_id = $1 FOR UPDATE`, in.ID); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	first, next, err := env.Mail.ClaimRecent(short, mb) // the same reading of the mailbox, as a second session's
	if err != nil || first != next {
		t.Fatalf("second claim: [%d, %d) %v, want nothing, at once", first, next, err)
	}
}
