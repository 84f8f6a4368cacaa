package sqlstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/auth"
	"github.com/postern/postern/internal/authrec"
	"github.com/postern/postern/internal/store/sqlstore"
	"github.com/postern/postern/internal/store/storetest"
)

func tagOf(i int) authrec.PairTag {
	var t authrec.PairTag
	copy(t[:], fmt.Sprintf("%08d", i))
	return t
}

func TestAuthFailuresConcurrent(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		e := storetest.NewEnv(t, db)
		m := e.Enforced(t, "target")
		now := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
		// 30 distinct failures at once against a limit of 10: exactly one
		// of them starts the pause, whatever the interleaving, and only it
		// writes the member's message.
		onPause := account.Effects{Messages: []account.Message{{MemberID: m.ID, Kind: account.MsgAccountPaused, Subject: "paused", Body: "paused"}}}
		var wg sync.WaitGroup
		var mu sync.Mutex
		var paused, counted int
		for i := range 30 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := db.RecordAuthFailure(ctx, m.ID, tagOf(i), now, 10, 15*time.Minute, onPause)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if res.Paused {
					paused++
				}
				if res.Counted {
					counted++
				}
			}()
		}
		wg.Wait()
		if paused != 1 || counted != 10 {
			t.Fatalf("paused %d times, counted %d; want 1 and 10", paused, counted)
		}
		if msgs, err := db.Messages(ctx, m.ID); err != nil || len(msgs) != 1 || msgs[0].Subject != "paused" {
			t.Fatalf("messages %+v %v; want the one pause message", msgs, err)
		}
		st, err := db.AuthState(ctx, m.ID)
		if err != nil || !st.PausedUntil.Equal(now.Add(15*time.Minute)) || st.Failures != 0 || len(st.Tags) != authrec.RecentFailures {
			t.Fatalf("state %+v %v", st, err)
		}
	})
}

func TestAuthFailuresRepeatsAndReset(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		e := storetest.NewEnv(t, db)
		m := e.Enforced(t, "repeat")
		now := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
		for i := range 12 {
			if _, err := db.RecordAuthFailure(ctx, m.ID, tagOf(i), now, 100, time.Minute, account.Effects{}); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range []struct {
			tag     int
			counted bool
		}{{11, false}, {2, false}, {1, true}, {0, true}} {
			res, err := db.RecordAuthFailure(ctx, m.ID, tagOf(c.tag), now, 100, time.Minute, account.Effects{})
			if err != nil || res.Counted != c.counted {
				t.Errorf("tag %d: %+v %v, want counted=%v (only the last 10 are remembered)", c.tag, res, err, c.counted)
			}
		}
		if st, _ := db.AuthState(ctx, m.ID); st.Failures != 14 {
			t.Errorf("failures %d, want 14", st.Failures)
		}
		if err := db.ResetAuthFailures(ctx, m.ID); err != nil {
			t.Fatal(err)
		}
		if st, err := db.AuthState(ctx, m.ID); err != nil || st.Failures != 0 || len(st.Tags) != 0 || !st.PausedUntil.IsZero() {
			t.Errorf("after reset: %+v %v", st, err)
		}
	})
}

// TestCredentialsFailuresOnRecord: the login query tells whether the
// gateway must read the failure state (a failure or pause is on record).
func TestCredentialsFailuresOnRecord(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		e := storetest.NewEnv(t, db)
		m := e.Enforced(t, "onrecord")
		onRecord := func() bool {
			t.Helper()
			got, _, err := db.Credentials(ctx, m.Email)
			if err != nil {
				t.Fatal(err)
			}
			return got.FailuresOnRecord
		}
		if onRecord() {
			t.Fatal("a new member has failures on record")
		}
		if _, err := db.RecordAuthFailure(ctx, m.ID, tagOf(1), time.Now(), 100, time.Minute, account.Effects{}); err != nil {
			t.Fatal(err)
		}
		if !onRecord() {
			t.Fatal("a failure is not on record")
		}
		if err := db.ResetAuthFailures(ctx, m.ID); err != nil {
			t.Fatal(err)
		}
		if onRecord() {
			t.Fatal("failures still on record after a reset")
		}
	})
}

func TestLoginRecordsStore(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		now := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
		var recs []authrec.LoginRecord
		for i := range 250 { // more than one INSERT statement
			recs = append(recs, authrec.LoginRecord{At: now.Add(-time.Duration(i) * time.Hour), MemberID: int64(i % 3),
				Username: fmt.Sprintf("u%d@example.test", i), Protocol: auth.IMAP, Mechanism: "LOGIN",
				IP: "192.0.2.1", TLS: i%2 == 0, Result: authrec.ResultFail, Reason: "bad-password"})
		}
		if err := db.AddLoginRecords(ctx, recs); err != nil {
			t.Fatal(err)
		}
		got, err := db.LoginRecords(ctx, 1, false, 1000)
		if err != nil || len(got) != 83 {
			t.Fatalf("member 1: %d records %v", len(got), err)
		}
		if got[0].Username != "u1@example.test" || !got[0].At.Equal(now.Add(-time.Hour)) || got[0].TLS {
			t.Errorf("newest of member 1: %+v", got[0])
		}
		n, err := db.PruneLoginRecords(ctx, now.Add(-200*time.Hour+time.Second))
		if err != nil || n != 50 {
			t.Fatalf("pruned %d %v, want 50", n, err)
		}
		all, _ := db.LoginRecords(ctx, 0, true, 1000)
		if len(all) != 200 {
			t.Errorf("%d left, want 200", len(all))
		}
	})
}
