package storetest

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/postern/postern/internal/account"
)

var tokyo = time.FixedZone("Asia/Tokyo", 9*3600)

// testDomainPolicy: the policy follows the domain's creation time around
// 2022-10-13 00:00 Asia/Tokyo, after a round trip through the store.
func testDomainPolicy(t *testing.T, e *Env) {
	ctx := context.Background()
	cases := []struct {
		created time.Time
		want    account.Policy
	}{
		{time.Date(2019, 5, 1, 0, 0, 0, 0, time.UTC), account.PolicyOptional},
		{time.Date(2022, 10, 12, 23, 59, 0, 0, tokyo), account.PolicyOptional},
		{time.Date(2022, 10, 12, 23, 59, 59, 999999000, tokyo), account.PolicyOptional},
		{time.Date(2022, 10, 13, 0, 0, 0, 0, tokyo), account.PolicyEnforced},
		// The same instants in UTC: the cut-off is Tokyo midnight, not UTC midnight.
		{time.Date(2022, 10, 12, 14, 59, 59, 0, time.UTC), account.PolicyOptional},
		{time.Date(2022, 10, 12, 15, 0, 0, 0, time.UTC), account.PolicyEnforced},
		{time.Date(2022, 10, 12, 23, 0, 0, 0, time.UTC), account.PolicyEnforced},
		{time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), account.PolicyEnforced},
	}
	for i, c := range cases {
		name := fmt.Sprintf("d%d.test", i)
		e.Domain(t, name, c.created)
		d, err := e.DB.DomainByName(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if !d.CreatedAt.Equal(c.created) {
			t.Errorf("%s: created %v, stored %v", name, c.created, d.CreatedAt)
		}
		m := e.Member(t, "alice@"+name)
		if !m.DomainCreatedAt.Equal(c.created) {
			t.Errorf("%s: member's DomainCreatedAt %v, want %v", name, m.DomainCreatedAt, c.created)
		}
		for _, got := range []account.Member{e.Reload(t, m), mustCredentials(t, e, m.Email)} {
			if p := e.Svc.Policy(got); p != c.want {
				t.Errorf("%s created %v: policy %s, want %s", name, c.created, p, c.want)
			}
			if got.UseAppPasswords {
				t.Errorf("%s: the setting is on by default", m.Email)
			}
		}
	}
}

func mustCredentials(t testing.TB, e *Env, email string) account.Member {
	t.Helper()
	m, _, err := e.DB.Credentials(context.Background(), email)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func testDomains(t *testing.T, e *Env) {
	ctx := context.Background()
	for _, n := range []string{"b.test", "a.test", "c.test"} {
		e.Domain(t, n, OptionalDate)
	}
	_, err := e.Svc.AddDomain(ctx, "A.Test.", time.Time{})
	WantCode(t, err, account.ECONFLICT)
	if got := account.ErrorMessage(err); got != "The domain a.test already exists." {
		t.Errorf("message %q", got)
	}
	_, err = e.Svc.AddDomain(ctx, "not a domain", time.Time{})
	WantCode(t, err, account.EINVALID)
	list, err := e.DB.Domains(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range list {
		names = append(names, d.Name)
	}
	if fmt.Sprint(names) != "[a.test b.test c.test]" {
		t.Errorf("domains %v", names)
	}
	_, err = e.DB.DomainByName(ctx, "missing.test")
	WantNotFound(t, err)
}

func testMembers(t *testing.T, e *Env) {
	ctx := context.Background()
	e.Domain(t, "b.test", OptionalDate)
	e.Domain(t, "a.test", EnforcedDate)
	for _, addr := range []string{"zed@a.test", "bob@b.test", "Alice@A.test", "carol@a.test"} {
		e.Member(t, addr)
	}
	_, err := e.Svc.AddMember(ctx, "ALICE@a.test", "", MainPassword)
	WantCode(t, err, account.ECONFLICT)
	if got := account.ErrorMessage(err); got != "A member alice@a.test already exists." {
		t.Errorf("message %q", got)
	}
	_, err = e.Svc.AddMember(ctx, "dave@missing.test", "", MainPassword)
	WantCode(t, err, account.ENOTFOUND)

	all, err := e.DB.Members(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := emails(all); got != "[alice@a.test bob@b.test carol@a.test zed@a.test]" {
		t.Errorf("Members(\"\") = %s", got)
	}
	inA, err := e.DB.Members(ctx, "a.test")
	if err != nil {
		t.Fatal(err)
	}
	if got := emails(inA); got != "[alice@a.test carol@a.test zed@a.test]" {
		t.Errorf("Members(a.test) = %s", got)
	}
	for _, m := range all {
		if m.State != account.StateActive || m.UseAppPasswords || m.PasswordHash == "" || m.CreatedAt.IsZero() || m.DomainCreatedAt.IsZero() {
			t.Errorf("member %+v: want active, setting off, hashed, dated", m)
		}
	}

	m, err := e.Svc.Member(ctx, "  ALICE@a.TEST ")
	if err != nil {
		t.Fatal(err)
	}
	byID, err := e.DB.MemberByID(ctx, m.ID)
	if err != nil || !reflect.DeepEqual(byID, m) {
		t.Errorf("MemberByID = %+v, %v; want %+v", byID, err, m)
	}
	if m.Name != "alice" || e.Svc.Policy(m) != account.PolicyEnforced {
		t.Errorf("member %+v", m)
	}
	_, err = e.DB.MemberByEmail(ctx, "nobody@a.test")
	WantNotFound(t, err)
	_, err = e.DB.MemberByID(ctx, 987654)
	WantNotFound(t, err)
	_, _, err = e.DB.Credentials(ctx, "nobody@a.test")
	WantNotFound(t, err)
	_, err = e.Svc.Member(ctx, "nobody@a.test")
	WantCode(t, err, account.ENOTFOUND)
}

func emails(list []account.Member) string {
	var s []string
	for _, m := range list {
		s = append(s, m.Email)
	}
	return fmt.Sprint(s)
}

// testSetting: refused for enforced domains; on an optional domain each
// change writes exactly one message and one event, and a no-op writes none.
func testSetting(t *testing.T, e *Env) {
	ctx := context.Background()
	enf := e.Enforced(t, "alice")
	err := e.Svc.SetUseAppPasswords(ctx, enf, false, Web)
	WantCode(t, err, account.ECONFLICT)
	err = e.Svc.SetUseAppPasswords(ctx, enf, true, Web)
	WantCode(t, err, account.ECONFLICT)
	if n := len(e.Messages(t, enf)) + len(e.Events(t, enf)); n != 0 {
		t.Errorf("a refused change wrote %d messages and events", n)
	}

	m := e.Optional(t, "bob", false)
	steps := []bool{true, true, false, false, true}
	wantChanges := 0
	for _, on := range steps {
		if err := e.Svc.SetUseAppPasswords(ctx, m, on, Web); err != nil {
			t.Fatal(err)
		}
		if m.UseAppPasswords != on {
			wantChanges++
		}
		m = e.Reload(t, m)
		if m.UseAppPasswords != on {
			t.Fatalf("setting %v not stored", on)
		}
		msgs, evs := e.Messages(t, m), e.Events(t, m)
		if len(msgs) != wantChanges || len(evs) != wantChanges {
			t.Fatalf("after %d changes: %d messages, %d events", wantChanges, len(msgs), len(evs))
		}
		if msgs[0].Kind != account.MsgSettingChanged || evs[len(evs)-1].Kind != account.EventSettingChanged {
			t.Errorf("message %q, event %q", msgs[0].Kind, evs[len(evs)-1].Kind)
		}
	}
	err = e.DB.SetUseAppPasswords(ctx, 987654, true, account.Effects{})
	WantNotFound(t, err)
}

func testSetState(t *testing.T, e *Env) {
	ctx := context.Background()
	m := e.Enforced(t, "alice")
	if err := e.Svc.SetState(ctx, m, account.StateSuspended); err != nil {
		t.Fatal(err)
	}
	m = e.Reload(t, m)
	if m.State != account.StateSuspended {
		t.Fatalf("state %q", m.State)
	}
	_, _, err := e.Svc.CreateAppPassword(ctx, m, "Thunderbird", Web)
	WantCode(t, err, account.EFORBIDDEN)
	if err := e.Svc.SetState(ctx, m, account.StateActive); err != nil {
		t.Fatal(err)
	}
	WantCode(t, e.Svc.SetState(ctx, m, "deleted"), account.EINVALID)
	evs := e.Events(t, m)
	if len(evs) != 2 || evs[0].Kind != account.EventMemberSuspended || evs[1].Kind != account.EventMemberResumed {
		t.Errorf("events %+v", evs)
	}
	if m = e.Reload(t, m); m.State != account.StateActive {
		t.Errorf("state %q", m.State)
	}
	WantNotFound(t, e.DB.SetState(ctx, 987654, account.StateActive, account.Effects{}))
}

func testMessages(t *testing.T, e *Env) {
	ctx := context.Background()
	m, other := e.Enforced(t, "alice"), e.Enforced(t, "bob")
	for i := range 3 {
		msg := account.Message{Kind: "test", Subject: fmt.Sprintf("subject %d", i), Body: "body", CreatedAt: e.Now()}
		if err := e.DB.AddMessage(ctx, m.ID, account.Effects{Messages: []account.Message{msg}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.DB.AddMessage(ctx, other.ID, account.Effects{Messages: []account.Message{{Kind: "test", Subject: "other"}}}); err != nil {
		t.Fatal(err)
	}
	list := e.Messages(t, m)
	if len(list) != 3 || list[0].Subject != "subject 2" || list[2].Subject != "subject 0" {
		t.Fatalf("messages not newest first: %+v", list)
	}
	if list[0].Read || list[0].MemberID != m.ID || list[0].Body != "body" || list[0].CreatedAt.IsZero() {
		t.Errorf("message %+v", list[0])
	}
	unread := func(m account.Member) int {
		n, err := e.DB.UnreadMessages(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := unread(m); n != 3 {
		t.Errorf("unread %d, want 3", n)
	}
	// Marking another member's message id does nothing.
	if err := e.DB.MarkMessagesRead(ctx, m.ID, []int64{list[0].ID, e.Messages(t, other)[0].ID}); err != nil {
		t.Fatal(err)
	}
	if n := unread(m); n != 2 {
		t.Errorf("unread %d after reading one, want 2", n)
	}
	if n := unread(other); n != 1 {
		t.Errorf("another member's message was marked read")
	}
	if !e.Messages(t, m)[0].Read {
		t.Errorf("message not marked read")
	}
	if err := e.DB.MarkMessagesRead(ctx, m.ID, nil); err != nil {
		t.Fatal(err)
	}
	if n := unread(m); n != 0 {
		t.Errorf("unread %d after reading all", n)
	}
}
