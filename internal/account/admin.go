package account

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// AdminRole is one grant: an organisation admin (Domain "") administers
// every domain, a domain admin the domain named.
type AdminRole struct {
	MemberID  int64
	Email     string
	Domain    string // "" for the organisation
	CreatedAt time.Time
}

// AdminAccess is what a member may administer: every domain (Org) or the
// domains listed. The zero value administers nothing.
type AdminAccess struct {
	Org     bool
	Domains []string // sorted; empty when Org
}

// IsAdmin reports whether the member administers anything.
func (a AdminAccess) IsAdmin() bool { return a.Org || len(a.Domains) > 0 }

// CanDomain reports whether the member administers the domain name
// (lower case, as stored).
func (a AdminAccess) CanDomain(name string) bool {
	if a.Org {
		return true
	}
	_, ok := slices.BinarySearch(a.Domains, name)
	return ok
}

// AdminStore keeps the admin roles; *sqlstore.DB implements it.
type AdminStore interface {
	// GrantAdmin gives the member the role over domainID (0: the
	// organisation); granting a role held already is no error and writes
	// nothing, fx included (fx goes in the grant's transaction).
	GrantAdmin(ctx context.Context, memberID, domainID int64, at time.Time, fx ...Effects) error
	// RevokeAdmin removes the member's role over domainID, or every role
	// of the member when all; it returns how many were removed, and writes
	// fx with them (not when none was).
	RevokeAdmin(ctx context.Context, memberID, domainID int64, all bool, fx ...Effects) (int, error)
	// AdminRoles lists the roles of the member, or of everyone when
	// memberID is 0, by address then domain (the organisation first).
	AdminRoles(ctx context.Context, memberID int64) ([]AdminRole, error)
}

// GrantAdmin makes the member an organisation admin (domains empty) or the
// admin of each of domains, which must exist.
func (s *Service) GrantAdmin(ctx context.Context, email string, domains []string, by Actor) ([]AdminRole, error) {
	m, err := s.Member(ctx, email)
	if err != nil {
		return nil, err
	}
	ids, names := []int64{0}, []string{""}
	if len(domains) > 0 {
		ids, names = ids[:0], names[:0]
		for _, name := range domains {
			d, err := s.Domain(ctx, name)
			if err != nil {
				return nil, err
			}
			ids, names = append(ids, d.ID), append(names, d.Name)
		}
	}
	for i, id := range ids {
		a := s.Audit(AuditAdminGranted, m, by, adminScope(names[i]))
		if err := s.store.GrantAdmin(ctx, m.ID, id, s.Now().UTC(), Effects{Audit: []AuditEntry{a}}); err != nil {
			return nil, err
		}
	}
	s.Log.Info("admin role granted", "member", m.Email, "domains", domains)
	return s.store.AdminRoles(ctx, m.ID)
}

// RevokeAdmin removes the member's role over domain, or every role of the
// member when domain is "". ENOTFOUND when there was none to remove.
func (s *Service) RevokeAdmin(ctx context.Context, email, domain string, by Actor) error {
	m, err := s.Member(ctx, email)
	if err != nil {
		return err
	}
	var id int64
	if domain != "" {
		d, err := s.Domain(ctx, domain)
		if err != nil {
			return err
		}
		id, domain = d.ID, d.Name
	}
	detail := adminScope(domain)
	if domain == "" {
		detail = "every role"
	}
	a := s.Audit(AuditAdminRevoked, m, by, detail)
	n, err := s.store.RevokeAdmin(ctx, m.ID, id, domain == "", Effects{Audit: []AuditEntry{a}})
	if err != nil {
		return err
	}
	if n == 0 {
		if domain == "" {
			return Errorf(ENOTFOUND, "%s is not an administrator.", m.Email)
		}
		return Errorf(ENOTFOUND, "%s is not an administrator of %s.", m.Email, domain)
	}
	s.Log.Info("admin role revoked", "member", m.Email, "domain", domain)
	return nil
}

// AdminRoles lists every admin role, by address.
func (s *Service) AdminRoles(ctx context.Context) ([]AdminRole, error) {
	return s.store.AdminRoles(ctx, 0)
}

// AdminAccess returns what the member administers. A suspended member
// administers nothing.
func (s *Service) AdminAccess(ctx context.Context, m Member) (AdminAccess, error) {
	if m.State != StateActive {
		return AdminAccess{}, nil
	}
	roles, err := s.store.AdminRoles(ctx, m.ID)
	if err != nil {
		return AdminAccess{}, err
	}
	var a AdminAccess
	for _, r := range roles {
		if r.Domain == "" {
			return AdminAccess{Org: true}, nil
		}
		a.Domains = append(a.Domains, r.Domain)
	}
	slices.Sort(a.Domains)
	return a, nil
}

// AdminDomains lists the domains a can administer, by name.
func (s *Service) AdminDomains(ctx context.Context, a AdminAccess) ([]Domain, error) {
	if !a.IsAdmin() {
		return nil, nil
	}
	all, err := s.store.Domains(ctx)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, d := range all {
		if a.CanDomain(d.Name) {
			out = append(out, d)
		}
	}
	return out, nil
}

// AdminDomain returns the domain named name when a administers it. A
// domain that does not exist and one that a may not see are the same
// ENOTFOUND, so that an admin of one domain learns nothing of another; an
// organisation admin (and the CLI), who sees every domain, is told which.
func (s *Service) AdminDomain(ctx context.Context, a AdminAccess, name string) (Domain, error) {
	n, err := ParseDomain(name)
	if err != nil || !a.CanDomain(n) {
		return Domain{}, errNoDomain
	}
	d, err := s.store.DomainByName(ctx, n)
	if errors.Is(err, ErrNotFound) {
		if a.Org {
			return Domain{}, Errorf(ENOTFOUND, "No domain %s. Add it with 'postern domain add %s'.", n, n)
		}
		return Domain{}, errNoDomain
	}
	return d, err
}

var errNoDomain = Errorf(ENOTFOUND, "No such domain.")

// DomainStore is the rest of what the console needs of domains.
type DomainStore interface {
	CountMembers(ctx context.Context, domainID int64) (int, error)
	// DomainContents counts what deleting the domain would delete.
	DomainContents(ctx context.Context, domainID int64) (DomainContents, error)
	// DeleteDomain deletes a domain without members, with its aliases, DKIM
	// keys and admin roles; ECONFLICT while it has members.
	// fx is written in the same transaction.
	DeleteDomain(ctx context.Context, domainID int64, fx ...Effects) error
}

// CountMembers returns how many members the domain d has.
func (s *Service) CountMembers(ctx context.Context, d Domain) (int, error) {
	return s.store.CountMembers(ctx, d.ID)
}

// DomainContents is what deleting a domain with its members deletes.
type DomainContents struct {
	Members  int
	Aliases  int
	Messages int64 // the members' mail, every mailbox
}

// DomainContents counts the members, aliases and messages of the domain d.
func (s *Service) DomainContents(ctx context.Context, d Domain) (DomainContents, error) {
	return s.store.DomainContents(ctx, d.ID)
}

// DeleteDomainWithMembers deletes every member of the domain named name,
// each as DeleteMember does (their mail, calendars, contacts and app
// passwords; their live sessions closed on every node; an audit entry
// each), then the domain with its aliases, DKIM keys and admin roles. It
// returns how many members it deleted.
//
// Each member goes in a transaction of its own, as when deleted one by
// one: a domain of thousands of members never holds one long transaction,
// and an interruption leaves whole members, deleted or not, and the domain
// still there to delete again. A member added meanwhile is deleted too (up
// to a few rounds), since the administrator confirmed the whole domain.
func (s *Service) DeleteDomainWithMembers(ctx context.Context, name string, by Actor) (int, error) {
	d, err := s.Domain(ctx, name)
	if err != nil {
		return 0, err
	}
	deleted := 0
	for round := 0; ; round++ {
		for {
			list, err := s.store.SearchMembers(ctx, MemberSearch{DomainIDs: []int64{d.ID}, Limit: MaxPageSize})
			if err != nil {
				return deleted, err
			}
			if len(list) == 0 {
				break
			}
			for _, m := range list {
				err := s.DeleteMember(ctx, m, by)
				if errors.Is(err, ErrNotFound) || ErrorCode(err) == ENOTFOUND {
					continue // deleted meanwhile by someone else
				} else if err != nil {
					return deleted, err
				}
				deleted++
			}
		}
		a := s.Audit(AuditDomainDeleted, Member{}, by, fmt.Sprintf("with %d members", deleted))
		a.Domain = d.Name
		err := s.store.DeleteDomain(ctx, d.ID, Effects{Audit: []AuditEntry{a}})
		if ErrorCode(err) == ECONFLICT && round < 3 {
			continue
		}
		if err != nil {
			return deleted, err
		}
		s.Log.Info("domain deleted with its members", "domain", d.Name, "members", deleted, "via", by.Via, "ip", by.IP)
		return deleted, nil
	}
}

// DeleteDomain deletes the domain named name, which must have no members
// left (ECONFLICT otherwise), with its aliases, DKIM keys and admin roles.
func (s *Service) DeleteDomain(ctx context.Context, name string, by Actor) error {
	d, err := s.Domain(ctx, name)
	if err != nil {
		return err
	}
	a := s.Audit(AuditDomainDeleted, Member{}, by, "")
	a.Domain = d.Name
	if err := s.store.DeleteDomain(ctx, d.ID, Effects{Audit: []AuditEntry{a}}); err != nil {
		return err
	}
	s.Log.Info("domain deleted", "domain", d.Name, "via", by.Via, "ip", by.IP)
	return nil
}
