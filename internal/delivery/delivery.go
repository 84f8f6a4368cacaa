// Package delivery is the SMTP client of an MTA: it delivers one message to
// the recipients of one remote domain, through the domain's MX hosts (RFC
// 5321 §5, null MX RFC 7505) with opportunistic STARTTLS, MTA-STS (RFC 8461)
// and DANE (RFC 7672), or through a smarthost. It reports one result per
// recipient; the queue that calls it decides about retries and bounces. It
// knows no store and no server of ours.
package delivery

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Message is one message for the recipients of one domain.
type Message struct {
	From     string   // envelope sender; "" is the null sender <> (DSNs)
	Rcpts    []string // every one in Domain
	Domain   string   // the recipients' domain
	Body     []byte   // the whole message, CRLF line ends
	SMTPUTF8 bool     // needs SMTPUTF8 (RFC 6531): a server without it fails each recipient with 5.6.7
	EightBit bool     // send BODY=8BITMIME when offered
}

// Result is the outcome for one recipient.
type Result struct {
	Rcpt      string
	Delivered bool
	// Permanent: a 5xx reply, or a verdict of ours that no retry changes
	// (null MX, no such domain, SMTPUTF8 or SIZE the server lacks): bounce.
	// Neither Delivered nor Permanent: retry later.
	Permanent bool
	Code      int    // the remote SMTP reply code; 0 when none (DNS, connect, TLS failure)
	Enhanced  string // RFC 3463 code, e.g. "5.1.1": the remote's, or ours for local failures ("4.4.1")
	Text      string // the remote reply text, or our own explanation
	RemoteMTA string // the host that answered (DSN Remote-MTA), "" when none did
}

// Diagnostic is the result as a DSN's Diagnostic-Code value without its
// type: the remote reply ("550 5.1.1 text"), or our explanation when no
// server replied.
func (r Result) Diagnostic() string {
	if r.Code == 0 {
		return r.Text
	}
	if r.Enhanced != "" {
		return fmt.Sprintf("%d %s %s", r.Code, r.Enhanced, r.Text)
	}
	return fmt.Sprintf("%d %s", r.Code, r.Text)
}

// Smarthost sends every message through one relay instead of the MX hosts.
type Smarthost struct {
	Addr string // host:port
	// TLS is "implicit" (TLS on connect, RFC 8314), "starttls" (mandatory
	// STARTTLS) or "none" (loopback only). The certificate is verified
	// against Config.RootCAs for the host name of Addr.
	TLS                string
	Username, Password string // AUTH PLAIN (or LOGIN), only over TLS or to loopback; "" for none
}

// Timeouts bound each step of a delivery (RFC 5321 §4.5.3.2); a zero field
// takes the default in its comment.
type Timeouts struct {
	Connect   time.Duration // the TCP connection to one address: 30 s
	Greeting  time.Duration // the 220 greeting: 5 min
	Command   time.Duration // EHLO, STARTTLS and the TLS handshake, AUTH, RSET, QUIT: 5 min
	Mail      time.Duration // MAIL FROM: 5 min
	Rcpt      time.Duration // each RCPT TO: 5 min
	DataInit  time.Duration // DATA's 354: 2 min
	DataBlock time.Duration // writing each block of the message: 3 min
	DataEnd   time.Duration // the reply to the final dot: 10 min
	Idle      time.Duration // how long a connection waits in the pool for the next message: 30 s
	Policy    time.Duration // fetching an MTA-STS policy over HTTPS: 30 s
	DNS       time.Duration // one DNS query: 5 s
}

// Config is the Deliverer's setting.
type Config struct {
	Hostname  string         // EHLO name, and how we recognise ourselves among a domain's MX hosts; default "localhost"
	Resolver  string         // DNS server IP:PORT; "" = the nameservers of /etc/resolv.conf
	Port      int            // SMTP port of MX hosts, default 25
	Smarthost *Smarthost     // non-nil: every message goes there instead of to MX hosts
	RootCAs   *x509.CertPool // for MTA-STS, its policy fetch and the smarthost; nil = system roots
	Timeouts  Timeouts
	// MaxConnsPerDomain caps concurrent deliveries to one destination
	// domain (default 4); Deliver waits for a slot, or for ctx.
	MaxConnsPerDomain int
	Log               *slog.Logger
}

// Validate reports a setting that can never work (a smarthost without TLS
// to a host that is not loopback, an unknown TLS mode, a bad resolver), so
// that the caller can refuse it at start. Deliver fails every recipient
// temporarily with the same explanation.
func (c Config) Validate() error {
	if strings.ContainsFunc(c.Hostname, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("host name %q: no spaces or control characters", c.Hostname)
	}
	if c.Resolver != "" {
		if _, err := parseServer(c.Resolver); err != nil {
			return err
		}
	}
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("delivery port %d is not 1-65535", c.Port)
	}
	if sh := c.Smarthost; sh != nil {
		host, port, err := net.SplitHostPort(sh.Addr)
		if err != nil || host == "" || port == "" {
			return fmt.Errorf("smarthost %q is not HOST:PORT", sh.Addr)
		}
		switch sh.TLS {
		case "implicit", "starttls":
		case "none":
			if !isLoopbackHost(host) {
				return fmt.Errorf("smarthost %s without TLS: allowed only to a loopback address (use starttls or implicit)", sh.Addr)
			}
		default:
			return fmt.Errorf("smarthost TLS %q: use starttls, implicit or none", sh.TLS)
		}
		if (sh.Username == "") != (sh.Password == "") {
			return errors.New("smarthost: give both the user name and the password, or neither")
		}
	}
	return nil
}

// isLoopbackHost: a loopback IP address or the name localhost, which this
// package resolves itself to loopback (never through DNS).
func isLoopbackHost(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// Deliverer delivers messages; it is safe for concurrent use.
type Deliverer struct {
	cfg    Config
	cfgErr error
	log    *slog.Logger
	dns    *resolver
	pool   *pool
	sts    *stsCache

	mu    sync.Mutex
	slots map[string]*slot
}

// slot counts one destination's deliveries under way.
type slot struct {
	sem   chan struct{}
	users int
}

// New returns a Deliverer for cfg. An invalid cfg (see Validate) makes every
// delivery fail temporarily with the reason.
func New(cfg Config) *Deliverer {
	t := &cfg.Timeouts
	def := func(p *time.Duration, v time.Duration) {
		if *p <= 0 {
			*p = v
		}
	}
	def(&t.Connect, 30*time.Second)
	def(&t.Greeting, 5*time.Minute)
	def(&t.Command, 5*time.Minute)
	def(&t.Mail, 5*time.Minute)
	def(&t.Rcpt, 5*time.Minute)
	def(&t.DataInit, 2*time.Minute)
	def(&t.DataBlock, 3*time.Minute)
	def(&t.DataEnd, 10*time.Minute)
	def(&t.Idle, 30*time.Second)
	def(&t.Policy, 30*time.Second)
	def(&t.DNS, 5*time.Second)
	if cfg.Port == 0 {
		cfg.Port = 25
	}
	if cfg.MaxConnsPerDomain <= 0 {
		cfg.MaxConnsPerDomain = 4
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "localhost"
	}
	d := &Deliverer{cfg: cfg, log: cfg.Log, slots: map[string]*slot{}}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.cfgErr = cfg.Validate()
	if d.cfgErr == nil {
		d.dns, d.cfgErr = newResolver(cfg.Resolver, t.DNS)
	}
	d.pool = newPool(t.Idle, cfg.MaxConnsPerDomain)
	d.sts = newSTSCache(d)
	return d
}

// Close closes the idle pooled connections; deliveries under way finish,
// and their connections are closed instead of pooled.
func (d *Deliverer) Close() error {
	d.pool.close()
	return nil
}

// Deliver delivers m to each of m.Rcpts and returns one Result per
// recipient, in the same order. It never returns early without a result: a
// canceled ctx gives temporary failures.
func (d *Deliverer) Deliver(ctx context.Context, m Message) []Result {
	j := &job{d: d, m: m, results: make([]Result, len(m.Rcpts))}
	for i, r := range m.Rcpts {
		j.results[i] = Result{Rcpt: r}
	}
	if len(m.Rcpts) == 0 {
		return j.results
	}
	if d.cfgErr != nil {
		j.failAll(local(false, "4.3.5", "delivery is misconfigured: "+d.cfgErr.Error()))
		return j.results
	}
	// An address that could smuggle a command into the session is refused
	// here, whatever the caller checked.
	if !safeAddr(m.From) {
		j.failAll(local(true, "5.1.7", fmt.Sprintf("the sender address %q cannot be sent in SMTP", m.From)))
		return j.results
	}
	for i, r := range m.Rcpts {
		if r == "" || !safeAddr(r) {
			j.set(i, local(true, "5.1.3", fmt.Sprintf("the recipient address %q cannot be sent in SMTP", r)))
		}
	}
	if len(j.pending()) == 0 {
		return j.results
	}
	domain := strings.ToLower(strings.TrimSuffix(m.Domain, "."))
	release, err := d.acquire(ctx, domain)
	if err != nil {
		j.failAll(local(false, "4.4.0", "delivery interrupted while waiting for a connection slot: "+err.Error()))
		return j.results
	}
	defer release()
	if d.cfg.Smarthost != nil {
		j.viaSmarthost(ctx)
	} else {
		j.direct(ctx, domain)
	}
	j.finish(ctx)
	return j.results
}

// safeAddr: no control character and no angle bracket, which would end
// the path of MAIL or RCPT.
func safeAddr(a string) bool {
	for _, c := range a {
		if c < 0x20 || c == 0x7f || c == '<' || c == '>' {
			return false
		}
	}
	return true
}

// acquire waits for one of the domain's MaxConnsPerDomain slots.
func (d *Deliverer) acquire(ctx context.Context, domain string) (func(), error) {
	d.mu.Lock()
	s := d.slots[domain]
	if s == nil {
		s = &slot{sem: make(chan struct{}, d.cfg.MaxConnsPerDomain)}
		d.slots[domain] = s
	}
	s.users++
	d.mu.Unlock()
	done := func() {
		d.mu.Lock()
		s.users--
		if s.users == 0 {
			delete(d.slots, domain)
		}
		d.mu.Unlock()
	}
	select {
	case s.sem <- struct{}{}:
		return func() { <-s.sem; done() }, nil
	case <-ctx.Done():
		done()
		return nil, ctx.Err()
	}
}
