package mailauth

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestDMARC(t *testing.T) {
	e := newEnv(t)
	keys(t)
	e.dns.Add(t,
		// Senders' SPF: the client is allowed for *.good.test, nobody else.
		`good.test. TXT "v=spf1 ip4:192.0.2.10 -all"`,
		`mail.good.test. TXT "v=spf1 ip4:192.0.2.10 -all"`,
		`evil.test. TXT "v=spf1 ip4:192.0.2.10 -all"`,
		`bank.test. TXT "v=spf1 -all"`,
		`_dmarc.bank.test. TXT "v=DMARC1; p=reject; rua=mailto:d@bank.test"`,
		`_dmarc.shop.test. TXT "v=DMARC1; p=quarantine"`,
		`shop.test. TXT "v=spf1 -all"`,
		`_dmarc.good.test. TXT "v=DMARC1; p=reject"`,
		`_dmarc.strict.test. TXT "v=DMARC1; p=reject; adkim=s; aspf=s"`,
		`strict.test. TXT "v=spf1 -all"`,
		`mail.strict.test. TXT "v=spf1 ip4:192.0.2.10 -all"`,
		`_dmarc.org.test. TXT "v=DMARC1; p=reject; sp=quarantine"`,
		`_dmarc.nosp.test. TXT "v=DMARC1; p=reject"`,
		`_dmarc.pct.test. TXT "v=DMARC1; p=reject; pct=0"`,
		`_dmarc.pctq.test. TXT "v=DMARC1; p=quarantine; pct=0"`,
		`_dmarc.half.test. TXT "v=DMARC1; p=reject; pct=50"`,
		`_dmarc.none.test. TXT "v=DMARC1; p=none"`,
		`_dmarc.bad.test. TXT "v=DMARC1; p=maybe"`,
		`_dmarc.two.test. TXT "v=DMARC1; p=reject"`, `_dmarc.two.test. TXT "v=DMARC1; p=none"`,
		`nodmarc.test. TXT "v=spf1 -all"`,
	)
	e.dns.TXT(t, "rsa._domainkey.bank.test", rsaRecord(t))
	e.dns.TXT(t, "rsa._domainkey.sub.bank.test", rsaRecord(t))
	e.dns.TXT(t, "rsa._domainkey.strict.test", rsaRecord(t))
	e.dns.TXT(t, "rsa._domainkey.mail.strict.test", rsaRecord(t))
	e.dns.TXT(t, "rsa._domainkey.evil.test", rsaRecord(t))
	e.dns.ServFail("_dmarc.flaky.test")
	e.dns.Add(t, `_dmarc.slowspf.test. TXT "v=DMARC1; p=reject"`)
	e.dns.ServFail("slowspf.test")
	e.dns.ServFail("evil-dns.test")
	e.dns.ServFail("down._domainkey.bank.test")
	e.dns.ServFail("down._domainkey.evil-dns.test")

	signedBy := func(from, d string) string {
		return sign(t, message(from), d, "rsa", rsaKey)
	}
	for _, tc := range []struct {
		name, mailFrom, msg string
		dmarc               Value
		policy              string
		disp                Disposition
	}{
		{"p=reject, spf fail, no dkim", "ceo@bank.test", message("ceo@bank.test"), Fail, "reject", Reject},
		{"p=reject, spf pass for another domain", "x@evil.test", message("ceo@bank.test"), Fail, "reject", Reject},
		{"p=reject, dkim by another domain", "x@evil.test", signedBy("ceo@bank.test", "evil.test"), Fail, "reject", Reject},
		{"p=quarantine", "x@shop.test", message("x@shop.test"), Fail, "quarantine", Quarantine},
		{"aligned dkim, spf fail", "ceo@bank.test", signedBy("ceo@bank.test", "bank.test"), Pass, "reject", Accept},
		{"relaxed dkim from a subdomain", "ceo@bank.test", signedBy("ceo@bank.test", "sub.bank.test"), Pass, "reject", Accept},
		{"relaxed spf from a subdomain", "b@mail.good.test", message("a@good.test"), Pass, "reject", Accept},
		{"strict spf from a subdomain", "b@mail.strict.test", message("a@strict.test"), Fail, "reject", Reject},
		{"strict dkim from a subdomain", "a@strict.test", signedBy("a@strict.test", "mail.strict.test"), Fail, "reject", Reject},
		{"strict dkim, same domain", "a@strict.test", signedBy("a@strict.test", "strict.test"), Pass, "reject", Accept},
		{"organizational domain, sp", "a@bank.test", message("a@news.org.test"), Fail, "quarantine", Quarantine},
		{"organizational domain, no sp", "a@bank.test", message("a@news.nosp.test"), Fail, "reject", Reject},
		{"record at the From domain: p, not sp", "a@bank.test", message("a@org.test"), Fail, "reject", Reject},
		{"pct=0 reject → quarantine", "a@bank.test", message("a@pct.test"), Fail, "reject", Quarantine},
		{"pct=0 quarantine → accept", "a@bank.test", message("a@pctq.test"), Fail, "quarantine", Accept},
		{"p=none", "a@bank.test", message("a@none.test"), Fail, "none", Accept},
		{"no record", "a@nodmarc.test", message("a@nodmarc.test"), None, "", Accept},
		{"invalid record", "a@bank.test", message("a@bad.test"), PermError, "", Accept},
		{"two records", "a@bank.test", message("a@two.test"), PermError, "", Accept},
		{"record lookup fails", "a@bank.test", message("a@flaky.test"), TempError, "", Accept},
		{"aligned spf temperror", "a@slowspf.test", message("a@slowspf.test"), TempError, "reject", Accept},
		{"aligned dkim temperror", "ceo@bank.test", sign(t, message("ceo@bank.test"), "bank.test", "down", rsaKey), TempError, "reject", Accept},
		{"unaligned dkim temperror", "ceo@bank.test", sign(t, message("ceo@bank.test"), "evil-dns.test", "down", rsaKey), Fail, "reject", Reject},
		{"unaligned spf temperror", "a@evil-dns.test", message("ceo@bank.test"), Fail, "reject", Reject},
		{"no From:", "a@bank.test", "To: b@example.net\r\n\r\nhi\r\n", PermError, "", Reject},
		{"two From: fields", "x@evil.test", "From: x@evil.test\r\n" + message("ceo@bank.test"), PermError, "", Reject},
		{"From: in two domains", "x@evil.test", message("x@evil.test, ceo@bank.test"), PermError, "", Reject},
		{"From: unreadable", "x@evil.test", message("<<<"), PermError, "", Reject},
		{"From: two addresses, one domain", "ceo@bank.test",
			signedBy("Ceo <ceo@bank.test>, =?x-unknown?q?Bo=FF?= <cfo@BANK.test>", "bank.test"), Pass, "reject", Accept},
	} {
		r := e.check(tc.mailFrom, tc.msg)
		if r.DMARC.Result != tc.dmarc || r.DMARC.Policy != tc.policy || r.Disposition != tc.disp {
			t.Errorf("%s: dmarc=%s policy %q disposition %s (%s; spf %+v dkim %+v), want %s %q %s",
				tc.name, r.DMARC.Result, r.DMARC.Policy, r.Disposition, r.DMARC.Reason, r.SPF, r.DKIM,
				tc.dmarc, tc.policy, tc.disp)
		}
		if (r.Disposition == Accept) != (r.Reason == "") {
			t.Errorf("%s: disposition %s with reason %q", tc.name, r.Disposition, r.Reason)
		}
	}

	// pct=50: the sample decides; below pct the policy applies.
	for sample, want := range map[int]Disposition{0: Reject, 49: Reject, 50: Quarantine, 99: Quarantine} {
		e.c.sample = func() int { return sample }
		if r := e.check("a@bank.test", message("a@half.test")); r.Disposition != want {
			t.Errorf("pct=50, sample %d: %s, want %s", sample, r.Disposition, want)
		}
	}
}

func TestHeader(t *testing.T) {
	e := newEnv(t)
	e.dns.Add(t, `bank.test. TXT "v=spf1 -all"`, `_dmarc.bank.test. TXT "v=DMARC1; p=reject"`)
	r := e.check("ceo@bank.test", message("Ceo <ceo@bank.test>"))
	want := "Authentication-Results: mx.postern.test;\r\n" +
		"\tspf=fail smtp.mailfrom=bank.test;\r\n" +
		"\tdkim=none;\r\n" +
		"\tdmarc=fail reason=\"p=reject, spf=fail (bank.test) and no aligned DKIM pass\" header.from=bank.test\r\n"
	if string(r.Header) != want {
		t.Errorf("header\n%q\nwant\n%q", r.Header, want)
	}
	if r.Reason != "DMARC policy of bank.test: p=reject, spf=fail (bank.test) and no aligned DKIM pass" {
		t.Errorf("reason %q", r.Reason)
	}
}

// Nothing from the message reaches the header unescaped.
func TestHeaderClean(t *testing.T) {
	c := New(Config{AuthServID: "mx.postern.test"})
	h := c.header(Result{SPF: SPFResult{Result: PermError, Domain: "a.test", Reason: "bad\r\nX-Injected: 1\\\" x"},
		DMARC: DMARCResult{Result: None, From: "é.test"}})
	if strings.Count(string(h), "\n") != 4 || strings.Contains(string(h), "\r\nX-Injected") {
		t.Errorf("header %q", h)
	}
}

// With a DNS server that never answers, Check still returns, with
// temperrors and no rejection.
func TestCheckDeadline(t *testing.T) {
	e := newEnv(t)
	e.c.timeout = 200 * time.Millisecond
	e.c.res.timeout = time.Hour
	for _, n := range []string{"bank.test", "_dmarc.bank.test", "rsa._domainkey.bank.test"} {
		e.dns.Drop(n)
	}
	keys(t)
	r := e.c.Check(context.Background(), Input{RemoteIP: client, MailFrom: "ceo@bank.test",
		Message: []byte(sign(t, message("ceo@bank.test"), "bank.test", "rsa", rsaKey))})
	if r.SPF.Result != TempError || len(r.DKIM) != 1 || r.DKIM[0].Result != TempError ||
		r.DMARC.Result != TempError || r.Disposition != Accept {
		t.Errorf("%+v", r)
	}
}

// recorder answers every lookup at once with a timeout error, noting the
// names asked and the deadlines they carried.
type recorder struct {
	mu        sync.Mutex
	names     []string
	deadlines []time.Time
}

func (r *recorder) note(ctx context.Context, name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.names = append(r.names, name)
	d, _ := ctx.Deadline()
	r.deadlines = append(r.deadlines, d)
	return &net.DNSError{Err: "timeout", Name: name, IsTimeout: true}
}

func (r *recorder) LookupTXT(ctx context.Context, name string) ([]string, error) {
	return nil, r.note(ctx, name)
}
func (r *recorder) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	return nil, r.note(ctx, name)
}
func (r *recorder) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	return nil, r.note(ctx, host)
}
func (r *recorder) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	return nil, r.note(ctx, addr)
}

// Every lookup carries the check's deadline, and asks a fully qualified
// name so that no search domain is appended to a name from a message.
func TestLookupsRootedAndBounded(t *testing.T) {
	rec := &recorder{}
	c := New(Config{Resolver: rec, AuthServID: "mx.postern.test", Timeout: time.Minute, LookupTimeout: time.Hour})
	keys(t)
	start := time.Now()
	r := c.Check(context.Background(), Input{RemoteIP: client, MailFrom: "ceo@bank.test",
		Message: []byte(sign(t, message("ceo@bank.test"), "bank.test", "rsa", rsaKey))})
	if r.SPF.Result != TempError || r.DKIM[0].Result != TempError || r.DMARC.Result != TempError {
		t.Errorf("%+v", r)
	}
	want := map[string]bool{"bank.test.": true, "rsa._domainkey.bank.test.": true, "_dmarc.bank.test.": true}
	if len(rec.names) != len(want) {
		t.Errorf("lookups %q", rec.names)
	}
	for i, n := range rec.names {
		if !want[n] {
			t.Errorf("lookup of %q", n)
		}
		if d := rec.deadlines[i]; d.IsZero() || d.After(start.Add(2*time.Minute)) {
			t.Errorf("lookup of %q with deadline %v, want the check's (about %v)", n, d, start.Add(time.Minute))
		}
	}
}
