package sqlstore_test

import (
	"context"
	"strings"
	"testing"

	"github.com/postern/postern/internal/store/storetest"
)

// TestLZ4: on PostgreSQL (with LZ4, as the test server has), a stored body
// and its large index row are compressed with LZ4 (migration 0033), and
// read back whole.
func TestLZ4(t *testing.T) {
	db := storetest.OpenPostgres(t)
	ctx := context.Background()
	e := storetest.NewMailEnv(t, db)
	in := e.Box(t, e.NewMember(t), "INBOX")
	text := strings.Repeat("The quarterly budget is attached; the figures are final. ", 200)
	body := "Subject: lz4\r\n\r\n" + text + "\r\n"
	e.Append(t, in.ID, body)
	var bodyMethod, textMethod string
	err := db.SQL.QueryRowContext(ctx, `SELECT pg_column_compression(b.body), pg_column_compression(x.body_text)
		FROM mail_bodies b JOIN mail_index_bulk x ON x.body_id = b.id`).Scan(&bodyMethod, &textMethod)
	if err != nil {
		t.Fatal(err)
	}
	if bodyMethod != "lz4" || textMethod != "lz4" {
		t.Errorf("compression of the body %q, of its text %q; want lz4", bodyMethod, textMethod)
	}
	got, err := e.Mail.Body(ctx, e.List(t, in.ID)[0].ID)
	if err != nil || string(got) != body {
		t.Fatalf("body read back: %d octets, %v", len(got), err)
	}
}
