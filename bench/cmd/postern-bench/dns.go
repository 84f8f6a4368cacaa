package main

import (
	"net"
	"os/exec"
	"strings"

	"github.com/miekg/dns"
)

// The MX benchmark's DNS: Postern's MX listener checks SPF and DMARC (and
// DKIM signatures, which the load's messages do not carry) of every
// message, asking the server given by --dns-resolver. An MX on the Internet
// asks a resolver whose cache answers most of these from memory; this
// authoritative server on loopback plays that part, so that the benchmark
// measures Postern, not a resolver out of reach. It publishes what a
// well-kept sender domain does: example.org's SPF lets the senders'
// loopback addresses pass, its DMARC record asks for no action; any other
// name is NXDOMAIN.
var benchZone = []string{
	`example.org. 3600 IN TXT "v=spf1 ip4:127.0.0.0/8 -all"`,
	`_dmarc.example.org. 3600 IN TXT "v=DMARC1; p=none"`,
}

// dnsServer answers from a zone over UDP and TCP on one loopback port.
type dnsServer struct {
	Addr     string
	udp, tcp *dns.Server
}

// startDNS serves the records of zone (one per line, in zone-file syntax);
// a name with no record of the type asked has an empty answer, any other
// name is NXDOMAIN.
func startDNS(zone []string) (*dnsServer, error) {
	rrs := map[string][]dns.RR{}
	for _, z := range zone {
		rr, err := dns.NewRR(z)
		if err != nil {
			return nil, err
		}
		n := strings.ToLower(rr.Header().Name)
		rrs[n] = append(rrs[n], rr)
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		m.Authoritative = true
		if len(q.Question) == 1 {
			name := strings.ToLower(q.Question[0].Name)
			found, ok := rrs[name]
			if !ok {
				m.Rcode = dns.RcodeNameError
			}
			for _, rr := range found {
				if rr.Header().Rrtype == q.Question[0].Qtype {
					m.Answer = append(m.Answer, rr)
				}
			}
		}
		w.WriteMsg(m)
	})
	// UDP and TCP share the port: the kernel picks UDP's, TCP may find it taken.
	var err error
	for i := 0; i < 10; i++ {
		var pc net.PacketConn
		var ln net.Listener
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			return nil, err
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err != nil {
			pc.Close()
			continue
		}
		s := &dnsServer{Addr: pc.LocalAddr().String(),
			udp: &dns.Server{PacketConn: pc, Handler: h}, tcp: &dns.Server{Listener: ln, Handler: h}}
		started := make(chan struct{}, 2)
		s.udp.NotifyStartedFunc = func() { started <- struct{}{} }
		s.tcp.NotifyStartedFunc = func() { started <- struct{}{} }
		go s.udp.ActivateAndServe()
		go s.tcp.ActivateAndServe()
		<-started
		<-started
		return s, nil
	}
	return nil, err
}

func (s *dnsServer) stop() {
	s.udp.Shutdown()
	s.tcp.Shutdown()
}

// hasServeFlag reports whether postern serve of bin knows --name.
func hasServeFlag(bin, name string) bool {
	out, _ := exec.Command(bin, "serve", "--help").CombinedOutput()
	return strings.Contains(string(out), "-"+name+" ")
}
