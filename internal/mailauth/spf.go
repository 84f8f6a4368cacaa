package mailauth

import (
	"context"
	"errors"
	"net"
	"strings"

	"blitiri.com.ar/go/spf"
)

// checkSPF evaluates the sender's SPF policy (RFC 7208 §2.4): the MAIL FROM
// domain, or with the null reverse-path the HELO name as postmaster@HELO.
// blitiri.com.ar/go/spf keeps the RFC's limits of 10 DNS lookups and 2 void
// lookups per evaluation (§4.6.4) and maps DNS errors to temperror.
func (c *Checker) checkSPF(ctx context.Context, in Input) SPFResult {
	sender := in.MailFrom
	r := SPFResult{}
	if sender == "" {
		r.Helo = true
		sender = "postmaster@" + in.Helo
	}
	at := strings.LastIndexByte(sender, '@')
	if at < 0 {
		return SPFResult{Result: None, Helo: r.Helo, Reason: "no domain to check"}
	}
	r.Domain = normalizeDomain(sender[at+1:])
	if !isDomainName(r.Domain) {
		r.Result, r.Reason = None, "not a domain name"
		return r
	}
	if !in.RemoteIP.IsValid() {
		r.Result, r.Reason = PermError, "no client address"
		return r
	}
	res, err := spf.CheckHostWithSender(net.IP(in.RemoteIP.Unmap().AsSlice()), normalizeDomain(in.Helo),
		sender[:at+1]+r.Domain, spf.WithContext(ctx), spf.WithResolver(c.res))
	r.Result = Value(res)
	switch {
	case res == spf.TempError, res == spf.PermError:
		r.Reason = errText(err)
	case res == spf.None && !errors.Is(err, spf.ErrNoResult):
		r.Reason = errText(err)
	}
	return r
}

// isDomainName reports whether s looks like a DNS name worth a lookup: at
// least two labels of 1-63 characters, no address literal.
func isDomainName(s string) bool {
	if len(s) > 253 || !strings.Contains(s, ".") || strings.HasPrefix(s, "[") {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 {
			return false
		}
	}
	return true
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
