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

// scanCounts totals a mailbox from its messages, as Counts answered before
// migration 0031 kept the counts (Recent left out: Counts still counts it).
func scanCounts(t testing.TB, e *storetest.MailEnv, mailbox int64) mailstore.Counts {
	t.Helper()
	var c mailstore.Counts
	for _, m := range e.List(t, mailbox) {
		c.Messages++
		c.Size += m.Size
		if !slices.Contains(m.Flags, `\Seen`) {
			c.Unseen++
		}
		if slices.Contains(m.Flags, `\Deleted`) {
			c.Deleted++
			c.DeletedSize += m.Size
		}
	}
	return c
}

// checkCounts fails unless Counts agrees with the messages of each mailbox.
func checkCounts(t testing.TB, e *storetest.MailEnv, mail mailstore.Store, what string, mailboxes ...int64) {
	t.Helper()
	for _, mb := range mailboxes {
		got, err := mail.Counts(context.Background(), mb)
		if err != nil {
			t.Fatalf("%s: counts of %d: %v", what, mb, err)
		}
		got.Recent = 0
		if want := scanCounts(t, e, mb); got != want {
			t.Errorf("%s: mailbox %d counts %+v, the messages give %+v", what, mb, got, want)
		}
	}
}

// TestMailboxCounts: the counts STATUS reads (mailbox_counts, kept by
// triggers) follow every way messages are added, flagged, moved and
// removed, on both engines.
func TestMailboxCounts(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		e := storetest.NewMailEnv(t, db)
		m := e.NewMember(t)
		in := e.Box(t, m, "INBOX")
		other := e.Create(t, m, "Other")
		all := func(what string) { t.Helper(); checkCounts(t, e, e.Mail, what, in.ID, other.ID) }
		all("empty")
		for i := range 12 {
			var flags []string
			switch i % 4 {
			case 1:
				flags = []string{`\Seen`}
			case 2:
				flags = []string{`\Deleted`, `\Seen`}
			case 3:
				flags = []string{`$Label1`, `\Deleted`}
			}
			e.Append(t, in.ID, fmt.Sprintf("Subject: %d\r\n\r\n%s\r\n", i, make([]byte, i*10)), flags...)
		}
		all("append")
		if err := e.Mail.DeliverAll(ctx, []mailstore.Delivery{{MemberID: m, Body: []byte("Subject: d\r\n\r\nx\r\n")}, {MemberID: m, Body: []byte("Subject: e\r\n\r\nyy\r\n")}}); err != nil {
			t.Fatal(err)
		}
		msgs := []mailstore.NewMessage{{Body: []byte("Subject: m\r\n\r\n1\r\n")}, {Flags: []string{`\Seen`, `\Flagged`}, Body: []byte("Subject: n\r\n\r\n22\r\n")}}
		if _, err := e.Mail.AppendMany(ctx, other.ID, msgs); err != nil {
			t.Fatal(err)
		}
		all("deliver, append many")
		for _, op := range []struct {
			op    mailstore.FlagOp
			flags []string
			uids  []uint32
		}{
			{mailstore.FlagsAdd, []string{`\Seen`}, []uint32{1, 2, 3, 4, 5}},
			{mailstore.FlagsRemove, []string{`\Seen`}, []uint32{2, 6, 7}},
			{mailstore.FlagsSet, []string{`\Deleted`, `\Flagged`}, []uint32{8, 9}},
			{mailstore.FlagsAdd, []string{`\Flagged`}, []uint32{1, 10, 11}}, // neither \Seen nor \Deleted
			{mailstore.FlagsRemove, []string{`\Deleted`}, []uint32{3}},
		} {
			if _, err := e.Mail.StoreFlags(ctx, in.ID, op.uids, op.op, op.flags); err != nil {
				t.Fatal(err)
			}
			all(fmt.Sprintf("store %v %v", op.op, op.flags))
		}
		if _, _, _, err := e.Mail.Copy(ctx, in.ID, []uint32{1, 2, 3, 7}, other.ID); err != nil {
			t.Fatal(err)
		}
		all("copy")
		if _, _, _, err := e.Mail.Move(ctx, in.ID, []uint32{4, 5, 8}, other.ID); err != nil {
			t.Fatal(err)
		}
		all("move")
		if _, err := e.Mail.Expunge(ctx, in.ID, nil); err != nil {
			t.Fatal(err)
		}
		all("expunge")
		if err := e.Mail.Delete(ctx, in.ID, []uint32{1, 2}); err != nil {
			t.Fatal(err)
		}
		all("delete")
		if err := e.Mail.RenameMailbox(ctx, m, "INBOX", "Renamed"); err != nil {
			t.Fatal(err)
		}
		renamed := e.Box(t, m, "Renamed")
		newInbox := e.Box(t, m, "INBOX")
		checkCounts(t, e, e.Mail, "rename INBOX", renamed.ID, newInbox.ID, other.ID)
		if err := e.Mail.DeleteMailbox(ctx, m, "Other"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Mail.Counts(ctx, other.ID); err == nil {
			t.Error("counts of a deleted mailbox: no error")
		}
		checkCounts(t, e, e.Mail, "delete mailbox", renamed.ID, newInbox.ID)
	})
}

// TestMailboxCountsConcurrent: sessions appending, flagging, expunging and
// moving in two mailboxes at once leave the counts as the messages are.
func TestMailboxCountsConcurrent(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		e := storetest.NewMailEnv(t, db)
		m := e.NewMember(t)
		boxes := []int64{e.Box(t, m, "INBOX").ID, e.Create(t, m, "Other").ID}
		for _, b := range boxes {
			for i := range 40 {
				e.Append(t, b, fmt.Sprintf("Subject: %d\r\n\r\nbody\r\n", i))
			}
		}
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for w := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				src, dst := boxes[w%2], boxes[(w+1)%2]
				for i := range 15 {
					uids := []uint32{uint32(1 + (w*7+i*3)%40), uint32(1 + (w*5+i)%40)}
					var err error
					switch (w + i) % 5 {
					case 0:
						_, err = e.Mail.Append(ctx, src, []string{`\Seen`}, time.Now(), []byte("Subject: c\r\n\r\nxyz\r\n"))
					case 1:
						_, err = e.Mail.StoreFlags(ctx, src, uids, mailstore.FlagsAdd, []string{`\Seen`, `\Deleted`})
					case 2:
						_, err = e.Mail.StoreFlags(ctx, src, uids, mailstore.FlagsRemove, []string{`\Seen`})
					case 3:
						_, err = e.Mail.Expunge(ctx, src, nil)
					case 4:
						_, _, _, err = e.Mail.Move(ctx, src, uids, dst)
					}
					if err != nil {
						errs <- fmt.Errorf("worker %d step %d: %w", w, i, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		checkCounts(t, e, e.Mail, "after the concurrent changes", boxes...)
	})
}

// TestMailboxCountsMigration: migration 0031 counts what a database of
// 0030 holds (no counts table, no triggers), and the counts then follow
// the changes made after it.
func TestMailboxCountsMigration(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		e := storetest.NewMailEnv(t, db)
		m := e.NewMember(t)
		in := e.Box(t, m, "INBOX")
		other := e.Create(t, m, "Other")
		empty := e.Create(t, m, "Empty")
		for i := range 10 {
			e.Append(t, in.ID, fmt.Sprintf("Subject: %d\r\n\r\n%d\r\n", i, i*i))
		}
		drop := []string{`DROP TABLE mailbox_counts`}
		if db.Dialect == sqlstore.Postgres {
			drop = append(drop, `DROP FUNCTION mailbox_counts_new_mailbox, mailbox_counts_insert, mailbox_counts_delete, mailbox_counts_update CASCADE`)
		} else {
			for _, tr := range []string{"new_mailbox", "insert", "delete", "update", "move"} {
				drop = append(drop, `DROP TRIGGER mailbox_counts_`+tr)
			}
		}
		for _, q := range append(drop, `DELETE FROM schema_migrations WHERE name = '0031_mailbox_counts.sql'`) {
			if _, err := db.SQL.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		// Changes made by 0030's schema, which keeps no counts.
		if _, err := e.Mail.StoreFlags(ctx, in.ID, []uint32{1, 2, 3}, mailstore.FlagsAdd, []string{`\Seen`}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Mail.StoreFlags(ctx, in.ID, []uint32{3, 4}, mailstore.FlagsAdd, []string{`\Deleted`}); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := e.Mail.Copy(ctx, in.ID, []uint32{2, 3, 5}, other.ID); err != nil {
			t.Fatal(err)
		}
		late := e.Create(t, m, "Late")
		e.Append(t, late.ID, "Subject: late\r\n\r\nx\r\n", `\Seen`)

		re, err := sqlstore.Open(ctx, db.DSN)
		if err != nil {
			t.Fatal(err)
		}
		defer re.Close()
		mail := re.Mail()
		checkCounts(t, e, mail, "migrated", in.ID, other.ID, empty.ID, late.ID)
		if _, err := mail.Expunge(ctx, in.ID, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := mail.Append(ctx, empty.ID, nil, time.Now(), []byte("Subject: new\r\n\r\nnew\r\n")); err != nil {
			t.Fatal(err)
		}
		created, err := mail.CreateMailbox(ctx, m, "Created", "")
		if err != nil {
			t.Fatal(err)
		}
		checkCounts(t, e, mail, "changed after the migration", in.ID, other.ID, empty.ID, late.ID, created.ID)
	})
}
