package storetest

import (
	"context"
	"strings"
	"testing"

	"github.com/postern/postern/internal/account"
)

// testNotifications: create, delete and a setting change each write exactly
// one message (app name, IP, browser, the seed's advice, links) and one event;
// no message ever holds the password (docs/security.md).
func testNotifications(t *testing.T, e *Env) {
	ctx := context.Background()
	m := e.Optional(t, "alice", true)
	name := `"><img src=x onerror=alert(1)>`
	p, plain := e.Create(t, m, name)

	msgs, evs := e.Messages(t, m), e.Events(t, m)
	if len(msgs) != 1 || len(evs) != 1 {
		t.Fatalf("after create: %d messages, %d events; want 1 and 1", len(msgs), len(evs))
	}
	created := msgs[0]
	if created.Kind != account.MsgAppPasswordCreated || created.Read {
		t.Errorf("message %+v", created)
	}
	if evs[0].Kind != account.EventAppPasswordCreated || evs[0].AppPasswordID != p.ID {
		t.Errorf("event %+v", evs[0])
	}
	for _, want := range []string{name, Web.IP, Web.UserAgent, m.Email,
		"If you did not create it yourself, delete it now and change your password",
		"https://mail.example.test/security/app-passwords", "https://mail.example.test/security/password"} {
		if !strings.Contains(created.Body, want) {
			t.Errorf("created message lacks %q:\n%s", want, created.Body)
		}
	}
	if !strings.Contains(created.Subject, name) {
		t.Errorf("subject %q lacks the app name", created.Subject)
	}
	if n, _ := e.DB.UnreadMessages(ctx, m.ID); n != 1 {
		t.Errorf("unread badge %d, want 1", n)
	}

	if err := e.Svc.DeleteAppPassword(ctx, m, p.ID, Web); err != nil {
		t.Fatal(err)
	}
	msgs, evs = e.Messages(t, m), e.Events(t, m)
	if len(msgs) != 2 || len(evs) != 2 {
		t.Fatalf("after delete: %d messages, %d events; want 2 and 2", len(msgs), len(evs))
	}
	if msgs[0].Kind != account.MsgAppPasswordDeleted || !strings.Contains(msgs[0].Body, name) ||
		!strings.Contains(msgs[0].Body, Web.IP) || !strings.Contains(msgs[0].Body, "change your password") {
		t.Errorf("delete message %+v", msgs[0])
	}
	if evs[1].Kind != account.EventAppPasswordDeleted || evs[1].AppPasswordID != p.ID {
		t.Errorf("event %+v", evs[1])
	}

	if err := e.Svc.SetUseAppPasswords(ctx, m, false, Web); err != nil {
		t.Fatal(err)
	}
	msgs, evs = e.Messages(t, m), e.Events(t, m)
	if len(msgs) != 3 || len(evs) != 3 || msgs[0].Kind != account.MsgSettingChanged || evs[2].Kind != account.EventSettingChanged {
		t.Fatalf("after the setting change: %d messages, %d events", len(msgs), len(evs))
	}
	for _, msg := range msgs {
		if containsSecret(msg.Subject+msg.Body, plain) {
			t.Errorf("message %q holds the app password", msg.Subject)
		}
	}
	if containsSecret(e.Logs.String(), plain) {
		t.Errorf("the log holds the app password")
	}
}

// testEffectsAtomic: a change and its effects commit or fail together.
func testEffectsAtomic(t *testing.T, e *Env) {
	ctx := context.Background()
	m := e.Enforced(t, "alice")

	// A message to a member that does not exist breaks its foreign key, so
	// the effects fail to write: the app password must not be there either.
	p := account.AppPassword{ID: account.NewID(), MemberID: m.ID, Name: "Ghost", Hash: account.HashAppPassword(e.Key, "x")}
	fx := account.Effects{
		Events:   []account.Event{{Kind: account.EventAppPasswordCreated, MemberID: m.ID, AppPasswordID: p.ID}},
		Messages: []account.Message{{MemberID: 987654, Kind: "x", Subject: "x", Body: "x"}},
	}
	if err := e.DB.CreateAppPassword(ctx, &p, account.MaxAppPasswords, fx); err == nil {
		t.Fatal("create with unwritable effects succeeded")
	}
	if n := len(e.AppPasswords(t, m)) + len(e.Events(t, m)); n != 0 {
		t.Fatalf("the failed transaction left %d rows", n)
	}

	q, _ := e.Create(t, m, "Real")
	if err := e.DB.DeleteAppPassword(ctx, m.ID, q.ID, fx); err == nil {
		t.Fatal("delete with unwritable effects succeeded")
	}
	if n := len(e.AppPasswords(t, m)); n != 1 {
		t.Fatalf("the failed delete removed the app password")
	}
	old := e.Reload(t, m).PasswordHash
	if err := e.DB.SetPasswordHash(ctx, m.ID, "new", true, fx); err == nil {
		t.Fatal("password change with unwritable effects succeeded")
	}
	if e.Reload(t, m).PasswordHash != old || len(e.AppPasswords(t, m)) != 1 {
		t.Fatalf("the failed password change was partly applied")
	}

	// The store's own checks: limit and name, each writing nothing when refused.
	before := len(e.Events(t, m))
	dup := account.AppPassword{ID: account.NewID(), MemberID: m.ID, Name: "REAL", Hash: []byte("h")}
	WantCode(t, e.DB.CreateAppPassword(ctx, &dup, 5, account.Effects{Events: fx.Events}), account.ECONFLICT)
	one := account.AppPassword{ID: account.NewID(), MemberID: m.ID, Name: "Other", Hash: []byte("h")}
	WantCode(t, e.DB.CreateAppPassword(ctx, &one, 1, account.Effects{Events: fx.Events}), account.ELIMIT)
	missing := account.AppPassword{ID: account.NewID(), MemberID: 987654, Name: "Other", Hash: []byte("h")}
	WantNotFound(t, e.DB.CreateAppPassword(ctx, &missing, 5, account.Effects{}))
	if n := len(e.Events(t, m)); n != before {
		t.Errorf("refused creates wrote %d events", n-before)
	}
}

// testChangePassword: the current password is required; the new one works at
// once; with deleteAppPasswords every app password goes, each with an event.
func testChangePassword(t *testing.T, e *Env) {
	ctx := context.Background()
	m := e.Optional(t, "alice", true)
	p1, plain1 := e.Create(t, m, "One")
	p2, _ := e.Create(t, m, "Two")
	const next, third = "a much better passphrase", "yet another passphrase"

	err := e.Svc.ChangePassword(ctx, m, "wrong password", next, false, true, Web)
	WantCode(t, err, account.EFORBIDDEN)
	WantCode(t, e.Svc.ChangePassword(ctx, m, MainPassword, "short", false, false, Web), account.EINVALID)
	if m2 := e.Reload(t, m); m2.PasswordHash != m.PasswordHash || len(e.AppPasswords(t, m)) != 2 {
		t.Fatal("a refused change changed something")
	}

	if err := e.Svc.ChangePassword(ctx, m, MainPassword, next, false, false, Web); err != nil {
		t.Fatal(err)
	}
	m = e.Reload(t, m)
	if err := e.Svc.CheckMainPassword(ctx, m, next); err != nil {
		t.Errorf("new password refused: %v", err)
	}
	WantCode(t, e.Svc.CheckMainPassword(ctx, m, MainPassword), account.EUNAUTHORIZED)
	if len(e.AppPasswords(t, m)) != 2 {
		t.Fatal("app passwords deleted without asking")
	}
	if _, _, err := e.Svc.Verify(ctx, m.Email, plain1); err != nil {
		t.Errorf("app password after the change: %v", err)
	}

	evs0 := len(e.Events(t, m))
	if err := e.Svc.ChangePassword(ctx, m, next, third, false, true, Web); err != nil {
		t.Fatal(err)
	}
	m = e.Reload(t, m)
	if n := len(e.AppPasswords(t, m)); n != 0 {
		t.Errorf("%d app passwords left", n)
	}
	_, _, err = e.Svc.Verify(ctx, m.Email, plain1)
	WantCode(t, err, account.EUNAUTHORIZED)
	evs := e.Events(t, m)[evs0:]
	deleted := map[string]bool{}
	changed := 0
	for _, ev := range evs {
		switch ev.Kind {
		case account.EventAppPasswordDeleted:
			deleted[ev.AppPasswordID] = true
		case account.EventPasswordChanged:
			changed++
		}
	}
	if len(evs) != 3 || changed != 1 || !deleted[p1.ID] || !deleted[p2.ID] {
		t.Errorf("events %+v", evs)
	}
	msgs := e.Messages(t, m)
	if msgs[0].Kind != account.MsgPasswordChanged || !strings.Contains(msgs[0].Body, "app passwords were deleted") {
		t.Errorf("message %+v", msgs[0])
	}
	// An administrator reset skips the current password.
	if err := e.Svc.ChangePassword(ctx, m, "", MainPassword, true, false, account.Actor{Via: "cli"}); err != nil {
		t.Errorf("reset: %v", err)
	}
	WantNotFound(t, e.DB.SetPasswordHash(ctx, 987654, "x", false, account.Effects{}))
}
