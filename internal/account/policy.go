package account

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// ThirdPartyProtocols are the protocols a domain's security policy can
// allow third-party apps, in the order they are shown.
var ThirdPartyProtocols = []string{"imap", "pop3", "smtp", "caldav", "carddav"}

// SecurityPolicy is what a domain's administrators decide about its
// members' third-party logins. The zero value restricts nothing.
type SecurityPolicy struct {
	// Protocols lists the protocols third-party apps may log in with; nil
	// allows every one (an empty non-nil list allows none).
	Protocols []string
	// Networks are the client addresses third-party logins may come from;
	// nil allows any.
	Networks []netip.Prefix
	// ExpireUnusedDays deletes app passwords left unused that many days
	// (counted from their creation when never used); 0 never does.
	ExpireUnusedDays int
	// ForceAppPasswords turns "Use a third-party app password" on for every
	// member of an optional domain: the domain is then enforced.
	ForceAppPasswords bool
}

// MaxExpireUnusedDays bounds ExpireUnusedDays: ten years.
const MaxExpireUnusedDays = 3650

// Refusal says why the policy refuses a third-party login over protocol
// from ip: "" when it does not. The reason is for logs only: the client
// gets the one failure reply of every refused login.
func (p SecurityPolicy) Refusal(protocol string, ip netip.Addr) string {
	if p.Protocols != nil && !slices.Contains(p.Protocols, protocol) {
		return "policy-protocol"
	}
	if p.Networks != nil {
		ip = ip.Unmap()
		for _, n := range p.Networks {
			if n.Contains(ip) {
				return ""
			}
		}
		return "policy-address"
	}
	return ""
}

// ParseProtocols reads a comma-separated list of ThirdPartyProtocols
// ("all" for every one: nil). The result is in ThirdPartyProtocols' order.
func ParseProtocols(s string) ([]string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "all" {
		return nil, nil
	}
	out := []string{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !slices.Contains(ThirdPartyProtocols, f) {
			return nil, Errorf(EINVALID, "Unknown protocol %q: use %s, or all.", f, strings.Join(ThirdPartyProtocols, ", "))
		}
		out = append(out, f)
	}
	return orderProtocols(out), nil
}

func orderProtocols(list []string) []string {
	out := []string{}
	for _, p := range ThirdPartyProtocols {
		if slices.Contains(list, p) {
			out = append(out, p)
		}
	}
	return out
}

// maxNetworks bounds a domain's address allowlist.
const maxNetworks = 100

// ParseNetworks reads a list of networks (CIDR) or addresses separated by
// commas, spaces or lines; "" (or "any") allows any address: nil.
func ParseNetworks(s string) ([]netip.Prefix, error) {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
	if len(fields) == 0 || len(fields) == 1 && strings.EqualFold(fields[0], "any") {
		return nil, nil
	}
	if len(fields) > maxNetworks {
		return nil, Errorf(EINVALID, "At most %d networks.", maxNetworks)
	}
	var out []netip.Prefix
	for _, f := range fields {
		var p netip.Prefix
		var err error
		if strings.Contains(f, "/") {
			p, err = netip.ParsePrefix(f)
		} else {
			var a netip.Addr
			if a, err = netip.ParseAddr(f); err == nil {
				p = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil || p.Addr().Zone() != "" {
			return nil, Errorf(EINVALID, "%q is not a network such as 192.0.2.0/24 or 2001:db8::/32, nor an address.", f)
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()).Masked()
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out, nil
}

// FormatNetworks is the stored form of a list of networks ("" for any).
func FormatNetworks(list []netip.Prefix) string {
	s := make([]string, len(list))
	for i, p := range list {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// DecodeSecurityPolicy rebuilds a policy from its stored form (stores use
// it): protocols nil for every one, networks "" for any address. Stored
// values were checked when written; one that no longer parses fails closed.
func DecodeSecurityPolicy(protocols *string, networks string, expireDays int, force bool) SecurityPolicy {
	p := SecurityPolicy{ExpireUnusedDays: expireDays, ForceAppPasswords: force}
	if protocols != nil {
		list, err := ParseProtocols(*protocols)
		if err != nil || list == nil {
			list = []string{}
		}
		p.Protocols = list
	}
	if networks != "" {
		list, err := ParseNetworks(networks)
		if err != nil || list == nil {
			list = []netip.Prefix{}
		}
		p.Networks = list
	}
	return p
}

// SecurityPolicyStore keeps domains' security policies; *sqlstore.DB
// implements it.
type SecurityPolicyStore interface {
	// SetSecurityPolicy replaces the domain's policy and writes fx in the
	// same transaction; ErrNotFound when the domain is gone.
	SetSecurityPolicy(ctx context.Context, domainID int64, p SecurityPolicy, fx Effects) error
}

// SetSecurityPolicy replaces the security policy of the domain named
// domain. The change reaches every node's next login at once; the live
// sessions it refuses are closed (EventPolicyChanged).
func (s *Service) SetSecurityPolicy(ctx context.Context, domain string, p SecurityPolicy, by Actor) (Domain, error) {
	d, err := s.Domain(ctx, domain)
	if err != nil {
		return Domain{}, err
	}
	if p.ExpireUnusedDays < 0 || p.ExpireUnusedDays > MaxExpireUnusedDays {
		return Domain{}, Errorf(EINVALID, "Days unused before app passwords expire must be from 1 to %d, or 0 for never.", MaxExpireUnusedDays)
	}
	if p.ForceAppPasswords && !d.Security.ForceAppPasswords && PolicyFor(d.CreatedAt, s.Config.Cutoff) == PolicyEnforced {
		return Domain{}, Errorf(ECONFLICT, "Every member of %s already uses app passwords: the domain was created after the cut-off.", d.Name)
	}
	if p.Protocols != nil {
		p.Protocols = orderProtocols(p.Protocols)
	}
	a := s.Audit(AuditPolicyChanged, Member{}, by, fmt.Sprintf("protocols %s; networks %s; expire unused after %d days; force app passwords %s",
		policyProtocols(p.Protocols), policyNetworks(p.Networks), p.ExpireUnusedDays, onOff(p.ForceAppPasswords)))
	a.Domain = d.Name
	err = s.store.SetSecurityPolicy(ctx, d.ID, p, Effects{Events: []Event{{Kind: EventPolicyChanged, DomainID: d.ID}},
		Audit: []AuditEntry{a}})
	if err != nil {
		return Domain{}, err
	}
	s.Log.Info("domain security policy changed", "domain", d.Name, "protocols", p.Protocols, "networks", FormatNetworks(p.Networks),
		"expire_unused_days", p.ExpireUnusedDays, "force_app_passwords", p.ForceAppPasswords, "via", by.Via, "ip", by.IP)
	d.Security = p
	return d, nil
}

// DomainByID returns the domain with the id (ErrNotFound when gone).
func (s *Service) DomainByID(ctx context.Context, id int64) (Domain, error) {
	return s.store.DomainByID(ctx, id)
}

// SetDomainMailQuota sets the default storage limit of the domain's
// members who set none (octets, 0 for none; nil: the server's).
func (s *Service) SetDomainMailQuota(ctx context.Context, domain string, limit *int64, by Actor) (Domain, error) {
	d, err := s.Domain(ctx, domain)
	if err != nil {
		return Domain{}, err
	}
	if limit != nil && *limit < 0 {
		return Domain{}, Errorf(EINVALID, "A storage limit cannot be negative.")
	}
	if quotaEqual(d.MailQuota, limit) {
		return d, nil // nothing changes: no audit entry
	}
	a := s.Audit(AuditQuotaChanged, Member{}, by, "domain default "+quotaDetail(limit))
	a.Domain = d.Name
	if err := s.store.SetDomainMailQuota(ctx, d.ID, limit, Effects{Audit: []AuditEntry{a}}); err != nil {
		return Domain{}, err
	}
	d.MailQuota = limit
	return d, nil
}

// SetMailQuota sets the member's own storage limit (octets, 0 for none;
// nil: the domain's default).
func (s *Service) SetMailQuota(ctx context.Context, m Member, limit *int64, by Actor) error {
	if limit != nil && *limit < 0 {
		return Errorf(EINVALID, "A storage limit cannot be negative.")
	}
	a := s.Audit(AuditQuotaChanged, m, by, quotaDetail(limit))
	return s.store.SetMailQuota(ctx, m.ID, limit, Effects{Audit: []AuditEntry{a}})
}

func quotaEqual(a, b *int64) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

// quotaDetail describes a storage limit in the audit log.
func quotaDetail(limit *int64) string {
	switch {
	case limit == nil:
		return "default"
	case *limit == 0:
		return "no limit"
	}
	return strconv.FormatInt(*limit, 10) + " octets"
}

// policyProtocols and policyNetworks describe a policy's lists in the audit
// log: nil is no restriction.
func policyProtocols(list []string) string {
	if list == nil {
		return "all"
	}
	if len(list) == 0 {
		return "none"
	}
	return strings.Join(list, ",")
}

func policyNetworks(list []netip.Prefix) string {
	if list == nil {
		return "any"
	}
	return FormatNetworks(list)
}
