package imapserver

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/postern/postern/internal/mailstore"
	"github.com/postern/postern/internal/msgindex/mailcorpus"
)

// fillInbox delivers n varied messages to INBOX, a thousand per
// transaction, and marks two in three \Seen.
func fillInbox(b *testing.B, e *env, n int) {
	ctx := context.Background()
	for i := 0; i < n; {
		var ds []mailstore.Delivery
		for ; i < n && len(ds) < 1000; i++ {
			ds = append(ds, mailstore.Delivery{MemberID: e.member.ID, Body: mailcorpus.Varied(1, i)})
		}
		if err := e.mail.DeliverAll(ctx, ds); err != nil {
			b.Fatal(err)
		}
	}
	var seen []uint32
	for uid := uint32(1); uid <= uint32(n); uid++ {
		if uid%3 != 0 {
			seen = append(seen, uid)
		}
	}
	if _, err := e.mail.StoreFlags(ctx, e.inbox(b).ID, seen, mailstore.FlagsAdd, []string{`\Seen`}); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkMailboxOps times issue 16's mailbox operations through the
// IMAP server on one mailbox of 10,000 messages (and of 100,000 with
// POSTERN_BENCH_100K=1; filling it takes minutes), on each engine.
// STATUS is sent from a second connection with nothing selected, as
// bench/mailbox_ops.py does.
func BenchmarkMailboxOps(b *testing.B) {
	sizes := []int{10000}
	if os.Getenv("POSTERN_BENCH_100K") != "" {
		sizes = append(sizes, 100000)
	}
	for _, eng := range []string{"sqlite", "postgres"} {
		for _, n := range sizes {
			b.Run(fmt.Sprintf("%s/%d", eng, n), func(b *testing.B) { mailboxOps(b, eng == "postgres", n) })
		}
	}
}

func mailboxOps(b *testing.B, postgres bool, n int) {
	e := newEnv(b, envOptions{noTailer: true, postgres: postgres})
	fillInbox(b, e, n)
	c := dial(b, e.addr)
	c.login()
	c.ok("S", "SELECT INBOX")
	other := dial(b, e.addr) // nothing selected
	other.login()
	ops := []struct{ name, cmd string }{
		{"select", "SELECT INBOX"},
		{"uid_fetch_flags", "UID FETCH 1:* (UID FLAGS)"},
		{"fetch_last_200", fmt.Sprintf("FETCH %d:%d (ENVELOPE BODYSTRUCTURE RFC822.SIZE INTERNALDATE)", n-199, n)},
		{"search_from", `UID SEARCH FROM "carol"`},
		{"search_body", `UID SEARCH BODY "budget"`},
		{"search_unseen", "UID SEARCH UNSEEN"},
		{"store_1000", `STORE 1:1000 +FLAGS.SILENT (\Seen)` + "\r\nB STORE 1:1000 -FLAGS.SILENT (\\Seen)"},
		{"status", "STATUS INBOX (MESSAGES UNSEEN UIDNEXT)"},
		{"sort_subject", "SORT (SUBJECT) UTF-8 ALL"},
		{"thread_references", "THREAD REFERENCES UTF-8 ALL"},
		{"fetch_preview_200", fmt.Sprintf("FETCH %d:%d (PREVIEW)", n-199, n)},
		// As bench/mailbox_ops.py's rounds: a new connection's SELECT
		// after another session's STORE (untimed).
		{"select_after_store", "SELECT INBOX"},
	}
	for _, op := range ops {
		b.Run(op.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				switch op.name {
				case "store_1000":
					c.ok("A", op.cmd)
					c.until("B")
				case "status":
					other.ok("A", op.cmd)
				case "select_after_store":
					b.StopTimer()
					c.ok("A", `STORE 1:1000 +FLAGS.SILENT (\Seen)`+"\r\nB STORE 1:1000 -FLAGS.SILENT (\\Seen)")
					c.until("B")
					fresh := dial(b, e.addr)
					fresh.login()
					b.StartTimer()
					fresh.ok("A", op.cmd)
					b.StopTimer()
					fresh.c.Close()
					b.StartTimer()
				default:
					c.ok("A", op.cmd)
				}
			}
		})
	}
}
