package sqlstore_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/internal/mailstore"
	"github.com/postern/postern/internal/store/sqlstore"
	"github.com/postern/postern/internal/store/storetest"
)

// With lazy mail changes on, STORE and EXPUNGE commit without the fsync
// and the background flush syncs the WAL after them; APPEND still commits
// with it. The mark is set while serving and cleared by Close.
func TestLazyMailChanges(t *testing.T) {
	ctx := context.Background()
	db := storetest.OpenSQLite(t)
	var mu sync.Mutex
	var synced []string
	defer db.SetLazyForTest(10*time.Millisecond, func(path string) error {
		mu.Lock()
		defer mu.Unlock()
		synced = append(synced, path)
		return nil
	})()
	env := storetest.NewMailEnv(t, db)
	in := env.Box(t, env.NewMember(t), "INBOX")
	env.Append(t, in.ID, "Subject: a\r\n\r\na\r\n")
	env.Append(t, in.ID, "Subject: b\r\n\r\nb\r\n")
	if _, _, err := env.Mail.StoreFlagsIf(ctx, in.ID, []uint32{1}, mailstore.FlagsAdd, []string{`\Seen`}, 0); err != nil {
		t.Fatal(err)
	}
	if n := db.LazyCommits(); n != 0 {
		t.Fatalf("%d lazy commits before LazyMailChanges", n)
	}

	if err := db.LazyMailChanges(ctx); err != nil {
		t.Fatal(err)
	}
	if v, err := db.ServerSetting(ctx, sqlstore.LazyMark); err != nil || v == "" {
		t.Fatalf("mark %q, %v: want it set while lazy commits may be unsynced", v, err)
	}
	if _, _, err := env.Mail.StoreFlagsIf(ctx, in.ID, []uint32{2}, mailstore.FlagsAdd, []string{`\Deleted`}, 0); err != nil {
		t.Fatal(err)
	}
	if n := db.LazyCommits(); n != 1 {
		t.Fatalf("STORE: %d lazy commits, want 1", n)
	}
	if gone, err := env.Mail.Expunge(ctx, in.ID, nil); err != nil || len(gone) != 1 {
		t.Fatalf("expunge: %v %v", gone, err)
	}
	if n := db.LazyCommits(); n != 2 {
		t.Fatalf("EXPUNGE: %d lazy commits, want 2", n)
	}
	env.Append(t, in.ID, "Subject: c\r\n\r\nc\r\n")
	if n := db.LazyCommits(); n != 2 {
		t.Fatalf("APPEND committed lazily (%d lazy commits)", n)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		n := len(synced)
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no background flush after lazy commits")
		}
	}
	mu.Lock()
	if synced[0] != db.DSN+"-wal" {
		t.Fatalf("flushed %q, want the WAL %q", synced[0], db.DSN+"-wal")
	}
	mu.Unlock()

	path := db.DSN
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := sqlstore.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if v, err := again.ServerSetting(ctx, sqlstore.LazyMark); err != nil || v != "" {
		t.Fatalf("mark %q, %v after a clean Close: want it cleared", v, err)
	}
}

// A process that stopped with lazy commits perhaps unsynced leaves the
// mark, and the next LazyMailChanges moves every HIGHESTMODSEQ past what a
// power cut can have taken back, so no mod-sequence a client saw is handed
// out again; after a clean stop nothing moves.
func TestLazyUncleanStopMovesModSeqs(t *testing.T) {
	ctx := context.Background()
	first := storetest.OpenSQLite(t)
	if err := first.LazyMailChanges(ctx); err != nil {
		t.Fatal(err)
	}
	env := storetest.NewMailEnv(t, first)
	in := env.Box(t, env.NewMember(t), "INBOX")
	env.Append(t, in.ID, "Subject: a\r\n\r\na\r\n")
	infos, _, err := env.Mail.StoreFlagsIf(ctx, in.ID, []uint32{1}, mailstore.FlagsAdd, []string{`\Seen`}, 0)
	if err != nil || len(infos) != 1 {
		t.Fatal(infos, err)
	}
	seen := infos[0].ModSeq

	// The next process starts while the mark is still there: as after a
	// power cut or a kill.
	next, err := sqlstore.Open(ctx, first.DSN)
	if err != nil {
		t.Fatal(err)
	}
	if err := next.LazyMailChanges(ctx); err != nil {
		t.Fatal(err)
	}
	mail := next.Mail()
	mb, err := mail.Mailbox(ctx, in.MemberID, "INBOX")
	if err != nil || mb.HighestModSeq < seen+sqlstore.ModSeqGap {
		t.Fatalf("HIGHESTMODSEQ %d after an unclean stop, %v; want at least %d", mb.HighestModSeq, err, seen+sqlstore.ModSeqGap)
	}
	infos, _, err = mail.StoreFlagsIf(ctx, in.ID, []uint32{1}, mailstore.FlagsAdd, []string{`\Flagged`}, 0)
	if err != nil || len(infos) != 1 || infos[0].ModSeq <= mb.HighestModSeq {
		t.Fatalf("STORE after the move: %+v, %v", infos, err)
	}
	moved := infos[0].ModSeq
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if err := next.Close(); err != nil {
		t.Fatal(err)
	}

	clean, err := sqlstore.Open(ctx, first.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer clean.Close()
	if err := clean.LazyMailChanges(ctx); err != nil {
		t.Fatal(err)
	}
	mb, err = clean.Mail().Mailbox(ctx, in.MemberID, "INBOX")
	if err != nil || mb.HighestModSeq != moved {
		t.Fatalf("HIGHESTMODSEQ %d after a clean stop, %v; want %d, unmoved", mb.HighestModSeq, err, moved)
	}
}
