package tlsconf

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadSelfSignedGeneratedOnceAndReused(t *testing.T) {
	dir := t.TempDir()
	cfg, err := Load("", "", dir, []string{"mail.example.com", "192.0.2.7", ""})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion = %x, want TLS 1.2", cfg.MinVersion)
	}
	leaf, err := x509.ParseCertificate(servedDER(t, cfg))
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("key is %T, want ECDSA P-256", leaf.PublicKey)
	}
	for _, host := range []string{"localhost", "127.0.0.1", "::1", "mail.example.com", "192.0.2.7"} {
		if err := leaf.VerifyHostname(host); err != nil {
			t.Errorf("certificate not valid for %s: %v", host, err)
		}
	}
	for _, name := range []string{"cert.pem", "key.pem"} {
		fi, err := os.Stat(filepath.Join(dir, "tls", name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", name, fi.Mode().Perm())
		}
	}

	// A second start reuses the same certificate.
	cfg2, err := Load("", "", dir, []string{"mail.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(servedDER(t, cfg2), servedDER(t, cfg)) {
		t.Error("certificate regenerated on the second start")
	}
}

func TestLoadRenewsExpiringCertificate(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM, err := generate(nil, time.Now().Add(-selfSignedValidity+24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "tls"), 0o700)
	os.WriteFile(filepath.Join(dir, "tls", "cert.pem"), certPEM, 0o600)
	os.WriteFile(filepath.Join(dir, "tls", "key.pem"), keyPEM, 0o600)
	cfg, err := Load("", "", dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(servedDER(t, cfg))
	if time.Until(leaf.NotAfter) < 800*24*time.Hour {
		t.Errorf("expiring certificate kept: NotAfter %v", leaf.NotAfter)
	}
}

func TestLoadConfiguredPair(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM, err := generate([]string{"imap.example.org"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cf, kf := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	os.WriteFile(cf, certPEM, 0o600)
	os.WriteFile(kf, keyPEM, 0o600)
	data := filepath.Join(dir, "data")
	cfg, err := Load(cf, kf, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(servedDER(t, cfg))
	if leaf.VerifyHostname("imap.example.org") != nil {
		t.Error("configured certificate not used")
	}
	if _, err := os.Stat(filepath.Join(data, "tls")); !os.IsNotExist(err) {
		t.Error("a self-signed certificate was generated although a pair was configured")
	}

	if _, err := Load(cf, "", data, nil); err == nil || !strings.Contains(err.Error(), "together") {
		t.Errorf("cert without key: err = %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.pem"), kf, data, nil); err == nil {
		t.Error("missing certificate file accepted")
	}
}

func TestLoadBrokenPairIsAnError(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "tls"), 0o700)
	os.WriteFile(filepath.Join(dir, "tls", "cert.pem"), []byte("garbage"), 0o600)
	os.WriteFile(filepath.Join(dir, "tls", "key.pem"), []byte("garbage"), 0o600)
	if _, err := Load("", "", dir, nil); err == nil || !strings.Contains(err.Error(), "delete the folder") {
		t.Errorf("err = %v, want a hint to delete the folder", err)
	}
}

// TestHandshake checks the configuration against a real client over a socket:
// TLS 1.2+ works, TLS 1.1 is refused (RFC 8996).
func TestHandshake(t *testing.T) {
	cfg, err := Load("", "", t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				c.(*tls.Conn).Handshake()
				c.Close()
			}()
		}
	}()
	pool := x509.NewCertPool()
	leaf, _ := x509.ParseCertificate(servedDER(t, cfg))
	pool.AddCert(leaf)
	dial := func(max uint16) error {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", ln.Addr().String(),
			&tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS10, MaxVersion: max})
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial(0); err != nil {
		t.Errorf("TLS handshake: %v", err)
	}
	if err := dial(tls.VersionTLS11); err == nil {
		t.Error("TLS 1.1 accepted")
	} else if !strings.Contains(err.Error(), "protocol version") {
		t.Errorf("TLS 1.1 refused for another reason: %v", err)
	}
}

// servedDER is the leaf certificate a handshake on cfg presents.
func servedDER(t *testing.T, cfg *tls.Config) []byte {
	t.Helper()
	cert, err := cfg.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil || cert == nil {
		t.Fatalf("GetCertificate: %v, %v", cert, err)
	}
	return cert.Certificate[0]
}
