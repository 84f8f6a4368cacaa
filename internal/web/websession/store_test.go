package websession_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/passhash"
	"github.com/postern/postern/internal/store/sqlstore"
	"github.com/postern/postern/internal/store/storetest"
	"github.com/postern/postern/internal/web/websession"
)

func id(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

// TestStore runs the web-session store on SQLite and PostgreSQL.
func TestStore(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		svc := account.NewService(db, passhash.New(passhash.Params{Memory: 64, Time: 1, Threads: 1}), account.Config{Key: []byte("k")})
		if _, err := svc.AddDomain(ctx, "example.com", time.Time{}); err != nil {
			t.Fatal(err)
		}
		a, err := svc.AddMember(ctx, "a@example.com", "", "a long password")
		if err != nil {
			t.Fatal(err)
		}
		b, err := svc.AddMember(ctx, "b@example.com", "", "a long password")
		if err != nil {
			t.Fatal(err)
		}
		var st websession.Store = db
		t0 := time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC)
		rec := websession.Record{IDHash: id("one"), MemberID: a.ID, CreatedAt: t0, LastSeenAt: t0, ReauthAt: t0,
			CSRF: "tok", UserAgent: "Firefox", IP: "192.0.2.1"}
		for _, r := range []websession.Record{rec,
			{IDHash: id("two"), MemberID: a.ID, CreatedAt: t0, LastSeenAt: t0, ReauthAt: t0, CSRF: "t2"},
			{IDHash: id("three"), MemberID: b.ID, CreatedAt: t0, LastSeenAt: t0, ReauthAt: t0, CSRF: "t3"}} {
			if err := st.CreateWebSession(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		got, err := st.WebSession(ctx, id("one"))
		if err != nil || !bytes.Equal(got.IDHash, rec.IDHash) || got.MemberID != a.ID || !got.CreatedAt.Equal(t0) ||
			got.CSRF != "tok" || got.UserAgent != "Firefox" || got.IP != "192.0.2.1" {
			t.Fatalf("get: %+v, %v", got, err)
		}
		if _, err := st.WebSession(ctx, id("nope")); !errors.Is(err, account.ErrNotFound) {
			t.Fatalf("missing session: %v", err)
		}
		t1 := t0.Add(time.Hour)
		if err := st.TouchWebSession(ctx, id("one"), t1); err != nil {
			t.Fatal(err)
		}
		if err := st.TouchWebSession(ctx, id("one"), t0); err != nil { // never backwards
			t.Fatal(err)
		}
		if err := st.ReauthWebSession(ctx, id("two"), t1); err != nil {
			t.Fatal(err)
		}
		if err := st.ReauthWebSession(ctx, id("nope"), t1); !errors.Is(err, account.ErrNotFound) {
			t.Fatalf("reauth of a missing session: %v", err)
		}
		got, _ = st.WebSession(ctx, id("one"))
		got2, _ := st.WebSession(ctx, id("two"))
		if !got.LastSeenAt.Equal(t1) || !got.ReauthAt.Equal(t0) || !got2.ReauthAt.Equal(t1) {
			t.Fatalf("touch/reauth: %+v %+v", got, got2)
		}
		// Password change: every other session of a goes, b keeps hers.
		if n, err := st.DeleteMemberWebSessions(ctx, a.ID, id("one")); err != nil || n != 1 {
			t.Fatalf("delete others: %d, %v", n, err)
		}
		if _, err := st.WebSession(ctx, id("one")); err != nil {
			t.Fatal("kept session gone")
		}
		if _, err := st.WebSession(ctx, id("three")); err != nil {
			t.Fatal("another member's session gone")
		}
		// Prune: "three" was last seen at t0, "one" at t1.
		if n, err := st.PruneWebSessions(ctx, t0.Add(time.Minute), t0.Add(-time.Hour)); err != nil || n != 1 {
			t.Fatalf("prune: %d, %v", n, err)
		}
		if err := st.DeleteWebSession(ctx, id("one")); err != nil {
			t.Fatal(err)
		}
		if n, err := st.DeleteMemberWebSessions(ctx, a.ID, nil); err != nil || n != 0 {
			t.Fatalf("delete all: %d, %v", n, err)
		}
	})
}
