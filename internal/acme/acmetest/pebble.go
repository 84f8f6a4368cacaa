// Package acmetest runs Pebble, Let's Encrypt's test ACME server, in the
// test process on loopback: its directory over HTTPS, its validation
// authority resolving names with a dnstest server, and two forwarders that
// stand for the challenge ports 80 and 443 and pass the validation
// connections on to whichever listener the test names (the server under
// test binds its ports first, or several nodes take turns).
package acmetest

import (
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"

	"github.com/postern/postern/internal/dnstest"
)

// Pebble is a running test CA.
type Pebble struct {
	Directory string // the ACME directory URL
	// DirectoryRootFile is a PEM file with the certificate of the
	// directory's HTTPS server (self-signed), for --acme-ca-root.
	DirectoryRootFile string
	DirectoryRoots    *x509.CertPool
	// Roots trusts the certificates Pebble issues.
	Roots *x509.CertPool
	// RootPEMFile is a PEM file with Pebble's issuing root, for curl --cacert.
	RootPEMFile string
	DNS         *dnstest.Server

	HTTP01, TLSALPN01 *Forwarder // the challenge ports
	ca                *ca.CAImpl
}

var setEnv sync.Once

// Options changes Pebble's defaults.
type Options struct {
	// Validity is the issued certificates' lifetime in seconds; 0 for
	// Pebble's default (about five years).
	Validity uint64
}

// Start runs Pebble until the test ends. Names the test wants validated
// need A records on p.DNS (Host adds them).
func Start(t testing.TB, opt Options) *Pebble {
	t.Helper()
	setEnv.Do(func() {
		// No random sleeps before validation, no rejected nonces: fast
		// and the same on every run. Pebble reads them when built; set
		// for the whole process (t.Setenv would forbid parallel tests).
		os.Setenv("PEBBLE_VA_NOSLEEP", "1")
		os.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	})
	p := &Pebble{DNS: dnstest.Start(t)}
	p.HTTP01 = newForwarder(t)
	p.TLSALPN01 = newForwarder(t)
	logger := log.New(io.Discard, "pebble ", log.LstdFlags)
	if testing.Verbose() {
		logger.SetOutput(os.Stderr)
	}
	store := db.NewMemoryStore()
	p.ca = ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{
		"default": {Description: "test profile", ValidityPeriod: opt.Validity},
	})
	v := va.New(logger, p.HTTP01.Port(), p.TLSALPN01.Port(), false, p.DNS.Addr, store)
	w := wfe.New(logger, store, v, p.ca, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	srv := httptest.NewTLSServer(w.Handler())
	t.Cleanup(srv.Close)
	p.Directory = srv.URL + wfe.DirectoryPath

	dir := t.TempDir()
	p.DirectoryRoots = x509.NewCertPool()
	p.DirectoryRoots.AddCert(srv.Certificate())
	p.DirectoryRootFile = filepath.Join(dir, "pebble-directory.pem")
	writePEM(t, p.DirectoryRootFile, srv.Certificate().Raw)

	root := p.ca.GetRootCert(0)
	p.Roots = x509.NewCertPool()
	p.Roots.AddCert(root.Cert)
	p.RootPEMFile = filepath.Join(dir, "pebble-root.pem")
	writePEM(t, p.RootPEMFile, root.DER)
	return p
}

// Host makes names resolve to 127.0.0.1 for Pebble's validation.
func (p *Pebble) Host(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		p.DNS.Add(t, n+". A 127.0.0.1")
	}
}

func writePEM(t testing.TB, path string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Forwarder is a loopback TCP port that passes each connection on to its
// current target, untouched (TLS-ALPN-01 included).
type Forwarder struct {
	ln     net.Listener
	mu     sync.Mutex
	target string
}

func newForwarder(t testing.TB) *Forwarder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &Forwarder{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go f.serve()
	return f
}

// Port is the forwarder's port, Pebble's challenge port.
func (f *Forwarder) Port() int { return f.ln.Addr().(*net.TCPAddr).Port }

// To sets where connections go from now on ("" refuses them).
func (f *Forwarder) To(addr string) {
	f.mu.Lock()
	f.target = addr
	f.mu.Unlock()
}

func (f *Forwarder) serve() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		target := f.target
		f.mu.Unlock()
		go func() {
			defer c.Close()
			if target == "" {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				return
			}
			defer u.Close()
			done := make(chan struct{}, 2)
			go func() { io.Copy(u, c); u.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
			go func() { io.Copy(c, u); c.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
			<-done
			<-done
		}()
	}
}
