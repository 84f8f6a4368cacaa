package account

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"
)

// MaxAliasTargets bounds the members one alias delivers to, so that one
// RCPT does bounded work (an alias of a whole organisation of this size is
// better served by several).
const MaxAliasTargets = 1000

// Alias is an address of a local domain that delivers to members: one
// (an alias) or several (a distribution list).
type Alias struct {
	ID        int64
	DomainID  int64
	Address   string // lower case, local@domain
	CreatedAt time.Time
	Targets   []Member // by address; empty when every target was removed or deleted
}

// Address is an address of a local domain as LookupAddresses finds it.
type Address struct {
	Address string
	Alias   bool     // an alias; false for a member's own address
	Members []Member // the member, or the alias's targets by address
}

// AddressLookup is what Store.LookupAddresses returns.
type AddressLookup struct {
	Domain    bool      // the domain is served here
	CatchAll  *Member   // the domain's catch-all member; nil for none
	Addresses []Address // the asked addresses that exist, in any order
}

// Find returns the looked-up address a, if it exists.
func (l AddressLookup) Find(a string) (Address, bool) {
	for _, x := range l.Addresses {
		if x.Address == a {
			return x, true
		}
	}
	return Address{}, false
}

// parseAliasAddress checks an alias address: a valid address without a plus
// tag (alias+tag@ reaches the alias itself, as for members) in a domain
// served here.
func (s *Service) parseAliasAddress(ctx context.Context, address string) (string, Domain, error) {
	e, err := ParseEmail(address)
	if err != nil {
		return "", Domain{}, err
	}
	local, domain, _ := strings.Cut(e, "@")
	if strings.Contains(local, "+") {
		return "", Domain{}, Errorf(EINVALID, "An alias address cannot contain +: mail to %s already reaches the alias %s@%s, with the tag kept.", e, strings.SplitN(local, "+", 2)[0], domain)
	}
	d, err := s.store.DomainByName(ctx, domain)
	if errors.Is(err, ErrNotFound) {
		return "", Domain{}, Errorf(ENOTLOCAL, "%s is not a domain of this server: add it first with 'postern domain add %s'.", domain, domain)
	} else if err != nil {
		return "", Domain{}, err
	}
	return e, d, nil
}

// targetMembers finds the members named by targets (each once, in order).
// Every target must be a member of a domain served here: an alias never
// forwards mail to another server.
func (s *Service) targetMembers(ctx context.Context, targets []string) ([]Member, error) {
	var out []Member
	for _, t := range targets {
		e, err := ParseEmail(t)
		if err != nil {
			return nil, err
		}
		m, err := s.store.MemberByEmail(ctx, e)
		if errors.Is(err, ErrNotFound) {
			if _, derr := s.store.DomainByName(ctx, strings.SplitN(e, "@", 2)[1]); errors.Is(derr, ErrNotFound) {
				return nil, Errorf(EINVALID, "%s is not an address of this server: an alias delivers only to members here, it never forwards mail elsewhere.", e)
			}
			return nil, Errorf(ENOTFOUND, "%s is not a member: an alias delivers only to members (not to other aliases); add the member first with 'postern user add'.", e)
		} else if err != nil {
			return nil, err
		}
		if !slices.ContainsFunc(out, func(x Member) bool { return x.ID == m.ID }) {
			out = append(out, m)
		}
	}
	return out, nil
}

func memberIDs(list []Member) []int64 {
	ids := make([]int64, len(list))
	for i, m := range list {
		ids[i] = m.ID
	}
	return ids
}

// AddAlias creates the alias address delivering to the members targets, or
// adds targets to it when it exists. created says which. The address must
// be in a domain served here and must not be a member's (nor, later, become
// one: AddMember refuses an alias's address).
func (s *Service) AddAlias(ctx context.Context, address string, targets []string, by Actor) (Alias, bool, error) {
	e, d, err := s.parseAliasAddress(ctx, address)
	if err != nil {
		return Alias{}, false, err
	}
	if len(targets) == 0 {
		return Alias{}, false, Errorf(EINVALID, "Name at least one member the alias %s delivers to.", e)
	}
	members, err := s.targetMembers(ctx, targets)
	if err != nil {
		return Alias{}, false, err
	}
	a := s.Audit(AuditAliasChanged, Member{}, by, e+" + "+memberList(members))
	a.Domain = d.Name
	created, err := s.store.AddAliasTargets(ctx, d.ID, e, memberIDs(members), MaxAliasTargets, s.Now().UTC(), Effects{Audit: []AuditEntry{a}})
	if errors.Is(err, ErrNotFound) {
		return Alias{}, false, Errorf(ENOTFOUND, "A member named as a target, or the domain, was deleted meanwhile; try again.")
	} else if err != nil {
		return Alias{}, false, err
	}
	al, err := s.Alias(ctx, e)
	return al, created, err
}

// memberList names members in an audit entry's detail.
func memberList(list []Member) string {
	var b strings.Builder
	for i, m := range list {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(m.Email)
	}
	return b.String()
}

// aliasAudit is the audit entry of a change to the alias address.
func (s *Service) aliasAudit(action, address string, by Actor, detail string) Effects {
	a := s.Audit(action, Member{}, by, detail)
	a.Domain = domainOf(address)
	return Effects{Audit: []AuditEntry{a}}
}

// RemoveAliasTargets removes targets from the alias address, all or
// nothing. An alias left with no target stays, and mail to it is refused
// (see docs/mail.md); DeleteAlias removes it.
func (s *Service) RemoveAliasTargets(ctx context.Context, address string, targets []string, by Actor) (Alias, error) {
	a, err := s.Alias(ctx, address)
	if err != nil {
		return Alias{}, err
	}
	var ids []int64
	var removed []Member
	for _, t := range targets {
		te, err := ParseEmail(t)
		if err != nil {
			return Alias{}, err
		}
		i := slices.IndexFunc(a.Targets, func(m Member) bool { return m.Email == te })
		if i < 0 {
			return Alias{}, Errorf(ENOTFOUND, "%s is not a target of the alias %s; nothing was removed.", te, a.Address)
		}
		if !slices.Contains(ids, a.Targets[i].ID) {
			ids, removed = append(ids, a.Targets[i].ID), append(removed, a.Targets[i])
		}
	}
	fx := s.aliasAudit(AuditAliasChanged, a.Address, by, a.Address+" - "+memberList(removed))
	if err := s.store.RemoveAliasTargets(ctx, a.Address, ids, fx); err != nil {
		return Alias{}, s.aliasErr(a.Address, err)
	}
	return s.Alias(ctx, a.Address)
}

// DeleteAlias deletes the alias address; mail to it is refused from then on
// (or goes to the domain's catch-all).
func (s *Service) DeleteAlias(ctx context.Context, address string, by Actor) error {
	e, err := ParseEmail(address)
	if err != nil {
		return err
	}
	return s.aliasErr(e, s.store.DeleteAlias(ctx, e, s.aliasAudit(AuditAliasDeleted, e, by, e)))
}

// Alias returns the alias address with its targets.
func (s *Service) Alias(ctx context.Context, address string) (Alias, error) {
	e, err := ParseEmail(address)
	if err != nil {
		return Alias{}, err
	}
	a, err := s.store.Alias(ctx, e)
	return a, s.aliasErr(e, err)
}

// Aliases lists the aliases of domain (all when ""), by address.
func (s *Service) Aliases(ctx context.Context, domain string) ([]Alias, error) {
	if domain != "" {
		d, err := s.Domain(ctx, domain)
		if err != nil {
			return nil, err
		}
		domain = d.Name
	}
	return s.store.Aliases(ctx, domain)
}

func (s *Service) aliasErr(address string, err error) error {
	if errors.Is(err, ErrNotFound) {
		return Errorf(ENOTFOUND, "No alias %s.", address)
	}
	return err
}

// SetCatchAll makes member (an address of any member here) receive the
// domain's mail to addresses that no member or alias has; member "" turns
// the catch-all off. Mail to another domain never reaches it.
func (s *Service) SetCatchAll(ctx context.Context, domain, member string, by Actor) (Domain, error) {
	d, err := s.Domain(ctx, domain)
	if err != nil {
		return Domain{}, err
	}
	var id int64
	detail := "off"
	if member != "" {
		list, err := s.targetMembers(ctx, []string{member})
		if err != nil {
			return Domain{}, err
		}
		id, detail = list[0].ID, list[0].Email
	}
	a := s.Audit(AuditCatchAllChanged, Member{}, by, detail)
	a.Domain = d.Name
	if err := s.store.SetCatchAll(ctx, d.ID, id, Effects{Audit: []AuditEntry{a}}); err != nil {
		return Domain{}, err
	}
	return s.store.DomainByName(ctx, d.Name)
}
