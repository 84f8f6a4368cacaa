package mailauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/mail"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-msgauth/dmarc"
	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
)

// policyLookup is the outcome of DMARC policy discovery (RFC 7489 §6.6.3).
type policyLookup struct {
	rec *dmarc.Record
	// at is the domain whose record was found: the From: domain or, failing
	// that, its organizational domain.
	at     string
	result Value // "" when rec was found, else None, TempError or PermError
	reason string
}

// lookupPolicy finds the DMARC record of the From: domain, then of its
// organizational domain.
func (c *Checker) lookupPolicy(ctx context.Context, from string) policyLookup {
	p := c.dmarcRecord(ctx, from)
	p.at = from
	if p.result == None {
		if org := orgDomain(from); org != from {
			p = c.dmarcRecord(ctx, org)
			p.at = org
		}
	}
	return p
}

var dmarcVersion = regexp.MustCompile(`^v\s*=\s*DMARC1\s*(;|$)`)

func (c *Checker) dmarcRecord(ctx context.Context, domain string) policyLookup {
	txts, err := c.res.LookupTXT(ctx, "_dmarc."+domain)
	if err != nil {
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			return policyLookup{result: None}
		}
		// Anything but "no such record" may be gone on the next try, so
		// it is a temperror, which never rejects a message.
		return policyLookup{result: TempError, reason: err.Error()}
	}
	var recs []string
	for _, t := range txts {
		if dmarcVersion.MatchString(strings.TrimSpace(t)) {
			recs = append(recs, t)
		}
	}
	switch len(recs) {
	case 0:
		return policyLookup{result: None}
	case 1:
	default:
		// §6.6.3 step 5: several records mean no DMARC processing.
		return policyLookup{result: PermError, reason: "several DMARC records at _dmarc." + domain}
	}
	rec, err := dmarc.Parse(recs[0])
	if err != nil {
		return policyLookup{result: PermError, reason: err.Error()}
	}
	return policyLookup{rec: rec}
}

// evaluate applies the policy found to the SPF and DKIM results (RFC 7489
// §3.1 alignment, §6.6.4 pct, §6.3 sp) and decides the disposition.
func (c *Checker) evaluate(from string, fromErr error, pol policyLookup, s SPFResult, dk []DKIMResult) (DMARCResult, Disposition, string) {
	if fromErr != nil {
		// RFC 5322 requires exactly one From: field; a message without a
		// single author domain cannot be evaluated, and accepting it would
		// let a forger hide behind a second, innocent From: (§6.6.1).
		return DMARCResult{Result: PermError, Reason: fromErr.Error()}, Reject, fromErr.Error()
	}
	d := DMARCResult{From: from, Result: pol.result, Reason: pol.reason}
	if pol.rec == nil {
		return d, Accept, ""
	}
	policy := pol.rec.Policy
	if pol.at != from && pol.rec.SubdomainPolicy != "" {
		policy = pol.rec.SubdomainPolicy
	}
	d.Policy = string(policy)

	spfAligned := aligned(s.Domain, from, pol.rec.SPFAlignment)
	if s.Result == Pass && spfAligned {
		d.Result = Pass
		return d, Accept, ""
	}
	temp := s.Result == TempError && spfAligned
	for _, r := range dk {
		if !aligned(r.Domain, from, pol.rec.DKIMAlignment) {
			continue
		}
		if r.Result == Pass {
			d.Result = Pass
			return d, Accept, ""
		}
		temp = temp || r.Result == TempError
	}
	if temp {
		// An aligned identifier could not be checked: the sender may be
		// fine, so a DNS failure never turns into a reject or quarantine.
		d.Result, d.Reason = TempError, "an aligned identifier had a DNS error"
		return d, Accept, ""
	}

	d.Result = Fail
	disp := Accept
	switch policy {
	case dmarc.PolicyReject:
		disp = Reject
	case dmarc.PolicyQuarantine:
		disp = Quarantine
	}
	// §6.6.4: a message outside the sampled pct gets the next policy down.
	if pct := pol.rec.Percent; pct != nil && *pct < 100 && c.sample() >= *pct && disp > Accept {
		disp--
	}
	d.Reason = fmt.Sprintf("p=%s, spf=%s (%s) and no aligned DKIM pass", policy, s.Result, orNone(s.Domain))
	if disp == Accept {
		return d, Accept, ""
	}
	return d, disp, fmt.Sprintf("DMARC policy of %s: %s", from, d.Reason)
}

func orNone(s string) string {
	if s == "" {
		return "no domain"
	}
	return s
}

// aligned compares an authenticated domain with the From: domain: equal in
// strict mode, the same organizational domain in relaxed mode.
func aligned(domain, from string, mode dmarc.AlignmentMode) bool {
	if domain == "" {
		return false
	}
	if domain == from {
		return true
	}
	return mode != dmarc.AlignmentStrict && orgDomain(domain) == orgDomain(from)
}

// orgDomain is the organizational domain (RFC 7489 §3.2): the public
// suffix plus one label.
func orgDomain(d string) string {
	if o, err := publicsuffix.EffectiveTLDPlusOne(d); err == nil {
		return o
	}
	return d
}

// normalizeDomain lower-cases a domain, drops a final dot and writes an
// internationalized name in its A-label form, so that comparisons and DNS
// names agree.
func normalizeDomain(s string) string {
	s = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			if a, err := idna.Lookup.ToASCII(s); err == nil {
				return a
			}
			break
		}
	}
	return s
}

// fromDomain returns the single author domain of the message: one From:
// field whose addresses all share one domain.
func fromDomain(msg []byte) (string, error) {
	var values []string
	for _, f := range headerFields(msg) {
		if strings.EqualFold(f.name, "From") {
			values = append(values, f.value(msg))
		}
	}
	switch len(values) {
	case 0:
		return "", errors.New("message has no From: field")
	case 1:
	default:
		return "", errors.New("message has several From: fields")
	}
	// Only the addresses matter, so encoded display names in any charset
	// are left undecoded rather than refused.
	p := mail.AddressParser{WordDecoder: &mime.WordDecoder{
		CharsetReader: func(_ string, r io.Reader) (io.Reader, error) { return r, nil },
	}}
	addrs, err := p.ParseList(values[0])
	if err != nil || len(addrs) == 0 {
		return "", errors.New("message has an unreadable From: field")
	}
	domain := ""
	for _, a := range addrs {
		at := strings.LastIndexByte(a.Address, '@')
		if at < 0 {
			return "", errors.New("message has a From: address without a domain")
		}
		d := normalizeDomain(a.Address[at+1:])
		if domain != "" && d != domain {
			return "", errors.New("message has From: addresses in several domains")
		}
		domain = d
	}
	return domain, nil
}
