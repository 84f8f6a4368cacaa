package storetest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/authrec"
	"github.com/postern/postern/internal/store/sqlstore"
)

// RunAudit is the audit log's conformance suite.
func RunAudit(t *testing.T, open func(testing.TB) *sqlstore.DB) {
	tests := []struct {
		name string
		fn   func(*testing.T, *Env)
	}{
		{"EveryAction", testAuditEveryAction},
		{"SameTransaction", testAuditAtomic},
		{"LoginRecordsAndPauses", testAuditLogins},
		{"FiltersAndScope", testAuditFilters},
		{"Paging", testAuditPaging},
		{"AppendOnly", testAuditAppendOnly},
		{"Retention", testAuditRetention},
		{"Stats", testAuditStats},
		{"AdminRoles", testAuditAdminRoles},
		{"DomainsPolicyExpiry", testAuditDomainsPolicyExpiry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, NewEnv(t, open(t))) })
	}
}

// CLI is the actor of the postern command.
var CLI = account.Actor{Via: "cli"}

// Admin is an administrator acting in the console.
var Admin = account.Actor{Via: "web", IP: "198.51.100.9", UserAgent: "AdminBrowser/2.0", Admin: "boss@enforced.test"}

// Audit returns the whole audit log the service shows for q, newest first.
func (e *Env) Audit(t testing.TB, q account.AuditQuery) []account.AuditEntry {
	t.Helper()
	q.Limit = account.MaxAuditPage
	list, err := e.Svc.AuditLog(context.Background(), q)
	if err != nil {
		t.Fatalf("audit log: %v", err)
	}
	return list
}

// auditLine is what a test compares of an entry.
func auditLine(a account.AuditEntry) string {
	return strings.Join([]string{a.Action, a.Actor, a.ActorEmail, a.MemberEmail, a.Domain, a.IP, a.Client}, "|")
}

func testAuditEveryAction(t *testing.T, e *Env) {
	ctx := context.Background()
	if _, err := e.Svc.AddDomainBy(ctx, "enforced.test", EnforcedDate, CLI); err != nil {
		t.Fatal(err)
	}
	m, err := e.Svc.AddMemberBy(ctx, "alice@enforced.test", "", MainPassword, CLI)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := e.Create(t, m, "Thunderbird")
	if err := e.Svc.DeleteAppPassword(ctx, m, p.ID, Web); err != nil {
		t.Fatal(err)
	}
	e.Create(t, m, "Phone")
	if err := e.Svc.ChangePassword(ctx, m, MainPassword, MainPassword+"!", false, false, Web); err != nil {
		t.Fatal(err)
	}
	if err := e.Svc.ChangePassword(ctx, m, "", MainPassword, true, true, CLI); err != nil {
		t.Fatal(err)
	}
	if err := e.Svc.SetState(ctx, m, account.StateSuspended, Admin); err != nil {
		t.Fatal(err)
	}
	if err := e.Svc.SetState(ctx, m, account.StateActive, Admin); err != nil {
		t.Fatal(err)
	}
	o := e.Optional(t, "olga", false)
	if err := e.Svc.SetUseAppPasswords(ctx, o, true, Web); err != nil {
		t.Fatal(err)
	}
	if err := e.Svc.SetAuditRetention(ctx, 90, CLI); err != nil {
		t.Fatal(err)
	}

	web := "|" + Web.IP + "|" + Web.UserAgent
	want := []string{
		"domain.added|cli|||enforced.test||postern command",
		"member.added|cli||alice@enforced.test|enforced.test||postern command",
		"apppass.created|member|alice@enforced.test|alice@enforced.test|enforced.test" + web,
		"apppass.deleted|member|alice@enforced.test|alice@enforced.test|enforced.test" + web,
		"apppass.created|member|alice@enforced.test|alice@enforced.test|enforced.test" + web,
		"password.changed|member|alice@enforced.test|alice@enforced.test|enforced.test" + web,
		"password.reset|cli||alice@enforced.test|enforced.test||postern command",
		"apppass.deleted|cli||alice@enforced.test|enforced.test||postern command",
		"member.suspended|admin|boss@enforced.test|alice@enforced.test|enforced.test|198.51.100.9|AdminBrowser/2.0",
		"member.resumed|admin|boss@enforced.test|alice@enforced.test|enforced.test|198.51.100.9|AdminBrowser/2.0",
		"domain.added|system|||optional.test||",
		"member.added|system||olga@optional.test|optional.test||",
		"setting.changed|member|olga@optional.test|olga@optional.test|optional.test" + web,
		"audit.retention|cli|||||postern command",
	}
	got := e.Audit(t, account.AuditQuery{})
	if len(got) != len(want) {
		for _, g := range got {
			t.Log(auditLine(g))
		}
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[len(got)-1-i] // newest first
		if line := auditLine(g); line != w {
			t.Errorf("entry %d:\n got %s\nwant %s", i, line, w)
		}
		if g.MemberEmail != "" && g.MemberID == 0 {
			t.Errorf("entry %d about %s has no member id", i, g.MemberEmail)
		}
		if g.Source != account.AuditSourceAudit || g.At.IsZero() {
			t.Errorf("entry %d: source %q, at %v", i, g.Source, g.At)
		}
	}
	if d := got[len(got)-3].Detail; !strings.Contains(d, "Thunderbird") || !strings.Contains(d, p.ID) {
		t.Errorf("created entry detail %q lacks the name and id", d)
	}
	if d := got[0].Detail; d != "90 days" {
		t.Errorf("retention detail %q", d)
	}
}

// testAuditAtomic: a refused or failed change writes no entry, and the
// entry is in the change's transaction (a failing effect undoes both).
func testAuditAtomic(t *testing.T, e *Env) {
	ctx := context.Background()
	m := e.Enforced(t, "alice")
	e.Create(t, m, "Mail")
	before := len(e.Audit(t, account.AuditQuery{}))
	if _, _, err := e.Svc.CreateAppPassword(ctx, m, "mail", Web); account.ErrorCode(err) != account.ECONFLICT {
		t.Fatalf("duplicate name: %v", err)
	}
	if err := e.Svc.DeleteAppPassword(ctx, m, "nope", Web); account.ErrorCode(err) != account.ENOTFOUND {
		t.Fatalf("missing id: %v", err)
	}
	// A message to a member that does not exist fails the transaction
	// (foreign key) after the audit entry is written: the entry goes too.
	err := e.DB.SetUseAppPasswords(ctx, m.ID, true, account.Effects{
		Audit:    []account.AuditEntry{e.Svc.Audit(account.AuditSettingChanged, m, Web, "on")},
		Messages: []account.Message{{MemberID: 987654, Kind: "x", Subject: "x", Body: "x"}},
	})
	if err == nil {
		t.Fatal("a change with a failing effect committed")
	}
	if got := len(e.Audit(t, account.AuditQuery{})); got != before {
		t.Errorf("%d entries after refused changes, want %d", got, before)
	}
}

func testAuditLogins(t *testing.T, e *Env) {
	ctx := context.Background()
	m := e.Enforced(t, "alice")
	at := time.Date(2025, 3, 2, 10, 0, 0, 0, time.UTC)
	recs := []authrec.LoginRecord{
		{At: at, MemberID: m.ID, Username: m.Email, Protocol: authrec.IMAP, Mechanism: "PLAIN", IP: "192.0.2.1", TLS: true, Result: authrec.ResultOK, AppPasswordID: "ap1"},
		{At: at.Add(time.Second), MemberID: m.ID, Username: m.Email, Protocol: authrec.Web, Mechanism: "FORM", IP: "192.0.2.2", Result: authrec.ResultFail, Reason: "bad-password", Client: "Firefox/130"},
		{At: at.Add(2 * time.Second), Username: "nobody@enforced.test", Protocol: authrec.SMTP, Mechanism: "LOGIN", IP: "192.0.2.3", Result: authrec.ResultFail, Reason: "unknown-user"},
	}
	if err := e.DB.AddLoginRecords(ctx, recs); err != nil {
		t.Fatal(err)
	}
	// A pause, then another after the first one ended: the member's message
	// goes out once a day, the audit entry every time.
	var tag authrec.PairTag
	for i, now := range []time.Time{at.Add(time.Minute), at.Add(time.Hour)} {
		tag[0] = byte(i)
		fx := account.Effects{Audit: []account.AuditEntry{e.Svc.Audit(account.AuditAccountPaused, m,
			account.Actor{Via: "system", IP: "192.0.2.9", UserAgent: "imap"}, "paused")}}
		res, err := e.DB.RecordAuthFailure(ctx, m.ID, tag, now, 1, 15*time.Minute, fx)
		if err != nil || !res.Paused || res.Alerted != (i == 0) {
			t.Fatalf("failure %d: %+v %v", i, res, err)
		}
	}
	got := e.Audit(t, account.AuditQuery{Action: "login"})
	if len(got) != 2 {
		t.Fatalf("login entries %d, want 2", len(got))
	}
	if l := auditLine(got[0]); l != "login.fail|unknown|nobody@enforced.test|nobody@enforced.test||192.0.2.3|smtp LOGIN" {
		t.Errorf("unknown user's failure: %s", l)
	}
	if l := auditLine(got[1]); l != "login.ok|member|alice@enforced.test|alice@enforced.test|enforced.test|192.0.2.1|imap PLAIN" {
		t.Errorf("IMAP login: %s", l)
	}
	if got[1].Protocol != authrec.IMAP || got[1].Result != authrec.ResultOK || got[1].Source != account.AuditSourceLogin {
		t.Errorf("IMAP login %+v", got[1])
	}
	si := e.Audit(t, account.AuditQuery{Action: "signin.fail"})
	if len(si) != 1 || si[0].Client != "Firefox/130" || si[0].Detail != "bad-password" {
		t.Errorf("web sign-in failure %+v", si)
	}
	paused := e.Audit(t, account.AuditQuery{Action: account.AuditAccountPaused})
	if len(paused) != 2 || paused[0].Actor != account.ActorSystem || paused[0].IP != "192.0.2.9" || paused[0].MemberEmail != m.Email {
		t.Errorf("pauses %+v", paused)
	}
}

func testAuditFilters(t *testing.T, e *Env) {
	ctx := context.Background()
	a := e.Enforced(t, "alice")
	b := e.Optional(t, "bob", true)
	e.Create(t, a, "A1")
	e.Create(t, b, "B1")
	e.Create(t, b, "B2")
	if err := e.DB.AddLoginRecords(ctx, []authrec.LoginRecord{
		{At: e.Now(), MemberID: b.ID, Username: b.Email, Protocol: authrec.POP3, Mechanism: "USER", IP: "192.0.2.4", Result: authrec.ResultOK},
		{At: e.Now(), Username: "ghost@optional.test", Protocol: authrec.IMAP, Mechanism: "LOGIN", IP: "192.0.2.5", Result: authrec.ResultFail},
	}); err != nil {
		t.Fatal(err)
	}
	count := func(q account.AuditQuery) int { return len(e.Audit(t, q)) }
	if n := count(account.AuditQuery{Member: "BOB@optional.test"}); n != 4 { // added, 2 created, login
		t.Errorf("bob's entries %d, want 4", n)
	}
	if n := count(account.AuditQuery{Member: "ghost@optional.test"}); n != 1 {
		t.Errorf("the unknown user's entries %d, want 1", n)
	}
	if n := count(account.AuditQuery{Action: "apppass"}); n != 3 {
		t.Errorf("apppass.* %d, want 3", n)
	}
	if n := count(account.AuditQuery{Action: "apppass.created"}); n != 3 {
		t.Errorf("apppass.created %d, want 3", n)
	}
	if n := count(account.AuditQuery{Action: "app"}); n != 0 {
		t.Errorf("a prefix that is no action part matched %d", n)
	}
	if n := count(account.AuditQuery{Action: "apppass_created"}); n != 0 {
		t.Errorf("LIKE wildcard matched %d", n)
	}
	// Period: only the two login records are at or after the first one.
	all := e.Audit(t, account.AuditQuery{})
	since := all[1].At
	if n := count(account.AuditQuery{Since: since}); n != 2 {
		t.Errorf("since %v: %d, want 2", since, n)
	}
	if n := count(account.AuditQuery{Until: since}); n != len(all)-2 {
		t.Errorf("until %v: %d, want %d", since, n, len(all)-2)
	}
	if _, err := e.Svc.AuditLog(ctx, account.AuditQuery{Since: since, Until: since}); account.ErrorCode(err) != account.EINVALID {
		t.Errorf("empty period: %v", err)
	}
	// A domain administrator of optional.test sees its members' entries,
	// never enforced.test's, nor unknown users' login records.
	scoped := e.Audit(t, account.AuditQuery{Restricted: true, Domains: []string{"optional.test"}})
	for _, s := range scoped {
		if s.Domain != "optional.test" {
			t.Errorf("optional.test's admin sees %s", auditLine(s))
		}
	}
	if len(scoped) != 5 { // domain.added, bob added, 2 created, login; no ghost
		t.Errorf("optional.test's admin sees %d entries, want 5", len(scoped))
	}
	if n := count(account.AuditQuery{Restricted: true, Domains: []string{"optional.test"}, Member: a.Email}); n != 0 {
		t.Errorf("optional.test's admin sees %d of alice's entries", n)
	}
	if n := count(account.AuditQuery{Restricted: true}); n != 0 {
		t.Errorf("an admin of no domain sees %d entries", n)
	}
}

func testAuditPaging(t *testing.T, e *Env) {
	ctx := context.Background()
	m := e.Enforced(t, "alice")
	at := e.Now()
	var recs []authrec.LoginRecord
	for i := 0; i < 7; i++ {
		// Same instant as audit entries, to exercise the tie-break.
		recs = append(recs, authrec.LoginRecord{At: at, MemberID: m.ID, Username: m.Email, Protocol: authrec.IMAP, Mechanism: "PLAIN", IP: fmt.Sprint("192.0.2.", i), Result: authrec.ResultOK})
	}
	if err := e.DB.AddLoginRecords(ctx, recs); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if err := e.Svc.RecordAudit(ctx, account.AuditEntry{At: at, Action: account.AuditPolicyChanged, Actor: account.ActorCLI, Domain: "enforced.test", Detail: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	all := e.Audit(t, account.AuditQuery{})
	seen := map[string]bool{}
	var cur *account.AuditCursor
	pages := 0
	for {
		page, err := e.Svc.AuditLog(ctx, account.AuditQuery{Limit: 3, Before: cur})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		pages++
		for _, p := range page {
			k := p.Cursor().String()
			if seen[k] {
				t.Errorf("entry %s on two pages", k)
			}
			seen[k] = true
		}
		c := page[len(page)-1].Cursor()
		parsed, err := account.ParseAuditCursor(c.String())
		if err != nil || parsed != c {
			t.Fatalf("cursor %v round trip: %v %v", c, parsed, err)
		}
		cur = &parsed
	}
	if len(seen) != len(all) || pages != (len(all)+2)/3 {
		t.Errorf("paged %d entries in %d pages, the log has %d", len(seen), pages, len(all))
	}
}

// testAuditAppendOnly: the database itself refuses to change an entry.
func testAuditAppendOnly(t *testing.T, e *Env) {
	ctx := context.Background()
	m := e.Enforced(t, "alice")
	e.Create(t, m, "Mail")
	if err := e.DB.AddLoginRecords(ctx, []authrec.LoginRecord{{At: e.Now(), MemberID: m.ID, Username: m.Email, Protocol: authrec.IMAP, Result: authrec.ResultOK}}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`UPDATE audit_log SET actor = 'member', ip = '10.0.0.1'`,
		`UPDATE login_records SET result = 'ok'`,
	} {
		if _, err := e.DB.SQL.ExecContext(ctx, q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v", q, err)
		}
	}
	if e.DB.Dialect == sqlstore.Postgres {
		if _, err := e.DB.SQL.ExecContext(ctx, `TRUNCATE audit_log`); err == nil {
			t.Error("TRUNCATE audit_log succeeded")
		}
	}
	if got := e.Audit(t, account.AuditQuery{Action: "apppass"}); len(got) != 1 || got[0].IP != Web.IP {
		t.Errorf("entries after refused updates: %+v", got)
	}
}

func testAuditRetention(t *testing.T, e *Env) {
	ctx := context.Background()
	if d, stored, err := e.Svc.AuditRetention(ctx, 0); err != nil || stored || d != account.DefaultAuditRetention {
		t.Errorf("default retention %v %v %v", d, stored, err)
	}
	if d, _, _ := e.Svc.AuditRetention(ctx, 48*time.Hour); d != 48*time.Hour {
		t.Errorf("the flag's retention: %v", d)
	}
	for _, bad := range []int{0, -1, account.MaxAuditRetentionDays + 1} {
		if err := e.Svc.SetAuditRetention(ctx, bad, CLI); account.ErrorCode(err) != account.EINVALID {
			t.Errorf("retention %d: %v", bad, err)
		}
	}
	now := e.Now()
	for _, age := range []time.Duration{40 * 24 * time.Hour, 20 * 24 * time.Hour, time.Hour} {
		if err := e.Svc.RecordAudit(ctx, account.AuditEntry{At: now.Add(-age), Action: account.AuditPolicyChanged, Actor: account.ActorCLI, Detail: age.String()}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Svc.SetAuditRetention(ctx, 30, CLI); err != nil {
		t.Fatal(err)
	}
	if d, stored, _ := e.Svc.AuditRetention(ctx, 48*time.Hour); d != 30*24*time.Hour || !stored {
		t.Errorf("stored retention %v (%v), want 30 days over the flag", d, stored)
	}
	if err := e.Svc.SetAuditRetention(ctx, 25, CLI); err != nil { // replaced, not added
		t.Fatal(err)
	}
	if e.DB.Dialect == sqlstore.Postgres {
		// Another node pruning holds the lock: this one skips its turn.
		tx, err := e.DB.SQL.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7413026)`); err != nil {
			t.Fatal(err)
		}
		if n, err := e.Svc.PruneAudit(ctx, 0); n != 0 || err != nil {
			t.Errorf("pruned %d (%v) while another node held the lock", n, err)
		}
		tx.Rollback()
	}
	n, err := e.Svc.PruneAudit(ctx, 0)
	if err != nil || n != 1 {
		t.Fatalf("pruned %d, %v; want 1", n, err)
	}
	for _, g := range e.Audit(t, account.AuditQuery{Action: account.AuditPolicyChanged}) {
		if g.Detail == (40 * 24 * time.Hour).String() {
			t.Errorf("the 40-day-old entry survived")
		}
	}
	if got := len(e.Audit(t, account.AuditQuery{Action: account.AuditRetentionChanged})); got != 2 {
		t.Errorf("%d retention changes recorded, want 2", got)
	}
}

// testAuditAdminRoles: a grant and a revocation are recorded with the
// role's scope, once: granting a role held already records nothing, nor
// does revoking one not held.
func testAuditAdminRoles(t *testing.T, e *Env) {
	ctx := context.Background()
	m := e.Enforced(t, "boss")
	for i := 0; i < 2; i++ {
		if _, err := e.Svc.GrantAdmin(ctx, m.Email, []string{"enforced.test"}, CLI); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.Svc.GrantAdmin(ctx, m.Email, nil, Admin); err != nil {
		t.Fatal(err)
	}
	if err := e.Svc.RevokeAdmin(ctx, m.Email, "", CLI); err != nil {
		t.Fatal(err)
	}
	WantCode(t, e.Svc.RevokeAdmin(ctx, m.Email, "", CLI), account.ENOTFOUND)
	var got []string
	for _, a := range e.Audit(t, account.AuditQuery{Action: "admin"}) {
		got = append(got, a.Action+" "+a.Actor+" "+a.Detail)
	}
	want := "admin.revoked cli every role|admin.granted admin organisation|admin.granted cli domain enforced.test"
	if strings.Join(got, "|") != want {
		t.Errorf("role changes recorded:\n got %s\nwant %s", strings.Join(got, "|"), want)
	}
}

// testAuditDomainsPolicyExpiry: a domain deleted, a policy changed and an
// app password expired by the server are entries with their domain.
func testAuditDomainsPolicyExpiry(t *testing.T, e *Env) {
	ctx := context.Background()
	if _, err := e.Svc.AddDomainBy(ctx, "gone.test", EnforcedDate, Admin); err != nil {
		t.Fatal(err)
	}
	if err := e.Svc.DeleteDomain(ctx, "gone.test", Admin); err != nil {
		t.Fatal(err)
	}
	m := e.Enforced(t, "alice")
	p, _ := e.Create(t, m, "Old phone")
	if _, err := e.Svc.SetSecurityPolicy(ctx, "enforced.test", account.SecurityPolicy{ExpireUnusedDays: 1}, Admin); err != nil {
		t.Fatal(err)
	}
	if res, err := e.Svc.ExpireAppPasswords(ctx, e.Now().Add(72*time.Hour)); err != nil || res.Expired != 1 {
		t.Fatalf("expiry %+v %v", res, err)
	}
	var got []string
	for _, a := range e.Audit(t, account.AuditQuery{}) {
		if a.Action == account.AuditDomainDeleted || a.Action == account.AuditPolicyChanged || a.Action == account.AuditAppPasswordExpired {
			got = append(got, a.Action+"|"+a.Actor+"|"+a.ActorEmail+"|"+a.Domain+"|"+a.MemberEmail)
			if a.Action == account.AuditAppPasswordExpired && !strings.Contains(a.Detail, p.ID) {
				t.Errorf("expiry detail %q lacks the id", a.Detail)
			}
		}
	}
	want := "apppass.expired|system||enforced.test|alice@enforced.test," +
		"policy.changed|admin|boss@enforced.test|enforced.test|," +
		"domain.deleted|admin|boss@enforced.test|gone.test|"
	if strings.Join(got, ",") != want {
		t.Errorf("entries:\n got %s\nwant %s", strings.Join(got, ","), want)
	}
}

func testAuditStats(t *testing.T, e *Env) {
	ctx := context.Background()
	a := e.Enforced(t, "alice")
	b := e.Optional(t, "bob", true)
	today := e.Now().UTC().Truncate(24 * time.Hour)
	yesterday := today.Add(-24 * time.Hour)
	rec := func(at time.Time, m account.Member, proto, result string) authrec.LoginRecord {
		return authrec.LoginRecord{At: at, MemberID: m.ID, Username: m.Email, Protocol: proto, IP: "192.0.2.1", Result: result}
	}
	if err := e.DB.AddLoginRecords(ctx, []authrec.LoginRecord{
		rec(yesterday.Add(time.Hour), a, authrec.IMAP, authrec.ResultOK),
		rec(yesterday.Add(2*time.Hour), a, authrec.IMAP, authrec.ResultOK),
		rec(today.Add(time.Minute), a, authrec.SMTP, authrec.ResultOK),
		rec(today.Add(time.Minute), a, authrec.Web, authrec.ResultFail),
		rec(today.Add(time.Minute), b, authrec.IMAP, authrec.ResultOK),
		rec(today.Add(-30*24*time.Hour), a, authrec.IMAP, authrec.ResultOK), // outside
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.Svc.RecordAudit(ctx, e.Svc.Audit(account.AuditAccountPaused, a, account.Actor{Via: "system"}, "")); err != nil {
		t.Fatal(err)
	}
	st, err := e.Svc.AuditStats(ctx, account.AuditQuery{Restricted: true, Domains: []string{"enforced.test"}}, 7)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Days) != 7 || !st.Days[6].Equal(today) {
		t.Fatalf("days %v", st.Days)
	}
	if got := fmt.Sprint(st.Protocols(), st.Logins["imap"][5:], st.Logins["smtp"][5:], st.Failures[5:], st.Pauses[5:]); got != "[imap smtp] [2 0] [0 1] [0 1] [0 1]" {
		t.Errorf("stats %s", got)
	}
}
