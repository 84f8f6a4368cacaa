package account

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Audit actions: what an audit entry records. A filter on a prefix before a
// dot ("apppass", "login") matches every action under it.
const (
	AuditDomainAdded        = "domain.added"
	AuditDomainDeleted      = "domain.deleted"
	AuditMemberAdded        = "member.added"
	AuditMemberSuspended    = "member.suspended"
	AuditMemberResumed      = "member.resumed"
	AuditAppPasswordCreated = "apppass.created"
	AuditAppPasswordDeleted = "apppass.deleted"
	AuditAppPasswordExpired = "apppass.expired"
	AuditSettingChanged     = "setting.changed"
	AuditPasswordChanged    = "password.changed" // by the member, who gave the current one
	AuditPasswordReset      = "password.reset"   // by an administrator or the CLI
	AuditAccountPaused      = "account.paused"   // too many failed logins (the gateway's counter)
	AuditPolicyChanged      = "policy.changed"   // a domain's security policy
	AuditAdminGranted       = "admin.granted"    // Detail: the organisation or the domain
	AuditAdminRevoked       = "admin.revoked"
	AuditRetentionChanged   = "audit.retention"
	AuditExported           = "audit.exported" // a copy of the log was taken (Detail: its filter)
	AuditMemberRenamed      = "member.renamed" // Detail: the old address
	AuditMemberDeleted      = "member.deleted" // with their mail, calendars, contacts and app passwords
	AuditPauseLifted        = "account.unpaused"
	AuditSessionsEnded      = "sessions.ended" // every web and third-party session of the member
	AuditQuotaChanged       = "quota.changed"  // a member's (MemberEmail set) or a domain's default
	AuditAliasChanged       = "alias.changed"  // created, or members added or removed (Detail)
	AuditAliasDeleted       = "alias.deleted"
	AuditCatchAllChanged    = "catchall.changed" // Detail: the member, or "off"
	AuditDKIMRotated        = "dkim.rotated"     // new signing keys (Detail: their selectors)
	AuditDKIMRetired        = "dkim.retired"     // Detail: the selector
	AuditQueueChanged       = "queue.changed"    // retry, hold, release, delete (Detail)

	// Login records appear in the audit log as these, with their result
	// after the dot: "login.ok", "signin.fail" (see AuditEntry.Result).
	AuditLogin  = "login"  // a third-party app (IMAP, POP3, SMTP, DAV)
	AuditSignIn = "signin" // the web UI and API
)

// Who acted, as the audit log names them.
const (
	ActorMember  = "member" // the member on their own account
	ActorAdmin   = "admin"  // an administrator, in the console (ActorEmail says who)
	ActorCLI     = "cli"    // the postern command, run by whoever runs the server
	ActorSystem  = "system" // the server itself: pauses, expiry, retention
	ActorUnknown = "unknown"
)

// AuditEntry is one line of the audit log: an entry written with a change
// (Effects.Audit), or a login record shown alongside (Source "login").
type AuditEntry struct {
	Source      string // "audit" or "login": ID is unique within its source
	ID          int64
	At          time.Time
	Action      string
	Actor       string // ActorMember, ActorAdmin, ActorCLI, ActorSystem, ActorUnknown
	ActorEmail  string // the member or administrator who acted, when one did
	MemberID    int64  // the member acted on; 0 when none or unknown
	MemberEmail string
	Domain      string // the member's domain, or the domain acted on
	IP          string
	Client      string // the browser's User-Agent, the protocol, "postern command"
	Detail      string
	Protocol    string // login records: imap, pop3, smtp, caldav, carddav, web
	Result      string // login records: ok, fail, error
}

// Source values of AuditEntry.
const (
	AuditSourceAudit = "audit"
	AuditSourceLogin = "login"
)

// Cursor is where the page after e starts (AuditQuery.Before).
func (e AuditEntry) Cursor() AuditCursor {
	return AuditCursor{At: e.At, Source: e.Source, ID: e.ID}
}

// AuditCursor is a place in the audit log, newest first: entries strictly
// older come after it.
type AuditCursor struct {
	At     time.Time
	Source string
	ID     int64
}

// String is the cursor as a URL or command-line value.
func (c AuditCursor) String() string {
	return fmt.Sprintf("%d.%s.%d", c.At.UnixMicro(), c.Source, c.ID)
}

// ParseAuditCursor reads AuditCursor.String.
func ParseAuditCursor(s string) (AuditCursor, error) {
	parts := strings.Split(s, ".")
	if len(parts) == 3 && (parts[1] == AuditSourceAudit || parts[1] == AuditSourceLogin) {
		at, err1 := strconv.ParseInt(parts[0], 10, 64)
		id, err2 := strconv.ParseInt(parts[2], 10, 64)
		if err1 == nil && err2 == nil {
			return AuditCursor{At: time.UnixMicro(at).UTC(), Source: parts[1], ID: id}, nil
		}
	}
	return AuditCursor{}, Errorf(EINVALID, "Not a position in the audit log: %q.", s)
}

// AuditQuery selects audit entries, newest first.
type AuditQuery struct {
	Member       string // an address: entries about that member
	Action       string // an action, or the prefix before its dot
	Since, Until time.Time
	Limit        int // at most MaxAuditPage; 0 means DefaultAuditPage
	Before       *AuditCursor
	// Restricted limits the entries to those about Domains (a domain
	// administrator's): login records of unknown users are then left out.
	Restricted bool
	Domains    []string

	// Filled in by the service for the store.
	MemberID int64 // Member's id, 0 when no member has the address
}

// Page sizes of the audit log.
const (
	DefaultAuditPage = 100
	MaxAuditPage     = 10000
)

// DefaultAuditRetention is how long audit entries are kept when neither the
// stored setting nor the server's flag says otherwise.
const DefaultAuditRetention = 365 * 24 * time.Hour

// AuditCount is one row of AuditCounts: N entries of a kind on the UTC day Day.
type AuditCount struct {
	Day      time.Time
	Kind     string // "login" (Protocol set), "fail" or "pause"
	Protocol string
	N        int
}

// AuditStore is what the audit log needs from a database, besides
// Effects.Audit written with every change.
type AuditStore interface {
	// AuditLog returns the entries q selects (audit entries and login
	// records), newest first, at most q.Limit.
	AuditLog(ctx context.Context, q AuditQuery) ([]AuditEntry, error)
	// AuditCounts counts, per UTC day of q's period, successful logins per
	// protocol, failed logins and pauses, within q's scope.
	AuditCounts(ctx context.Context, q AuditQuery) ([]AuditCount, error)
	// AuditRetention returns the stored retention in days (0: none stored).
	AuditRetention(ctx context.Context) (int, error)
	// SetAuditRetention stores the retention with fx.
	SetAuditRetention(ctx context.Context, days int, fx Effects) error
	// PruneAuditLog deletes the audit entries older than before and returns
	// how many; on PostgreSQL one node at a time (another one pruning makes
	// it return 0 at once).
	PruneAuditLog(ctx context.Context, before time.Time) (int64, error)
}

// auditStore is the store's audit half; every store of this package's
// tests and sqlstore implement it.
func (s *Service) auditStore() (AuditStore, error) {
	if as, ok := s.store.(AuditStore); ok {
		return as, nil
	}
	return nil, Errorf(EUNAVAILABLE, "This store keeps no audit log.")
}

// Audit returns the audit entry of action on the member m (zero for none)
// made by by, for the Effects of the change: the one way every change,
// whichever front end or service makes it, records itself. detail is a
// short, non-secret description ("name “Thunderbird”", "on").
func (s *Service) Audit(action string, m Member, by Actor, detail string) AuditEntry {
	e := AuditEntry{At: s.Now().UTC(), Action: action, MemberID: m.ID, MemberEmail: m.Email,
		Domain: m.Domain(), IP: by.IP, Client: clipClient(by.UserAgent), Detail: clipClient(detail)}
	switch {
	case by.Via == "cli":
		e.Actor = ActorCLI
		if e.Client == "" {
			e.Client = "postern command"
		}
	case by.Via == "system":
		e.Actor = ActorSystem
	case by.Admin != "":
		e.Actor, e.ActorEmail = ActorAdmin, by.Admin
	default:
		e.Actor, e.ActorEmail = ActorMember, m.Email
	}
	return e
}

// DomainAudit is the effects of an action on the domain named domain (no
// member): an audit entry.
func (s *Service) DomainAudit(action, domain string, by Actor, detail string) Effects {
	a := s.Audit(action, Member{}, by, detail)
	a.Domain = domain
	return Effects{Audit: []AuditEntry{a}}
}

// RecordAudit writes entries on their own, for an action that changes
// nothing in the database (an export, a session ended in memory). A change
// puts its entries in its Effects instead, so that both commit together.
func (s *Service) RecordAudit(ctx context.Context, entries ...AuditEntry) error {
	return s.store.AddMessage(ctx, 0, Effects{Audit: entries})
}

// clipClient keeps a client-supplied string fit for the log: printable, at
// most 256 bytes (cut on a rune boundary).
func clipClient(s string) string {
	s = strings.Map(printable, strings.ToValidUTF8(s, "\uFFFD"))
	if len(s) > 256 {
		s = strings.ToValidUTF8(s[:256], "")
	}
	return s
}

// AuditLog returns the entries q selects, newest first.
func (s *Service) AuditLog(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	as, err := s.auditStore()
	if err != nil {
		return nil, err
	}
	if q, err = s.auditQuery(ctx, q); err != nil {
		return nil, err
	}
	return as.AuditLog(ctx, q)
}

// auditQuery checks q and fills in what the store needs.
func (s *Service) auditQuery(ctx context.Context, q AuditQuery) (AuditQuery, error) {
	switch {
	case q.Limit <= 0:
		q.Limit = DefaultAuditPage
	case q.Limit > MaxAuditPage:
		q.Limit = MaxAuditPage
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return q, Errorf(EINVALID, "The start of the period must come before its end.")
	}
	q.Action = strings.TrimSpace(q.Action)
	if q.Member != "" {
		e, err := ParseEmail(q.Member)
		if err != nil {
			return q, err
		}
		q.Member = e
		m, err := s.store.MemberByEmail(ctx, e)
		switch {
		case err == nil:
			q.MemberID = m.ID
		case !errors.Is(err, ErrNotFound):
			return q, err
		}
	}
	return q, nil
}

// AuditStats are the audit log's charts over a period: one value per UTC day.
type AuditStats struct {
	Days     []time.Time
	Logins   map[string][]int // successful logins, by protocol
	Failures []int            // failed logins, all protocols
	Pauses   []int
}

// Protocols returns the protocols of Logins, sorted.
func (st AuditStats) Protocols() []string {
	out := make([]string, 0, len(st.Logins))
	for p := range st.Logins {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// AuditStats counts q's scope per UTC day over the days days up to today.
// q.Since and q.Until are replaced; Member and Action do not apply.
func (s *Service) AuditStats(ctx context.Context, q AuditQuery, days int) (AuditStats, error) {
	as, err := s.auditStore()
	if err != nil {
		return AuditStats{}, err
	}
	if days < 1 || days > 366 {
		return AuditStats{}, Errorf(EINVALID, "Charts cover 1 to 366 days.")
	}
	today := s.Now().UTC().Truncate(24 * time.Hour)
	q.Since, q.Until = today.AddDate(0, 0, 1-days), today.AddDate(0, 0, 1)
	q.Member, q.Action, q.Before = "", "", nil
	counts, err := as.AuditCounts(ctx, q)
	if err != nil {
		return AuditStats{}, err
	}
	st := AuditStats{Logins: map[string][]int{}, Failures: make([]int, days), Pauses: make([]int, days)}
	for i := 0; i < days; i++ {
		st.Days = append(st.Days, q.Since.AddDate(0, 0, i))
	}
	for _, c := range counts {
		i := int(c.Day.Sub(q.Since) / (24 * time.Hour))
		if i < 0 || i >= days {
			continue
		}
		switch c.Kind {
		case "login":
			if st.Logins[c.Protocol] == nil {
				st.Logins[c.Protocol] = make([]int, days)
			}
			st.Logins[c.Protocol][i] += c.N
		case "fail":
			st.Failures[i] += c.N
		case "pause":
			st.Pauses[i] += c.N
		}
	}
	return st, nil
}

// AuditRetention returns how long audit entries are kept: the stored
// setting (stored true), else def (the server's flag), else
// DefaultAuditRetention.
func (s *Service) AuditRetention(ctx context.Context, def time.Duration) (keep time.Duration, stored bool, err error) {
	as, err := s.auditStore()
	if err != nil {
		return 0, false, err
	}
	days, err := as.AuditRetention(ctx)
	if err != nil {
		return 0, false, err
	}
	switch {
	case days > 0:
		return time.Duration(days) * 24 * time.Hour, true, nil
	case def > 0:
		return def, false, nil
	}
	return DefaultAuditRetention, false, nil
}

// MaxAuditRetentionDays bounds the setting (about 30 years).
const MaxAuditRetentionDays = 11000

// SetAuditRetention stores how many days audit entries are kept, recorded
// in the audit log itself.
func (s *Service) SetAuditRetention(ctx context.Context, days int, by Actor) error {
	as, err := s.auditStore()
	if err != nil {
		return err
	}
	if days < 1 || days > MaxAuditRetentionDays {
		return Errorf(EINVALID, "Keep audit entries between 1 and %d days.", MaxAuditRetentionDays)
	}
	return as.SetAuditRetention(ctx, days, Effects{
		Audit: []AuditEntry{s.Audit(AuditRetentionChanged, Member{}, by, fmt.Sprintf("%d days", days))},
	})
}

// PruneAudit deletes the audit entries past the retention (AuditRetention
// with def) and returns how many.
func (s *Service) PruneAudit(ctx context.Context, def time.Duration) (int64, error) {
	keep, _, err := s.AuditRetention(ctx, def)
	if err != nil {
		return 0, err
	}
	as, _ := s.auditStore()
	return as.PruneAuditLog(ctx, s.Now().Add(-keep))
}

// AuditCSVHeader are the columns of WriteAuditCSV.
var AuditCSVHeader = []string{"time", "action", "actor", "actor_email", "member", "domain", "ip", "client", "protocol", "result", "detail"}

// WriteAuditCSV writes entries as CSV (RFC 4180) with AuditCSVHeader, times
// in RFC 3339 UTC. Fields a spreadsheet would take for a formula (a user
// name or User-Agent sent by anyone) are prefixed with a quote, as OWASP
// advises against CSV injection.
func WriteAuditCSV(w io.Writer, entries []AuditEntry, header bool) error {
	cw := csv.NewWriter(w)
	if header {
		cw.Write(AuditCSVHeader)
	}
	for _, e := range entries {
		rec := []string{e.At.UTC().Format(time.RFC3339Nano), e.Action, e.Actor, e.ActorEmail, e.MemberEmail,
			e.Domain, e.IP, e.Client, e.Protocol, e.Result, e.Detail}
		for i, f := range rec {
			rec[i] = csvSafe(f)
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func csvSafe(f string) string {
	if f != "" && strings.ContainsRune("=+-@\t\r", rune(f[0])) {
		return "'" + f
	}
	return f
}

// adminScope names what an admin role covers in the audit log.
func adminScope(domain string) string {
	if domain == "" {
		return "organisation"
	}
	return "domain " + domain
}

// appPasswordDetail names an app password in the audit log.
func appPasswordDetail(p AppPassword) string { return fmt.Sprintf("“%s” (%s)", p.Name, p.ID) }

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// ParseAuditTime reads a bound of an audit period: an RFC 3339 time, a day
// (YYYY-MM-DD, its start in loc), or an age before now ("90m", "36h", "7d").
func ParseAuditTime(s string, now time.Time, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, loc); err == nil {
		return t.UTC(), nil
	}
	if n, ok := strings.CutSuffix(s, "d"); ok {
		if d, err := strconv.Atoi(n); err == nil && d >= 0 && d <= 100000 {
			return now.AddDate(0, 0, -d).UTC(), nil
		}
	} else if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d).UTC(), nil
	}
	return time.Time{}, Errorf(EINVALID, "%q is not a time: give 2006-01-02, 2006-01-02T15:04:05Z or an age such as 36h or 7d.", s)
}
