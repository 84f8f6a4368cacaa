package web

import (
	"bytes"
	"context"
	"encoding/csv"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/postern/postern/internal/account"
)

// auditEnv is an adminEnv whose log holds entries of both domains.
func auditEnv(t *testing.T) *adminEnv {
	a := newAdminEnv(t)
	ctx := context.Background()
	by := account.Actor{Via: "web", IP: "203.0.113.50", UserAgent: "AuditTest/1.0"}
	for _, email := range []string{"alice@old.example", "plain@new.example"} {
		m, err := a.svc.Member(ctx, email)
		if err != nil {
			t.Fatal(err)
		}
		if m.Domain() == "old.example" {
			if err := a.svc.SetUseAppPasswords(ctx, m, true, by); err != nil {
				t.Fatal(err)
			}
			m.UseAppPasswords = true
		}
		if _, _, err := a.svc.CreateAppPassword(ctx, m, "Mail of "+m.Local(), by); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

// auditCSV downloads the export as c and parses it.
func auditCSV(t *testing.T, c *client, query string) [][]string {
	t.Helper()
	r := c.get("/admin/audit/export" + query)
	wantStatus(t, r, http.StatusOK)
	if ct := r.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" || !strings.HasPrefix(r.Header.Get("Content-Disposition"), "attachment;") {
		t.Fatalf("export headers %q %q", ct, r.Header.Get("Content-Disposition"))
	}
	recs, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
	if err != nil {
		t.Fatalf("export is no CSV: %v\n%s", err, r.body)
	}
	if len(recs) == 0 || strings.Join(recs[0], ",") != strings.Join(account.AuditCSVHeader, ",") {
		t.Fatalf("export header %v", recs)
	}
	return recs[1:]
}

// TestAdminAuditScope: the admin of new.example never sees old.example's
// entries, on the page, in the charts' numbers, or in the export, even
// when asking for them by name; the organisation admin sees both.
func TestAdminAuditScope(t *testing.T) {
	a := auditEnv(t)
	page := string(a.org.get("/admin/audit").body)
	for _, want := range []string{"alice@old.example", "plain@new.example", "Mail of alice", "203.0.113.50", "AuditTest/1.0",
		`aria-current="page">Audit log`} {
		if !strings.Contains(page, want) {
			t.Errorf("the organisation admin's log lacks %q", want)
		}
	}
	for _, q := range []string{"", "?member=alice%40old.example", "?action=apppass"} {
		r := a.dom.get("/admin/audit" + q)
		wantStatus(t, r, http.StatusOK)
		// (The member filter's field shows what was asked for.)
		if body := string(r.body); strings.Contains(body, `">alice@old.example</td>`) || strings.Contains(body, "Mail of alice") {
			t.Errorf("the admin of new.example sees old.example's entries at %q", q)
		}
		for _, rec := range auditCSV(t, a.dom, q) {
			if strings.Contains(strings.Join(rec, ","), "old.example") {
				t.Errorf("the admin of new.example exports %v", rec)
			}
		}
	}
	if !strings.Contains(string(a.dom.get("/admin/audit").body), "Mail of plain") {
		t.Error("the admin of new.example does not see its own domain's entries")
	}
	var sawOld bool
	for _, rec := range auditCSV(t, a.org, "?action=apppass.created") {
		if rec[1] != account.AuditAppPasswordCreated {
			t.Errorf("filtered export has %v", rec)
		}
		sawOld = sawOld || rec[4] == "alice@old.example" && rec[6] == "203.0.113.50" && rec[7] == "AuditTest/1.0"
	}
	if !sawOld {
		t.Error("the organisation admin's export lacks alice's app password with its address and client")
	}
	// Every export is itself an entry, by the admin who took it.
	ex, err := a.svc.AuditLog(context.Background(), account.AuditQuery{Action: account.AuditExported})
	if err != nil || len(ex) == 0 || ex[0].Actor != account.ActorAdmin || ex[0].ActorEmail != "root@new.example" {
		t.Errorf("exports recorded %+v %v", ex, err)
	}
}

// TestAdminAuditCharts: three SVG charts with a title, a description and
// their numbers as a table; no script.
func TestAdminAuditCharts(t *testing.T) {
	a := auditEnv(t)
	body := string(a.org.get("/admin/audit").body)
	for _, id := range []string{"chart-logins", "chart-failures", "chart-pauses"} {
		for _, want := range []string{`<svg id="` + id + `" role="img" aria-labelledby="` + id + `-title ` + id + `-desc"`,
			`<title id="` + id + `-title">`, `<desc id="` + id + `-desc">`} {
			if !strings.Contains(body, want) {
				t.Errorf("page lacks %s", want)
			}
		}
	}
	if n := strings.Count(body, "<summary>Show the numbers as a table</summary>"); n != 3 {
		t.Errorf("%d data tables, want 3", n)
	}
	if strings.Contains(strings.ToLower(body), "<script>") {
		t.Error("the audit page has an inline script")
	}
}

func TestAdminAuditFiltersAndErrors(t *testing.T) {
	a := auditEnv(t)
	r := a.org.get("/admin/audit?since=yesterday")
	wantStatus(t, r, http.StatusBadRequest)
	r = a.org.get("/admin/audit?before=nonsense")
	wantStatus(t, r, http.StatusBadRequest)
	body := string(a.org.get("/admin/audit?member=alice%40old.example").body)
	if !strings.Contains(body, "Mail of alice") || strings.Contains(body, "Mail of plain") {
		t.Error("the member filter does not select alice's entries only")
	}
	body = string(a.org.get("/admin/audit?since=2999-01-01").body)
	if !strings.Contains(body, "No entries match.") {
		t.Error("a period in the future lists entries")
	}
}

// TestAdminAuditRetention: the organisation admin sets it (recorded, with
// the admin's address); a domain admin may not.
func TestAdminAuditRetention(t *testing.T) {
	a := auditEnv(t)
	r := a.org.post("/admin/audit/retention", url.Values{"csrf": {a.org.csrf("/security")}, "days": {"45"}})
	wantStatus(t, r, http.StatusSeeOther)
	ctx := context.Background()
	if keep, stored, err := a.svc.AuditRetention(ctx, 0); err != nil || !stored || keep.Hours() != 45*24 {
		t.Fatalf("retention %v %v %v", keep, stored, err)
	}
	got, err := a.svc.AuditLog(ctx, account.AuditQuery{Action: account.AuditRetentionChanged})
	if err != nil || len(got) != 1 || got[0].Actor != account.ActorAdmin || got[0].ActorEmail != "root@new.example" || got[0].IP == "" {
		t.Fatalf("retention change recorded as %+v %v", got, err)
	}
	wantStatus(t, a.dom.post("/admin/audit/retention", url.Values{"csrf": {a.dom.csrf("/security")}, "days": {"1"}}), http.StatusForbidden)
	wantStatus(t, a.org.post("/admin/audit/retention", url.Values{"csrf": {a.org.csrf("/security")}, "days": {"0"}}), http.StatusBadRequest)
	if strings.Contains(string(a.dom.get("/admin/audit").body), `action="/admin/audit/retention"`) {
		t.Error("a domain admin is offered the retention form")
	}
}
