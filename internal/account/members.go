package account

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Administering members: search and paging, rename, delete, a one-time
// password, lifting a pause, ending sessions. The callers (the admin
// console, the CLI) authorise the administrator; these methods take the
// AdminAccess they were granted, so that an administrator of one domain never
// sees or changes a member of another, whatever the request names.

// AllDomains is the access of the CLI: whoever runs it owns the database.
var AllDomains = AdminAccess{Org: true}

// MemberSearch is a page of SearchMembers, as the store reads it.
type MemberSearch struct {
	DomainIDs []int64 // only these domains; nil: every domain
	// Query keeps the members whose address or display name starts with
	// it: the address as typed in lower case, the name as the store folds
	// it (NFKC, lower case). "" keeps every member.
	Query string
	After string // the addresses after this one; "" from the first
	Limit int
}

// MemberPage is one page of members, by address.
type MemberPage struct {
	Members []Member
	// Next is the cursor of the next page (the last address of this one),
	// "" on the last page. Pages are keyset, not offsets: a page costs the
	// same at the end of 100,000 members as at the start, and members
	// added or deleted meanwhile shift nothing.
	Next string
}

// Page sizes of SearchMembers.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// errNoMember is what an administrator learns of a member that does not
// exist and of one outside their scope alike.
func errNoMember(email string) error { return Errorf(ENOTFOUND, "No member %s.", email) }

// errNoDomainNamed is errNoMember for domains.
func errNoDomainNamed(name string) error {
	return Errorf(ENOTFOUND, "No domain %s.", name)
}

// SearchMembers returns a page of the members sc covers, of domain ("":
// every domain of the scope), whose address or name starts with query,
// after the cursor after, by address.
func (s *Service) SearchMembers(ctx context.Context, sc AdminAccess, domain, query, after string, limit int) (MemberPage, error) {
	query = strings.TrimSpace(query)
	if len(query) > 254 || strings.IndexFunc(query, isControl) >= 0 {
		return MemberPage{}, Errorf(EINVALID, "The search must be at most 254 characters, without control characters.")
	}
	if len(after) > 254 {
		return MemberPage{}, Errorf(EINVALID, "The cursor is not valid.")
	}
	switch {
	case limit <= 0:
		limit = DefaultPageSize
	case limit > MaxPageSize:
		limit = MaxPageSize
	}
	q := MemberSearch{Query: query, After: strings.ToLower(after), Limit: limit + 1}
	switch {
	case domain != "":
		d, err := s.AdminDomain(ctx, sc, domain)
		if err != nil {
			return MemberPage{}, err
		}
		q.DomainIDs = []int64{d.ID}
	case !sc.Org:
		q.DomainIDs = []int64{}
		for _, name := range sc.Domains {
			d, err := s.store.DomainByName(ctx, name)
			if errors.Is(err, ErrNotFound) {
				continue
			} else if err != nil {
				return MemberPage{}, err
			}
			q.DomainIDs = append(q.DomainIDs, d.ID)
		}
		if len(q.DomainIDs) == 0 {
			return MemberPage{}, nil
		}
	}
	list, err := s.store.SearchMembers(ctx, q)
	if err != nil {
		return MemberPage{}, err
	}
	page := MemberPage{Members: list}
	if len(list) > limit {
		page.Members = list[:limit]
		page.Next = list[limit-1].Email
	}
	return page, nil
}

// AdminMember returns the member email when sc covers its domain. A member
// outside the scope is ENOTFOUND, as a missing one is.
func (s *Service) AdminMember(ctx context.Context, sc AdminAccess, email string) (Member, error) {
	e, err := ParseEmail(email)
	if err != nil {
		return Member{}, err
	}
	if !sc.CanDomain(domainOf(e)) {
		return Member{}, errNoMember(e)
	}
	m, err := s.store.MemberByEmail(ctx, e)
	if errors.Is(err, ErrNotFound) {
		return Member{}, errNoMember(e)
	}
	return m, err
}

func keepDetail(keepAlias bool) string {
	if keepAlias {
		return ", kept as an alias"
	}
	return ""
}

func domainOf(email string) string { _, d, _ := strings.Cut(email, "@"); return d }

// checkName applies the display-name rules and returns the name to store:
// trimmed, the local part when empty.
func checkName(email, name string) (string, error) {
	name = strings.TrimSpace(name)
	if len(name) > 200 || strings.IndexFunc(name, isControl) >= 0 {
		return "", Errorf(EINVALID, "The display name must be at most 200 characters, without control characters.")
	}
	if name == "" {
		name, _, _ = strings.Cut(email, "@")
	}
	return name, nil
}

// GeneratePassword returns a main password drawn from crypto/rand: 20
// characters of the app password alphabet (116 bits), grouped with dashes
// to be copied by hand.
func GeneratePassword() string {
	return strings.ReplaceAll(GroupAppPassword(GenerateAppPassword()), " ", "-")
}

// RenameMember changes the member's address to newEmail, of a domain sc
// covers. Mail, calendars, contacts, aliases and app passwords belong to
// the member, not to the address, so they all follow; the old address no
// longer logs in (apps must use the new one as their user name, with the
// same app passwords), and every session, web and third-party, is closed
// since each names the old address. With keepAlias the old address becomes
// an alias of the member, so that mail sent to it still arrives. The member
// is told by a message.
func (s *Service) RenameMember(ctx context.Context, sc AdminAccess, m Member, newEmail string, keepAlias bool, by Actor) (Member, error) {
	e, err := ParseEmail(newEmail)
	if err != nil {
		return Member{}, err
	}
	if e == m.Email {
		return Member{}, Errorf(EINVALID, "%s already has that address.", m.Email)
	}
	d, err := s.AdminDomain(ctx, sc, domainOf(e))
	if err != nil {
		return Member{}, err
	}
	now := s.Now().UTC()
	renamed := m
	renamed.Email, renamed.DomainID, renamed.DomainCreatedAt = e, d.ID, d.CreatedAt
	fx := Effects{
		Events:   []Event{{Kind: EventMemberRenamed, MemberID: m.ID}},
		Messages: []Message{s.renamedMessage(renamed, m.Email, keepAlias, by, now)},
		Audit:    []AuditEntry{s.Audit(AuditMemberRenamed, renamed, by, "from "+m.Email+keepDetail(keepAlias))},
	}
	if err := s.store.RenameMember(ctx, m.ID, d.ID, e, keepAlias, now, fx); err != nil {
		return Member{}, err
	}
	s.Log.Info("member renamed", "member", m.Email, "to", e, "keep_alias", keepAlias, "via", by.Via, "ip", by.IP)
	return renamed, nil
}

// DeleteMember deletes the member with everything that is theirs: mail,
// calendars, contacts, app passwords, messages, web sessions, and their
// place in aliases; live third-party sessions are closed on every node
// (the member.deleted event). The login records stay, for the audit.
func (s *Service) DeleteMember(ctx context.Context, m Member, by Actor) error {
	fx := Effects{Events: []Event{{Kind: EventMemberDeleted, MemberID: m.ID}},
		Audit: []AuditEntry{s.Audit(AuditMemberDeleted, m, by, "")}}
	if err := s.store.DeleteMember(ctx, m.ID, fx); err != nil {
		return err
	}
	s.Log.Info("member deleted", "member", m.Email, "id", m.ID, "via", by.Via, "ip", by.IP)
	return nil
}

// ResetPassword gives the member a one-time main password and returns it,
// to be handed over once. It signs in to the web only, which asks for a new
// password before anything else; third-party logins refuse it. Every web
// session and every third-party session that used the main password ends;
// app passwords keep working (ChangePassword with deleteAppPasswords
// deletes them after a hijack). The member is told by a message.
func (s *Service) ResetPassword(ctx context.Context, m Member, by Actor) (string, error) {
	pw := GeneratePassword()
	fx := Effects{
		Events:   []Event{{Kind: EventPasswordChanged, MemberID: m.ID}},
		Messages: []Message{s.passwordMessage(m, false, by, s.Location(ctx, m.ID))},
		Audit:    []AuditEntry{s.Audit(AuditPasswordReset, m, by, "one-time password")},
	}
	if err := s.store.SetOneTimePassword(ctx, m.ID, s.Hasher.HashGenerated(pw), fx); err != nil {
		return "", err
	}
	s.Log.Info("main password reset", "member", m.Email, "via", by.Via, "ip", by.IP)
	return pw, nil
}

// Pause is the authentication gateway's hold on a member after failed
// logins.
type Pause struct {
	Failures int       // failed logins counted recently
	Until    time.Time // zero: not paused
}

// Paused reports whether the pause holds at now.
func (p Pause) Paused(now time.Time) bool { return p.Until.After(now) }

// Pause returns the member's failure count and pause.
func (s *Service) Pause(ctx context.Context, m Member) (Pause, error) {
	return s.store.AccountPause(ctx, m.ID)
}

// LiftPause forgets the member's failed logins and pause, so that the main
// password logs in to third-party apps again at once. It reports whether
// the member was paused.
func (s *Service) LiftPause(ctx context.Context, m Member, by Actor) (bool, error) {
	p, err := s.store.AccountPause(ctx, m.ID)
	if err != nil {
		return false, err
	}
	paused := p.Paused(s.Now())
	detail := "not paused"
	if paused {
		detail = "was paused"
	}
	if err := s.store.LiftPause(ctx, m.ID, Effects{Audit: []AuditEntry{s.Audit(AuditPauseLifted, m, by, detail)}}); err != nil {
		return false, err
	}
	s.Log.Info("pause lifted", "member", m.Email, "was_paused", paused, "via", by.Via, "ip", by.IP)
	return paused, nil
}

// WebSession is one signed-in browser or API client of a member, as an
// administrator sees it: never its token.
type WebSession struct {
	PublicID   string
	CreatedAt  time.Time
	LastSeenAt time.Time
	IP         string
	UserAgent  string
}

// WebSessions lists the member's web sessions, the most recently used first.
func (s *Service) WebSessions(ctx context.Context, m Member) ([]WebSession, error) {
	return s.store.WebSessionsOf(ctx, m.ID)
}

// EndSessions signs the member out everywhere: every web session is
// deleted, and every live third-party session, on every node, is closed
// (the sessions.ended event). Credentials are unchanged, so apps log in
// again unless the member is also suspended or their password changed. It
// returns how many web sessions ended.
func (s *Service) EndSessions(ctx context.Context, m Member, by Actor) (int64, error) {
	n, err := s.store.EndSessions(ctx, m.ID, Effects{Events: []Event{{Kind: EventSessionsEnded, MemberID: m.ID}},
		Audit: []AuditEntry{s.Audit(AuditSessionsEnded, m, by, "")}})
	if err != nil {
		return 0, err
	}
	s.Log.Info("sessions ended", "member", m.Email, "web_sessions", n, "via", by.Via, "ip", by.IP)
	return n, nil
}

// DeleteAllAppPasswords deletes every app password of the member in one
// transaction; the member gets the message of each deletion, and the
// sessions that used them close. It returns how many were deleted.
func (s *Service) DeleteAllAppPasswords(ctx context.Context, m Member, by Actor) (int, error) {
	list, err := s.store.AppPasswords(ctx, m.ID)
	if err != nil || len(list) == 0 {
		return 0, err
	}
	var fx Effects
	ids := make([]string, len(list))
	for i, p := range list {
		ids[i] = p.ID
		fx.Events = append(fx.Events, Event{Kind: EventAppPasswordDeleted, MemberID: m.ID, AppPasswordID: p.ID})
		fx.Messages = append(fx.Messages, s.deletedMessage(m, p, by, s.Location(ctx, m.ID)))
		fx.Audit = append(fx.Audit, s.Audit(AuditAppPasswordDeleted, m, by, appPasswordDetail(p)))
	}
	n, err := s.store.DeleteAppPasswords(ctx, m.ID, ids, fx)
	if err != nil {
		return 0, err
	}
	s.Log.Info("app passwords deleted", "member", m.Email, "count", n, "via", by.Via, "ip", by.IP)
	return n, nil
}

// MemberAliases lists the addresses of the aliases that deliver to the
// member.
func (s *Service) MemberAliases(ctx context.Context, m Member) ([]string, error) {
	return s.store.MemberAliases(ctx, m.ID)
}

// MsgAddressChanged is the kind of the message that tells a member their
// address changed.
const MsgAddressChanged = "member.renamed"

func (s *Service) renamedMessage(m Member, old string, keepAlias bool, by Actor, now time.Time) Message {
	mail := "Mail sent to the old address is no longer delivered."
	if keepAlias {
		mail = "Mail sent to the old address still arrives: it is now an alias of your account."
	}
	body := fmt.Sprintf(`An administrator changed the address of your account from %s to %s.
Your mail, calendars, contacts and third-party app passwords are unchanged.
%s

Sign in with the new address. Every app and browser was signed out: in each app,
replace the user name %s with %s, and keep its app password.

Time: %s
%s
`, old, m.Email, mail, old, m.Email, now.Format(time.RFC1123), describeActor(by))
	keep := ""
	if keepAlias {
		keep = "1"
	}
	return s.message(m, MsgAddressChanged, "The address of your account is now "+m.Email, body, now,
		params(m, by, now, "old_email", old, "kept_alias", keep))
}

// What TakenAddresses says an address belongs to.
const (
	TakenByMember = "member"
	TakenByAlias  = "alias"
)

// MemberAdminStore is what administering members needs of a store, beyond
// Store's own methods.
type MemberAdminStore interface {
	// SearchMembers returns up to q.Limit members by address (bytewise),
	// after q.After, of q.DomainIDs, matching q.Query.
	SearchMembers(ctx context.Context, q MemberSearch) ([]Member, error)
	// TakenAddresses returns which of emails a member (TakenByMember) or an
	// alias (TakenByAlias) has.
	TakenAddresses(ctx context.Context, emails []string) (map[string]string, error)
	// CreateMembers inserts ms in one transaction and sets their IDs: the
	// error of each is ECONFLICT when a member or an alias took its address
	// meanwhile (that member alone is not created); err is for the batch.
	// fx (when not nil) gives the effects of each member created, written
	// in the transaction.
	CreateMembers(ctx context.Context, ms []*Member, fx func(created Member) Effects) (errs []error, err error)
	// RenameMember moves the member to the address email of domainID and
	// deletes their web sessions; with keepAlias the old address becomes an
	// alias with the member as its target (created at at). ECONFLICT when
	// a member or an alias has email; all in one transaction with fx.
	RenameMember(ctx context.Context, memberID, domainID int64, email string, keepAlias bool, at time.Time, fx Effects) error
	// DeleteMember deletes the member and everything that refers to it;
	// ErrNotFound when there is no such member.
	DeleteMember(ctx context.Context, memberID int64, fx Effects) error
	// SetOneTimePassword sets a main password hash that must be changed at
	// the next sign-in (SetPasswordHash clears that) and deletes the
	// member's web sessions.
	SetOneTimePassword(ctx context.Context, memberID int64, hash string, fx Effects) error
	// DeleteAppPasswords deletes the member's app passwords ids (those
	// still there) and writes fx; it returns how many it deleted.
	DeleteAppPasswords(ctx context.Context, memberID int64, ids []string, fx Effects) (int, error)
	// AccountPause returns the authentication gateway's failure count and
	// pause of the member; LiftPause forgets them, with fx.
	AccountPause(ctx context.Context, memberID int64) (Pause, error)
	LiftPause(ctx context.Context, memberID int64, fx Effects) error
	// WebSessionsOf lists the member's web sessions, the most recently used
	// first; EndSessions deletes them all and writes fx, returning how many.
	WebSessionsOf(ctx context.Context, memberID int64) ([]WebSession, error)
	EndSessions(ctx context.Context, memberID int64, fx Effects) (int64, error)
}
