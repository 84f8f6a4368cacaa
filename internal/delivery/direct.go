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
)

const (
	// maxAddrs bounds the addresses tried in one attempt, so that a domain
	// with many unreachable MX hosts costs minutes, not hours.
	maxAddrs = 10
	// maxSessions bounds the sessions that got as far as MAIL in one
	// attempt: recipients a server deferred are offered to one more MX host
	// (a backup MX may take them), not to every one.
	maxSessions = 2
	// rsetTimeout bounds the check of a pooled connection, which the server
	// may have dropped without our noticing.
	rsetTimeout = 30 * time.Second
)

// direct delivers to the domain's MX hosts.
func (j *job) direct(ctx context.Context, domain string) {
	d := j.d
	// The MTA-STS policy is looked up while the MX records are: both are
	// round trips to the resolver.
	stsc := make(chan *stsPolicy, 1)
	if name, err := asciiDomain(domain); err == nil {
		go func() { stsc <- d.sts.policy(ctx, name) }()
	} else {
		stsc <- nil
	}
	rt, fail := d.route(ctx, domain)
	sts := <-stsc
	if fail != nil {
		j.failAll(*fail)
		d.log.Info("delivery", "domain", domain, "result", fail.Text, "enhanced", fail.Enhanced)
		return
	}
	hosts := rt.hosts
	// Under an enforced MTA-STS policy only the hosts it lists are used,
	// except hosts with DANE, which takes precedence (RFC 8461 §2).
	var unlisted []string
	if sts != nil {
		for _, h := range hosts {
			if !sts.matches(h.name) {
				unlisted = append(unlisted, h.name)
			}
		}
		if len(unlisted) > 0 {
			d.log.Warn("MX hosts outside the MTA-STS policy", "domain", rt.domain, "mode", sts.mode,
				"hosts", strings.Join(unlisted, ","), "policy_mx", strings.Join(sts.mx, ","))
		}
	}
	enforced := sts != nil && sts.mode == "enforce"
	stsRefused := func(h mxHost) {
		j.failPending(local(false, "4.7.5", fmt.Sprintf("the MTA-STS policy of %s (enforce) does not list its MX host %s (it lists %s)",
			rt.domain, h.name, strings.Join(sts.mx, ", "))))
	}
	tried := map[netip.Addr]bool{}
	addrs, sessions, noAddr := 0, 0, 0
	for _, h := range hosts {
		if len(j.pending()) == 0 || addrs >= maxAddrs || sessions >= maxSessions || ctx.Err() != nil {
			break
		}
		if enforced && !rt.secure && !sts.matches(h.name) {
			// Without DNSSEC there can be no DANE to exempt the host.
			stsRefused(h)
			continue
		}
		ips, secure, err := d.dns.lookupIP(ctx, h.name)
		if err != nil {
			if errors.Is(err, errNXDomain) || errors.Is(err, errNoAddr) {
				noAddr++
				j.failPending(local(false, "4.4.4", fmt.Sprintf("MX host %v", err)))
			} else {
				j.failPending(local(false, "4.4.3", fmt.Sprintf("looking up MX host %s: %v", h.name, err)))
			}
			d.log.Info("delivery: MX host skipped", "domain", rt.domain, "mx", h.name, "err", err)
			continue
		}
		pol, perr := d.hostPolicy(ctx, h.name, rt.secure && secure, sts)
		if perr != nil {
			j.failPending(*perr)
			d.log.Warn("delivery: MX host skipped", "domain", rt.domain, "mx", h.name, "err", perr.Text)
			continue
		}
		if enforced && pol.mode == tlsSTSEnforce && !sts.matches(h.name) {
			stsRefused(h)
			continue
		}
		for _, ip := range ips {
			if tried[ip] || addrs >= maxAddrs || ctx.Err() != nil {
				continue
			}
			tried[ip] = true
			addrs++
			if j.tryAddr(ctx, h.name, netip.AddrPortFrom(ip, uint16(d.cfg.Port)), pol) {
				sessions++
				break
			}
		}
	}
	if noAddr == len(hosts) {
		what := fmt.Sprintf("no MX host of %s has an address", rt.domain)
		if rt.implicit {
			what = fmt.Sprintf("%s has neither MX nor address records", rt.domain)
		}
		j.failPending(local(true, "5.4.4", what))
	}
}

// viaSmarthost delivers through the configured relay.
func (j *job) viaSmarthost(ctx context.Context) {
	d := j.d
	sh := d.cfg.Smarthost
	host, portStr, _ := net.SplitHostPort(sh.Addr)
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 1 || port > 65535 {
		j.failAll(local(false, "4.3.5", fmt.Sprintf("smarthost %s: bad port", sh.Addr)))
		return
	}
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else if isLoopbackHost(host) {
		ips = []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()}
	} else {
		ips, _, err = d.dns.lookupIP(ctx, host)
		if err != nil {
			j.failAll(local(false, "4.4.3", fmt.Sprintf("looking up the smarthost %s: %v", host, err)))
			return
		}
	}
	pol := hostPolicy{name: host, smarthost: true}
	switch sh.TLS {
	case "implicit":
		pol.mode = tlsImplicit
	case "starttls":
		pol.mode = tlsStartTLS
	default:
		pol.mode = tlsNone
	}
	for _, ip := range ips {
		if ctx.Err() != nil || j.tryAddr(ctx, host, netip.AddrPortFrom(ip, uint16(port)), pol) {
			break
		}
	}
	if sh.Password != "" {
		// Our credentials never reach a result, whatever a server echoes.
		for i := range j.results {
			j.results[i].Text = strings.ReplaceAll(j.results[i].Text, sh.Password, "***")
		}
	}
}

// tryAddr delivers the pending recipients through one address; it reports
// whether a session got as far as the transaction. An opportunistic host
// whose TLS fails is tried again in clear text, as other MTAs do.
func (j *job) tryAddr(ctx context.Context, host string, addr netip.AddrPort, pol hostPolicy) bool {
	d := j.d
	s, e := d.connect(ctx, host, addr, pol, false)
	if e != nil && e.tlsFailed && !pol.tlsRequired() {
		d.log.Warn("delivery: TLS failed, trying again without TLS", "domain", j.m.Domain, "mx", host,
			"ip", addr.Addr().String(), "policy", pol.mode.String(), "err", e.res.Text)
		s, e = d.connect(ctx, host, addr, pol, true)
	}
	if e != nil {
		j.failPending(e.res)
		d.log.Info("delivery: no session", "domain", j.m.Domain, "mx", host, "ip", addr.Addr().String(),
			"policy", pol.mode.String(), "err", e.res.Diagnostic())
		return false
	}
	j.run(s, pol)
	return true
}

// run carries the pending recipients over an established session, then
// pools the session or closes it.
func (j *job) run(s *session, pol hostPolicy) {
	d := j.d
	pending := j.pending()
	defer func() {
		s.unbind()
		switch max := s.limit("MAILMAX"); {
		case s.broken:
			s.close()
		case max > 0 && s.mails >= max:
			s.quit()
		default:
			d.pool.put(s)
		}
		dl, df, bo := j.counts(pending)
		d.log.Info("delivery", "domain", j.m.Domain, "mx", s.host, "ip", s.addr.Addr().String(),
			"tls", s.tlsDesc(), "policy", pol.mode.String(), "delivered", dl, "deferred", df, "bounced", bo)
	}()
	if j.m.SMTPUTF8 && !s.has("SMTPUTF8") {
		j.failPending(Result{Permanent: true, Enhanced: "5.6.7", RemoteMTA: s.host,
			Text: fmt.Sprintf("the message needs SMTPUTF8 (RFC 6531), which %s does not offer", s.host)})
		return
	}
	if n, err := strconv.ParseInt(s.ext["SIZE"], 10, 64); err == nil && n > 0 && int64(len(j.m.Body)) > n {
		j.failPending(Result{Permanent: true, Enhanced: "5.3.4", RemoteMTA: s.host,
			Text: fmt.Sprintf("the message (%d bytes) is larger than %s accepts (SIZE %d)", len(j.m.Body), s.host, n)})
		return
	}
	max := s.limit("RCPTMAX")
	if max == 0 {
		// RFC 5321 §4.5.3.1.8: every server takes at least 100.
		max = 100
	}
	for start := 0; start < len(pending) && !s.broken; start += max {
		if mm := s.limit("MAILMAX"); mm > 0 && s.mails >= mm {
			break
		}
		s.transaction(j, pending[start:min(start+max, len(pending))])
	}
}

// sessErr is a failure to get a session ready for MAIL on one address.
type sessErr struct {
	res Result
	// tlsFailed: the TLS handshake failed, and the connection with it.
	tlsFailed bool
}

// connect returns a session on addr, ready for MAIL: a pooled one that
// answers RSET, or a new one through greeting, EHLO, STARTTLS and, for the
// smarthost, AUTH. plain skips STARTTLS (the fallback of opportunistic TLS).
func (d *Deliverer) connect(ctx context.Context, host string, addr netip.AddrPort, pol hostPolicy, plain bool) (*session, *sessErr) {
	key := addr.String() + " " + pol.label()
	for {
		s := d.pool.take(key)
		if s == nil {
			break
		}
		s.bind(ctx)
		if r, err := s.cmd(min(rsetTimeout, d.cfg.Timeouts.Command), "RSET"); err == nil && r.code/100 == 2 {
			d.log.Debug("delivery: reusing connection", "mx", host, "ip", addr.Addr().String())
			return s, nil
		}
		s.unbind()
		s.close()
	}
	ip := addr.Addr().String()
	dialer := net.Dialer{Timeout: d.cfg.Timeouts.Connect}
	c, err := dialer.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		return nil, &sessErr{res: local(false, "4.4.1", fmt.Sprintf("connecting to %s [%s]: %v", host, ip, err))}
	}
	s := newSession(d, c, host, addr, key)
	s.bind(ctx)
	fail := func(e *sessErr) (*session, *sessErr) {
		s.unbind()
		s.quit()
		return nil, e
	}
	lost := func(what string, err error) (*session, *sessErr) {
		return fail(&sessErr{res: Result{Enhanced: "4.4.2", RemoteMTA: host,
			Text: fmt.Sprintf("%s with %s [%s]: %v", what, host, ip, err)}})
	}
	// refused: a server's refusal before any transaction is no verdict on
	// the recipients, only on this server: the next one is tried, and the
	// last failure is temporary.
	refused := func(what string, r reply) (*session, *sessErr) {
		res := r.result(host)
		res.Delivered, res.Permanent = false, false
		if strings.HasPrefix(res.Enhanced, "5.") {
			res.Enhanced = "4" + res.Enhanced[1:]
		}
		res.Text = fmt.Sprintf("%s (in reply to %s)", r.text, what)
		if sh := d.cfg.Smarthost; pol.smarthost && sh.Password != "" {
			// Our credentials never reach a result or a log, whatever a
			// server echoes.
			res.Text = strings.ReplaceAll(res.Text, sh.Password, "***")
		}
		return fail(&sessErr{res: res})
	}
	tlsFailed := func(err error) (*session, *sessErr) {
		text := fmt.Sprintf("TLS with %s [%s] failed: %v", host, ip, err)
		if pol.tlsRequired() {
			text += "; " + pol.why() + " requires it"
		}
		return fail(&sessErr{res: Result{Enhanced: "4.7.5", RemoteMTA: host, Text: text}, tlsFailed: true})
	}
	if pol.mode == tlsImplicit {
		if err := s.handshake(d.tlsConfig(pol)); err != nil {
			return tlsFailed(err)
		}
	}
	g, err := s.readReply(d.cfg.Timeouts.Greeting)
	if err != nil {
		return lost("reading the greeting", err)
	}
	if g.code/100 != 2 {
		return refused("the greeting", g)
	}
	r, err := s.hello()
	if err != nil {
		return lost("EHLO", err)
	}
	if r.code/100 != 2 {
		return refused("EHLO", r)
	}
	if pol.mode != tlsNone && pol.mode != tlsImplicit && !plain {
		switch {
		case !s.has("STARTTLS") && pol.tlsRequired():
			return fail(&sessErr{res: Result{Enhanced: "4.7.4", RemoteMTA: host,
				Text: fmt.Sprintf("%s [%s] does not offer STARTTLS, which %s requires", host, ip, pol.why())}})
		case !s.has("STARTTLS"):
			if pol.mode == tlsSTSTesting {
				d.log.Warn("MTA-STS (testing): MX host offers no STARTTLS", "domain", pol.stsDomain, "mx", host, "ip", ip)
			}
		default:
			r, err := s.startTLS(d.tlsConfig(pol))
			switch {
			case err != nil:
				return tlsFailed(err)
			case r.code != 220 && (pol.tlsRequired() || s.broken):
				return refused("STARTTLS", r)
			case r.code != 220:
				d.log.Info("delivery: STARTTLS refused, going on without TLS", "mx", host, "ip", ip, "reply", r.String())
			default:
				if pol.mode == tlsSTSTesting {
					if err := d.verifyPKIX(s.tls, host); err != nil {
						d.log.Warn("MTA-STS (testing): the certificate would fail an enforced policy",
							"domain", pol.stsDomain, "mx", host, "ip", ip, "err", err)
					}
				}
				if r, err = s.hello(); err != nil {
					// TLS 1.3 servers refuse a handshake (e.g. for want of a
					// client certificate) after ours completed.
					return tlsFailed(err)
				}
				if r.code/100 != 2 {
					return refused("EHLO after STARTTLS", r)
				}
			}
		}
	}
	if sh := d.cfg.Smarthost; pol.smarthost && sh.Username != "" {
		if s.tls == nil && !addr.Addr().IsLoopback() {
			return fail(&sessErr{res: local(false, "4.7.0", "refusing to send the smarthost credentials without TLS")})
		}
		r, err := s.auth(sh.Username, sh.Password)
		switch {
		case err != nil && s.broken:
			return lost("AUTH", err)
		case err != nil:
			return fail(&sessErr{res: Result{Enhanced: "4.7.4", RemoteMTA: host, Text: err.Error()}})
		case r.code != 235:
			return refused("AUTH", r)
		}
	}
	return s, nil
}
