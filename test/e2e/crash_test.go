package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/passhash"
	"github.com/postern/postern/internal/store/sqlstore"
	"github.com/postern/postern/internal/store/storetest"
)

// The crash test's child is this test binary, re-executed with these
// variables set, so that no crash mode ships in the postern binary.
const (
	crashChildEnv  = "POSTERN_E2E_CRASH_DSN" // the store to open
	crashKeyEnv    = "POSTERN_E2E_CRASH_KEY" // the HMAC key, hex
	crashMemberEnv = "POSTERN_E2E_CRASH_MEMBER"
	crashMember    = "crash@crash.example"
	crashRounds    = 3
)

// cheapHash: the crash loop never hashes a main password, except to create
// the member; no need to spend argon2id's memory on it.
var cheapHash = passhash.Params{Memory: 64, Time: 1, Threads: 1}

func randN(n int) int {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		panic(err)
	}
	return int(v.Int64())
}

// crashChild creates and deletes app passwords of the crash member through
// account.Service until it is killed, printing "create ID" or "delete ID" on
// stdout after each call has returned: the acknowledgement. It never returns
// normally; an error exits with status 3.
func crashChild() int {
	ctx := context.Background()
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "crash child:", err); return 3 }
	db, err := sqlstore.Open(ctx, os.Getenv(crashChildEnv))
	if err != nil {
		return fail(err)
	}
	key, err := hex.DecodeString(os.Getenv(crashKeyEnv))
	if err != nil {
		return fail(err)
	}
	svc := account.NewService(db, passhash.New(cheapHash), account.Config{Key: key})
	svc.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	m, err := svc.Member(ctx, os.Getenv(crashMemberEnv))
	if err != nil {
		return fail(err)
	}
	views, err := svc.AppPasswords(ctx, m)
	if err != nil {
		return fail(err)
	}
	var ids []string
	for _, v := range views {
		ids = append(ids, v.ID)
	}
	by := account.Actor{Via: "cli"}
	for i := 0; ; i++ {
		if len(ids) == account.MaxAppPasswords || len(ids) > 0 && randN(2) == 0 {
			k := randN(len(ids))
			if err := svc.DeleteAppPassword(ctx, m, ids[k], by); err != nil {
				return fail(err)
			}
			// One write(2) per line: a line on the pipe is whole or absent.
			fmt.Fprintf(os.Stdout, "delete %s\n", ids[k])
			ids = slices.Delete(ids, k, k+1)
		} else {
			p, _, err := svc.CreateAppPassword(ctx, m, fmt.Sprintf("app %d-%d", os.Getpid(), i), by)
			if err != nil {
				return fail(err)
			}
			fmt.Fprintf(os.Stdout, "create %s\n", p.ID)
			ids = append(ids, p.ID)
		}
	}
}

// effectCounts are the member's messages and events by kind.
type effectCounts map[string]int

func countEffects(t *testing.T, ctx context.Context, db *sqlstore.DB, memberID int64) effectCounts {
	t.Helper()
	c := effectCounts{}
	for _, table := range []string{"messages", "events"} {
		rows, err := db.SQL.QueryContext(ctx, fmt.Sprintf("SELECT kind, COUNT(*) FROM %s WHERE member_id = %d GROUP BY kind", table, memberID))
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var kind string
			var n int
			if err := rows.Scan(&kind, &n); err != nil {
				t.Fatal(err)
			}
			c[table+" "+kind] = n
		}
		rows.Close()
	}
	return c
}

// TestCrashSafety kills a process that creates and deletes app passwords
// (SIGKILL at a random moment, after some hundreds of changes), reopens the
// store and checks that every acknowledged change holds, that the limit of 5
// holds, and that messages and events match the changes one for one: at most
// the one change in flight may have committed without its acknowledgement.
func TestCrashSafety(t *testing.T) {
	for _, e := range storetest.AllEngines {
		t.Run(e.Name, func(t *testing.T) {
			t.Parallel()
			crashTest(t, e.Open(t))
		})
	}
}

func crashTest(t *testing.T, db *sqlstore.DB) {
	ctx := context.Background()
	key := make([]byte, 32)
	rand.Read(key)
	svc := account.NewService(db, passhash.New(cheapHash), account.Config{Key: key})
	if _, err := svc.AddDomain(ctx, "crash.example", time.Time{}); err != nil {
		t.Fatal(err)
	}
	m, err := svc.AddMember(ctx, crashMember, "Crash", "a long enough password")
	if err != nil {
		t.Fatal(err)
	}
	expected := map[string]bool{}
	counts := countEffects(t, ctx, db, m.ID)
	for round := 1; round <= crashRounds; round++ {
		acks := runCrashChild(t, db, key)
		stored, after := checkAfterCrash(t, db, m.ID)

		creates, deletes := 0, 0
		for _, a := range acks {
			op, id, _ := strings.Cut(a, " ")
			switch op {
			case "create":
				if expected[id] {
					t.Fatalf("round %d: id %s created twice", round, id)
				}
				expected[id] = true
				creates++
			case "delete":
				if !expected[id] {
					t.Fatalf("round %d: deleted %s, which was not there", round, id)
				}
				delete(expected, id)
				deletes++
			default:
				t.Fatalf("round %d: child said %q", round, a)
			}
		}
		var missing, extra []string
		for id := range expected {
			if !stored[id] {
				missing = append(missing, id)
			}
		}
		for id := range stored {
			if !expected[id] {
				extra = append(extra, id)
			}
		}
		// The one change in flight at the kill may have committed unacknowledged.
		inflightCreate, inflightDelete := 0, 0
		switch {
		case len(missing) == 0 && len(extra) == 0:
		case len(missing) == 0 && len(extra) == 1:
			inflightCreate = 1
		case len(missing) == 1 && len(extra) == 0:
			inflightDelete = 1
		default:
			t.Fatalf("round %d: acknowledged state lost: missing %v (acknowledged creates), extra %v", round, missing, extra)
		}
		if len(stored) > account.MaxAppPasswords {
			t.Fatalf("round %d: %d app passwords stored, limit %d", round, len(stored), account.MaxAppPasswords)
		}
		wantDelta := map[string]int{
			"messages " + account.MsgAppPasswordCreated:         creates + inflightCreate,
			"messages " + account.MsgAppPasswordDeleted:         deletes + inflightDelete,
			"events " + string(account.EventAppPasswordCreated): creates + inflightCreate,
			"events " + string(account.EventAppPasswordDeleted): deletes + inflightDelete,
		}
		for k, want := range wantDelta {
			if got := after[k] - counts[k]; got != want {
				t.Errorf("round %d: %s: %d new, want %d (%d acknowledged creates, %d deletes, in flight %d/%d)",
					round, k, got, want, creates, deletes, inflightCreate, inflightDelete)
			}
		}
		t.Logf("round %d: %d acknowledged changes (%d creates, %d deletes), committed in flight: %d, stored %d",
			round, len(acks), creates, deletes, inflightCreate+inflightDelete, len(stored))
		expected, counts = stored, after
	}
}

// runCrashChild runs the child until it has acknowledged a random number of
// changes (a few hundred), kills it with SIGKILL a random moment later, and
// returns every acknowledgement it printed.
func runCrashChild(t *testing.T, db *sqlstore.DB, key []byte) []string {
	t.Helper()
	dsn, appName := db.DSN, ""
	if db.Dialect == sqlstore.Postgres {
		appName = fmt.Sprintf("postern_crash_%x", key[:6])
		dsn += "&application_name=" + appName
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dsn, crashKeyEnv+"="+hex.EncodeToString(key), crashMemberEnv+"="+crashMember)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	target := 150 + randN(250)
	killed := false
	timer := time.AfterFunc(5*time.Minute, func() { cmd.Process.Kill() }) // a stuck child must not hang the run
	defer timer.Stop()
	var acks []string
	br := bufio.NewReader(pipe)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			break // EOF after the kill; a partial line was not acknowledged
		}
		acks = append(acks, strings.TrimSuffix(line, "\n"))
		if !killed && len(acks) == target {
			// Somewhere inside the next change, or between two.
			time.Sleep(time.Duration(randN(4000)) * time.Microsecond)
			cmd.Process.Kill()
			killed = true
		}
	}
	cmd.Wait()
	if !killed {
		t.Fatalf("the child stopped after %d changes before it was killed:\n%s", len(acks), stderr.String())
	}
	if appName != "" {
		waitBackendsGone(t, appName)
	}
	return acks
}

// waitBackendsGone waits until PostgreSQL has no session of the killed child
// left: a COMMIT it sent just before dying might otherwise still land after
// the checks have read the tables.
func waitBackendsGone(t *testing.T, appName string) {
	t.Helper()
	admin := sqlOpen(t, storetest.PostgresDSN())
	defer admin.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var n int
		if err := admin.QueryRow(`SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = $1`, appName).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions of the killed child still open after 60 s", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkAfterCrash reopens the store, as a restarted server would, and returns
// the member's app passwords and effect counts.
func checkAfterCrash(t *testing.T, db *sqlstore.DB, memberID int64) (map[string]bool, effectCounts) {
	t.Helper()
	ctx := context.Background()
	re, err := sqlstore.Open(ctx, db.DSN)
	if err != nil {
		t.Fatalf("reopen after the crash: %v", err)
	}
	defer re.Close()
	list, err := re.AppPasswords(ctx, memberID)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]bool{}
	for _, p := range list {
		if len(p.Hash) != 32 || p.Name == "" || p.CreatedAt.IsZero() {
			t.Errorf("half-written app password %s: %+v", p.ID, p)
		}
		stored[p.ID] = true
	}
	return stored, countEffects(t, ctx, re, memberID)
}

func sqlOpen(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	return db
}
