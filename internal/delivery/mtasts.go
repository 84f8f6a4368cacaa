package delivery

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// stsPolicy is a domain's MTA-STS policy (RFC 8461 §3.2).
type stsPolicy struct {
	domain  string
	id      string // of the TXT record it was fetched for
	mode    string // enforce, testing or none
	mx      []string
	expires time.Time
}

// maxPolicySize caps the policy document (RFC 8461 §3.3 says 64 KiB is plenty).
const maxPolicySize = 64 << 10

// maxPolicyAge is the largest max_age honoured (RFC 8461 §3.2: one year).
const maxPolicyAge = 31557600

// stsCache keeps each domain's policy for its max_age, in memory.
type stsCache struct {
	d      *Deliverer
	client *http.Client

	mu       sync.Mutex
	policies map[string]*stsPolicy
	inflight map[string]chan struct{}
	// failed holds when a fetch for "domain id" may be tried again, so
	// that an unreachable policy host does not slow every delivery.
	failed map[string]time.Time
}

// retryFetch is how long a failed policy fetch is not repeated.
const retryFetch = 5 * time.Minute

func newSTSCache(d *Deliverer) *stsCache {
	dialer := &net.Dialer{Timeout: d.cfg.Timeouts.Connect}
	tr := &http.Transport{
		Proxy: nil,
		// The policy host is found through the configured resolver, like
		// the MX hosts.
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			ips, _, err := d.dns.lookupIP(ctx, host)
			if err != nil {
				return nil, err
			}
			var last error
			for _, ip := range ips {
				c, err := dialer.DialContext(ctx, "tcp", net.JoinHostPort(ip.String(), port))
				if err == nil {
					return c, nil
				}
				last = err
			}
			return nil, last
		},
		TLSClientConfig:        &tls.Config{RootCAs: d.cfg.RootCAs, MinVersion: tls.VersionTLS12},
		MaxResponseHeaderBytes: 16 << 10,
		IdleConnTimeout:        10 * time.Second,
		DisableKeepAlives:      true,
	}
	return &stsCache{
		d: d,
		client: &http.Client{
			Transport: tr,
			Timeout:   d.cfg.Timeouts.Policy,
			// RFC 8461 §3.3: redirects are not followed.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		policies: map[string]*stsPolicy{},
		inflight: map[string]chan struct{}{},
		failed:   map[string]time.Time{},
	}
}

// policy returns domain's policy in force, nil for none (RFC 8461 §5.1):
// the TXT record says whether the cached one is current; a new id fetches
// the new policy; when the TXT record or the fetch fails, a cached policy
// that has not expired stays in force, and without one the domain has none.
func (c *stsCache) policy(ctx context.Context, domain string) *stsPolicy {
	id, txtErr := c.lookupID(ctx, domain)
	for {
		c.mu.Lock()
		cached := c.policies[domain]
		if cached != nil && time.Now().After(cached.expires) {
			delete(c.policies, domain)
			cached = nil
		}
		if txtErr != nil || (cached != nil && cached.id == id) || time.Now().Before(c.failed[domain+" "+id]) {
			c.mu.Unlock()
			return active(cached)
		}
		if wait, busy := c.inflight[domain]; busy {
			c.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return active(cached)
			}
		}
		done := make(chan struct{})
		c.inflight[domain] = done
		c.mu.Unlock()

		p, err := c.fetch(ctx, domain)
		c.mu.Lock()
		delete(c.inflight, domain)
		close(done)
		if err != nil {
			for k, t := range c.failed {
				if time.Now().After(t) {
					delete(c.failed, k)
				}
			}
			c.failed[domain+" "+id] = time.Now().Add(retryFetch)
			c.mu.Unlock()
			c.d.log.Warn("MTA-STS policy fetch failed", "domain", domain, "err", err)
			return active(cached)
		}
		p.id = id
		c.policies[domain] = p
		c.mu.Unlock()
		c.d.log.Info("MTA-STS policy", "domain", domain, "id", id, "mode", p.mode, "mx", strings.Join(p.mx, ","),
			"expires", p.expires.Format(time.RFC3339))
		return active(p)
	}
}

// active hides a policy of mode none, which exists only to replace a
// stricter one in caches.
func active(p *stsPolicy) *stsPolicy {
	if p == nil || p.mode == "none" {
		return nil
	}
	return p
}

// lookupID reads the id of _mta-sts.DOMAIN's one "v=STSv1" TXT record
// (RFC 8461 §3.1); none, several or a malformed one is an error.
func (c *stsCache) lookupID(ctx context.Context, domain string) (string, error) {
	txts, err := c.d.dns.lookupTXT(ctx, "_mta-sts."+domain)
	if err != nil {
		return "", err
	}
	var ids []string
	for _, t := range txts {
		if !strings.HasPrefix(t, "v=STSv1") {
			continue
		}
		id := ""
		for _, field := range strings.Split(t, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(field), "=")
			if ok && k == "id" {
				id = v
			}
		}
		ids = append(ids, id)
	}
	if len(ids) != 1 {
		return "", fmt.Errorf("%d MTA-STS TXT records", len(ids))
	}
	if !validID(ids[0]) {
		return "", fmt.Errorf("MTA-STS id %q is not 1-32 letters and digits", ids[0])
	}
	return ids[0], nil
}

func validID(id string) bool {
	if len(id) < 1 || len(id) > 32 {
		return false
	}
	for _, c := range id {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// fetch gets https://mta-sts.DOMAIN/.well-known/mta-sts.txt with a verified
// certificate, no redirect, at most 64 KiB.
func (c *stsCache) fetch(ctx context.Context, domain string) (*stsPolicy, error) {
	url := "https://mta-sts." + domain + "/.well-known/mta-sts.txt"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: HTTP status %s", url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPolicySize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", url, err)
	}
	if len(body) > maxPolicySize {
		return nil, fmt.Errorf("%s: larger than %d bytes", url, maxPolicySize)
	}
	p, err := parsePolicy(string(body))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", url, err)
	}
	p.domain = domain
	return p, nil
}

// parsePolicy reads a policy document: "key: value" lines, CRLF or LF.
func parsePolicy(s string) (*stsPolicy, error) {
	p := &stsPolicy{}
	var version string
	age := -1
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(strings.TrimRight(line, "\r"), ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch strings.TrimSpace(k) {
		case "version":
			version = v
		case "mode":
			p.mode = v
		case "max_age":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || len(v) > 10 {
				return nil, fmt.Errorf("max_age %q is not a number of seconds", v)
			}
			age = min(n, maxPolicyAge)
		case "mx":
			p.mx = append(p.mx, strings.ToLower(strings.TrimSuffix(v, ".")))
		}
	}
	switch {
	case version != "STSv1":
		return nil, errors.New("no version: STSv1")
	case p.mode != "enforce" && p.mode != "testing" && p.mode != "none":
		return nil, fmt.Errorf("mode %q is not enforce, testing or none", p.mode)
	case age < 0:
		return nil, errors.New("no max_age")
	case p.mode != "none" && len(p.mx) == 0:
		return nil, errors.New("no mx")
	}
	p.expires = time.Now().Add(time.Duration(age) * time.Second)
	return p, nil
}

// matches reports whether host is one of the policy's mx patterns; a
// pattern "*.example.com" stands for exactly one more label (RFC 8461 §4.1).
func (p *stsPolicy) matches(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, pat := range p.mx {
		if rest, ok := strings.CutPrefix(pat, "*."); ok {
			label, parent, found := strings.Cut(host, ".")
			if found && label != "" && parent == rest {
				return true
			}
		} else if host == pat {
			return true
		}
	}
	return false
}
