// Package mailauth authenticates the senders of mail arriving from the
// Internet: SPF (RFC 7208) for the envelope, DKIM (RFC 6376, RFC 8463) for
// the signatures, and DMARC (RFC 7489) tying both to the From: domain. It
// builds the Authentication-Results field (RFC 8601) a receiver adds and
// says what to do with the message: deliver, quarantine (the Junk folder) or
// reject (550 5.7.1 at DATA).
//
// It knows nothing of SMTP servers: the MX listener hands it the client's
// address, the HELO name, the MAIL FROM address and the message as received,
// then strips Authentication-Results fields from outside (StripAuthResults)
// and prepends Result.Header. Check verifies the message as it arrived, so
// call it before stripping.
//
// Every DNS query goes through the configured Resolver, and one check is
// bounded: at most 10 SPF lookups with 2 void ones (the RFC's limits), at
// most MaxSignatures DKIM keys, two DMARC record lookups, each lookup its own
// timeout and the whole check a deadline. Running out of time is a
// temperror, and a temperror never makes a message rejected.
package mailauth

import (
	"context"
	"crypto/rand"
	"log/slog"
	"math/big"
	"net/netip"
	"sync"
	"time"
)

// Value is an RFC 8601 result value.
type Value string

// The result values the checks produce.
const (
	None      Value = "none"
	Neutral   Value = "neutral"
	Pass      Value = "pass"
	Fail      Value = "fail"
	SoftFail  Value = "softfail"
	TempError Value = "temperror"
	PermError Value = "permerror"
)

// Disposition is what the receiver does with the message.
type Disposition int

const (
	// Accept delivers the message normally.
	Accept Disposition = iota
	// Quarantine delivers it to the recipient's Junk folder.
	Quarantine
	// Reject refuses it at DATA with 550 5.7.1 and Result.Reason.
	Reject
)

func (d Disposition) String() string {
	switch d {
	case Quarantine:
		return "quarantine"
	case Reject:
		return "reject"
	}
	return "accept"
}

// Limits and defaults.
const (
	// MaxSignatures is how many DKIM signatures of one message are
	// verified; the rest are ignored, so a message with a thousand
	// signatures costs at most this many key lookups.
	MaxSignatures = 5
	// DefaultTimeout bounds a whole check.
	DefaultTimeout = 15 * time.Second
	// DefaultLookupTimeout bounds one DNS lookup.
	DefaultLookupTimeout = 5 * time.Second
)

// Config configures a Checker. Only AuthServID is required.
type Config struct {
	// Resolver answers every DNS query; nil means the system's resolver.
	// ParseResolver makes one for --dns-resolver.
	Resolver Resolver
	// AuthServID names this server in Authentication-Results (its host
	// name).
	AuthServID string
	// Log receives one debug line per check; nil discards.
	Log *slog.Logger
	// Timeout bounds a whole check (DefaultTimeout if zero) and
	// LookupTimeout one DNS lookup (DefaultLookupTimeout if zero).
	Timeout, LookupTimeout time.Duration
}

// Checker runs the checks. It is safe for concurrent use.
type Checker struct {
	res     rooted
	id      string
	log     *slog.Logger
	timeout time.Duration
	// sample returns an integer in [0, 100) for DMARC's pct; tests
	// replace it.
	sample func() int
}

// New returns a Checker.
func New(cfg Config) *Checker {
	c := &Checker{
		res:     rooted{r: cfg.Resolver, timeout: cfg.LookupTimeout},
		id:      cfg.AuthServID,
		log:     cfg.Log,
		timeout: cfg.Timeout,
		sample:  samplePct,
	}
	if c.res.r == nil {
		c.res.r = defaultResolver()
	}
	if c.res.timeout <= 0 {
		c.res.timeout = DefaultLookupTimeout
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c
}

// Input is what the MX listener knows of one message.
type Input struct {
	// RemoteIP is the SMTP client's address.
	RemoteIP netip.Addr
	// Helo is the name given in HELO/EHLO.
	Helo string
	// MailFrom is the MAIL FROM address without angle brackets; "" for
	// the null reverse-path <>, in which case SPF checks the HELO name.
	MailFrom string
	// Message is the message as received, header and body, CRLF lines.
	Message []byte
}

// SPFResult is the outcome of the SPF check.
type SPFResult struct {
	Result Value
	// Domain is the domain checked: the MAIL FROM domain, or the HELO
	// name when MAIL FROM is <>.
	Domain string
	// Helo is true when the HELO identity was checked.
	Helo   bool
	Reason string
}

// DKIMResult is the outcome of one DKIM signature.
type DKIMResult struct {
	Result           Value
	Domain, Selector string // d= and s=
	Identifier       string // i=
	SignaturePrefix  string // the start of b=, to tell signatures apart
	Reason           string
}

// DMARCResult is the outcome of the DMARC evaluation.
type DMARCResult struct {
	Result Value
	// From is the RFC5322.From domain; Policy the policy that applied
	// ("none", "quarantine", "reject"; "" without a record).
	From, Policy string
	Reason       string
}

// Result is everything a check found.
type Result struct {
	SPF   SPFResult
	DKIM  []DKIMResult // at most MaxSignatures
	DMARC DMARCResult
	// Header is the Authentication-Results field to prepend, folded,
	// ending in CRLF.
	Header      []byte
	Disposition Disposition
	// Reason says why the disposition is not Accept, for logs and the
	// 550 reply text (one line, printable); "" when it is.
	Reason string
}

// Check authenticates one message. It returns within the configured
// timeout (or ctx's deadline, if sooner) whatever DNS does.
func (c *Checker) Check(ctx context.Context, in Input) Result {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	from, fromErr := fromDomain(in.Message)
	var r Result
	var pol policyLookup
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); r.SPF = c.checkSPF(ctx, in) }()
	go func() { defer wg.Done(); r.DKIM = c.checkDKIM(ctx, in.Message) }()
	if fromErr == nil {
		pol = c.lookupPolicy(ctx, from)
	}
	wg.Wait()

	r.DMARC, r.Disposition, r.Reason = c.evaluate(from, fromErr, pol, r.SPF, r.DKIM)
	// The reason goes into a one-line SMTP reply.
	r.Reason = clean(r.Reason)
	r.Header = c.header(r)
	c.log.Debug("mail authentication", "ip", in.RemoteIP.String(), "spf", string(r.SPF.Result),
		"spf_domain", r.SPF.Domain, "dkim", len(r.DKIM), "dmarc", string(r.DMARC.Result),
		"from_domain", r.DMARC.From, "disposition", r.Disposition.String(), "reason", r.Reason)
	return r
}

// samplePct draws DMARC's pct sample, 0 to 99, from crypto/rand as every
// random number in Postern is (one rule, checked by a test).
func samplePct() int {
	n, err := rand.Int(rand.Reader, big.NewInt(100))
	if err != nil {
		return 0
	}
	return int(n.Int64())
}
