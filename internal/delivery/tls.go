package delivery

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

// tlsMode is how a host's connection must be protected.
type tlsMode int

const (
	// STARTTLS when offered, any certificate (RFC 7435); clear text when
	// TLS fails, as every MTA does: refusing would deliver nothing.
	tlsOpportunistic tlsMode = iota
	// As opportunistic; what an enforced policy would have refused is logged.
	tlsSTSTesting
	// STARTTLS required, with a certificate valid for the MX host name.
	tlsSTSEnforce
	// STARTTLS required, with a certificate matching a TLSA record.
	tlsDANE
	// TLSA records exist but none is usable: STARTTLS required, the
	// certificate not checked (RFC 7672 §2.2).
	tlsDANENoAuth
	// Smarthost: TLS on connect, certificate verified.
	tlsImplicit
	// Smarthost: STARTTLS required, certificate verified.
	tlsStartTLS
	// Smarthost on loopback: no TLS.
	tlsNone
)

func (m tlsMode) String() string {
	return [...]string{"opportunistic", "mta-sts-testing", "mta-sts", "dane", "dane-unauthenticated",
		"implicit", "starttls", "none"}[m]
}

// hostPolicy is the TLS policy for one host.
type hostPolicy struct {
	mode      tlsMode
	name      string // SNI and the name a certificate must carry
	tlsa      []*dns.TLSA
	stsDomain string // the domain whose MTA-STS policy applies, for messages
	smarthost bool
}

// label is the policy's part of the pool key: a connection is reused only
// under the policy it was made for.
func (p hostPolicy) label() string { return p.mode.String() + ":" + p.name }

// tlsRequired: no delivery without TLS that passed the policy's checks.
func (p hostPolicy) tlsRequired() bool {
	switch p.mode {
	case tlsSTSEnforce, tlsDANE, tlsDANENoAuth, tlsImplicit, tlsStartTLS:
		return true
	}
	return false
}

// why names the policy that requires TLS, for failure texts.
func (p hostPolicy) why() string {
	switch p.mode {
	case tlsSTSEnforce:
		return fmt.Sprintf("the MTA-STS policy of %s (enforce)", p.stsDomain)
	case tlsDANE, tlsDANENoAuth:
		return fmt.Sprintf("DANE (TLSA records of %s)", p.name)
	default:
		return "the smarthost setting"
	}
}

// hostPolicy decides the TLS policy for host. DANE applies when the MX
// lookup, the host's addresses and its TLSA records were all DNSSEC
// validated (AD bit) and takes precedence over MTA-STS (RFC 8461 §2). A
// TLSA lookup that fails where DANE could apply makes the host unusable
// (RFC 7672 §2.2): an attacker could be hiding the records.
func (d *Deliverer) hostPolicy(ctx context.Context, host string, dnssec bool, sts *stsPolicy) (hostPolicy, *Result) {
	p := hostPolicy{mode: tlsOpportunistic, name: host}
	if dnssec {
		a, err := d.dns.query(ctx, fmt.Sprintf("_%d._tcp.%s", d.cfg.Port, host), dns.TypeTLSA)
		switch {
		case errors.Is(err, errNXDomain):
		case err != nil:
			r := local(false, "4.7.5", fmt.Sprintf("DANE: looking up the TLSA records of %s: %v", host, err))
			return p, &r
		case a.secure && len(a.rrs) > 0:
			for _, rr := range a.rrs {
				if t := rr.(*dns.TLSA); usableTLSA(t) {
					p.tlsa = append(p.tlsa, t)
				}
			}
			p.mode = tlsDANE
			if len(p.tlsa) == 0 {
				p.mode = tlsDANENoAuth
			}
			return p, nil
		}
	}
	if sts != nil {
		p.stsDomain = sts.domain
		switch sts.mode {
		case "enforce":
			p.mode = tlsSTSEnforce
		case "testing":
			p.mode = tlsSTSTesting
		}
	}
	return p, nil
}

// usableTLSA: DANE-TA(2) or DANE-EE(3), full certificate(0) or public
// key(1), exact(0), SHA2-256(1) or SHA2-512(2). PKIX-TA/EE (0, 1) are
// unusable for SMTP (RFC 7672 §3.1.3).
func usableTLSA(t *dns.TLSA) bool {
	return (t.Usage == 2 || t.Usage == 3) && t.Selector <= 1 && t.MatchingType <= 2
}

// tlsConfig is the client configuration for p.
func (d *Deliverer) tlsConfig(p hostPolicy) *tls.Config {
	c := &tls.Config{ServerName: p.name, RootCAs: d.cfg.RootCAs, MinVersion: tls.VersionTLS12}
	switch p.mode {
	case tlsOpportunistic, tlsSTSTesting:
		// Any TLS beats clear text, which is the alternative here.
		c.InsecureSkipVerify = true
		c.MinVersion = tls.VersionTLS10
	case tlsDANENoAuth:
		c.InsecureSkipVerify = true
	case tlsDANE:
		c.InsecureSkipVerify = true
		recs, name := p.tlsa, p.name
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			return verifyDANE(cs.PeerCertificates, recs, name)
		}
	}
	return c
}

// verifyDANE checks the server's chain against the TLSA records (RFC 7672
// §3.1, RFC 7671): DANE-EE matches the server's own certificate, whatever
// its names and dates; DANE-TA matches a certificate of the chain, which
// must then issue the server's certificate for name.
func verifyDANE(chain []*x509.Certificate, recs []*dns.TLSA, name string) error {
	if len(chain) == 0 {
		return errors.New("DANE: the server sent no certificate")
	}
	leaf := chain[0]
	for _, r := range recs {
		if r.Usage == 3 && tlsaMatches(r, leaf) {
			return nil
		}
	}
	for _, r := range recs {
		if r.Usage != 2 {
			continue
		}
		for _, ta := range chain[1:] {
			if !tlsaMatches(r, ta) {
				continue
			}
			roots := x509.NewCertPool()
			roots.AddCert(ta)
			inter := x509.NewCertPool()
			for _, c := range chain[1:] {
				inter.AddCert(c)
			}
			_, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: inter})
			if err == nil {
				return nil
			}
		}
	}
	return fmt.Errorf("DANE: no TLSA record of %s matches the server's certificate", name)
}

func tlsaMatches(r *dns.TLSA, c *x509.Certificate) bool {
	data := c.Raw
	if r.Selector == 1 {
		data = c.RawSubjectPublicKeyInfo
	}
	var got []byte
	switch r.MatchingType {
	case 0:
		got = data
	case 1:
		h := sha256.Sum256(data)
		got = h[:]
	case 2:
		h := sha512.Sum512(data)
		got = h[:]
	default:
		return false
	}
	want, err := hex.DecodeString(strings.TrimSpace(r.Certificate))
	return err == nil && len(want) > 0 && string(want) == string(got)
}

// verifyPKIX checks the chain as an enforced MTA-STS policy would: trusted
// roots and a certificate for name. For logging under mode testing.
func (d *Deliverer) verifyPKIX(cs *tls.ConnectionState, name string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{DNSName: name, Roots: d.cfg.RootCAs, Intermediates: inter})
	return err
}
