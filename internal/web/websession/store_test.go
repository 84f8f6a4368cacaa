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
		a, b := exampleMembers(t, db)
		var st websession.Store = db
		t0 := time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC)
		rec := websession.Record{IDHash: id("one"), MemberID: a.ID, CreatedAt: t0, LastSeenAt: t0, ReauthAt: t0,
			CSRF: "tok", UserAgent: "Firefox", IP: "192.0.2.1", PublicID: "p-one"}
		for _, r := range []websession.Record{rec,
			{IDHash: id("two"), PublicID: "p-two", MemberID: a.ID, CreatedAt: t0, LastSeenAt: t0, ReauthAt: t0, CSRF: "t2"},
			{IDHash: id("three"), PublicID: "p-three", MemberID: b.ID, CreatedAt: t0, LastSeenAt: t0, ReauthAt: t0, CSRF: "t3"}} {
			if err := st.CreateWebSession(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		got, err := st.WebSession(ctx, id("one"))
		if err != nil || !bytes.Equal(got.IDHash, rec.IDHash) || got.MemberID != a.ID || !got.CreatedAt.Equal(t0) ||
			got.CSRF != "tok" || got.UserAgent != "Firefox" || got.IP != "192.0.2.1" || got.PublicID != "p-one" {
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

// TestStoreSessionsList runs the sessions list and the sign-out of one
// session by its public id on both engines: most recent first, and a member
// can never reach another member's session.
func TestStoreSessionsList(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		a, b := exampleMembers(t, db)
		var st websession.Store = db
		t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
		for i, r := range []websession.Record{
			{IDHash: id("a1"), PublicID: "pa1", MemberID: a.ID, CreatedAt: t0, LastSeenAt: t0, ReauthAt: t0, CSRF: "x", UserAgent: "Firefox", IP: "192.0.2.1"},
			{IDHash: id("a2"), PublicID: "pa2", MemberID: a.ID, CreatedAt: t0, LastSeenAt: t0.Add(time.Hour), ReauthAt: t0, CSRF: "x", UserAgent: "Safari", IP: "2001:db8::1"},
			{IDHash: id("b1"), PublicID: "pb1", MemberID: b.ID, CreatedAt: t0, LastSeenAt: t0, ReauthAt: t0, CSRF: "x"},
		} {
			if err := st.CreateWebSession(ctx, r); err != nil {
				t.Fatalf("create %d: %v", i, err)
			}
		}
		if err := st.CreateWebSession(ctx, websession.Record{IDHash: id("np"), MemberID: a.ID, CSRF: "x"}); err == nil {
			t.Fatal("a session without a public id was stored")
		}
		list, err := st.MemberWebSessions(ctx, a.ID)
		if err != nil || len(list) != 2 || list[0].PublicID != "pa2" || list[1].PublicID != "pa1" ||
			list[0].UserAgent != "Safari" || list[0].IP != "2001:db8::1" || !list[0].LastSeenAt.Equal(t0.Add(time.Hour)) ||
			!bytes.Equal(list[1].IDHash, id("a1")) {
			t.Fatalf("list: %+v, %v", list, err)
		}
		// a cannot sign out b's session, even knowing its public id.
		if err := st.DeleteMemberWebSession(ctx, a.ID, "pb1"); !errors.Is(err, account.ErrNotFound) {
			t.Fatalf("delete another member's session: %v", err)
		}
		if _, err := st.WebSession(ctx, id("b1")); err != nil {
			t.Fatal("b's session is gone")
		}
		if err := st.DeleteMemberWebSession(ctx, a.ID, "pa1"); err != nil {
			t.Fatal(err)
		}
		if _, err := st.WebSession(ctx, id("a1")); !errors.Is(err, account.ErrNotFound) {
			t.Fatalf("signed-out session still there: %v", err)
		}
		if err := st.DeleteMemberWebSession(ctx, a.ID, "pa1"); !errors.Is(err, account.ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
	})
}

// TestStoreMessageParams checks that the parameters of a notification (the
// JSON column of migration 0007) come back as written, on both engines, and
// that a message without any reads back with none.
func TestStoreMessageParams(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		a, _ := exampleMembers(t, db)
		p := map[string]string{"app": `"><img src=x onerror=alert(1)> 日本語`, "ip": "192.0.2.1", "time": "2025-01-02T03:04:05Z"}
		if err := db.AddMessage(ctx, a.ID, account.Effects{Messages: []account.Message{
			{Kind: "plain", Subject: "s0", Body: "b0"},
			{Kind: account.MsgAppPasswordCreated, Subject: "s1", Body: "b1", Params: p},
		}}); err != nil {
			t.Fatal(err)
		}
		list, err := db.Messages(ctx, a.ID)
		if err != nil || len(list) != 2 {
			t.Fatalf("messages: %+v, %v", list, err)
		}
		if got := list[0].Params; len(got) != len(p) || got["app"] != p["app"] || got["ip"] != p["ip"] || got["time"] != p["time"] {
			t.Fatalf("params: %#v", got)
		}
		if list[1].Params != nil {
			t.Fatalf("params of a message without any: %#v", list[1].Params)
		}
	})
}

// TestStoreReveals runs the one-time views on both engines: taken once,
// only by their own session, and gone with the session.
func TestStoreReveals(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		a, _ := exampleMembers(t, db)
		var st websession.Store = db
		t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
		for _, s := range []string{"s1", "s2"} {
			if err := st.CreateWebSession(ctx, websession.Record{IDHash: id(s), PublicID: "p" + s, MemberID: a.ID,
				CreatedAt: t0, LastSeenAt: t0, ReauthAt: t0, CSRF: "x"}); err != nil {
				t.Fatal(err)
			}
		}
		for _, v := range []websession.Reveal{{ID: "v1", SessionID: id("s1"), ExpiresAt: t0.Add(5 * time.Minute), Sealed: []byte("sealed one")},
			{ID: "v2", SessionID: id("s1"), ExpiresAt: t0, Sealed: []byte("two")}} {
			if err := st.PutReveal(ctx, v); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := st.TakeReveal(ctx, "v1", id("s2")); !errors.Is(err, account.ErrNotFound) {
			t.Fatalf("another session took the view: %v", err)
		}
		got, err := st.TakeReveal(ctx, "v1", id("s1"))
		if err != nil || string(got.Sealed) != "sealed one" || !got.ExpiresAt.Equal(t0.Add(5*time.Minute)) {
			t.Fatalf("take: %+v, %v", got, err)
		}
		if _, err := st.TakeReveal(ctx, "v1", id("s1")); !errors.Is(err, account.ErrNotFound) {
			t.Fatalf("taken twice: %v", err)
		}
		if err := st.DeleteWebSession(ctx, id("s1")); err != nil {
			t.Fatal(err)
		}
		if _, err := st.TakeReveal(ctx, "v2", id("s1")); !errors.Is(err, account.ErrNotFound) {
			t.Fatalf("view outlived its session: %v", err)
		}
	})
}

// exampleMembers adds the domain example.com and its members a@ and b@.
func exampleMembers(t *testing.T, db *sqlstore.DB) (a, b account.Member) {
	t.Helper()
	ctx := context.Background()
	svc := account.NewService(db, passhash.New(passhash.Params{Memory: 64, Time: 1, Threads: 1}), account.Config{Key: []byte("k")})
	if _, err := svc.AddDomain(ctx, "example.com", time.Time{}); err != nil {
		t.Fatal(err)
	}
	var err error
	if a, err = svc.AddMember(ctx, "a@example.com", "", "a long password"); err != nil {
		t.Fatal(err)
	}
	if b, err = svc.AddMember(ctx, "b@example.com", "", "a long password"); err != nil {
		t.Fatal(err)
	}
	return a, b
}
