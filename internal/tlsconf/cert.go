package tlsconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// selfSignedValidity is how long a generated certificate lasts. 825 days is
// the longest lifetime Apple platforms accept for a server certificate, so a
// user who chooses to trust the self-signed certificate is not refused later.
const selfSignedValidity = 825 * 24 * time.Hour

// renewBefore: a generated certificate this close to expiry is replaced at start.
const renewBefore = 30 * 24 * time.Hour

// Load returns a TLS configuration presenting the certificate Open finds,
// for callers that need no reload (tests, tools): see Open and ServerConfig.
func Load(certFile, keyFile, dataDir string, hostnames []string) (*tls.Config, error) {
	src, err := Open(certFile, keyFile, dataDir, hostnames, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	return ServerConfig(src), nil
}

// selfSignedDir is where the generated certificate of a data folder lives.
func selfSignedDir(dataDir string) string { return filepath.Join(dataDir, "tls") }

// selfSigned returns the paths of dir/cert.pem and dir/key.pem, generating
// them when they are missing or about to expire.
func selfSigned(dir string, hostnames []string) (certPath, keyPath string, err error) {
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err == nil {
		leaf := cert.Leaf
		if leaf == nil {
			leaf, err = x509.ParseCertificate(cert.Certificate[0])
		}
		if err == nil && time.Until(leaf.NotAfter) > renewBefore {
			return certPath, keyPath, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", "", fmt.Errorf("load the self-signed certificate in %s (delete the folder to generate a new one): %w", dir, err)
	}
	certPEM, keyPEM, err := generate(hostnames, time.Now())
	if err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("create %s: %w", dir, err)
	}
	// The key is written first: a process that crashes in between leaves a
	// pair that fails to load, and the error above says what to do.
	if err := writeFileAtomic(keyPath, keyPEM); err != nil {
		return "", "", err
	}
	if err := writeFileAtomic(certPath, certPEM); err != nil {
		return "", "", err
	}
	return certPath, keyPath, nil
}

// generate returns a PEM certificate and PKCS #8 key for a new self-signed
// ECDSA P-256 certificate valid for the loopback names and hostnames.
func generate(hostnames []string, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate TLS key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("generate serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"Postern self-signed"}, CommonName: "localhost"},
		NotBefore:             now.Add(-time.Hour), // tolerate clients whose clock is a little behind
		NotAfter:              now.Add(selfSignedValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	seen := map[string]bool{"localhost": true, "127.0.0.1": true, "::1": true}
	for _, h := range hostnames {
		h = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(h), "."))
		if h == "" || seen[h] {
			continue
		}
		seen[h] = true
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create certificate: %w", err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encode TLS key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), nil
}

// writeFileAtomic writes data to path with mode 0600 through a temporary file
// and a rename, so a reader never sees half a file.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o600)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
