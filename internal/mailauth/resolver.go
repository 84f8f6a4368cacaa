package mailauth

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Resolver is the DNS the checks use. *net.Resolver satisfies it; the SPF
// library asserts *net.DNSError on the errors, so an implementation must
// return those (IsNotFound for NXDOMAIN, IsTimeout/IsTemporary for failures
// worth a retry) for the RFC results to come out right.
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

// dialTimeout bounds connecting to the configured DNS server (TCP retries of
// truncated answers); the per-lookup timeout and the deadline of the whole
// check bound the rest.
const dialTimeout = 2 * time.Second

// ParseResolver reads the --dns-resolver setting. "" means the system's
// resolver and returns nil, nil. Otherwise the value is IP:PORT (or a bare IP,
// port 53) and the returned resolver sends every query, over UDP and over TCP
// for truncated answers, to that server only. A host name is refused: it
// would need a resolver to find the resolver.
func ParseResolver(s string) (*net.Resolver, error) {
	if s == "" {
		return nil, nil
	}
	host, port := s, "53"
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
	} else if strings.Count(s, ":") == 1 {
		return nil, fmt.Errorf("%q is not IP:PORT (%v)", s, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Zone() != "" {
		return nil, fmt.Errorf("%q is not IP:PORT, such as 127.0.0.1:53 or [::1]:53", s)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return nil, fmt.Errorf("%q: the port must be 1-65535", s)
	}
	addr := netip.AddrPortFrom(ip, uint16(n)).String()
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			d := net.Dialer{Timeout: dialTimeout}
			return d.DialContext(ctx, network, addr)
		},
	}, nil
}

// rooted wraps the configured resolver so that every name is asked as a
// fully qualified one (no resolv.conf search list appended to a name taken
// from a message) and every lookup has its own timeout within the check's
// deadline, so one slow record leaves time for the others.
type rooted struct {
	r       Resolver
	timeout time.Duration
}

func fqdn(name string) string {
	if strings.HasSuffix(name, ".") {
		return name
	}
	return name + "."
}

func (r rooted) LookupTXT(ctx context.Context, name string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	return r.r.LookupTXT(ctx, fqdn(name))
}

func (r rooted) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	return r.r.LookupMX(ctx, fqdn(name))
}

func (r rooted) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	return r.r.LookupIPAddr(ctx, fqdn(host))
}

func (r rooted) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	return r.r.LookupAddr(ctx, addr)
}

func defaultResolver() Resolver { return net.DefaultResolver }
