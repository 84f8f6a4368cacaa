package main

import (
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// TestBenchDNS asks the benchmark's DNS server what Postern's sender checks
// ask: example.org's SPF and DMARC records (over UDP and TCP), and an
// unknown name, which must be NXDOMAIN rather than an empty answer.
func TestBenchDNS(t *testing.T) {
	s, err := startDNS(benchZone)
	if err != nil {
		t.Fatal(err)
	}
	defer s.stop()
	for _, net := range []string{"udp", "tcp"} {
		c := &dns.Client{Net: net}
		for name, want := range map[string]string{"example.org.": "v=spf1 ip4:127.0.0.0/8 -all", "_dmarc.Example.org.": "v=DMARC1; p=none"} {
			m := new(dns.Msg)
			m.SetQuestion(name, dns.TypeTXT)
			r, _, err := c.Exchange(m, s.Addr)
			if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || !strings.Contains(r.Answer[0].String(), want) {
				t.Fatalf("%s TXT over %s: %v %v", name, net, r, err)
			}
		}
		m := new(dns.Msg)
		m.SetQuestion("sender0.example.net.", dns.TypeTXT)
		if r, _, err := c.Exchange(m, s.Addr); err != nil || r.Rcode != dns.RcodeNameError {
			t.Fatalf("unknown name over %s: %v %v", net, r, err)
		}
		m.SetQuestion("example.org.", dns.TypeMX)
		if r, _, err := c.Exchange(m, s.Addr); err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 {
			t.Fatalf("example.org MX over %s: %v %v", net, r, err)
		}
	}
}
