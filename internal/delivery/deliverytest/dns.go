// Package deliverytest gives tests of mail delivery their peers on
// loopback: an authoritative DNS server that can mark answers as DNSSEC
// validated (the AD bit a validating resolver sets), SMTP servers that
// record what they receive, a test certificate authority, and an HTTPS
// server for MTA-STS policies.
package deliverytest

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// DNS answers for every name it was given records for, over UDP and TCP on
// the same loopback port. A name with no records of the asked type gets an
// empty answer; an unknown name NXDOMAIN; a name marked with ServFail gets
// SERVFAIL; a name marked with Drop gets no answer at all. Answers for names
// in a zone marked Secure carry the AD bit when the query asked for DNSSEC
// (the DO or AD bit), as from a validating resolver.
type DNS struct {
	// Addr is "127.0.0.1:PORT", the resolver setting.
	Addr string

	mu       sync.Mutex
	rrs      map[string][]dns.RR
	known    map[string]bool
	secure   []string
	insecure map[string]bool
	servfail map[string]bool
	drop     map[string]bool
	queries  map[string]int
}

// StartDNS runs a server until the test ends.
func StartDNS(t testing.TB) *DNS {
	t.Helper()
	s := &DNS{rrs: map[string][]dns.RR{}, known: map[string]bool{}, insecure: map[string]bool{}, servfail: map[string]bool{},
		drop: map[string]bool{}, queries: map[string]int{}}
	var udp net.PacketConn
	var tcp net.Listener
	// UDP and TCP must share a port, and the kernel picks the UDP one; a
	// TCP listener may already hold it, so try a few.
	for i := 0; ; i++ {
		var err error
		udp, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		tcp, err = net.Listen("tcp", udp.LocalAddr().String())
		if err == nil {
			break
		}
		udp.Close()
		if i == 10 {
			t.Fatal(err)
		}
	}
	s.Addr = udp.LocalAddr().String()
	h := dns.HandlerFunc(s.serve)
	started := make(chan struct{}, 2)
	up := func() { started <- struct{}{} }
	us := &dns.Server{PacketConn: udp, Handler: h, NotifyStartedFunc: up}
	ts := &dns.Server{Listener: tcp, Handler: h, NotifyStartedFunc: up}
	go us.ActivateAndServe()
	go ts.ActivateAndServe()
	// Shutdown refuses a server that has not started yet, which would then
	// run on after the test.
	<-started
	<-started
	t.Cleanup(func() {
		us.Shutdown()
		ts.Shutdown()
	})
	return s
}

// Add adds records in zone-file syntax, e.g. `example.org. MX 10 mx.example.org.`;
// a record without a TTL gets 60 s.
func (s *DNS) Add(t testing.TB, records ...string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, text := range records {
		rr, err := dns.NewRR(text)
		if err != nil {
			t.Fatalf("dns record %q: %v", text, err)
		}
		name := strings.ToLower(rr.Header().Name)
		s.rrs[name] = append(s.rrs[name], rr)
		s.known[name] = true
	}
}

// Set replaces the records of each given record's name and type with the
// given ones.
func (s *DNS) Set(t testing.TB, records ...string) {
	t.Helper()
	s.mu.Lock()
	for _, text := range records {
		rr, err := dns.NewRR(text)
		if err != nil {
			s.mu.Unlock()
			t.Fatalf("dns record %q: %v", text, err)
		}
		name := strings.ToLower(rr.Header().Name)
		var keep []dns.RR
		for _, old := range s.rrs[name] {
			if old.Header().Rrtype != rr.Header().Rrtype {
				keep = append(keep, old)
			}
		}
		s.rrs[name] = keep
	}
	s.mu.Unlock()
	s.Add(t, records...)
}

// Exists makes name exist without records (NODATA instead of NXDOMAIN).
func (s *DNS) Exists(name string) {
	s.mu.Lock()
	s.known[dns.Fqdn(strings.ToLower(name))] = true
	s.mu.Unlock()
}

// Secure marks zone and every name under it as DNSSEC validated.
func (s *DNS) Secure(zone string) {
	s.mu.Lock()
	s.secure = append(s.secure, dns.Fqdn(strings.ToLower(zone)))
	s.mu.Unlock()
}

// Insecure exempts name from Secure, as a name delegated to an unsigned
// zone.
func (s *DNS) Insecure(name string) {
	s.mu.Lock()
	s.insecure[dns.Fqdn(strings.ToLower(name))] = true
	s.mu.Unlock()
}

// ServFail makes queries for name fail with SERVFAIL.
func (s *DNS) ServFail(name string) {
	s.mu.Lock()
	s.servfail[dns.Fqdn(strings.ToLower(name))] = true
	s.mu.Unlock()
}

// Drop makes queries for name go unanswered, as from a server that is down.
func (s *DNS) Drop(name string) {
	s.mu.Lock()
	s.drop[dns.Fqdn(strings.ToLower(name))] = true
	s.mu.Unlock()
}

// Queries returns how many queries for name (any type) were received.
func (s *DNS) Queries(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[dns.Fqdn(strings.ToLower(name))]
}

func (s *DNS) serve(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	m.RecursionAvailable = true
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	s.mu.Lock()
	s.queries[name]++
	drop, servfail := s.drop[name], s.servfail[name]
	known := s.known[name]
	var answer []dns.RR
	for _, rr := range s.rrs[name] {
		if rr.Header().Rrtype == q.Qtype {
			c := dns.Copy(rr)
			c.Header().Name = q.Name
			answer = append(answer, c)
		}
	}
	secure := false
	for _, z := range s.secure {
		if name == z || strings.HasSuffix(name, "."+z) {
			secure = !s.insecure[name]
		}
	}
	s.mu.Unlock()
	opt := req.IsEdns0()
	wantsDNSSEC := req.AuthenticatedData || (opt != nil && opt.Do())
	switch {
	case drop:
		return
	case servfail:
		m.Rcode = dns.RcodeServerFailure
	case !known:
		m.Rcode = dns.RcodeNameError
		m.AuthenticatedData = secure && wantsDNSSEC
	default:
		m.Answer = answer
		m.AuthenticatedData = secure && wantsDNSSEC
	}
	size := dns.MinMsgSize
	if opt != nil {
		size = int(opt.UDPSize())
		m.SetEdns0(opt.UDPSize(), opt.Do())
	}
	if _, udp := w.LocalAddr().(*net.UDPAddr); udp {
		// Too big for UDP: the truncated answer sends the client to TCP.
		m.Truncate(size)
	}
	w.WriteMsg(m)
}
