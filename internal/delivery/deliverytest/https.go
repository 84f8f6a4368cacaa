package deliverytest

import (
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"testing"
)

// MTASTS serves an MTA-STS policy at https://IP:443/.well-known/mta-sts.txt.
type MTASTS struct {
	mu      sync.Mutex
	policy  string
	fetches int
}

// StartMTASTS serves policy on ip:443 with cert until the test ends.
func StartMTASTS(t testing.TB, ip string, cert tls.Certificate, policy string) *MTASTS {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "443"))
	if err != nil {
		t.Fatalf("MTA-STS test server on %s:443: %v", ip, err)
	}
	p := &MTASTS{policy: policy}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/mta-sts.txt", func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.fetches++
		body := p.policy
		p.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte(body))
	})
	srv := &http.Server{Handler: mux, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}},
		// Clients refusing the certificate are what some tests are about.
		ErrorLog: log.New(io.Discard, "", 0)}
	go srv.Serve(tls.NewListener(l, srv.TLSConfig))
	t.Cleanup(func() { srv.Close() })
	return p
}

// Set replaces the policy served.
func (p *MTASTS) Set(policy string) {
	p.mu.Lock()
	p.policy = policy
	p.mu.Unlock()
}

// Fetches returns how many times the policy was fetched.
func (p *MTASTS) Fetches() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fetches
}
