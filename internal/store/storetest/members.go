package storetest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/authrec"
	"github.com/postern/postern/internal/davrec"
	"github.com/postern/postern/internal/store/sqlstore"
	"github.com/postern/postern/internal/web/websession"
)

// RunMembers runs the member administration suite: account.Service's
// search, import, rename, delete, reset, pause and session methods over the
// store that open returns (a fresh one per test).
func RunMembers(t *testing.T, open func(testing.TB) *sqlstore.DB) {
	tests := []struct {
		name string
		fn   func(*testing.T, *Env)
	}{
		{"SearchAndPages", testMemberSearch},
		{"SearchScope", testMemberSearchScope},
		{"Import", testMemberImport},
		{"ImportRace", testMemberImportRace},
		{"Rename", testMemberRename},
		{"RenameRefused", testMemberRenameRefused},
		{"Delete", testMemberDelete},
		{"ResetPassword", testMemberResetPassword},
		{"LiftPause", testMemberLiftPause},
		{"EndSessions", testMemberEndSessions},
		{"DeleteAllAppPasswords", testMemberDeleteAllAppPasswords},
		{"LiveSessions", testMemberLiveSessions},
		{"DeleteDomainWithMembers", testDeleteDomainWithMembers},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, NewEnv(t, open(t))) })
	}
}

// count runs a SELECT COUNT(*) written with ? placeholders.
func count(t testing.TB, db *sqlstore.DB, query string, args ...any) int {
	t.Helper()
	if db.Dialect == sqlstore.Postgres {
		for i := 1; strings.Contains(query, "?"); i++ {
			query = strings.Replace(query, "?", fmt.Sprintf("$%d", i), 1)
		}
	}
	var n int
	if err := db.SQL.QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// named adds a member with a display name.
func (e *Env) named(t testing.TB, email, name string) account.Member {
	t.Helper()
	m, err := e.Svc.AddMember(context.Background(), email, name, MainPassword)
	if err != nil {
		t.Fatalf("add member %s: %v", email, err)
	}
	return m
}

func pageEmails(p account.MemberPage) string {
	var s []string
	for _, m := range p.Members {
		s = append(s, m.Email)
	}
	return strings.Join(s, " ")
}

// testMemberSearch: pages by address follow the cursor to the end; a query
// is a prefix of the address or of the name (case and width folded); a
// domain narrows it.
func testMemberSearch(t *testing.T, e *Env) {
	ctx := context.Background()
	e.Domain(t, "a.test", EnforcedDate)
	e.Domain(t, "b.test", EnforcedDate)
	// Created out of address order.
	e.named(t, "carol@a.test", "Carol Tanaka")
	e.named(t, "alice@b.test", "Alice")
	e.named(t, "bob@a.test", "田中 一郎")
	e.named(t, "alice@a.test", "Alice Ａｂｅ") // fullwidth
	e.named(t, "dave@a.test", "Zed")

	var got []string
	after := ""
	for range 10 {
		p, err := e.Svc.SearchMembers(ctx, account.AllDomains, "", "", after, 2)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, pageEmails(p))
		if p.Next == "" {
			break
		}
		after = p.Next
	}
	if strings.Join(got, "|") != "alice@a.test alice@b.test|bob@a.test carol@a.test|dave@a.test" {
		t.Fatalf("pages: %q", got)
	}
	for _, c := range []struct{ domain, query, want string }{
		{"", "ALI", "alice@a.test alice@b.test"},
		{"a.test", "ali", "alice@a.test"},
		{"", "alice@b", "alice@b.test"},
		{"", "tanaka", ""}, // a prefix, not a substring
		{"", "carol t", "carol@a.test"},
		{"", "田中", "bob@a.test"},
		{"", "alice abe", "alice@a.test"}, // the name's fullwidth letters fold
		{"", "z", "dave@a.test"},
		{"b.test", "", "alice@b.test"},
		{"", "nobody", ""},
	} {
		p, err := e.Svc.SearchMembers(ctx, account.AllDomains, c.domain, c.query, "", 50)
		if err != nil || pageEmails(p) != c.want || p.Next != "" {
			t.Errorf("search %q in %q: %q next %q, %v; want %q", c.query, c.domain, pageEmails(p), p.Next, err, c.want)
		}
	}
	// A full last page has a cursor; the page after it is empty.
	p, err := e.Svc.SearchMembers(ctx, account.AllDomains, "a.test", "", "carol@a.test", 1)
	if err != nil || pageEmails(p) != "dave@a.test" || p.Next != "" {
		t.Fatalf("last page: %q next %q, %v", pageEmails(p), p.Next, err)
	}
	_, err = e.Svc.SearchMembers(ctx, account.AllDomains, "missing.test", "", "", 10)
	WantCode(t, err, account.ENOTFOUND)
}

// testMemberSearchScope: an administrator of one domain finds only its
// members, whatever the query or domain asked; another domain is missing.
func testMemberSearchScope(t *testing.T, e *Env) {
	ctx := context.Background()
	e.Domain(t, "a.test", EnforcedDate)
	e.Domain(t, "b.test", EnforcedDate)
	e.named(t, "alice@a.test", "Alice")
	e.named(t, "alice@b.test", "Alice")
	e.named(t, "bob@b.test", "Bob")
	sc := account.AdminAccess{Domains: []string{"a.test"}}
	p, err := e.Svc.SearchMembers(ctx, sc, "", "alice", "", 50)
	if err != nil || pageEmails(p) != "alice@a.test" {
		t.Fatalf("scoped search: %q %v", pageEmails(p), err)
	}
	if p, err := e.Svc.SearchMembers(ctx, sc, "", "", "", 50); err != nil || pageEmails(p) != "alice@a.test" {
		t.Fatalf("scoped list: %q %v", pageEmails(p), err)
	}
	_, err = e.Svc.SearchMembers(ctx, sc, "b.test", "", "", 50)
	WantCode(t, err, account.ENOTFOUND)
	if p, err := e.Svc.SearchMembers(ctx, account.AdminAccess{}, "", "", "", 50); err != nil || len(p.Members) != 0 {
		t.Fatalf("empty scope: %q %v", pageEmails(p), err)
	}
	_, err = e.Svc.AdminMember(ctx, sc, "bob@b.test")
	WantCode(t, err, account.ENOTFOUND)
	if m, err := e.Svc.AdminMember(ctx, sc, "ALICE@a.test"); err != nil || m.Email != "alice@a.test" {
		t.Fatalf("admin member: %+v %v", m, err)
	}
}

// testMemberImport: the dry run reports every row's problem and changes
// nothing; the real run creates the valid rows, with a one-time password
// for those without one, and skips the others with the same errors.
func testMemberImport(t *testing.T, e *Env) {
	ctx := context.Background()
	e.Domain(t, "a.test", EnforcedDate)
	e.Domain(t, "b.test", EnforcedDate)
	e.Member(t, "taken@a.test")
	if _, _, err := e.Svc.AddAlias(ctx, "team@a.test", []string{"taken@a.test"}, Web); err != nil {
		t.Fatal(err)
	}
	file := "\ufeffEmail,Name,Password\n" +
		"new1@a.test,New One,\n" + // line 2: ok, one-time
		"new2@a.test,,a long enough password\n" + // 3: ok, given
		"not an address,,\n" + // 4
		"x@missing.test,,\n" + // 5
		"x@b.test,,\n" + // 6: outside the scope
		"NEW1@a.test,,\n" + // 7: repeated
		"taken@a.test,,\n" + // 8: a member's
		"team@a.test,,\n" + // 9: an alias's
		"short@a.test,,short\n" + // 10
		"\"ctl@a.test\",\"bad\x01name\",\n" // 11
	rows, err := account.ReadMembersCSV(strings.NewReader(file))
	if err != nil || len(rows) != 10 {
		t.Fatalf("read: %d rows, %v", len(rows), err)
	}
	sc := account.AdminAccess{Domains: []string{"a.test"}}
	wantErr := map[int]string{4: account.EINVALID, 5: account.ENOTFOUND, 6: account.ENOTFOUND, 7: account.ECONFLICT,
		8: account.ECONFLICT, 9: account.ECONFLICT, 10: account.EINVALID, 11: account.EINVALID}
	check := func(rep account.ImportReport) {
		t.Helper()
		if rep.OK != 2 || rep.Failed != 8 || len(rep.Rows) != 10 {
			t.Fatalf("report: ok %d failed %d rows %d", rep.OK, rep.Failed, len(rep.Rows))
		}
		for _, r := range rep.Rows {
			if got := account.ErrorCode(r.Err); got != wantErr[r.Line] {
				t.Errorf("line %d (%s): %v, want %q", r.Line, r.Email, r.Err, wantErr[r.Line])
			}
		}
	}
	before := count(t, e.DB, `SELECT COUNT(*) FROM members`)
	rep, err := e.Svc.ImportMembers(ctx, sc, rows, true, Web)
	if err != nil {
		t.Fatal(err)
	}
	check(rep)
	if n := count(t, e.DB, `SELECT COUNT(*) FROM members`); n != before || rep.Rows[0].OneTimePassword != "" {
		t.Fatalf("dry run created members: %d, was %d", n, before)
	}
	rep, err = e.Svc.ImportMembers(ctx, sc, rows, false, Web)
	if err != nil {
		t.Fatal(err)
	}
	check(rep)
	one, given := rep.Rows[0], rep.Rows[1]
	if one.OneTimePassword == "" || given.OneTimePassword != "" || one.Member.ID == 0 || given.Member.ID == 0 {
		t.Fatalf("created: %+v %+v", one, given)
	}
	m1, m2 := e.Reload(t, one.Member), e.Reload(t, given.Member)
	if m1.Name != "New One" || !m1.MustChangePassword || m2.Name != "new2" || m2.MustChangePassword {
		t.Fatalf("members: %+v %+v", m1, m2)
	}
	// The one-time password signs in to the web, and nowhere else.
	if _, err := e.Svc.VerifyMain(ctx, m1.Email, one.OneTimePassword); err != nil {
		t.Fatalf("one-time password on the web: %v", err)
	}
	if _, err := e.Svc.VerifyMain(ctx, m2.Email, "a long enough password"); err != nil {
		t.Fatalf("given password: %v", err)
	}
	if n := count(t, e.DB, `SELECT COUNT(*) FROM members WHERE email = ?`, "x@b.test"); n != 0 {
		t.Fatal("a row outside the scope was created")
	}
	// Imported members are found by name.
	if p, err := e.Svc.SearchMembers(ctx, sc, "", "new o", "", 10); err != nil || pageEmails(p) != "new1@a.test" {
		t.Fatalf("search imported: %q %v", pageEmails(p), err)
	}
	// A header without email, an unknown column: the file is refused.
	for _, bad := range []string{"name,password\nx,y\n", "email,role\na@a.test,x\n", ""} {
		if _, err := account.ReadMembersCSV(strings.NewReader(bad)); account.ErrorCode(err) != account.EINVALID {
			t.Errorf("file %q: %v", bad, err)
		}
	}
}

// testMemberImportRace: an address taken between the check and the insert
// fails its row alone; the rest of the batch is created.
func testMemberImportRace(t *testing.T, e *Env) {
	ctx := context.Background()
	d := e.Domain(t, "a.test", EnforcedDate)
	e.Member(t, "raced@a.test")
	ms := []*account.Member{
		{DomainID: d.ID, Email: "ok1@a.test", Name: "ok1", PasswordHash: "x"},
		{DomainID: d.ID, Email: "raced@a.test", Name: "raced", PasswordHash: "x"},
		{DomainID: d.ID, Email: "ok2@a.test", Name: "ok2", PasswordHash: "x"},
		{DomainID: d.ID, Email: "ok2@a.test", Name: "twice", PasswordHash: "x"},
	}
	errs, err := e.DB.CreateMembers(ctx, ms, nil)
	if err != nil {
		t.Fatal(err)
	}
	if errs[0] != nil || errs[2] != nil || account.ErrorCode(errs[1]) != account.ECONFLICT || account.ErrorCode(errs[3]) != account.ECONFLICT {
		t.Fatalf("errors: %v", errs)
	}
	if ms[0].ID == 0 || ms[2].ID == 0 || ms[1].ID != 0 {
		t.Fatalf("ids: %d %d %d", ms[0].ID, ms[1].ID, ms[2].ID)
	}
}

// webSession stores a web session of the member.
func webSession(t testing.TB, e *Env, m account.Member, id string) {
	t.Helper()
	now := time.Now().UTC()
	r := websession.Record{IDHash: []byte(fmt.Sprintf("%-32s", id)), PublicID: id, MemberID: m.ID, CreatedAt: now, LastSeenAt: now, ReauthAt: now, CSRF: "c"}
	if err := e.DB.CreateWebSession(context.Background(), r); err != nil {
		t.Fatal(err)
	}
}

func eventKinds(evs []account.Event) string {
	var k []string
	for _, ev := range evs {
		k = append(k, string(ev.Kind))
	}
	return strings.Join(k, " ")
}

// testMemberRename: the member keeps its id, mail, aliases and app
// passwords under the new address; the old one no longer logs in; web
// sessions end; the member is told; keepAlias leaves the old address as
// an alias of the member.
func testMemberRename(t *testing.T, e *Env) {
	ctx := context.Background()
	e.Domain(t, "b.test", EnforcedDate)
	m := e.Enforced(t, "old")
	_, plain := e.Create(t, m, "Phone") // also a message, so mail in the INBOX
	if _, _, err := e.Svc.AddAlias(ctx, "team@enforced.test", []string{m.Email}, Web); err != nil {
		t.Fatal(err)
	}
	webSession(t, e, m, "s1")
	mail := count(t, e.DB, `SELECT COUNT(*) FROM mail_messages x JOIN mailboxes b ON b.id = x.mailbox_id WHERE b.member_id = ?`, m.ID)
	if mail == 0 {
		t.Fatal("no mail to follow the member")
	}
	// Looked up once, so that a credential cache holds the old address.
	if _, _, err := e.Svc.Verify(ctx, m.Email, plain); err != nil {
		t.Fatal(err)
	}
	r, err := e.Svc.RenameMember(ctx, account.AllDomains, m, " New@B.test ", true, Web)
	if err != nil || r.Email != "new@b.test" || r.ID != m.ID || r.Domain() != "b.test" {
		t.Fatalf("rename: %+v %v", r, err)
	}
	if _, err := e.DB.MemberByEmail(ctx, "old@enforced.test"); err == nil {
		t.Fatal("the old address still names a member")
	}
	got := e.Reload(t, m)
	if got.Email != "new@b.test" || got.DomainID != r.DomainID {
		t.Fatalf("stored: %+v", got)
	}
	if _, _, err := e.Svc.Verify(ctx, "old@enforced.test", plain); account.ErrorCode(err) != account.EUNAUTHORIZED {
		t.Fatalf("old address logs in: %v", err)
	}
	if _, cred, err := e.Svc.Verify(ctx, "new@b.test", plain); err != nil || cred.IsMain() {
		t.Fatalf("app password under the new address: %v", err)
	}
	if n := count(t, e.DB, `SELECT COUNT(*) FROM mail_messages x JOIN mailboxes b ON b.id = x.mailbox_id WHERE b.member_id = ?`, m.ID); n <= mail {
		t.Fatalf("mail: %d messages, had %d (+ the rename's notice)", n, mail)
	}
	if list, err := e.DB.MemberAliases(ctx, m.ID); err != nil || strings.Join(list, " ") != "old@enforced.test team@enforced.test" {
		t.Fatalf("aliases: %v %v", list, err)
	}
	if n := count(t, e.DB, `SELECT COUNT(*) FROM web_sessions WHERE member_id = ?`, m.ID); n != 0 {
		t.Fatalf("%d web sessions left", n)
	}
	msgs := e.Messages(t, got)
	if msgs[0].Kind != account.MsgAddressChanged || msgs[0].Params["old_email"] != "old@enforced.test" || msgs[0].Params["email"] != "new@b.test" {
		t.Fatalf("message: %+v", msgs[0])
	}
	if k := eventKinds(e.Events(t, m)); !strings.HasSuffix(k, string(account.EventMemberRenamed)) {
		t.Fatalf("events: %s", k)
	}
	// Without keepAlias the old address is free.
	r2, err := e.Svc.RenameMember(ctx, account.AllDomains, got, "newer@b.test", false, Web)
	if err != nil {
		t.Fatal(err)
	}
	if n := count(t, e.DB, `SELECT COUNT(*) FROM aliases WHERE address = ?`, "new@b.test"); n != 0 || r2.Email != "newer@b.test" {
		t.Fatalf("alias made without keepAlias: %d", n)
	}
}

// testMemberRenameRefused: into a domain outside the scope (as missing),
// onto a member's or an alias's address, or onto itself.
func testMemberRenameRefused(t *testing.T, e *Env) {
	ctx := context.Background()
	e.Domain(t, "b.test", EnforcedDate)
	m := e.Enforced(t, "m")
	other := e.Enforced(t, "other")
	if _, _, err := e.Svc.AddAlias(ctx, "list@enforced.test", []string{other.Email}, Web); err != nil {
		t.Fatal(err)
	}
	sc := account.AdminAccess{Domains: []string{"enforced.test"}}
	for _, c := range []struct{ to, code string }{
		{"m@b.test", account.ENOTFOUND},
		{"m@missing.test", account.ENOTFOUND},
		{"other@enforced.test", account.ECONFLICT},
		{"list@enforced.test", account.ECONFLICT},
		{"m@enforced.test", account.EINVALID},
		{"not an address", account.EINVALID},
	} {
		_, err := e.Svc.RenameMember(ctx, sc, m, c.to, false, Web)
		if account.ErrorCode(err) != c.code {
			t.Errorf("rename to %s: %v, want %s", c.to, err, c.code)
		}
	}
	if got := e.Reload(t, m); got.Email != m.Email {
		t.Fatalf("renamed anyway: %s", got.Email)
	}
}

// testMemberDelete: the member's mail, calendars, contacts, app passwords,
// messages, web sessions and alias places go; the event closes live
// sessions; another member keeps everything.
func testMemberDelete(t *testing.T, e *Env) {
	ctx := context.Background()
	m, keep := e.Enforced(t, "gone"), e.Enforced(t, "kept")
	for _, x := range []account.Member{m, keep} {
		e.Create(t, x, "Phone")
		webSession(t, e, x, fmt.Sprintf("s%d", x.ID))
		dav := e.DB.DAV()
		c := davrec.Collection{MemberID: x.ID, Kind: davrec.KindCalendar, Name: "work", DisplayName: "Work", Components: "VEVENT"}
		if err := dav.CreateCollection(ctx, &c); err != nil {
			t.Fatal(err)
		}
		o := davrec.Object{CollectionID: c.ID, Name: "e.ics", UID: "e1", Component: "VEVENT", Data: []byte("BEGIN:VCALENDAR\r\nUID:e1\r\nEND:VCALENDAR\r\n")}
		if _, err := dav.PutObject(ctx, &o, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := e.Svc.AddAlias(ctx, "team@enforced.test", []string{m.Email, keep.Email}, Web); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Svc.SetCatchAll(ctx, "enforced.test", m.Email, Web); err != nil {
		t.Fatal(err)
	}
	tables := map[string]string{
		"mail":          `SELECT COUNT(*) FROM mail_messages x JOIN mailboxes b ON b.id = x.mailbox_id WHERE b.member_id = ?`,
		"bodies":        `SELECT COUNT(*) FROM mail_bodies WHERE member_id = ?`,
		"dav":           `SELECT COUNT(*) FROM dav_objects o JOIN dav_collections c ON c.id = o.collection_id WHERE c.member_id = ?`,
		"app passwords": `SELECT COUNT(*) FROM app_passwords WHERE member_id = ?`,
		"messages":      `SELECT COUNT(*) FROM messages WHERE member_id = ?`,
		"web sessions":  `SELECT COUNT(*) FROM web_sessions WHERE member_id = ?`,
		"alias targets": `SELECT COUNT(*) FROM alias_targets WHERE member_id = ?`,
	}
	for what, q := range tables {
		if count(t, e.DB, q, m.ID) == 0 {
			t.Fatalf("no %s before the delete", what)
		}
	}
	if err := e.Svc.DeleteMember(ctx, m, Web); err != nil {
		t.Fatal(err)
	}
	for what, q := range tables {
		if n := count(t, e.DB, q, m.ID); n != 0 {
			t.Errorf("%d %s left", n, what)
		}
		if count(t, e.DB, q, keep.ID) == 0 {
			t.Errorf("the other member lost their %s", what)
		}
	}
	if _, err := e.DB.MemberByID(ctx, m.ID); err == nil {
		t.Fatal("member still there")
	}
	if d, err := e.DB.DomainByName(ctx, "enforced.test"); err != nil || d.CatchAll != "" {
		t.Fatalf("catch-all: %q %v", d.CatchAll, err)
	}
	if k := eventKinds(e.Events(t, m)); !strings.HasSuffix(k, string(account.EventMemberDeleted)) {
		t.Fatalf("events: %s", k)
	}
	WantNotFound(t, e.Svc.DeleteMember(ctx, m, Web))
}

// testMemberResetPassword: the one-time password signs in to the web only;
// the member's sessions end; changing it clears the mark.
func testMemberResetPassword(t *testing.T, e *Env) {
	ctx := context.Background()
	m := e.Optional(t, "r", false) // the main password logs in to apps
	webSession(t, e, m, "s1")
	if _, _, err := e.Svc.Verify(ctx, m.Email, MainPassword); err != nil {
		t.Fatal(err)
	}
	pw, err := e.Svc.ResetPassword(ctx, m, Web)
	if err != nil || len(pw) < 20 {
		t.Fatalf("reset: %q %v", pw, err)
	}
	m = e.Reload(t, m)
	if !m.MustChangePassword {
		t.Fatal("not marked")
	}
	if _, err := e.Svc.VerifyMain(ctx, m.Email, MainPassword); err == nil {
		t.Fatal("the old password still signs in")
	}
	if _, err := e.Svc.VerifyMain(ctx, m.Email, pw); err != nil {
		t.Fatalf("one-time password on the web: %v", err)
	}
	_, _, err = e.Svc.Verify(ctx, m.Email, pw)
	if account.ErrorCode(err) != account.EUNAUTHORIZED || !strings.Contains(err.Error(), "one-time-password") {
		t.Fatalf("one-time password for apps: %v", err)
	}
	if n := count(t, e.DB, `SELECT COUNT(*) FROM web_sessions WHERE member_id = ?`, m.ID); n != 0 {
		t.Fatalf("%d web sessions left", n)
	}
	evs := e.Events(t, m)
	if evs[len(evs)-1].Kind != account.EventPasswordChanged || e.Messages(t, m)[0].Kind != account.MsgPasswordChanged {
		t.Fatalf("events %s", eventKinds(evs))
	}
	if err := e.Svc.ChangePassword(ctx, m, pw, "my own new password", false, false, Web); err != nil {
		t.Fatal(err)
	}
	if m = e.Reload(t, m); m.MustChangePassword {
		t.Fatal("still marked after the change")
	}
	if _, _, err := e.Svc.Verify(ctx, m.Email, "my own new password"); err != nil {
		t.Fatalf("new password for apps: %v", err)
	}
}

// testMemberLiftPause: a paused member is unpaused, and the lift says so.
func testMemberLiftPause(t *testing.T, e *Env) {
	ctx := context.Background()
	m := e.Enforced(t, "p")
	now := time.Now()
	for i := range 3 {
		if _, err := e.DB.RecordAuthFailure(ctx, m.ID, authrec.PairTag{byte(i + 1)}, now, 3, time.Hour, account.Effects{}); err != nil {
			t.Fatal(err)
		}
	}
	p, err := e.Svc.Pause(ctx, m)
	if err != nil || !p.Paused(time.Now()) {
		t.Fatalf("pause: %+v %v", p, err)
	}
	if was, err := e.Svc.LiftPause(ctx, m, Web); err != nil || !was {
		t.Fatalf("lift: %v %v", was, err)
	}
	if p, err := e.Svc.Pause(ctx, m); err != nil || p.Paused(time.Now()) || p.Failures != 0 {
		t.Fatalf("after: %+v %v", p, err)
	}
	if was, err := e.Svc.LiftPause(ctx, m, Web); err != nil || was {
		t.Fatalf("lift again: %v %v", was, err)
	}
}

// testMemberEndSessions: web sessions are listed and all deleted; the
// event closes the third-party ones; another member's stay.
func testMemberEndSessions(t *testing.T, e *Env) {
	ctx := context.Background()
	m, other := e.Enforced(t, "s"), e.Enforced(t, "o")
	webSession(t, e, m, "a")
	webSession(t, e, m, "b")
	webSession(t, e, other, "c")
	list, err := e.Svc.WebSessions(ctx, m)
	if err != nil || len(list) != 2 {
		t.Fatalf("sessions: %+v %v", list, err)
	}
	if n, err := e.Svc.EndSessions(ctx, m, Web); err != nil || n != 2 {
		t.Fatalf("end: %d %v", n, err)
	}
	if list, _ := e.Svc.WebSessions(ctx, m); len(list) != 0 {
		t.Fatalf("left: %+v", list)
	}
	if list, _ := e.Svc.WebSessions(ctx, other); len(list) != 1 {
		t.Fatal("another member's session ended")
	}
	if k := eventKinds(e.Events(t, m)); k != string(account.EventSessionsEnded) {
		t.Fatalf("events: %s", k)
	}
}

// testMemberDeleteAllAppPasswords: one message and one event per password.
func testMemberDeleteAllAppPasswords(t *testing.T, e *Env) {
	ctx := context.Background()
	m := e.Enforced(t, "d")
	e.Create(t, m, "One")
	e.Create(t, m, "Two")
	if n, err := e.Svc.DeleteAllAppPasswords(ctx, m, Web); err != nil || n != 2 {
		t.Fatalf("delete all: %d %v", n, err)
	}
	if len(e.AppPasswords(t, m)) != 0 {
		t.Fatal("app passwords left")
	}
	msgs := e.Messages(t, m)
	if len(msgs) != 4 || msgs[0].Kind != account.MsgAppPasswordDeleted || msgs[1].Kind != account.MsgAppPasswordDeleted {
		t.Fatalf("messages: %d", len(msgs))
	}
	if n, err := e.Svc.DeleteAllAppPasswords(ctx, m, Web); err != nil || n != 0 {
		t.Fatalf("again: %d %v", n, err)
	}
}

// testMemberLiveSessions: two nodes publish their sessions; a member sees
// both nodes', with the app password's name, and not another member's; a
// session closed goes; a node that stops beating is no longer listed and
// is deleted by the next heartbeat of another; a full publication
// replaces the node's rows; a node shut down forgets its own.
func testMemberLiveSessions(t *testing.T, e *Env) {
	ctx := context.Background()
	m, other := e.Enforced(t, "live"), e.Enforced(t, "other")
	p, _, err := e.Svc.CreateAppPassword(ctx, m, "Thunderbird", Web)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().UTC().Truncate(time.Second)
	stale := func(at time.Time) time.Time { return at.Add(-account.LiveSessionTimeout) }
	sess := func(id, member int64, proto, client, ap string) account.LiveSession {
		return account.LiveSession{ID: id, MemberID: member, Protocol: proto, IP: "192.0.2.7", Client: client, AppPasswordID: ap, StartedAt: t0}
	}
	publish := func(node string, at time.Time, full bool, opened []account.LiveSession, closed ...int64) bool {
		t.Helper()
		known, err := e.DB.PublishSessions(ctx, node, at, stale(at), full, opened, closed)
		if err != nil {
			t.Fatal(err)
		}
		return known
	}
	list := func(at time.Time) string {
		t.Helper()
		l, err := e.DB.LiveSessionsOf(ctx, m.ID, at.Add(-account.LiveSessionTimeout))
		if err != nil {
			t.Fatal(err)
		}
		var parts []string
		for _, s := range l {
			parts = append(parts, fmt.Sprintf("%s/%d %s %s %s", s.Node, s.ID, s.Protocol, s.Client, s.AppName))
		}
		return strings.Join(parts, "; ")
	}
	if known := publish("a", t0, true, []account.LiveSession{sess(1, m.ID, "imap", "Thunderbird 128", p.ID), sess(2, other.ID, "imap", "", "")}); known {
		t.Error("a new node was known")
	}
	if known := publish("b", t0, true, []account.LiveSession{sess(1, m.ID, "pop3", "", "")}); known {
		t.Error("a new node was known")
	}
	if got, want := list(t0), "a/1 imap Thunderbird 128 Thunderbird; b/1 pop3  "; got != want {
		t.Fatalf("listed %q, want %q", got, want)
	}
	// a closes its session and opens another; b goes silent.
	t1 := t0.Add(account.LiveSessionTimeout / 2)
	if !publish("a", t1, false, []account.LiveSession{sess(3, m.ID, "smtp", "", "")}, 1) {
		t.Error("a known node was not known")
	}
	t2 := t0.Add(account.LiveSessionTimeout + time.Second)
	// b's rows are still there, but b is taken for dead: not listed.
	if got, want := list(t2), "a/3 smtp  "; got != want {
		t.Fatalf("b silent: %q, want %q", got, want)
	}
	publish("a", t2, false, nil)
	if got, want := list(t2), "a/3 smtp  "; got != want {
		t.Fatalf("after b went silent: %q, want %q", got, want)
	}
	if n := count(t, e.DB, `SELECT COUNT(*) FROM live_sessions WHERE node = ?`, "b"); n != 0 {
		t.Errorf("the dead node's sessions were kept: %d", n)
	}
	// A full publication replaces the node's rows.
	publish("a", t2, true, []account.LiveSession{sess(4, m.ID, "imap", "", "")})
	if got, want := list(t2), "a/4 imap  "; got != want {
		t.Fatalf("after a full publication: %q, want %q", got, want)
	}
	if err := e.DB.ForgetNode(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if got := list(t2); got != "" {
		t.Fatalf("after shutdown: %q", got)
	}
	if n := count(t, e.DB, `SELECT COUNT(*) FROM live_sessions`); n != 0 {
		t.Errorf("rows left: %d", n)
	}
}

// testDeleteDomainWithMembers: the contents are counted; the plain delete
// refuses; the confirmed one deletes each member as DeleteMember does (an
// event and an audit entry each), then the domain; another domain's
// member keeps everything.
func testDeleteDomainWithMembers(t *testing.T, e *Env) {
	ctx := context.Background()
	a, b := e.Enforced(t, "a"), e.Enforced(t, "b")
	other := e.Optional(t, "o", true)
	for _, m := range []account.Member{a, b, other} {
		e.Create(t, m, "Phone") // its notice is mail in the INBOX
	}
	if _, _, err := e.Svc.AddAlias(ctx, "team@enforced.test", []string{a.Email, other.Email}, Web); err != nil {
		t.Fatal(err)
	}
	d, err := e.Svc.Domain(ctx, "enforced.test")
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.Svc.DomainContents(ctx, d)
	if err != nil || c.Members != 2 || c.Aliases != 1 || c.Messages < 2 {
		t.Fatalf("contents: %+v %v", c, err)
	}
	WantCode(t, e.Svc.DeleteDomain(ctx, "enforced.test", Web), account.ECONFLICT)
	n, err := e.Svc.DeleteDomainWithMembers(ctx, "enforced.test", Web)
	if err != nil || n != 2 {
		t.Fatalf("delete with members: %d %v", n, err)
	}
	if _, err := e.Svc.Domain(ctx, "enforced.test"); account.ErrorCode(err) != account.ENOTFOUND {
		t.Fatalf("domain: %v", err)
	}
	for _, m := range []account.Member{a, b} {
		if _, err := e.DB.MemberByID(ctx, m.ID); err == nil {
			t.Errorf("%s still there", m.Email)
		}
		if k := eventKinds(e.Events(t, m)); !strings.HasSuffix(k, string(account.EventMemberDeleted)) {
			t.Errorf("%s events: %s", m.Email, k)
		}
	}
	if _, err := e.DB.MemberByID(ctx, other.ID); err != nil {
		t.Fatal("the other domain's member was deleted")
	}
	if n := count(t, e.DB, `SELECT COUNT(*) FROM app_passwords WHERE member_id = ?`, other.ID); n != 1 {
		t.Errorf("the other member's app passwords: %d", n)
	}
	for action, want := range map[string]int{account.AuditMemberDeleted: 2, account.AuditDomainDeleted: 1} {
		list, err := e.Svc.AuditLog(ctx, account.AuditQuery{Action: action})
		if err != nil || len(list) != want {
			t.Errorf("%s entries: %+v %v", action, list, err)
		}
	}
	_, err = e.Svc.DeleteDomainWithMembers(ctx, "enforced.test", Web)
	WantCode(t, err, account.ENOTFOUND)
}
