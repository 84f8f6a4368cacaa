package delivery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// errNXDomain is an authoritative "no such name"; errors.Is(err, errTemp)
// marks every failure worth a retry (SERVFAIL, REFUSED, timeouts).
var (
	errNXDomain = errors.New("no such domain (NXDOMAIN)")
	errNoAddr   = errors.New("no A or AAAA record")
	errTemp     = errors.New("temporary DNS failure")
)

// answer is one lookup's records of the asked type and whether the resolver
// vouched for them with the AD bit (DNSSEC validated). A name that exists
// without records of the type (NODATA) is an answer with no records.
type answer struct {
	rrs    []dns.RR
	secure bool
}

// resolver asks the configured DNS server itself (miekg/dns) instead of
// going through net.Resolver, which hides the AD bit that DANE needs.
type resolver struct {
	servers []string // IP:PORT, tried in order
	timeout time.Duration
}

func newResolver(addr string, timeout time.Duration) (*resolver, error) {
	r := &resolver{timeout: timeout}
	if addr != "" {
		s, err := parseServer(addr)
		if err != nil {
			return nil, err
		}
		r.servers = []string{s}
		return r, nil
	}
	cc, err := dns.ClientConfigFromFile("/etc/resolv.conf")
	if err != nil {
		return nil, fmt.Errorf("reading /etc/resolv.conf: %v", err)
	}
	for _, s := range cc.Servers {
		r.servers = append(r.servers, net.JoinHostPort(s, cc.Port))
	}
	if len(r.servers) == 0 {
		return nil, errors.New("/etc/resolv.conf names no nameserver")
	}
	return r, nil
}

// parseServer reads IP:PORT or a bare IP (port 53); a host name is refused,
// since it would need a resolver to find the resolver.
func parseServer(s string) (string, error) {
	host, port := s, "53"
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Zone() != "" {
		return "", fmt.Errorf("DNS resolver %q is not IP:PORT, such as 127.0.0.1:53", s)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("DNS resolver %q: the port must be 1-65535", s)
	}
	return netip.AddrPortFrom(ip, uint16(n)).String(), nil
}

// query asks for name's records of type qtype with the DO bit set (and AD in
// the query, RFC 6840 §5.7), so that a validating resolver reports whether
// the answer is authenticated. Names are asked fully qualified: no search
// list is appended to a domain taken from an address.
func (r *resolver) query(ctx context.Context, name string, qtype uint16) (answer, error) {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qtype)
	q.RecursionDesired = true
	q.AuthenticatedData = true
	q.SetEdns0(1232, true)
	var last error
	for attempt := 0; attempt < 2; attempt++ {
		for _, server := range r.servers {
			resp, err := r.exchange(ctx, q, server)
			if err != nil {
				last = err
				if ctx.Err() != nil {
					return answer{}, fmt.Errorf("%w: %s %s: %v", errTemp, name, dns.TypeToString[qtype], ctx.Err())
				}
				continue
			}
			switch resp.Rcode {
			case dns.RcodeSuccess:
				a := answer{secure: resp.AuthenticatedData}
				for _, rr := range resp.Answer {
					if rr.Header().Rrtype == qtype {
						a.rrs = append(a.rrs, rr)
					}
				}
				return a, nil
			case dns.RcodeNameError:
				return answer{secure: resp.AuthenticatedData}, fmt.Errorf("%s: %w", name, errNXDomain)
			default:
				last = fmt.Errorf("%s", dns.RcodeToString[resp.Rcode])
			}
		}
	}
	return answer{}, fmt.Errorf("%w: %s %s: %v", errTemp, name, dns.TypeToString[qtype], last)
}

// exchange sends q over UDP and repeats it over TCP when the answer was
// truncated.
func (r *resolver) exchange(ctx context.Context, q *dns.Msg, server string) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	c := &dns.Client{Net: "udp", Timeout: r.timeout, UDPSize: 1232}
	resp, _, err := c.ExchangeContext(ctx, q, server)
	if err == nil && resp.Truncated {
		c.Net = "tcp"
		resp, _, err = c.ExchangeContext(ctx, q, server)
	}
	if err == nil && resp.Id != q.Id {
		err = errors.New("DNS answer with a wrong id")
	}
	return resp, err
}

// lookupIP returns the IPv4 then the IPv6 addresses of host, and whether
// every answer was authenticated. NXDOMAIN is errNXDomain, a name without
// addresses errNoAddr; a failure of either query that leaves no address is
// errTemp.
func (r *resolver) lookupIP(ctx context.Context, host string) ([]netip.Addr, bool, error) {
	// Both queries at once: each is a round trip to the resolver.
	type res struct {
		a   answer
		err error
	}
	aaaa := make(chan res, 1)
	go func() {
		a, err := r.query(ctx, host, dns.TypeAAAA)
		aaaa <- res{a, err}
	}()
	a4, err4 := r.query(ctx, host, dns.TypeA)
	a6 := <-aaaa
	var addrs []netip.Addr
	secure := true
	var tempErr error
	nx := 0
	for _, x := range []res{{a4, err4}, a6} {
		switch {
		case errors.Is(x.err, errNXDomain):
			nx++
			secure = secure && x.a.secure
			continue
		case x.err != nil:
			tempErr = x.err
			secure = false
			continue
		}
		secure = secure && x.a.secure
		for _, rr := range x.a.rrs {
			var ip net.IP
			switch rr := rr.(type) {
			case *dns.A:
				ip = rr.A
			case *dns.AAAA:
				ip = rr.AAAA
			}
			if addr, ok := netip.AddrFromSlice(ip); ok {
				addrs = append(addrs, addr.Unmap())
			}
		}
	}
	if len(addrs) > 0 {
		return addrs, secure && tempErr == nil, nil
	}
	if tempErr != nil {
		return nil, false, tempErr
	}
	if nx > 0 {
		return nil, secure, fmt.Errorf("%s: %w", host, errNXDomain)
	}
	return nil, secure, fmt.Errorf("%s: %w", host, errNoAddr)
}

// lookupTXT returns the strings of each TXT record of name, each record's
// pieces joined (RFC 7208 §3.3, RFC 8461 §3.1).
func (r *resolver) lookupTXT(ctx context.Context, name string) ([]string, error) {
	a, err := r.query(ctx, name, dns.TypeTXT)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, rr := range a.rrs {
		out = append(out, strings.Join(rr.(*dns.TXT).Txt, ""))
	}
	return out, nil
}
