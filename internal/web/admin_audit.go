package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/postern/postern/internal/account"
)

// The console's Audit log section: every change, sign-in and login of the
// members an admin administers, filtered, paged, exported as CSV, and
// charted. A domain admin's query is scoped to their domains by the
// service (AuditQuery.Restricted), for the page, the charts and the export
// alike.
func init() {
	addAdminSection(adminSection{Order: 30, Key: "admin.nav.audit", Path: "/admin/audit"})
	adminModules = append(adminModules, func(s *Server) {
		s.handleAdmin("GET /admin/audit", s.adminAuditPage)
		s.handleAdmin("GET /admin/audit/export", s.adminAuditExport)
		s.handleAdmin("GET /admin/audit/retention", s.adminAuditRetentionForm)
		s.handleAdmin("POST /admin/audit/retention", s.adminAuditRetention)
	})
}

// auditChartDays is the period the charts cover.
const auditChartDays = 30

// adminActor is the actor of an administrator's change in the console.
func (s *Server) adminActor(r *http.Request, ac *adminCtx) account.Actor {
	by := s.actor(r, "web")
	by.Admin = ac.member.Email
	return by
}

// auditFilter is the page's filter form, as submitted.
type auditFilter struct {
	Member, Action, Since, Until string
}

// query reads the filter of r into an audit query scoped to ac.
func (s *Server) auditQuery(r *http.Request, ac *adminCtx, loc *time.Location) (account.AuditQuery, auditFilter, error) {
	v := r.URL.Query()
	f := auditFilter{Member: strings.TrimSpace(v.Get("member")), Action: strings.TrimSpace(v.Get("action")),
		Since: strings.TrimSpace(v.Get("since")), Until: strings.TrimSpace(v.Get("until"))}
	q := account.AuditQuery{Member: f.Member, Action: f.Action, Restricted: !ac.access.Org, Domains: ac.access.Domains}
	now := s.svc.Now()
	var err error
	if f.Since != "" {
		if q.Since, err = account.ParseAuditTime(f.Since, now, loc); err != nil {
			return q, f, err
		}
	}
	if f.Until != "" {
		if q.Until, err = account.ParseAuditTime(f.Until, now, loc); err != nil {
			return q, f, err
		}
		if _, derr := time.Parse(time.DateOnly, f.Until); derr == nil {
			q.Until = q.Until.AddDate(0, 0, 1) // a day given as the end includes it
		}
	}
	if b := v.Get("before"); b != "" {
		c, err := account.ParseAuditCursor(b)
		if err != nil {
			return q, f, err
		}
		q.Before = &c
	}
	return q, f, nil
}

// values is the filter as URL parameters (for the next page and the export).
func (f auditFilter) values() url.Values {
	v := url.Values{}
	for k, x := range map[string]string{"member": f.Member, "action": f.Action, "since": f.Since, "until": f.Until} {
		if x != "" {
			v.Set(k, x)
		}
	}
	return v
}

type auditRow struct {
	account.AuditEntry
	ActionText string
}

type adminAuditData struct {
	Filter    auditFilter
	Actions   []auditActionOption
	Rows      []auditRow
	Next      string // the URL of older entries, "" on the last page
	Export    string // the URL of the CSV export of this filter
	Charts    []svgChart
	Org       bool
	Retention int // days
	Stored    bool
}

type auditActionOption struct {
	Value, Label string
}

// auditActionFilters are the actions the form offers; others can be typed
// into the URL or the CLI.
var auditActionFilters = []string{
	account.AuditLogin, account.AuditLogin + ".fail", account.AuditSignIn, account.AuditSignIn + ".fail",
	account.AuditAccountPaused, "apppass", account.AuditAppPasswordCreated, account.AuditAppPasswordDeleted,
	account.AuditAppPasswordExpired, account.AuditSettingChanged, "password", "member", account.AuditPolicyChanged,
	"domain", "admin", account.AuditRetentionChanged, account.AuditExported,
	account.AuditMemberRenamed, account.AuditMemberDeleted, account.AuditPauseLifted, account.AuditSessionsEnded,
	account.AuditQuotaChanged, "alias", account.AuditCatchAllChanged, "dkim", account.AuditQueueChanged,
}

// auditActionText is an action as a person reads it.
func auditActionText(l, action string) string {
	if s := tr(l, "audit.action."+action); s != "audit.action."+action {
		return s
	}
	return action
}

func (s *Server) adminAuditPage(w http.ResponseWriter, r *http.Request, ac *adminCtx) {
	p := s.newAdminPage(r, ac, "admin.audit.title")
	d := adminAuditData{Org: ac.access.Org}
	for _, a := range auditActionFilters {
		d.Actions = append(d.Actions, auditActionOption{a, auditActionText(p.L, a)})
	}
	q, f, err := s.auditQuery(r, ac, p.Loc)
	d.Filter = f
	status := http.StatusOK
	if err == nil {
		err = s.fillAudit(r, q, &d, p)
	}
	if err != nil {
		if code := account.ErrorCode(err); code != account.EINVALID {
			s.pageError(w, r, ac.reqCtx, err)
			return
		}
		status, p.Error = http.StatusBadRequest, s.errText(p.L, "", err)
	}
	p.Data = d
	s.render(w, status, "admin_audit", p)
}

// fillAudit reads the page's entries, charts and retention.
func (s *Server) fillAudit(r *http.Request, q account.AuditQuery, d *adminAuditData, p *pageData) error {
	ctx := r.Context()
	q.Limit = account.DefaultAuditPage
	list, err := s.svc.AuditLog(ctx, q)
	if err != nil {
		return err
	}
	for _, e := range list {
		d.Rows = append(d.Rows, auditRow{AuditEntry: e, ActionText: auditActionText(p.L, e.Action)})
	}
	v := d.Filter.values()
	d.Export = "/admin/audit/export"
	if len(v) > 0 {
		d.Export += "?" + v.Encode()
	}
	if len(list) == q.Limit {
		v.Set("before", list[len(list)-1].Cursor().String())
		d.Next = "/admin/audit?" + v.Encode()
	}
	st, err := s.svc.AuditStats(ctx, q, auditChartDays)
	if err != nil {
		return err
	}
	d.Charts = auditCharts(p.L, st)
	keep, stored, err := s.svc.AuditRetention(ctx, 0)
	if err != nil {
		return err
	}
	d.Retention, d.Stored = int(keep/(24*time.Hour)), stored
	return nil
}

// adminAuditExport downloads the filtered log as CSV, every page of it.
// The export is itself recorded: who took a copy of the trail, and of what.
func (s *Server) adminAuditExport(w http.ResponseWriter, r *http.Request, ac *adminCtx) {
	q, f, err := s.auditQuery(r, ac, location(r))
	if err != nil {
		s.pageError(w, r, ac.reqCtx, err)
		return
	}
	ctx := r.Context()
	q.Limit = account.MaxAuditPage
	first, err := s.svc.AuditLog(ctx, q)
	if err != nil {
		s.pageError(w, r, ac.reqCtx, err)
		return
	}
	a := s.svc.Audit(account.AuditExported, ac.member, s.adminActor(r, ac), f.values().Encode())
	a.MemberID, a.MemberEmail = 0, ""
	if err := s.svc.RecordAudit(ctx, a); err != nil {
		s.pageError(w, r, ac.reqCtx, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="postern-audit-%s.csv"`, s.svc.Now().UTC().Format("20060102-150405")))
	list, header := first, true
	for {
		if err := account.WriteAuditCSV(w, list, header); err != nil {
			return // the client went away
		}
		if len(list) < q.Limit {
			return
		}
		c := list[len(list)-1].Cursor()
		q.Before, header = &c, false
		if list, err = s.svc.AuditLog(ctx, q); err != nil {
			// The status is sent: cut the file short rather than pass a
			// partial one for a whole.
			s.log.Error("audit export failed", "err", err)
			panic(http.ErrAbortHandler)
		}
	}
}

// adminAuditRetentionForm is where a re-authentication returns: the form
// is on the log's page.
func (s *Server) adminAuditRetentionForm(w http.ResponseWriter, r *http.Request, ac *adminCtx) {
	if !s.requireOrg(w, r, ac) {
		return
	}
	http.Redirect(w, r, "/admin/audit#retention", http.StatusSeeOther)
}

func (s *Server) adminAuditRetention(w http.ResponseWriter, r *http.Request, ac *adminCtx) {
	if !s.requireOrg(w, r, ac) {
		return
	}
	days, err := strconv.Atoi(strings.TrimSpace(r.PostFormValue("days")))
	if err != nil {
		days = 0 // refused by the service with its message
	}
	if err := s.svc.SetAuditRetention(r.Context(), days, s.adminActor(r, ac)); err != nil {
		s.pageError(w, r, ac.reqCtx, err)
		return
	}
	http.Redirect(w, r, "/admin/audit#retention", http.StatusSeeOther)
}

// auditCharts are the page's charts over st.
func auditCharts(l string, st account.AuditStats) []svgChart {
	var logins []chartSeries
	for i, proto := range st.Protocols() {
		logins = append(logins, chartSeries{Label: protoName(proto), Color: chartColors[i%len(chartColors)], Values: st.Logins[proto]})
	}
	return []svgChart{
		newBarChart("chart-logins", tr(l, "admin.audit.chart.logins"), tr(l, "admin.audit.chart.logins.desc", len(st.Days)), l, st.Days, logins),
		newBarChart("chart-failures", tr(l, "admin.audit.chart.failures"), tr(l, "admin.audit.chart.failures.desc", len(st.Days)), l, st.Days,
			[]chartSeries{{Label: tr(l, "admin.audit.chart.failures"), Color: "#D55E00", Values: st.Failures}}),
		newBarChart("chart-pauses", tr(l, "admin.audit.chart.pauses"), tr(l, "admin.audit.chart.pauses.desc", len(st.Days)), l, st.Days,
			[]chartSeries{{Label: tr(l, "admin.audit.chart.pauses"), Color: "#CC79A7", Values: st.Pauses}}),
	}
}
