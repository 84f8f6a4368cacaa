package sqlstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/store/storetest"
)

// TestPreparedCredentialsConcurrent checks the prepared login queries
// (Credentials, AuthState) under concurrent use on both engines: every
// caller gets its own member's app passwords, including callers that run on
// pooled connections where the statement is prepared for the first time, and
// a deletion is seen by the next call (a prepared statement caches the plan,
// never the rows).
func TestPreparedCredentialsConcurrent(t *testing.T) {
	for _, eng := range storetest.AllEngines {
		t.Run(eng.Name, func(t *testing.T) {
			db := eng.Open(t)
			e := storetest.NewEnv(t, db)
			ctx := context.Background()
			const n = 6
			members := make([]account.Member, n)
			ids := make([]string, n)
			for i := range members {
				members[i] = e.Enforced(t, fmt.Sprintf("p%d", i))
				ap, _ := e.Create(t, members[i], "app")
				ids[i] = ap.ID
			}
			var wg sync.WaitGroup
			errs := make(chan error, n*20)
			for w := range n * 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for k := range 20 {
						m := members[(w+k)%n]
						got, list, err := db.Credentials(ctx, m.Email)
						switch {
						case err != nil:
							errs <- err
						case got.ID != m.ID || len(list) != 1 || list[0].ID != ids[(w+k)%n]:
							errs <- fmt.Errorf("credentials of %s: member %d, %d app passwords", m.Email, got.ID, len(list))
						}
						if _, err := db.AuthState(ctx, m.ID); err != nil {
							errs <- err
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if err := e.Svc.DeleteAppPassword(ctx, members[0], ids[0], account.Actor{Via: "cli"}); err != nil {
				t.Fatal(err)
			}
			if _, list, err := db.Credentials(ctx, members[0].Email); err != nil || len(list) != 0 {
				t.Fatalf("after delete: %d app passwords, %v", len(list), err)
			}
		})
	}
}
