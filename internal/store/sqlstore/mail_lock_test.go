package sqlstore_test

import (
	"context"
	"database/sql"
	"slices"
	"testing"
	"time"

	"github.com/postern/postern/internal/mailstore"
	"github.com/postern/postern/internal/store/sqlstore"
	"github.com/postern/postern/internal/store/storetest"
)

// A STORE that waits for the mailbox lock while another node's transaction
// changes the same messages sees that change: on PostgreSQL the lock and
// the read of the messages are one statement, whose snapshot predates the
// wait, and the read must be taken again (else the other change is lost);
// the optimistic STORE read the messages before the other change, and its
// write must find out and start again.
func TestStoreFlagsAfterLockWait(t *testing.T) {
	t.Run("optimistic", func(t *testing.T) { testStoreFlagsAfterLockWait(t) })
	t.Run("locked", func(t *testing.T) {
		defer sqlstore.SetOptimisticTries(0)()
		testStoreFlagsAfterLockWait(t)
	})
}

func testStoreFlagsAfterLockWait(t *testing.T) {
	db := storetest.OpenPostgres(t)
	ctx := context.Background()
	env := storetest.NewMailEnv(t, db)
	m := env.NewMember(t)
	in := env.Box(t, m, "INBOX")
	uid := env.Append(t, in.ID, "Subject: x\r\n\r\nx\r\n")

	// The other node: locks the mailbox and flags the message, as a STORE
	// does, and commits only once this node's STORE waits for the lock.
	other := storetest.OpenOther(t, db)
	tx, err := other.SQL.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var highest int64
	if err := tx.QueryRowContext(ctx, `SELECT highest_modseq FROM mailboxes WHERE id = $1 FOR UPDATE`, in.ID).Scan(&highest); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE mail_messages SET flags = '\Flagged', modseq = $1 WHERE mailbox_id = $2`, highest+1, in.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE mailboxes SET highest_modseq = $1 WHERE id = $2`, highest+1, in.ID); err != nil {
		t.Fatal(err)
	}

	type result struct {
		infos []mailstore.MessageInfo
		err   error
	}
	done := make(chan result, 1)
	go func() {
		infos, err := db.Mail().StoreFlags(ctx, in.ID, []uint32{uid}, mailstore.FlagsAdd, []string{`\Seen`})
		done <- result{infos, err}
	}()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		var waiting int
		if err := other.SQL.QueryRowContext(ctx, `SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database() AND (query LIKE '%highest_modseq%' OR query LIKE '%FOR UPDATE%')`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the STORE never waited for the lock")
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	want := []string{`\Flagged`, `\Seen`}
	if len(r.infos) != 1 || !slices.Equal(r.infos[0].Flags, want) || r.infos[0].ModSeq != uint64(highest+2) {
		t.Fatalf("STORE returned %+v, want flags %v at modseq %d", r.infos, want, highest+2)
	}
	if got := env.List(t, in.ID); !slices.Equal(got[0].Flags, want) {
		t.Fatalf("stored flags %v, want %v", got[0].Flags, want)
	}
}

// \Recent claims go through a pool whose commits do not wait for the WAL
// flush on PostgreSQL, and on SQLite through connections with
// synchronous=NORMAL (shared with lazy flag changes and expunges, lazy.go;
// every other change: FULL), which a power cut may lose, as RFC 3501
// allows: the next FULL commit or background flush syncs them.
func TestEphemeralPool(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		p := db.EphemeralForTest()
		if db.Dialect == sqlstore.SQLite {
			var main, claims int
			if err := db.SQL.QueryRowContext(context.Background(), `PRAGMA synchronous`).Scan(&main); err != nil || main != 2 {
				t.Fatalf("main pool: synchronous %d, %v; want 2 (FULL)", main, err)
			}
			if err := p.QueryRowContext(context.Background(), `PRAGMA synchronous`).Scan(&claims); err != nil || claims != 1 || p == db.SQL {
				t.Fatalf("claims' pool: synchronous %d, %v; want 1 (NORMAL), a pool of its own", claims, err)
			}
			return
		}
		var v string
		if err := p.QueryRowContext(context.Background(), `SHOW synchronous_commit`).Scan(&v); err != nil || v != "off" {
			t.Fatalf("synchronous_commit %q, %v", v, err)
		}
		if err := db.SQL.QueryRowContext(context.Background(), `SHOW synchronous_commit`).Scan(&v); err != nil || v != "on" {
			t.Fatalf("main pool: synchronous_commit %q, %v", v, err)
		}
	})
}

// EXPUNGE deletes a body with its last message only: a copy keeps it.
func TestExpungeDropsUnsharedBodies(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		env := storetest.NewMailEnv(t, db)
		m := env.NewMember(t)
		in, trash := env.Box(t, m, "INBOX"), env.Box(t, m, "Trash")
		uid := env.Append(t, in.ID, "Subject: x\r\n\r\nx\r\n", `\Deleted`)
		env.Append(t, in.ID, "Subject: y\r\n\r\ny\r\n")
		if _, _, _, err := db.Mail().Copy(ctx, in.ID, []uint32{uid}, trash.ID); err != nil {
			t.Fatal(err)
		}
		bodies := func() int {
			q := `SELECT COUNT(*) FROM mail_bodies WHERE member_id = ?`
			if db.Dialect == sqlstore.Postgres {
				q = `SELECT COUNT(*) FROM mail_bodies WHERE member_id = $1`
			}
			var n int
			if err := db.SQL.QueryRowContext(ctx, q, m).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		if gone, err := db.Mail().Expunge(ctx, in.ID, nil); err != nil || !slices.Equal(gone, []uint32{uid}) {
			t.Fatalf("expunge: %v %v", gone, err)
		}
		if n := bodies(); n != 2 {
			t.Fatalf("%d bodies after expunging the original, want 2 (the copy's and the other message's)", n)
		}
		if q, err := db.Mail().Quota(ctx, m); err != nil || q.Used != int64(2*len("Subject: x\r\n\r\nx\r\n")) {
			t.Fatalf("usage %d, %v", q.Used, err)
		}
		if _, err := db.Mail().StoreFlags(ctx, trash.ID, []uint32{1}, mailstore.FlagsAdd, []string{`\Deleted`}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Mail().Expunge(ctx, trash.ID, nil); err != nil {
			t.Fatal(err)
		}
		if n := bodies(); n != 1 {
			t.Fatalf("%d bodies after expunging the copy, want 1", n)
		}
		if vanished, _, err := db.Mail().Vanished(ctx, in.ID, 0); err != nil || !slices.Equal(vanished, []uint32{uid}) {
			t.Fatalf("vanished %v, %v", vanished, err)
		}
	})
}

// On PostgreSQL a STORE that changes nothing and an EXPUNGE that finds
// nothing flagged \Deleted do not wait for a change in progress on the
// mailbox: as of their snapshot there was nothing to write.
func TestNoOpChangesTakeNoLock(t *testing.T) {
	db := storetest.OpenPostgres(t)
	ctx := context.Background()
	env := storetest.NewMailEnv(t, db)
	m := env.NewMember(t)
	in := env.Box(t, m, "INBOX")
	uid := env.Append(t, in.ID, "Subject: x\r\n\r\nx\r\n", `\Seen`)

	other := storetest.OpenOther(t, db)
	tx, err := other.SQL.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `UPDATE mailboxes SET uid_next = uid_next + 1, highest_modseq = highest_modseq + 1 WHERE id = $1`, in.ID); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		run  func() error
	}{
		{"STORE +FLAGS of a flag set", func() error {
			infos, err := db.Mail().StoreFlags(ctx, in.ID, []uint32{uid}, mailstore.FlagsAdd, []string{`\Seen`})
			if err == nil && (len(infos) != 1 || !slices.Equal(infos[0].Flags, []string{`\Seen`})) {
				t.Errorf("STORE returned %+v", infos)
			}
			return err
		}},
		{"EXPUNGE", func() error {
			gone, err := db.Mail().Expunge(ctx, in.ID, nil)
			if len(gone) != 0 {
				t.Errorf("EXPUNGE removed %v", gone)
			}
			return err
		}},
	} {
		done := make(chan error, 1)
		go func() { done <- c.run() }()
	wait:
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				break wait
			default:
			}
			var waiting int
			if err := other.SQL.QueryRowContext(ctx, `SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database() AND (query LIKE '%highest_modseq%' OR query LIKE '%FOR UPDATE%')`).Scan(&waiting); err != nil {
				t.Fatal(err)
			}
			if waiting > 0 {
				t.Fatalf("%s waits for the lock of the change in progress", c.name)
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never returned", c.name)
			}
		}
	}
}

// An EXPUNGE that waits for the mailbox lock while another node copies the
// message it removes keeps the body the copy now shares: the optimistic
// EXPUNGE read the messages before the copy was committed, and the
// foreign key sends it to the locked path, which sees the copy.
func TestExpungeAfterCopyWait(t *testing.T) {
	db := storetest.OpenPostgres(t)
	ctx := context.Background()
	env := storetest.NewMailEnv(t, db)
	m := env.NewMember(t)
	in, trash := env.Box(t, m, "INBOX"), env.Box(t, m, "Trash")
	const msg = "Subject: x\r\n\r\nx\r\n"
	uid := env.Append(t, in.ID, msg, `\Deleted`)

	other, tx := lockedElsewhere(t, db, in.ID)
	if _, err := tx.ExecContext(ctx, `INSERT INTO mail_messages (mailbox_id, uid, flags, internal_date, size, body_id, modseq)
		SELECT $1, 1, '', internal_date, size, body_id, 1 FROM mail_messages WHERE mailbox_id = $2`, trash.ID, in.ID); err != nil {
		t.Fatal(err)
	}

	expungeBehind(t, env, other, tx, in.ID, uid)
	if got := env.Bodies(t, trash.ID); len(got) != 1 || got[0] != msg {
		t.Fatalf("the copy's body: %q", got)
	}
}

// An EXPUNGE whose messages another node expunges in part while it waits
// for the mailbox lock removes the rest and reports only those: on
// PostgreSQL it read both flagged messages before the other node's commit
// and writes after it.
func TestExpungeAfterPartialExpungeWait(t *testing.T) {
	db := storetest.OpenPostgres(t)
	ctx := context.Background()
	env := storetest.NewMailEnv(t, db)
	in := env.Box(t, env.NewMember(t), "INBOX")
	first := env.Append(t, in.ID, "Subject: 1\r\n\r\nx\r\n", `\Deleted`)
	second := env.Append(t, in.ID, "Subject: 2\r\n\r\nx\r\n", `\Deleted`)

	other, tx := lockedElsewhere(t, db, in.ID)
	if _, err := tx.ExecContext(ctx, `WITH mb AS (UPDATE mailboxes SET highest_modseq = highest_modseq + 1 WHERE id = $1 RETURNING highest_modseq)
		INSERT INTO mail_vanished (mailbox_id, uid, modseq) SELECT $1, $2, highest_modseq FROM mb`, in.ID, first); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM mail_messages WHERE mailbox_id = $1 AND uid = $2`, in.ID, first); err != nil {
		t.Fatal(err)
	}

	expungeBehind(t, env, other, tx, in.ID, second)
}

// lockedElsewhere opens another node's store and, in a transaction of it,
// locks the mailbox row as every change does; the test commits or leaves
// it to be rolled back.
func lockedElsewhere(t *testing.T, db *sqlstore.DB, mailboxID int64) (*sqlstore.DB, *sql.Tx) {
	t.Helper()
	other := storetest.OpenOther(t, db)
	tx, err := other.SQL.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback() })
	if _, err := tx.Exec(`SELECT 1 FROM mailboxes WHERE id = $1 FOR UPDATE`, mailboxID); err != nil {
		t.Fatal(err)
	}
	return other, tx
}

// expungeBehind runs an EXPUNGE of the mailbox, which waits for the lock
// tx holds, then commits tx, and checks that the EXPUNGE removed the UIDs
// want and left the mailbox empty.
func expungeBehind(t *testing.T, env *storetest.MailEnv, other *sqlstore.DB, tx *sql.Tx, mailboxID int64, want ...uint32) {
	t.Helper()
	type result struct {
		gone []uint32
		err  error
	}
	done := make(chan result, 1)
	go func() {
		gone, err := env.Mail.Expunge(context.Background(), mailboxID, nil)
		done <- result{gone, err}
	}()
	waitForLock(t, other)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if r := <-done; r.err != nil || !slices.Equal(r.gone, want) {
		t.Fatalf("expunge: %v %v, want %v", r.gone, r.err, want)
	}
	if got := env.UIDs(t, mailboxID); len(got) != 0 {
		t.Fatalf("the mailbox after the expunge: %v", got)
	}
}
