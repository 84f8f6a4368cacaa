package sqlstore_test

import (
	"context"
	"testing"

	"github.com/postern/postern/internal/mailstore"
	"github.com/postern/postern/internal/store/sqlstore"
	"github.com/postern/postern/internal/store/storetest"
)

// TestQuotaMigration: migration 0020 starts every member's usage counter
// at the sum of the member's message sizes, so a server upgraded with mail
// in its mailboxes counts it from the first delivery.
func TestQuotaMigration(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		e := storetest.NewMailEnv(t, db)
		a, b, none := e.NewMember(t), e.NewMember(t), e.NewMember(t)
		if err := e.Mail.DeliverAll(ctx, []mailstore.Delivery{{MemberID: a, Body: []byte("12345")}, {MemberID: a, Body: []byte("123"), Junk: true}, {MemberID: b, Body: []byte("1")}}); err != nil {
			t.Fatal(err)
		}
		e.Append(t, e.Box(t, none, "INBOX").ID, "gone")
		if err := e.Mail.Delete(ctx, e.Box(t, none, "INBOX").ID, []uint32{1}); err != nil {
			t.Fatal(err)
		}
		// The schema as it was before 0020, with the messages in it.
		for _, q := range []string{
			`DROP TABLE mail_usage`,
			`ALTER TABLE members DROP COLUMN mail_quota`,
			`ALTER TABLE domains DROP COLUMN mail_quota`,
			`CREATE INDEX mail_messages_usage ON mail_messages(mailbox_id, size)`,
			`DELETE FROM schema_migrations WHERE name = '0020_mail_quota.sql'`,
		} {
			if _, err := db.SQL.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		re, err := sqlstore.Open(ctx, db.DSN)
		if err != nil {
			t.Fatal(err)
		}
		defer re.Close()
		for m, want := range map[int64]int64{a: 8, b: 1, none: 0} {
			q, err := re.Mail().Quota(ctx, m)
			if err != nil || q.Used != want || q.Member != nil || q.Domain != nil {
				t.Errorf("member %d after the migration: %+v %v, want %d used", m, q, err, want)
			}
		}
	})
}
