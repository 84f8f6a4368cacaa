package sqlstore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/store/sqlstore"
	"github.com/postern/postern/internal/store/storetest"
)

// BenchmarkVerifyAppPassword measures the third-party login hot path:
// Service.Verify of a correct app password for a member holding five, i.e.
// Credentials (from the credential cache on SQLite; "sqlite-query" turns it
// off, so that every call runs the query, as PostgreSQL does) plus five
// constant-time HMAC comparisons, and no argon2id.
func BenchmarkVerifyAppPassword(b *testing.B) {
	engines := append([]storetest.Engine{}, storetest.AllEngines...)
	engines = append(engines, storetest.Engine{Name: "sqlite-query", Open: func(t testing.TB) *sqlstore.DB {
		db := storetest.OpenSQLite(t)
		db.SetCredentialCache(0)
		return db
	}})
	for _, eng := range engines {
		b.Run(eng.Name, func(b *testing.B) {
			e := storetest.NewEnv(b, eng.Open(b))
			m := e.Enforced(b, "alice")
			var plain string
			for i := range account.MaxAppPasswords {
				_, plain = e.Create(b, m, fmt.Sprintf("app %d", i))
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, cred, err := e.Svc.Verify(ctx, m.Email, plain); err != nil || cred.IsMain() {
					b.Fatalf("verify: %v", err)
				}
			}
		})
	}
}
