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

// BenchmarkResolveRecipient measures what every RCPT costs: one
// LookupAddresses statement, for a member's address, a tagged one (two
// addresses asked), an alias of five members, and an unknown address that
// the catch-all takes.
func BenchmarkResolveRecipient(b *testing.B) {
	for _, eng := range storetest.AllEngines {
		b.Run(eng.Name, func(b *testing.B) {
			e := storetest.NewEnv(b, eng.Open(b))
			ctx := context.Background()
			var targets []string
			for i := range 5 {
				targets = append(targets, e.Enforced(b, fmt.Sprintf("m%d", i)).Email)
			}
			if _, _, err := e.Svc.AddAlias(ctx, "team@enforced.test", targets, account.Actor{Via: "cli"}); err != nil {
				b.Fatal(err)
			}
			if _, err := e.Svc.SetCatchAll(ctx, "enforced.test", targets[0], account.Actor{Via: "cli"}); err != nil {
				b.Fatal(err)
			}
			for _, c := range []struct {
				name, addr string
				n          int
			}{{"member", targets[1], 1}, {"tagged", "m1+news@enforced.test", 1}, {"alias5", "team@enforced.test", 5}, {"catchall", "x@enforced.test", 1}} {
				b.Run(c.name, func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						if r, err := e.Svc.ResolveRecipient(ctx, c.addr); err != nil || len(r.Members) != c.n {
							b.Fatalf("%s: %+v %v", c.addr, r, err)
						}
					}
				})
			}
		})
	}
}
