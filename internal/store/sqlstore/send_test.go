package sqlstore_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/store/sqlstore"
	"github.com/postern/postern/internal/store/storetest"
)

// The send log's windows are sliding and exact: a row counts in the hour
// when it is less than an hour old, in the day when less than 24 hours old;
// only the member's rows count, and the app password's part only its own.
func TestSendCountsWindows(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		e := storetest.NewEnv(t, db)
		alice, bob := e.Enforced(t, "alice"), e.Enforced(t, "bob")
		now := time.Date(2025, 3, 2, 12, 0, 0, 0, time.UTC)
		for _, r := range []struct {
			m     account.Member
			app   string
			rcpts int
			ago   time.Duration
		}{
			{alice, "a1", 1, 0},
			{alice, "a1", 2, time.Hour - time.Microsecond}, // in the hour
			{alice, "a1", 4, time.Hour},                    // out of the hour, in the day
			{alice, "a2", 8, 10 * time.Minute},
			{alice, "", 16, 20 * time.Minute},
			{alice, "a1", 32, 24*time.Hour - time.Microsecond}, // in the day
			{alice, "a1", 64, 24 * time.Hour},                  // out of the day
			{alice, "a1", 128, 47 * time.Hour},
			{bob, "a1", 256, time.Minute}, // another member's, same id
		} {
			if err := db.RecordSend(ctx, r.m.ID, r.app, r.rcpts, now.Add(-r.ago)); err != nil {
				t.Fatal(err)
			}
		}
		tally := func(m, r int) account.SendTally { return account.SendTally{Messages: m, Recipients: r} }
		got, err := db.SendCounts(ctx, alice.ID, "a1", now)
		want := account.SendCounts{
			Member:      account.SendUsage{Hour: tally(4, 1+2+8+16), Day: tally(6, 1+2+4+8+16+32)},
			AppPassword: account.SendUsage{Hour: tally(2, 1+2), Day: tally(4, 1+2+4+32)},
		}
		if err != nil || got != want {
			t.Fatalf("a1: %+v, %v\nwant %+v", got, err, want)
		}
		// The main password's login has no app password part, though rows
		// with '' exist.
		got, err = db.SendCounts(ctx, alice.ID, "", now)
		if err != nil || got.Member != want.Member || got.AppPassword != (account.SendUsage{}) {
			t.Fatalf("main: %+v, %v", got, err)
		}
		if got, err := db.SendCounts(ctx, bob.ID, "a2", now); err != nil || got.Member.Day != tally(1, 256) || got.AppPassword.Day != tally(0, 0) {
			t.Fatalf("bob: %+v, %v", got, err)
		}
		sent, err := db.SentByAppPassword(ctx, alice.ID, now.Add(-24*time.Hour))
		if err != nil || len(sent) != 2 || sent["a1"] != 4 || sent["a2"] != 1 {
			t.Fatalf("sent by app password: %v, %v", sent, err)
		}

		// Pruning drops what no window reaches; the counts are unchanged.
		n, err := db.PruneSendLog(ctx, now.Add(-sqlstore.SendLogRetention))
		if err != nil || n != 0 {
			t.Fatalf("prune at 48 h: %d, %v", n, err)
		}
		if n, err := db.PruneSendLog(ctx, now.Add(-24*time.Hour+time.Microsecond)); err != nil || n != 2 {
			t.Fatalf("prune at 24 h: %d, %v", n, err)
		}
		if got, err := db.SendCounts(ctx, alice.ID, "a1", now); err != nil || got != want {
			t.Fatalf("after pruning: %+v, %v", got, err)
		}

		// A member's deletion takes its rows with it.
		if _, err := db.SQL.ExecContext(ctx, "DELETE FROM members WHERE id = "+strconv.FormatInt(bob.ID, 10)); err != nil {
			t.Fatal(err)
		}
		var left int
		if err := db.SQL.QueryRowContext(ctx, "SELECT COUNT(*) FROM send_log WHERE member_id = "+strconv.FormatInt(bob.ID, 10)).Scan(&left); err != nil || left != 0 {
			t.Fatalf("bob's rows after deletion: %d, %v", left, err)
		}
	})
}

// Nodes that hit the cap at once tell the member once: the upsert decides
// across database handles, and the one that wins writes the message and its
// mail in its transaction; a day later the next notice goes out.
func TestNoteSendLimitedAcrossNodes(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		other := storetest.OpenOther(t, db)
		e := storetest.NewEnv(t, db)
		m := e.Enforced(t, "alice")
		at := time.Date(2025, 3, 2, 12, 0, 0, 0, time.UTC)
		fx := func(subject string) account.Effects {
			return account.Effects{Messages: []account.Message{{MemberID: m.ID, Kind: account.MsgSendLimited, Subject: subject, Body: "b",
				Mail: []byte("Subject: " + subject + "\r\n\r\nb\r\n")}}}
		}
		var told atomic.Int32
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				node := db
				if i%2 == 1 {
					node = other
				}
				ok, err := node.NoteSendLimited(ctx, m.ID, "a1", at, at.Add(-24*time.Hour), fx("limited"))
				if err != nil {
					t.Error(err)
				}
				if ok {
					told.Add(1)
				}
			}()
		}
		wg.Wait()
		if told.Load() != 1 {
			t.Fatalf("told %d times", told.Load())
		}
		mail := storetest.NewMailEnv(t, db)
		in := mail.Box(t, m.ID, "INBOX")
		if bodies := mail.Bodies(t, in.ID); len(bodies) != 1 || !strings.HasPrefix(bodies[0], "Subject: limited\r\n") {
			t.Fatalf("INBOX %q", bodies)
		}
		// Within the day: no. At a day: yes, once.
		for _, c := range []struct {
			after time.Duration
			want  bool
		}{{23 * time.Hour, false}, {24 * time.Hour, true}, {24*time.Hour + time.Second, false}} {
			now := at.Add(c.after)
			ok, err := other.NoteSendLimited(ctx, m.ID, "a1", now, now.Add(-24*time.Hour), fx("again"))
			if err != nil || ok != c.want {
				t.Fatalf("after %v: told %v, %v; want %v", c.after, ok, err, c.want)
			}
		}
		if msgs := e.Messages(t, m); len(msgs) != 2 {
			t.Fatalf("%d messages", len(msgs))
		}
		// Pruning forgets notices no window needs.
		if n, err := db.PruneSendLog(ctx, at.Add(24*time.Hour)); err != nil || n != 0 {
			t.Fatalf("prune: %d, %v", n, err)
		}
		if n, err := db.PruneSendLog(ctx, at.Add(72*time.Hour)); err != nil || n != 1 {
			t.Fatalf("prune: %d, %v", n, err)
		}
	})
}

// MemberAliases names the aliases whose targets include the member, by
// address, in every domain.
func TestMemberAliases(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		e := storetest.NewEnv(t, db)
		alice, bob := e.Enforced(t, "alice"), e.Enforced(t, "bob")
		for _, a := range []string{"zeta@enforced.test", "alpha@enforced.test"} {
			if _, _, err := e.Svc.AddAlias(ctx, a, []string{alice.Email, bob.Email}, account.Actor{Via: "cli"}); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := e.Svc.AddAlias(ctx, "bob-only@enforced.test", []string{bob.Email}, account.Actor{Via: "cli"}); err != nil {
			t.Fatal(err)
		}
		got, err := db.MemberAliases(ctx, alice.ID)
		if err != nil || strings.Join(got, ",") != "alpha@enforced.test,zeta@enforced.test" {
			t.Fatalf("%v, %v", got, err)
		}
		if got, err := db.MemberAliases(ctx, 987654); err != nil || len(got) != 0 {
			t.Fatalf("unknown member: %v, %v", got, err)
		}
	})
}
