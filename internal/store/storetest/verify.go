package storetest

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/store/sqlstore"
)

// swapCase turns upper case to lower and back: a variant of an app password
// that differs from it (every app password has a letter).
func swapCase(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' {
			return r - 32
		}
		if r >= 'A' && r <= 'Z' {
			return r + 32
		}
		return r
	}, s)
}

// testVerifyMatrix: who logs in to third-party apps with what. Every refusal
// is the one EUNAUTHORIZED error with the one message.
func testVerifyMatrix(t *testing.T, e *Env) {
	ctx := context.Background()
	enf := e.Enforced(t, "alice")
	var enfPlain string
	for i := range 5 {
		_, enfPlain = e.Create(t, enf, fmt.Sprintf("app %d", i))
	}
	on := e.Optional(t, "bob", true)
	_, onPlain := e.Create(t, on, "Thunderbird")
	off := e.Optional(t, "carol", true)
	_, offPlain := e.Create(t, off, "Thunderbird")
	if err := e.DB.SetUseAppPasswords(ctx, off.ID, false, account.Effects{}); err != nil {
		t.Fatal(err)
	}
	susp := e.Enforced(t, "dave")
	_, suspPlain := e.Create(t, susp, "Thunderbird")
	suspOff := e.Optional(t, "erin", false)
	for _, m := range []account.Member{susp, suspOff} {
		if err := e.Svc.SetState(ctx, m, account.StateSuspended); err != nil {
			t.Fatal(err)
		}
	}
	lower, upper := strings.ToLower(enfPlain), strings.ToUpper(enfPlain)
	grouped := account.GroupAppPassword(enfPlain)

	cases := []struct {
		name, user, secret string
		ok                 bool
		reason             string // logged reason on failure
	}{
		{"enforced: main refused", enf.Email, MainPassword, false, "policy"},
		{"enforced: app", enf.Email, enfPlain, true, ""},
		{"enforced: app grouped", enf.Email, grouped, true, ""},
		{"enforced: user in capitals", strings.ToUpper(enf.Email), enfPlain, true, ""},
		{"enforced: app plus one char", enf.Email, enfPlain + "a", false, "bad-password"},
		{"enforced: app minus one char", enf.Email, enfPlain[:19], false, "bad-password"},
		{"enforced: grouped plus space", enf.Email, grouped + " ", false, "bad-password"},
		{"enforced: regrouped", enf.Email, enfPlain[:4] + " " + enfPlain[4:], false, "bad-password"},
		{"enforced: swapped case", enf.Email, swapCase(enfPlain), false, "bad-password"},
		{"enforced: another member's app", enf.Email, onPlain, false, "bad-password"},
		{"enforced: empty", enf.Email, "", false, ""},
		{"optional off: main", off.Email, MainPassword, true, ""},
		{"optional off: app refused", off.Email, offPlain, false, "bad-password"},
		{"optional on: app", on.Email, onPlain, true, ""},
		{"optional on: main refused", on.Email, MainPassword, false, "policy"},
		{"unknown user", "nobody@enforced.test", MainPassword, false, "unknown-user"},
		{"unknown domain", "alice@nowhere.test", enfPlain, false, "unknown-user"},
		{"not an address", "alice", MainPassword, false, "unknown-user"},
		{"suspended: app", susp.Email, suspPlain, false, "suspended"},
		{"suspended: main", suspOff.Email, MainPassword, false, "suspended"},
		{"suspended: wrong", suspOff.Email, "wrong password!", false, "bad-password"},
	}
	if lower != enfPlain {
		cases = append(cases, struct {
			name, user, secret string
			ok                 bool
			reason             string
		}{"enforced: lower-cased", enf.Email, lower, false, "bad-password"})
	}
	if upper != enfPlain {
		cases = append(cases, struct {
			name, user, secret string
			ok                 bool
			reason             string
		}{"enforced: upper-cased", enf.Email, upper, false, "bad-password"})
	}
	for _, c := range cases {
		m, cred, err := e.Svc.Verify(ctx, c.user, c.secret)
		if c.ok {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
				continue
			}
			wantEmail, _ := account.ParseEmail(c.user)
			if m.Email != wantEmail {
				t.Errorf("%s: logged in as %s", c.name, m.Email)
			}
			if isApp := c.secret != MainPassword; cred.IsMain() == isApp || (isApp && cred.AppName == "") {
				t.Errorf("%s: credential %+v", c.name, cred)
			}
			continue
		}
		if account.ErrorCode(err) != account.EUNAUTHORIZED || account.ErrorMessage(err) != account.ErrAuthFailed.Message {
			t.Errorf("%s: error %v (%s, %q), want the one login failure", c.name, err, account.ErrorCode(err), account.ErrorMessage(err))
		}
		if c.reason != "" && account.FailureReason(err) != c.reason {
			t.Errorf("%s: reason %q, want %q", c.name, account.FailureReason(err), c.reason)
		}
	}
}

// testCredentials: the login hot path returns the member and all its app
// passwords, or the member alone.
func testCredentials(t *testing.T, e *Env) {
	ctx := context.Background()
	m, empty := e.Enforced(t, "alice"), e.Enforced(t, "bob")
	var made []account.AppPassword
	for i := range 3 {
		p, _ := e.Create(t, m, fmt.Sprintf("app %d", i))
		made = append(made, p)
	}
	got, list, err := e.DB.Credentials(ctx, m.Email)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, e.Reload(t, m)) || len(list) != 3 {
		t.Fatalf("credentials %+v, %d app passwords", got, len(list))
	}
	for i, p := range list {
		if p.ID != made[i].ID || p.Name != made[i].Name || string(p.Hash) != string(made[i].Hash) || p.MemberID != m.ID || !p.CreatedAt.Equal(made[i].CreatedAt) {
			t.Errorf("app password %d: %+v, want %+v", i, p, made[i])
		}
	}
	got, list, err = e.DB.Credentials(ctx, empty.Email)
	if err != nil || got.ID != empty.ID || len(list) != 0 {
		t.Errorf("member without app passwords: %+v, %v, %v", got, list, err)
	}
}

// testTouch: last use is recorded at most once per interval.
func testTouch(t *testing.T, e *Env) {
	ctx := context.Background()
	m := e.Enforced(t, "alice")
	p, _ := e.Create(t, m, "Thunderbird")
	t0 := time.Date(2025, 4, 1, 12, 0, 0, 0, time.UTC)
	steps := []struct {
		at          time.Time
		proto, ip   string
		wantAt      time.Time
		wantProto   string
		description string
	}{
		{t0, "imap", "192.0.2.1", t0, "imap", "first use"},
		{t0.Add(30 * time.Second), "smtp", "192.0.2.2", t0, "imap", "within the minute: kept"},
		{t0.Add(59 * time.Second), "pop3", "192.0.2.3", t0, "imap", "still within the minute"},
		{t0.Add(61 * time.Second), "caldav", "2001:db8::1", t0.Add(61 * time.Second), "caldav", "a minute later"},
	}
	for _, s := range steps {
		if err := e.DB.TouchAppPassword(ctx, p.ID, s.at, s.proto, s.ip, s.at.Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
		list, err := e.DB.AppPasswords(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		got := list[0]
		if !got.LastUsedAt.Equal(s.wantAt) || got.LastUsedProtocol != s.wantProto {
			t.Errorf("%s: last used %v %s, want %v %s", s.description, got.LastUsedAt, got.LastUsedProtocol, s.wantAt, s.wantProto)
		}
	}
	views, err := e.Svc.AppPasswords(ctx, m)
	if err != nil || views[0].LastUsedIP != "2001:db8::1" {
		t.Errorf("listed %+v, %v", views, err)
	}
	if err := e.DB.TouchAppPassword(ctx, "ffffffffffffffff", t0, "imap", "192.0.2.1", t0); err != nil {
		t.Errorf("touching a deleted app password: %v", err)
	}
}

// testTouchBatch: a batch of uses larger than one statement holds, among
// them unknown ids, each use kept only where the last one is older than its
// NotBefore.
func testTouchBatch(t *testing.T, e *Env) {
	ctx := context.Background()
	t0 := time.Date(2025, 4, 1, 12, 0, 0, 0, time.UTC)
	var ids []string
	for _, name := range []string{"alice", "bob", "carol"} {
		m := e.Enforced(t, name)
		for i := range 5 {
			p, _ := e.Create(t, m, fmt.Sprintf("App %d", i))
			ids = append(ids, p.ID)
		}
	}
	// ids[0] was used 30 s before the batch: the batch's use of it is
	// within the minute and must not be written.
	if err := e.DB.TouchAppPassword(ctx, ids[0], t0.Add(-30*time.Second), "smtp", "192.0.2.9", t0.Add(-90*time.Second)); err != nil {
		t.Fatal(err)
	}
	var uses []account.Touch
	want := map[string]account.Touch{}
	for i := range 450 {
		u := account.Touch{ID: fmt.Sprintf("%016x", 0xf000000000000000+uint64(i)), At: t0.Add(time.Duration(i) * time.Millisecond),
			Protocol: "imap", IP: fmt.Sprintf("192.0.2.%d", i%250), NotBefore: t0.Add(-time.Minute)}
		if i%30 == 7 && i/30 < len(ids) { // real ids in every chunk, across its boundaries
			u.ID = ids[i/30]
			want[u.ID] = u
		}
		uses = append(uses, u)
	}
	if err := e.DB.TouchAppPasswords(ctx, uses); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"alice", "bob", "carol"} {
		mem, err := e.DB.MemberByEmail(ctx, m+"@enforced.test")
		if err != nil {
			t.Fatal(err)
		}
		list, err := e.DB.AppPasswords(ctx, mem.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range list {
			w := want[p.ID]
			if p.ID == ids[0] {
				w = account.Touch{At: t0.Add(-30 * time.Second), Protocol: "smtp", IP: "192.0.2.9"}
			}
			if !p.LastUsedAt.Equal(w.At) || p.LastUsedProtocol != w.Protocol || p.LastUsedIP != w.IP {
				t.Errorf("%s: last used %v %s %s, want %v %s %s", p.ID, p.LastUsedAt, p.LastUsedProtocol, p.LastUsedIP, w.At, w.Protocol, w.IP)
			}
		}
	}
}

// awaitEvents waits until the events committed so far can be read: on
// PostgreSQL, transactions of other tests running on the server may hold
// them back an instant (see sqlstore.EventsAfter).
func awaitEvents(t testing.TB, db *sqlstore.DB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := db.AwaitEvents(ctx); err != nil {
		t.Fatal(err)
	}
}

// testEvents: the outbox is read in position order, in pages, from any
// point.
func testEvents(t *testing.T, e *Env) {
	ctx := context.Background()
	start, err := e.DB.LastEventPos(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if evs, err := e.DB.EventsAfter(ctx, start, 10); err != nil || len(evs) != 0 {
		t.Fatalf("empty outbox after %v: %v, %v", start, evs, err)
	}
	m := e.Enforced(t, "alice")
	old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := e.DB.AddMessage(ctx, m.ID, account.Effects{Events: []account.Event{{Kind: account.EventMailboxChanged, MemberID: m.ID, MailboxID: 7, CreatedAt: old}}}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev := account.Event{Kind: account.EventMailboxChanged, MemberID: m.ID, MailboxID: int64(100 + i)}
			if err := e.DB.AddMessage(ctx, m.ID, account.Effects{Events: []account.Event{ev, ev}}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	awaitEvents(t, e.DB)
	all, err := e.DB.EventsAfter(ctx, start, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 21 {
		t.Fatalf("%d events, want 21", len(all))
	}
	for i := 1; i < len(all); i++ {
		if !all[i-1].Pos().Before(all[i].Pos()) {
			t.Fatalf("%v after %v", all[i].Pos(), all[i-1].Pos())
		}
		// A transaction's two events are read together, in seq order.
		if i%2 == 0 && (all[i].Txn != all[i-1].Txn || all[i].MailboxID != all[i-1].MailboxID) {
			t.Errorf("events of one transaction apart: %+v, %+v", all[i-1], all[i])
		}
	}
	if all[0].MailboxID != 7 || !all[0].CreatedAt.Equal(old) || all[0].Kind != account.EventMailboxChanged || all[0].MemberID != m.ID {
		t.Errorf("first event %+v", all[0])
	}
	page, err := e.DB.EventsAfter(ctx, all[4].Pos(), 3)
	if err != nil || len(page) != 3 || page[0].Seq != all[5].Seq || page[2].Seq != all[7].Seq {
		t.Errorf("page after %v: %+v, %v", all[4].Pos(), page, err)
	}
	if rest, err := e.DB.EventsAfter(ctx, all[20].Pos(), 10); err != nil || len(rest) != 0 {
		t.Errorf("after the last: %+v, %v", rest, err)
	}
	last, err := e.DB.LastEventPos(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rest, err := e.DB.EventsAfter(ctx, last, 10); err != nil || len(rest) != 0 {
		t.Errorf("after LastEventPos %v: %+v, %v", last, rest, err)
	}
	if err := e.DB.PruneEvents(ctx, old.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	left, err := e.DB.EventsAfter(ctx, start, 1000)
	if err != nil || len(left) != 20 || left[0].Seq != all[1].Seq {
		t.Errorf("after prune: %d events, %v", len(left), err)
	}
	// New events after pruning still come after every one seen before.
	if err := e.DB.AddMessage(ctx, m.ID, account.Effects{Events: []account.Event{{Kind: account.EventMemberResumed, MemberID: m.ID}}}); err != nil {
		t.Fatal(err)
	}
	awaitEvents(t, e.DB)
	for _, from := range []account.EventPos{last, all[20].Pos()} {
		if next, err := e.DB.EventsAfter(ctx, from, 10); err != nil || len(next) != 1 || next[0].Kind != account.EventMemberResumed {
			t.Errorf("after prune and insert, from %v: %+v, %v", from, next, err)
		}
	}
}

// testEventsConcurrent: a reader that follows the outbox while many writers
// commit sees every event once: none appears behind its position.
func testEventsConcurrent(t *testing.T, e *Env) {
	ctx := context.Background()
	m := e.Enforced(t, "alice")
	const writers, each = 8, 40
	pos, err := e.DB.LastEventPos(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				ev := account.Event{Kind: account.EventMailboxChanged, MemberID: m.ID, MailboxID: int64(w*each + i + 1)}
				if err := e.DB.AddMessage(ctx, m.ID, account.Effects{Events: []account.Event{ev}}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	seen := map[int64]int{}
	// Once the writers are done, the reader goes on until it has read them
	// all; on PostgreSQL another test's open transaction may hold the last
	// ones back a moment.
	var deadline <-chan time.Time
	for len(seen) < writers*each {
		evs, err := e.DB.EventsAfter(ctx, pos, 7)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			seen[ev.MailboxID]++
			pos = ev.Pos()
		}
		if len(evs) > 0 {
			continue
		}
		select {
		case <-done:
			done, deadline = nil, time.After(30*time.Second)
		case <-deadline:
			t.Fatalf("read %d of %d events", len(seen), writers*each)
		case <-time.After(time.Millisecond):
		}
	}
	// Nothing more, nothing twice.
	time.Sleep(50 * time.Millisecond)
	if evs, err := e.DB.EventsAfter(ctx, pos, 10); err != nil || len(evs) != 0 {
		t.Errorf("after all: %+v, %v", evs, err)
	}
	for id := int64(1); id <= writers*each; id++ {
		if seen[id] != 1 { // a duplicate counts 2
			t.Errorf("event %d read %d times", id, seen[id])
		}
	}
}
