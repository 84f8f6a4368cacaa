package acme_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/internal/acme"
	"github.com/postern/postern/internal/acme/acmetest"
	"github.com/postern/postern/internal/store/sqlstore"
	"github.com/postern/postern/internal/store/storetest"
)

// node is one server using a Manager: an HTTPS listener (TLS-ALPN-01), a
// plain HTTP one (HTTP-01), and the events certmagic reported.
type node struct {
	m          *acme.Manager
	https, web net.Listener

	mu     sync.Mutex
	events []string
	change chan struct{}
}

type nodeOptions struct {
	names      func() []string
	maybe      func(string) bool
	http, alpn bool // which challenges the node answers
	renewCheck time.Duration
	noStart    bool // the test calls start
}

func fixed(names ...string) func() []string { return func() []string { return names } }

func startNode(t *testing.T, p *acmetest.Pebble, db *sqlstore.DB, o nodeOptions) *node {
	t.Helper()
	n := &node{change: make(chan struct{}, 1)}
	m, err := acme.New(acme.Config{
		Email:      "postmaster@example.com",
		Directory:  p.Directory,
		Roots:      p.DirectoryRoots,
		Store:      db,
		Names:      func(context.Context) ([]string, error) { return o.names(), nil },
		Maybe:      o.maybe,
		RenewCheck: o.renewCheck,
		Log:        slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
		EventLogger: func(event string, data map[string]any) {
			if !strings.HasPrefix(event, "cert_") {
				return // one per handshake
			}
			n.mu.Lock()
			n.events = append(n.events, fmt.Sprintf("%s %v", event, data["identifier"]))
			n.mu.Unlock()
			select {
			case n.change <- struct{}{}:
			default:
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	n.m = m
	n.https, err = tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		GetCertificate: m.GetCertificate(nil),
		NextProtos:     []string{"echo", acme.ALPNProto},
	})
	if err != nil {
		t.Fatal(err)
	}
	n.web, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.https.Close(); n.web.Close() })
	go echo(n.https)
	go http.Serve(n.web, m.HTTPHandler(http.NotFoundHandler()))
	httpAddr, tlsAddr := "", ""
	if o.http {
		httpAddr = n.web.Addr().String()
	}
	if o.alpn {
		tlsAddr = n.https.Addr().String()
	}
	if err := m.Challenges(httpAddr, tlsAddr); err != nil {
		t.Fatal(err)
	}
	if !o.noStart {
		n.start(t)
	}
	return n
}

func (n *node) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := n.m.Start(ctx); err != nil {
		t.Fatal(err)
	}
}

// echo answers each line with the same line, over TLS: a connection that
// outlives a renewal shows it still works.
func echo(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			br := bufio.NewReader(c)
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					return
				}
				c.Write([]byte(line))
			}
		}()
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// count returns how many events were reported that start with prefix.
func (n *node) count(prefix string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := 0
	for _, e := range n.events {
		if strings.HasPrefix(e, prefix) {
			c++
		}
	}
	return c
}

// waitFor waits until cond holds, re-checking at each event; a minute
// without it fails the test (Pebble answers in well under a second).
func (n *node) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(time.Minute)
	for !cond() {
		select {
		case <-n.change:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			n.mu.Lock()
			defer n.mu.Unlock()
			t.Fatalf("no %s; events: %q", what, n.events)
		}
	}
}

// dial makes a verified TLS connection to ln naming name, trusting only
// Pebble's root.
func dial(t *testing.T, p *acmetest.Pebble, ln net.Listener, name string) *tls.Conn {
	t.Helper()
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{ServerName: name, RootCAs: p.Roots, NextProtos: []string{"echo"}})
	if err != nil {
		t.Fatalf("dial %s: %v", name, err)
	}
	return c
}

// waitCert dials until the handshake for name verifies: the event comes
// just before the certificate enters the cache.
func (n *node) waitCert(t *testing.T, p *acmetest.Pebble, ln net.Listener, name string) *tls.Conn {
	t.Helper()
	var c *tls.Conn
	n.waitFor(t, "certificate for "+name, func() bool {
		var err error
		c, err = tls.Dial("tcp", ln.Addr().String(), &tls.Config{ServerName: name, RootCAs: p.Roots, NextProtos: []string{"echo"}})
		return err == nil
	})
	return c
}

func leaf(c *tls.Conn) *x509.Certificate { return c.ConnectionState().PeerCertificates[0] }

func TestObtainTLSALPN(t *testing.T) {
	p := acmetest.Start(t, acmetest.Options{})
	p.Host(t, "mail.example.com")
	db := storetest.OpenSQLite(t)
	n := startNode(t, p, db, nodeOptions{names: fixed("mail.example.com"), alpn: true})
	p.TLSALPN01.To(n.https.Addr().String())
	c := n.waitCert(t, p, n.https, "mail.example.com")
	defer c.Close()
	if got := leaf(c).DNSNames; len(got) != 1 || got[0] != "mail.example.com" {
		t.Errorf("certificate names %q", got)
	}
	if missing, earliest := n.m.Status(); missing != 0 || !earliest.Equal(leaf(c).NotAfter) {
		t.Errorf("Status = %d missing, earliest %v; want 0 and %v", missing, earliest, leaf(c).NotAfter)
	}
	// Stored in the database, not in a folder: another process finds it.
	keys, err := db.ACMEKeys(context.Background(), "certificates")
	if err != nil || !containsSuffix(keys, "mail.example.com.crt") {
		t.Errorf("stored keys %q, %v", keys, err)
	}
}

func containsSuffix(list []string, suffix string) bool {
	for _, s := range list {
		if strings.HasSuffix(s, suffix) {
			return true
		}
	}
	return false
}

func TestObtainHTTP01AndNewNames(t *testing.T) {
	p := acmetest.Start(t, acmetest.Options{})
	p.Host(t, "mail.example.com", "autoconfig.example.org", "mta-sts.example.net")
	db := storetest.OpenPostgres(t)
	var mu sync.Mutex
	names := []string{"mail.example.com"}
	// Only HTTP-01: the TLS-ALPN port refuses.
	n := startNode(t, p, db, nodeOptions{
		names: func() []string {
			mu.Lock()
			defer mu.Unlock()
			return append([]string(nil), names...)
		},
		maybe: func(name string) bool {
			return strings.HasPrefix(name, "autoconfig.") || strings.HasPrefix(name, "mta-sts.")
		},
		http: true,
	})
	p.HTTP01.To(n.web.Addr().String())
	n.waitCert(t, p, n.https, "mail.example.com").Close()

	// A name added after the last listing (a domain just added): the
	// handshakes naming it get no certificate of Pebble's until it is
	// obtained, and make the names be listed again well before the
	// 10-minute refresh.
	mu.Lock()
	names = append(names, "autoconfig.example.org")
	mu.Unlock()
	c := n.waitCert(t, p, n.https, "autoconfig.example.org")
	if err := leaf(c).VerifyHostname("autoconfig.example.org"); err != nil {
		t.Error(err)
	}
	c.Close()
	// A name the listing does not return gets no certificate (and no
	// order at the CA), however often it is asked for.
	for i := 0; i < 3; i++ {
		if c, err := tls.Dial("tcp", n.https.Addr().String(), &tls.Config{ServerName: "mta-sts.example.net", RootCAs: p.Roots}); err == nil {
			c.Close()
			t.Error("handshake for a name not listed verified")
		}
	}
	if got := n.count("cert_obtaining mta-sts.example.net"); got != 0 {
		t.Errorf("ordered a certificate for a name not listed (%d)", got)
	}
}

// TestRenewal: a short-lived certificate is renewed in the background; new
// handshakes get the new one and a connection opened before goes on.
func TestRenewal(t *testing.T) {
	p := acmetest.Start(t, acmetest.Options{Validity: 20})
	p.Host(t, "mail.example.com")
	db := storetest.OpenSQLite(t)
	n := startNode(t, p, db, nodeOptions{names: fixed("mail.example.com"), alpn: true, renewCheck: time.Second})
	p.TLSALPN01.To(n.https.Addr().String())
	before := n.waitCert(t, p, n.https, "mail.example.com")
	defer before.Close()
	first := leaf(before).SerialNumber
	var after *tls.Conn
	n.waitFor(t, "renewed certificate in a new handshake", func() bool {
		if after != nil {
			after.Close()
		}
		after = dial(t, p, n.https, "mail.example.com")
		return leaf(after).SerialNumber.Cmp(first) != 0
	})
	defer after.Close()
	for _, c := range []*tls.Conn{before, after} {
		if _, err := c.Write([]byte("still here\n")); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || line != "still here\n" {
			t.Fatalf("echo = %q, %v", line, err)
		}
	}
}

// TestSharedStore: two nodes on one database. The first orders the
// certificate; the CA's validation request reaches only the second, which
// answers it from the shared store; the second, started during the order,
// waits for the first's lease and serves the same certificate without an
// order of its own.
func TestSharedStore(t *testing.T) {
	for _, engine := range []struct {
		name string
		open func(testing.TB) *sqlstore.DB
	}{{"sqlite", storetest.OpenSQLite}, {"postgres", storetest.OpenPostgres}} {
		t.Run(engine.name, func(t *testing.T) {
			p := acmetest.Start(t, acmetest.Options{})
			p.Host(t, "mail.example.com")
			db := engine.open(t)
			opts := nodeOptions{names: fixed("mail.example.com"), http: true, noStart: true}
			a := startNode(t, p, db, opts)
			b := startNode(t, p, db, opts)
			p.HTTP01.To(b.web.Addr().String())
			a.start(t)
			a.waitFor(t, "order", func() bool { return a.count("cert_obtaining mail.example.com") > 0 })
			b.start(t)
			ca := a.waitCert(t, p, a.https, "mail.example.com")
			defer ca.Close()
			cb := b.waitCert(t, p, b.https, "mail.example.com")
			defer cb.Close()
			if leaf(ca).SerialNumber.Cmp(leaf(cb).SerialNumber) != 0 {
				t.Errorf("the nodes serve different certificates: %x and %x", leaf(ca).SerialNumber, leaf(cb).SerialNumber)
			}
			if got := b.count("cert_obtaining"); got != 0 {
				t.Errorf("the second node ordered too (%d)", got)
			}
		})
	}
}
