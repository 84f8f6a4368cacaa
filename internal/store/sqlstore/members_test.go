package sqlstore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/store/storetest"
)

// The member administration suite, on each engine.
func TestMembersSQLite(t *testing.T)   { storetest.RunMembers(t, storetest.OpenSQLite) }
func TestMembersPostgres(t *testing.T) { storetest.RunMembers(t, storetest.OpenPostgres) }

// BenchmarkSearchMembers measures an administrator's member list at
// 100,000 members in ten domains: the first page, a page deep in the list
// (keyset: it costs what the first does), a page within one domain, and a
// prefix search of the address or the name.
func BenchmarkSearchMembers(b *testing.B) {
	const members, domains = 100_000, 10
	for _, eng := range storetest.AllEngines {
		b.Run(eng.Name, func(b *testing.B) {
			e := storetest.NewEnv(b, eng.Open(b))
			ctx := context.Background()
			var batch []*account.Member
			ids := make([]int64, domains)
			for d := range domains {
				ids[d] = e.Domain(b, fmt.Sprintf("d%d.test", d), storetest.EnforcedDate).ID
			}
			for i := range members {
				d := i % domains
				batch = append(batch, &account.Member{DomainID: ids[d], Email: fmt.Sprintf("user%06d@d%d.test", i, d),
					Name: fmt.Sprintf("Name %06d", members-i), PasswordHash: "x"})
				if len(batch) == 1000 || i == members-1 {
					if _, err := e.DB.CreateMembers(ctx, batch, nil); err != nil {
						b.Fatal(err)
					}
					batch = batch[:0]
				}
			}
			for _, c := range []struct{ name, domain, query, after string }{
				{"first-page", "", "", ""},
				{"deep-page", "", "", "user090000@d0.test"},
				{"domain-page", "d3.test", "", "user050003@d3.test"},
				{"address-prefix", "", "user0777", ""},
				{"name-prefix", "", "name 0123", ""},
				{"domain-name-prefix", "d3.test", "name 05", ""},
			} {
				b.Run(c.name, func(b *testing.B) {
					for b.Loop() {
						p, err := e.Svc.SearchMembers(ctx, account.AllDomains, c.domain, c.query, c.after, 50)
						if err != nil || len(p.Members) == 0 {
							b.Fatalf("%d members, %v", len(p.Members), err)
						}
					}
				})
			}
		})
	}
}
