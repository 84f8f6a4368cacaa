package sqlstore_test

import (
	"context"
	"testing"

	"github.com/postern/postern/internal/mailstore"
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
			// As autovacuum leaves a PostgreSQL table.
			for _, q := range []string{"VACUUM", "ANALYZE"} {
				if _, err := e.DB.SQL.ExecContext(ctx, q); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				if q, err := e.Mail.Quota(ctx, m); err != nil || q.Used != 20000*10<<10 {
					b.Fatalf("usage %d, %v", q.Used, err)
				}
			}
		})
	}
}
