package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/postern/postern/internal/mailstore"
	"github.com/postern/postern/internal/msgindex/mailcorpus"
	"github.com/postern/postern/internal/store/sqlstore"
	"github.com/postern/postern/internal/store/storetest"
)

// BenchmarkMailUsage measures the quota's read (Mail.Quota), run for every
// recipient of every message and every APPEND, for a member with 20,000
// messages of 10 KiB, 200 MiB: a counter, so the same at any size.
func BenchmarkMailUsage(b *testing.B) {
	for _, eng := range storetest.AllEngines {
		b.Run(eng.Name, func(b *testing.B) {
			e := storetest.NewMailEnv(b, eng.Open(b))
			m := e.NewMember(b)
			ctx := context.Background()
			body := make([]byte, 10<<10)
			ds := make([]mailstore.Delivery, 1000)
			for i := range ds {
				ds[i] = mailstore.Delivery{MemberID: m, Body: body, Junk: i%10 == 0}
			}
			for range 20 {
				if err := e.Mail.DeliverAll(ctx, ds); err != nil {
					b.Fatal(err)
				}
			}
			vacuum(b, e.DB)
			b.ReportAllocs()
			for b.Loop() {
				if q, err := e.Mail.Quota(ctx, m); err != nil || q.Used != 20000*10<<10 {
					b.Fatalf("usage %d, %v", q.Used, err)
				}
			}
		})
	}
}

// BenchmarkState measures State (SELECT and a session's re-read) on a
// mailbox of 10,000 messages: unchanged since the last State ("cached"),
// after one flag change ("one_change"), and read whole ("whole", the
// view cache emptied each time).
func BenchmarkState(b *testing.B) {
	for _, eng := range storetest.AllEngines {
		b.Run(eng.Name, func(b *testing.B) {
			db := eng.Open(b)
			e := storetest.NewMailEnv(b, db)
			m := e.NewMember(b)
			ctx := context.Background()
			msgs := make([]mailstore.NewMessage, 1000)
			for i := range msgs {
				msgs[i] = mailstore.NewMessage{Flags: []string{`\Seen`}, Body: []byte("Subject: x\r\n\r\nbody\r\n")}
			}
			in := e.Box(b, m, "INBOX")
			for range 10 {
				if _, err := e.Mail.AppendMany(ctx, in.ID, msgs); err != nil {
					b.Fatal(err)
				}
			}
			vacuum(b, db)
			state := func(b *testing.B) {
				if _, msgs, err := stateMessages(ctx, e.Mail, in.ID); err != nil || len(msgs) != 10000 {
					b.Fatalf("%d messages, %v", len(msgs), err)
				}
			}
			b.Run("cached", func(b *testing.B) {
				state(b) // the view to use
				b.ReportAllocs()
				for b.Loop() {
					state(b)
				}
			})
			b.Run("one_change", func(b *testing.B) {
				b.ReportAllocs()
				flagged := false
				for b.Loop() {
					b.StopTimer()
					flagged = !flagged
					op := mailstore.FlagsRemove
					if flagged {
						op = mailstore.FlagsAdd
					}
					if _, err := e.Mail.StoreFlags(ctx, in.ID, []uint32{5000}, op, []string{`\Flagged`}); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					state(b)
				}
			})
			b.Run("whole", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					db.SetViewBudget(1 << 20)
					state(b)
				}
			})
		})
	}
}

// BenchmarkMailIndex measures the message index's reads on a mailbox of
// 10,000 varied messages (mailcorpus.Varied, as the IMAP benchmark's):
// FETCH's items of the last 200 messages (Indexes with fetch), the keys
// of every message (SORT and THREAD), and SEARCH FROM and BODY.
func BenchmarkMailIndex(b *testing.B) {
	const n = 10000
	for _, eng := range storetest.AllEngines {
		b.Run(eng.Name, func(b *testing.B) {
			db := eng.Open(b)
			e := storetest.NewMailEnv(b, db)
			m := e.NewMember(b)
			ctx := context.Background()
			for i := 0; i < n; {
				var ds []mailstore.Delivery
				for ; i < n && len(ds) < 1000; i++ {
					ds = append(ds, mailstore.Delivery{MemberID: m, Body: mailcorpus.Varied(1, i)})
				}
				if err := e.Mail.DeliverAll(ctx, ds); err != nil {
					b.Fatal(err)
				}
			}
			vacuum(b, db)
			in := e.Box(b, m, "INBOX")
			list := e.List(b, in.ID)
			var last []int64
			for _, msg := range list[len(list)-200:] {
				last = append(last, msg.ID)
			}
			b.Run("fetch_last_200", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if x, err := e.Mail.Indexes(ctx, in.ID, last, true); err != nil || len(x) != 200 {
						b.Fatalf("%d indexes, %v", len(x), err)
					}
				}
			})
			b.Run("keys_all", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if x, err := e.Mail.Indexes(ctx, in.ID, nil, false); err != nil || len(x) != n {
						b.Fatalf("%d indexes, %v", len(x), err)
					}
				}
			})
			for _, s := range []struct {
				name  string
				field mailstore.SearchField
				value string
			}{{"search_from", mailstore.SearchFrom, "carol"}, {"search_body", mailstore.SearchBody, "budget"}} {
				b.Run(s.name, func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						if uids, err := e.Mail.SearchIndex(ctx, in.ID, s.field, s.value); err != nil || len(uids) == 0 {
							b.Fatalf("%d found, %v", len(uids), err)
						}
					}
				})
			}
		})
	}
}

// vacuum leaves db's tables as autovacuum leaves PostgreSQL's: compacted,
// with planner statistics.
func vacuum(b *testing.B, db *sqlstore.DB) {
	for _, q := range []string{"VACUUM", "ANALYZE"} {
		if _, err := db.SQL.ExecContext(context.Background(), q); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStoreFlags measures STORE +FLAGS then -FLAGS (\Seen) on 1,000
// messages of a 1,000-message mailbox, the mailbox-operations figure of
// docs/benchmarks.md: on PostgreSQL a lock-and-read and one write.
func BenchmarkStoreFlags(b *testing.B) {
	eachInbox(b, func(b *testing.B, e *storetest.MailEnv, in mailstore.Mailbox) {
		ctx := context.Background()
		msgs := make([]mailstore.NewMessage, 1000)
		uids := make([]uint32, len(msgs))
		for i := range msgs {
			msgs[i] = mailstore.NewMessage{Body: []byte("Subject: x\r\n\r\nbody\r\n")}
			uids[i] = uint32(i + 1)
		}
		if _, err := e.Mail.AppendMany(ctx, in.ID, msgs); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			for _, op := range []mailstore.FlagOp{mailstore.FlagsAdd, mailstore.FlagsRemove} {
				if infos, err := e.Mail.StoreFlags(ctx, in.ID, uids, op, []string{`\Seen`}); err != nil || len(infos) != 1000 {
					b.Fatalf("%d, %v", len(infos), err)
				}
			}
		}
	})
}

// BenchmarkAppend measures one APPEND of a small message with its commit
// (on PostgreSQL one statement, outside a transaction).
func BenchmarkAppend(b *testing.B) {
	eachInbox(b, func(b *testing.B, e *storetest.MailEnv, in mailstore.Mailbox) {
		ctx := context.Background()
		body := []byte("From: a@example.com\r\nSubject: x\r\n\r\nbody\r\n")
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.Mail.Append(ctx, in.ID, []string{`\Seen`}, time.Time{}, body); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// eachInbox runs fn on each engine with a new member's INBOX.
func eachInbox(b *testing.B, fn func(b *testing.B, e *storetest.MailEnv, in mailstore.Mailbox)) {
	for _, eng := range storetest.AllEngines {
		b.Run(eng.Name, func(b *testing.B) {
			e := storetest.NewMailEnv(b, eng.Open(b))
			fn(b, e, e.Box(b, e.NewMember(b), "INBOX"))
		})
	}
}
