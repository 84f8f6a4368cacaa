package sqlstore_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/mailstore"
	"github.com/postern/postern/internal/store/storetest"
)

// The reads of a mailbox's messages, by UID set or whole, never keep on
// the main pool a prepared statement whose generic plan PostgreSQL would
// then use for any mailbox and any set (a plan made while the table was
// small scans the table for the STORE of a thousand messages): with the
// pool held to one connection, the session's prepared statements are
// those the store's reads left. They run on the planned pool, whose
// generic plans cannot scan a table: on this small table, a plan made
// there for a read by UIDs still goes through the index.
func TestMailboxReadsPlannedForTheirArguments(t *testing.T) {
	ctx := context.Background()
	db := storetest.OpenPostgres(t)
	env := storetest.NewMailEnv(t, db)
	m := env.NewMember(t)
	in := env.Box(t, m, "INBOX")
	var uids []uint32
	for i := range 8 {
		uids = append(uids, env.Append(t, in.ID, "From: carol@example.com\r\nSubject: budget "+string(rune('a'+i))+"\r\n\r\nbudget\r\n"))
	}
	db.SQL.SetMaxOpenConns(1)
	for range 7 {
		if _, err := env.Mail.StoreFlags(ctx, in.ID, uids[:4], mailstore.FlagsAdd, []string{`\Seen`}); err != nil {
			t.Fatal(err)
		}
		if _, err := env.Mail.StoreFlags(ctx, in.ID, uids[:4], mailstore.FlagsRemove, []string{`\Seen`}); err != nil {
			t.Fatal(err)
		}
		if _, err := env.Mail.Indexes(ctx, in.ID, nil, true); err != nil {
			t.Fatal(err)
		}
		idx, err := env.Mail.Indexes(ctx, in.ID, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for id := range idx {
			ids = append(ids, id)
		}
		if _, err := env.Mail.Indexes(ctx, in.ID, ids[:3], true); err != nil {
			t.Fatal(err)
		}
		if err := env.Mail.Bodies(ctx, ids[:3], func(int64, []byte) error { return nil }); err != nil {
			t.Fatal(err)
		}
		if got, err := env.Mail.SearchIndex(ctx, in.ID, mailstore.SearchFrom, "carol"); err != nil || len(got) != len(uids) {
			t.Fatalf("search: %v, %v", got, err)
		}
		if _, err := env.Mail.Counts(ctx, in.ID); err != nil {
			t.Fatal(err)
		}
		if _, _, err := env.Mail.Open(ctx, m, "INBOX"); err != nil {
			t.Fatal(err)
		}
		// The re-read of the view, a STORE planned on it, an EXPUNGE, the
		// outbox tailer's read.
		if _, _, err := env.Mail.State(ctx, in.ID); err != nil {
			t.Fatal(err)
		}
		extra := env.Append(t, in.ID, "Subject: extra\r\n\r\nextra\r\n")
		if _, err := env.Mail.StoreFlags(ctx, in.ID, []uint32{extra}, mailstore.FlagsAdd, []string{`\Deleted`}); err != nil {
			t.Fatal(err)
		}
		if _, err := env.Mail.Expunge(ctx, in.ID, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := db.EventsAfter(ctx, account.EventPos{}, 100); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := db.SQL.QueryContext(ctx, `SELECT statement FROM pg_prepared_statements`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		n++
		if strings.Contains(s, "FROM mail_messages") && (strings.Contains(s, "ANY(") || strings.Contains(s, "mailbox_id = $")) ||
			strings.Contains(s, "mail_messages") && strings.Contains(s, "unnest(") || strings.Contains(s, "FROM events") {
			t.Errorf("kept prepared, planned generically after five runs:\n%s", s)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no prepared statement at all: the check sees another session's")
	}

	conn, err := db.PlannedForTest().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PREPARE by_uids(bigint, bigint[]) AS SELECT id, flags FROM mail_messages WHERE mailbox_id = $1 AND uid = ANY($2)`); err != nil {
		t.Fatal(err)
	}
	plan, err := conn.QueryContext(ctx, `EXPLAIN EXECUTE by_uids(1, '{1,2}')`)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for plan.Next() {
		var l string
		if err := plan.Scan(&l); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, l)
	}
	plan.Close()
	if p := strings.Join(lines, "\n"); !strings.Contains(p, "$1") || strings.Contains(p, "Seq Scan") || !strings.Contains(p, "Index") {
		t.Fatalf("the planned pool's generic plan of a read by UIDs:\n%s", p)
	}
}

// The re-read of a view looks up the messages changed since it by their
// UIDs, whatever the planner believes of the mailbox's size: in a mailbox
// filled since the table's statistics were made (here: never made), it
// estimates a row or two, and a plan that scans the mailbox testing each
// message against the changed UIDs looked cheaper than the lookups.
func TestStateReadLooksChangesUp(t *testing.T) {
	ctx := context.Background()
	db := storetest.OpenPostgres(t)
	env := storetest.NewMailEnv(t, db)
	m := env.NewMember(t)
	in := env.Box(t, m, "INBOX")
	msgs := make([]mailstore.NewMessage, 3000)
	for i := range msgs {
		msgs[i] = mailstore.NewMessage{Body: []byte("Subject: x\r\n\r\nbody\r\n")}
	}
	if _, err := env.Mail.AppendMany(ctx, in.ID, msgs); err != nil {
		t.Fatal(err)
	}
	before, _, err := env.Mail.State(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	var uids []uint32
	for u := uint32(1); u <= 500; u++ {
		uids = append(uids, u)
	}
	for range 4 {
		if _, err := env.Mail.StoreFlags(ctx, in.ID, uids, mailstore.FlagsAdd, []string{"$x"}); err != nil {
			t.Fatal(err)
		}
		if _, err := env.Mail.StoreFlags(ctx, in.ID, uids, mailstore.FlagsRemove, []string{"$x"}); err != nil {
			t.Fatal(err)
		}
	}
	plan, err := db.ExplainStateForTest(ctx, in.ID, before.HighestModSeq, before.UIDNext)
	if err != nil {
		t.Fatal(err)
	}
	node := ""
	for _, line := range strings.Split(plan, "\n") {
		if strings.Contains(line, "->") || !strings.HasPrefix(line, " ") {
			node = line
		}
		if strings.Contains(line, "Rows Removed by") && !strings.HasSuffix(line, ": 0") &&
			(strings.Contains(node, "on mail_messages") || strings.Contains(node, "Join")) {
			t.Fatalf("the re-read filters the mailbox's messages instead of looking the changed ones up:\n%s", plan)
		}
	}
}

// A STORE's and an EXPUNGE's group writes look their messages up by id,
// whatever the planner believes of the mailbox's size. Their generic
// plans are made once per connection: one made after the statistics saw
// the table empty (a small mailbox emptied, analyzed, then filled) walked
// the whole mailbox for each message named, 0.5 s for a STORE on 1,000 of
// 10,000 messages.
func TestChangesLookMessagesUp(t *testing.T) {
	ctx := context.Background()
	db := storetest.OpenPostgres(t)
	env := storetest.NewMailEnv(t, db)
	m := env.NewMember(t)
	in := env.Box(t, m, "INBOX")
	for i := range 50 {
		box := env.Create(t, m, fmt.Sprintf("box%d", i))
		env.Append(t, box.ID, "Subject: x\r\n\r\nx\r\n")
	}
	if _, err := db.SQL.ExecContext(ctx, `ANALYZE mail_messages`); err != nil {
		t.Fatal(err)
	}
	msgs := make([]mailstore.NewMessage, 3000)
	for i := range msgs {
		msgs[i] = mailstore.NewMessage{Body: []byte("Subject: x\r\n\r\nbody\r\n")}
	}
	if _, err := env.Mail.AppendMany(ctx, in.ID, msgs); err != nil {
		t.Fatal(err)
	}
	plans, err := db.GenericPlansForTest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for name, plan := range plans {
		if strings.Contains(plan, "mail_messages_mailbox_id") || !strings.Contains(plan, "mail_messages_pkey") {
			t.Errorf("%s: the generic plan does not look the messages up by id:\n%s", name, plan)
		}
	}
}
