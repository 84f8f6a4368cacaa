package sqlstore_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/postern/postern/internal/mailstore"
	"github.com/postern/postern/internal/msgindex/mailcorpus"
	"github.com/postern/postern/internal/store/sqlstore"
	"github.com/postern/postern/internal/store/storetest"
)

// TestMailIndexSplitMigration: migration 0023 moves every row of the
// one-table index (0019's) into mail_index and mail_index_bulk as it is,
// without building any again: a preview changed in the old table comes out
// changed, and the rest is what the messages' index is.
func TestMailIndexSplitMigration(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		e := storetest.NewMailEnv(t, db)
		in := e.Box(t, e.NewMember(t), "INBOX")
		corpus := mailcorpus.Messages()
		for _, body := range corpus {
			e.Append(t, in.ID, string(body))
		}
		list := e.List(t, in.ID)
		want := func(fetch bool) map[int64]*mailstore.MessageIndex {
			t.Helper()
			x, err := e.Mail.Indexes(ctx, in.ID, nil, fetch)
			if err != nil || len(x) != len(corpus) {
				t.Fatalf("indexes: %d, %v", len(x), err)
			}
			return x
		}
		keys, items := want(false), want(true)

		// The index as 0019 left it: one table, every column.
		dialect := "sqlite"
		if db.Dialect == sqlstore.Postgres {
			dialect = "postgres"
		}
		create, err := os.ReadFile(filepath.Join("migrations", dialect, "0019_mail_index.sql"))
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{
			`CREATE TABLE split_copy AS SELECT i.body_id, i.version, b.envelope, b.envelope_utf8, b.body_plain, b.body_plain_utf8,
				b.bodystructure, b.bodystructure_utf8, i.from_text, i.to_text, i.cc_text, i.bcc_text, i.subject_text,
				b.body_text, b.header_text, i.sort_from, i.sort_to, i.sort_cc, i.display_from, i.display_to, i.base_subject,
				i.sent_date, i.sent_offset, i.message_id, i.in_reply_to, i.refs, 'stored ' || b.preview AS preview, i.has_attachment
				FROM mail_index i JOIN mail_index_bulk b ON b.body_id = i.body_id`,
			`DROP TABLE mail_index`,
			`DROP TABLE mail_index_bulk`,
			string(create),
			`INSERT INTO mail_index SELECT * FROM split_copy`,
			`DROP TABLE split_copy`,
			`DELETE FROM schema_migrations WHERE name = '0023_mail_index_split.sql'`,
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
		mail := re.Mail()
		for _, fetch := range []bool{false, true} {
			got, err := mail.Indexes(ctx, in.ID, nil, fetch)
			if err != nil || len(got) != len(corpus) {
				t.Fatalf("after the migration, fetch %v: %d indexes, %v", fetch, len(got), err)
			}
			for _, m := range list {
				w := keys[m.ID]
				if fetch {
					c := *items[m.ID]
					c.Preview = "stored " + c.Preview
					w = &c
				}
				if !sameIndex(got[m.ID], w) {
					t.Errorf("message %d, fetch %v: %+v, want %+v", m.UID, fetch, got[m.ID], w)
				}
			}
		}
		uids, err := mail.SearchIndex(ctx, in.ID, mailstore.SearchBody, "budget")
		if err != nil || len(uids) == 0 {
			t.Errorf("SEARCH BODY after the migration: %v, %v", uids, err)
		}
	})
}

// sameIndex compares two indexes as Indexes fills them in: dates by
// instant and zone offset.
func sameIndex(a, b *mailstore.MessageIndex) bool {
	if a == nil || b == nil {
		return a == b
	}
	x, y := *a, *b
	_, ox := x.SentDate.Zone()
	_, oy := y.SentDate.Zone()
	if !x.SentDate.Equal(y.SentDate) || ox != oy {
		return false
	}
	x.SentDate = y.SentDate
	return reflect.DeepEqual(x, y)
}
