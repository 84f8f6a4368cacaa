package storetest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/postern/postern/internal/account"
)

const limitMessage = "You already have 5 third-party app passwords. Delete one you no longer use before creating a new one."

func testCreateForbiddenWhileOff(t *testing.T, e *Env) {
	ctx := context.Background()
	m := e.Optional(t, "alice", false)
	_, _, err := e.Svc.CreateAppPassword(ctx, m, "Thunderbird", Web)
	WantCode(t, err, account.EFORBIDDEN)
	if n := len(e.AppPasswords(t, m)) + len(e.Messages(t, m)) + len(e.Events(t, m)); n != 0 {
		t.Errorf("a refused create wrote %d rows", n)
	}
	if err := e.Svc.SetUseAppPasswords(ctx, m, true, Web); err != nil {
		t.Fatal(err)
	}
	e.Create(t, e.Reload(t, m), "Thunderbird")
}

// testAppNames: the app name is hostile input: trimmed, 1–64 characters, no
// control or format characters; what passes is stored verbatim.
func testAppNames(t *testing.T, e *Env) {
	ctx := context.Background()
	cases := []struct {
		in, stored, code string
	}{
		{"Thunderbird", "Thunderbird", ""},
		{"  Apple Mail on iPhone \t", "Apple Mail on iPhone", ""},
		{`"><img src=x onerror=alert(1)>`, `"><img src=x onerror=alert(1)>`, ""},
		{"<script>alert('x')</script>", "<script>alert('x')</script>", ""},
		{strings.Repeat("a", 64), strings.Repeat("a", 64), ""},
		{strings.Repeat("あ", 64), strings.Repeat("あ", 64), ""},
		{"Outlook 😀", "Outlook 😀", ""},
		{"", "", account.EINVALID},
		{"   ", "", account.EINVALID},
		{strings.Repeat("a", 65), "", account.EINVALID},
		{strings.Repeat("あ", 65), "", account.EINVALID},
		{"X\r\nBcc: evil@x", "", account.EINVALID},
		{"X\nBcc: evil@x", "", account.EINVALID},
		{"tab\tinside", "", account.EINVALID},
		{"nul\x00", "", account.EINVALID},
		{"del\x7f", "", account.EINVALID},
		{"bidi \u202Egnp.exe", "", account.EINVALID},
		{"line\u2028separator", "", account.EINVALID},
		{"bad \xff utf8", "", account.EINVALID},
		{"\u3164", "", account.EINVALID},             // Hangul filler only
		{"\u115f\u2800\uffa0", "", account.EINVALID}, // fillers and a braille blank
		{"\ufe0f\u034f", "", account.EINVALID},       // ignorable marks only
		{"zero\u200bwidth", "", account.EINVALID},    // format character
	}
	for i, c := range cases {
		m := e.Enforced(t, fmt.Sprintf("m%d", i))
		p, _, err := e.Svc.CreateAppPassword(ctx, m, c.in, Web)
		WantCode(t, err, c.code)
		list := e.AppPasswords(t, m)
		if c.code != "" {
			if len(list) != 0 {
				t.Errorf("%q: refused but stored", c.in)
			}
			if strings.ContainsAny(account.ErrorMessage(err), "\r\n") {
				t.Errorf("%q: error message has a line break", c.in)
			}
			continue
		}
		if p.Name != c.stored || len(list) != 1 || list[0].Name != c.stored {
			t.Errorf("%q: returned %q, stored %+v; want %q", c.in, p.Name, list, c.stored)
		}
	}
}

func testAppNameUnique(t *testing.T, e *Env) {
	ctx := context.Background()
	m, other := e.Enforced(t, "alice"), e.Enforced(t, "bob")
	e.Create(t, m, "Thunderbird")
	for _, name := range []string{"Thunderbird", "THUNDERBIRD", "  thunderBird  "} {
		_, _, err := e.Svc.CreateAppPassword(ctx, m, name, Web)
		WantCode(t, err, account.ECONFLICT)
		want := fmt.Sprintf("You already have a third-party app password named “%s”.", strings.TrimSpace(name))
		if got := account.ErrorMessage(err); got != want {
			t.Errorf("message %q, want %q", got, want)
		}
	}
	e.Create(t, other, "Thunderbird") // unique per member only
	e.Create(t, m, "Thunderbird 2")
	if n := len(e.AppPasswords(t, m)); n != 2 {
		t.Errorf("%d rows, want 2", n)
	}
	if n := len(e.Messages(t, m)); n != 2 {
		t.Errorf("%d messages, want 2 (refused creates send none)", n)
	}
}

// testAppNameConfusable: names that look like an existing one of the same
// member (Unicode TS #39 confusables, case, invisible characters) are
// refused, naming the existing one; other members and names that look
// different are not affected.
func testAppNameConfusable(t *testing.T, e *Env) {
	ctx := context.Background()
	m, other := e.Enforced(t, "alice"), e.Enforced(t, "bob")
	e.Create(t, m, "Thunderbird")
	e.Create(t, m, "Outlook")
	e.Create(t, m, "mail")
	for _, c := range []struct{ name, existing string }{
		{"\u0422hunderbird", "Thunderbird"},      // Cyrillic capital Те
		{"\u0422\u041dUNDERBIRD", "Thunderbird"}, // Cyrillic Те and Эн, upper case
		{"Thunderb\u0131rd", "Thunderbird"},      // dotless ı
		{"\U0001d413hunderbird", "Thunderbird"},  // mathematical bold T
		{"Thunderbird\u3164", "Thunderbird"},     // a Hangul filler after it
		{"Thunder\u2800bird", "Thunderbird"},     // a braille blank inside
		{"\uff34\uff48underbird", "Thunderbird"}, // fullwidth
		{"0utlook", "Outlook"},                   // digit zero
		{"\u041eutl\u043e\u043ek", "Outlook"},    // Cyrillic О, о
		{"rnail", "mail"},                        // rn for m
		{"MAIL", "mail"},
	} {
		_, _, err := e.Svc.CreateAppPassword(ctx, m, c.name, Web)
		WantCode(t, err, account.ECONFLICT)
		want := fmt.Sprintf("You already have a third-party app password named “%s”, which looks the same as “%s”. Choose a name that looks different.", c.existing, c.name)
		if strings.EqualFold(c.name, c.existing) {
			want = fmt.Sprintf("You already have a third-party app password named “%s”.", c.name)
		}
		if got := account.ErrorMessage(err); got != want {
			t.Errorf("%q: message %q, want %q", c.name, got, want)
		}
	}
	if n := len(e.AppPasswords(t, m)); n != 3 {
		t.Errorf("%d rows, want 3", n)
	}
	e.Create(t, other, "\u0422hunderbird") // per member only
	e.Create(t, m, "Thunderbird 2")        // looks different
	e.Create(t, m, "Thunderbolt")
}

// testConcurrentConfusableCreates: parallel creates of look-alike names for
// one member leave exactly one.
func testConcurrentConfusableCreates(t *testing.T, e *Env) {
	ctx := context.Background()
	m := e.Enforced(t, "alice")
	names := []string{"Thunderbird", "\u0422hunderbird", "THUNDERBIRD", "Thunderb\u0131rd", "Thunderbird\u3164", "\U0001d413hunderbird"}
	codes := make([]string, len(names))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, _, err := e.Svc.CreateAppPassword(ctx, m, name, Web)
			codes[i] = account.ErrorCode(err)
			if err != nil && codes[i] != account.ECONFLICT {
				t.Errorf("create %q: %v", name, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if got := len(e.AppPasswords(t, m)); got != 1 {
		t.Errorf("%d rows, want 1 (codes %q)", got, codes)
	}
}

func testLimit(t *testing.T, e *Env) {
	ctx := context.Background()
	m := e.Enforced(t, "alice")
	var ids []string
	for i := range account.MaxAppPasswords {
		p, _ := e.Create(t, m, fmt.Sprintf("app %d", i))
		ids = append(ids, p.ID)
	}
	_, _, err := e.Svc.CreateAppPassword(ctx, m, "one too many", Web)
	WantCode(t, err, account.ELIMIT)
	if got := account.ErrorMessage(err); got != limitMessage {
		t.Errorf("message %q", got)
	}
	if n := len(e.AppPasswords(t, m)); n != 5 {
		t.Fatalf("%d rows, want 5", n)
	}
	if err := e.Svc.DeleteAppPassword(ctx, m, ids[2], Web); err != nil {
		t.Fatal(err)
	}
	e.Create(t, m, "one too many")
	_, _, err = e.Svc.CreateAppPassword(ctx, m, "and another", Web)
	WantCode(t, err, account.ELIMIT)
}

// testConcurrentCreates: 20 parallel creates for one member leave exactly 5
// rows, 5 messages and 5 events (docs/security.md).
func testConcurrentCreates(t *testing.T, e *Env) {
	ctx := context.Background()
	m := e.Enforced(t, "alice")
	const n = 20
	codes := make([]string, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, _, err := e.Svc.CreateAppPassword(ctx, m, fmt.Sprintf("app %d", i), Web)
			codes[i] = account.ErrorCode(err)
			if err != nil && codes[i] != account.ELIMIT {
				t.Errorf("create %d: %v", i, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	ok := 0
	for _, c := range codes {
		if c == "" {
			ok++
		}
	}
	if ok != 5 {
		t.Errorf("%d creates succeeded, want 5", ok)
	}
	if got := len(e.AppPasswords(t, m)); got != 5 {
		t.Errorf("%d rows, want 5", got)
	}
	if got := len(e.Messages(t, m)); got != 5 {
		t.Errorf("%d messages, want 5", got)
	}
	if got := len(e.Events(t, m)); got != 5 {
		t.Errorf("%d events, want 5", got)
	}
}

func testList(t *testing.T, e *Env) {
	ctx := context.Background()
	m := e.Enforced(t, "alice")
	var made []account.AppPassword
	for _, name := range []string{"Thunderbird", "iPhone Mail", "DAVx5"} {
		p, plain := e.Create(t, m, name)
		if len(plain) != account.AppPasswordLen {
			t.Errorf("plaintext of length %d", len(plain))
		}
		if string(p.Hash) != string(account.HashAppPassword(e.Key, plain)) {
			t.Errorf("returned hash is not HMAC(key, plaintext)")
		}
		made = append(made, p)
	}
	list, err := e.Svc.AppPasswords(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != len(made) {
		t.Fatalf("%d listed, want %d", len(list), len(made))
	}
	for i, v := range list {
		w := made[i]
		if v.ID != w.ID || v.Name != w.Name || v.MemberID != m.ID || !v.CreatedAt.Equal(w.CreatedAt) ||
			string(v.Hash) != string(w.Hash) || !v.Active || !v.LastUsedAt.IsZero() || v.LastUsedProtocol != "" || v.LastUsedIP != "" {
			t.Errorf("listed %d: %+v, created %+v", i, v, w)
		}
		if len(v.ID) != 16 {
			t.Errorf("id %q", v.ID)
		}
	}
	if !list[0].CreatedAt.Before(list[1].CreatedAt) || !list[1].CreatedAt.Before(list[2].CreatedAt) {
		t.Errorf("not oldest first")
	}
}

// testActiveFollowsSetting: app passwords are inactive while the setting is
// off (kept, refused at login) and active again when it is turned back on.
func testActiveFollowsSetting(t *testing.T, e *Env) {
	ctx := context.Background()
	m := e.Optional(t, "alice", true)
	_, plain := e.Create(t, m, "Thunderbird")
	e.Create(t, m, "Phone")
	check := func(active bool) {
		t.Helper()
		m = e.Reload(t, m)
		list, err := e.Svc.AppPasswords(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 {
			t.Fatalf("%d app passwords, want 2 kept", len(list))
		}
		for _, v := range list {
			if v.Active != active {
				t.Errorf("%s: active %v, want %v", v.Name, v.Active, active)
			}
		}
		_, _, err = e.Svc.Verify(ctx, m.Email, plain)
		if active != (err == nil) {
			t.Errorf("setting %v: app password login error %v", m.UseAppPasswords, err)
		}
	}
	check(true)
	if err := e.Svc.SetUseAppPasswords(ctx, m, false, Web); err != nil {
		t.Fatal(err)
	}
	check(false)
	if err := e.Svc.SetUseAppPasswords(ctx, m, true, Web); err != nil {
		t.Fatal(err)
	}
	check(true)
}

func testDeleteIDOR(t *testing.T, e *Env) {
	ctx := context.Background()
	alice, bob := e.Enforced(t, "alice"), e.Enforced(t, "bob")
	p, plain := e.Create(t, alice, "Thunderbird")
	e.Create(t, bob, "Thunderbird")
	msgs0 := len(e.Messages(t, bob))

	// Bob deleting Alice's id: not found, nothing changes, nobody is notified.
	err := e.Svc.DeleteAppPassword(ctx, bob, p.ID, Web)
	WantCode(t, err, account.ENOTFOUND)
	WantNotFound(t, e.DB.DeleteAppPassword(ctx, bob.ID, p.ID, account.Effects{
		Messages: []account.Message{{MemberID: bob.ID, Kind: "x", Subject: "x"}}}))
	if len(e.AppPasswords(t, alice)) != 1 || len(e.Messages(t, bob)) != msgs0 || len(e.Messages(t, alice)) != 1 {
		t.Fatalf("a refused delete changed something")
	}
	WantCode(t, e.Svc.DeleteAppPassword(ctx, alice, "0123456789abcdef", Web), account.ENOTFOUND)

	if _, _, err := e.Svc.Verify(ctx, alice.Email, plain); err != nil {
		t.Fatalf("login before delete: %v", err)
	}
	if err := e.Svc.DeleteAppPassword(ctx, alice, p.ID, Web); err != nil {
		t.Fatal(err)
	}
	if n := len(e.AppPasswords(t, alice)); n != 0 {
		t.Errorf("%d left after delete", n)
	}
	_, _, err = e.Svc.Verify(ctx, alice.Email, plain)
	WantCode(t, err, account.EUNAUTHORIZED)
	evs := e.Events(t, alice)
	last := evs[len(evs)-1]
	if last.Kind != account.EventAppPasswordDeleted || last.AppPasswordID != p.ID {
		t.Errorf("last event %+v", last)
	}
	WantCode(t, e.Svc.DeleteAppPassword(ctx, alice, p.ID, Web), account.ENOTFOUND)
	if n := len(e.AppPasswords(t, bob)); n != 1 {
		t.Errorf("bob's app password was touched")
	}
}
