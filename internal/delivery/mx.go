package delivery

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strings"

	"github.com/miekg/dns"
	"golang.org/x/net/idna"
)

// mxHost is one host to try, with its MX preference.
type mxHost struct {
	name string // lower case, no final dot
	pref uint16
}

// route is where a domain's mail goes.
type route struct {
	domain string // as asked in DNS
	hosts  []mxHost
	// secure: the MX answer (or, for an implicit MX, the answer that there
	// is none) was DNSSEC-validated, so the hosts' TLSA records may be used
	// (RFC 7672 §2.2.1).
	secure   bool
	implicit bool
}

// asciiDomain returns domain as it is asked in DNS (A-labels, RFC 5891).
func asciiDomain(domain string) (string, error) {
	d := strings.ToLower(strings.TrimSuffix(domain, "."))
	if d == "" || strings.HasPrefix(d, "[") {
		return "", fmt.Errorf("%q is not a domain Postern delivers to", domain)
	}
	a, err := idna.Lookup.ToASCII(d)
	if err != nil {
		return "", fmt.Errorf("%q is not a valid domain: %v", domain, err)
	}
	if _, ok := dns.IsDomainName(a); !ok {
		return "", fmt.Errorf("%q is not a valid domain", domain)
	}
	return a, nil
}

// route finds the hosts for domain (RFC 5321 §5.1): the MX hosts by
// preference, equal preferences in random order; the domain itself when it
// has no MX (implicit MX). A failure is returned as the result every
// recipient gets.
func (d *Deliverer) route(ctx context.Context, domain string) (route, *Result) {
	name, err := asciiDomain(domain)
	if err != nil {
		r := local(true, "5.1.2", err.Error())
		return route{}, &r
	}
	a, err := d.dns.query(ctx, name, dns.TypeMX)
	switch {
	case errors.Is(err, errNXDomain):
		r := local(true, "5.1.2", fmt.Sprintf("the domain %s does not exist (NXDOMAIN)", name))
		return route{}, &r
	case err != nil:
		r := local(false, "4.4.3", fmt.Sprintf("looking up the MX records of %s: %v", name, err))
		return route{}, &r
	}
	rt := route{domain: name, secure: a.secure}
	seen := map[string]bool{}
	null := false
	for _, rr := range a.rrs {
		mx := rr.(*dns.MX)
		host := strings.ToLower(strings.TrimSuffix(mx.Mx, "."))
		if host == "" {
			null = true
			continue
		}
		if seen[host] {
			continue
		}
		seen[host] = true
		rt.hosts = append(rt.hosts, mxHost{name: host, pref: mx.Preference})
	}
	if null && len(rt.hosts) == 0 {
		// RFC 7505: the domain accepts no mail at all.
		r := local(true, "5.1.10", fmt.Sprintf("the domain %s accepts no mail (null MX, RFC 7505)", name))
		return route{}, &r
	}
	if len(rt.hosts) == 0 {
		rt.implicit = true
		rt.hosts = []mxHost{{name: name}}
		return rt, nil
	}
	sort.SliceStable(rt.hosts, func(i, k int) bool { return rt.hosts[i].pref < rt.hosts[k].pref })
	shuffleEqual(rt.hosts)
	// RFC 5321 §5.1: when we are one of the MX hosts, only the more
	// preferred ones may be tried, or the message would loop.
	me := strings.ToLower(strings.TrimSuffix(d.cfg.Hostname, "."))
	for _, h := range rt.hosts {
		if h.name == me {
			pref := h.pref
			k := 0
			for k < len(rt.hosts) && rt.hosts[k].pref < pref {
				k++
			}
			rt.hosts = rt.hosts[:k]
			if len(rt.hosts) == 0 {
				r := local(true, "5.4.6", fmt.Sprintf("mail for %s loops back to myself (%s is its best MX host)", name, me))
				return route{}, &r
			}
			break
		}
	}
	return rt, nil
}

// shuffleEqual puts hosts of equal preference in random order (RFC 5321
// §5.1), spreading the load as the domain intends; hosts is sorted.
func shuffleEqual(hosts []mxHost) {
	for start := 0; start < len(hosts); {
		end := start + 1
		for end < len(hosts) && hosts[end].pref == hosts[start].pref {
			end++
		}
		group := hosts[start:end]
		for i := len(group) - 1; i > 0; i-- {
			n, err := rand.Int(rand.Reader, big.NewInt(int64(i+1)))
			if err != nil {
				break
			}
			k := int(n.Int64())
			group[i], group[k] = group[k], group[i]
		}
		start = end
	}
}
