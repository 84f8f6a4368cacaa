package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Source gives the certificate a TLS handshake presents. Every listener asks
// it at each handshake (tls.Config.GetCertificate), so a source that swaps
// its certificate changes what new connections see while connections already
// open keep the one they were made with. FileSource is one; another (ACME,
// or a source picking among several by hello.ServerName) plugs in the same
// way through ServerConfig.
type Source interface {
	GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error)
}

// ServerConfig returns the TLS configuration of listeners that present
// src's certificates: TLS 1.2 at least (RFC 8996) and nextProtos offered in
// ALPN. The mail listeners share one configuration with none; HTTPS builds
// its own with "h2", "http/1.1" (and "acme-tls/1" where ACME's TLS-ALPN-01
// answers on it): the certificate is the same because the source is.
func ServerConfig(src Source, nextProtos ...string) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: src.GetCertificate,
		NextProtos:     nextProtos,
	}
}

// PollInterval is how often FileSource.Watch looks at the files. A stat of
// two files every 30 s costs nothing, and a renewed certificate is usually
// installed days before the old one expires; SIGHUP (FileSource.Reload)
// is there for whoever wants it at once.
const PollInterval = 30 * time.Second

// FileSource serves a certificate and key read from PEM files and reads them
// again when they change (Check, Watch) or when asked (Reload). The pair in
// use is replaced only by one that parses and matches: a half-written or
// broken file keeps the previous certificate, and the error is logged.
type FileSource struct {
	certFile, keyFile string
	log               *slog.Logger

	cur atomic.Pointer[tls.Certificate] // what handshakes get; never nil after OpenFiles

	mu   sync.Mutex // one reload at a time; guards seen
	seen [2]os.FileInfo
}

// OpenFiles reads certFile and keyFile, which must hold a matching pair.
// Later reloads log to log (nil: slog.Default).
func OpenFiles(certFile, keyFile string, log *slog.Logger) (*FileSource, error) {
	if log == nil {
		log = slog.Default()
	}
	f := &FileSource{certFile: certFile, keyFile: keyFile, log: log}
	if _, err := f.load(); err != nil {
		return nil, err
	}
	return f, nil
}

// GetCertificate returns the current certificate.
func (f *FileSource) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return f.cur.Load(), nil
}

// Certificate returns the current certificate, its Leaf parsed.
func (f *FileSource) Certificate() *tls.Certificate { return f.cur.Load() }

// Reload reads the files now, changed or not. On error the previous
// certificate stays in use, and the error (which names the files, never
// their content) is returned and logged.
func (f *FileSource) Reload() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen = f.stat()
	return f.reloadLocked()
}

// Check reloads the files if either has changed since they were last read
// (another file, size or modification time: a renewal tool that swaps a
// symbolic link counts too). It reports whether it read them.
func (f *FileSource) Check() (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.stat()
	if sameFile(now[0], f.seen[0]) && sameFile(now[1], f.seen[1]) {
		return false, nil
	}
	// Remembered even if the reload fails, so a broken file is reported
	// once rather than at every poll; the next change is tried again.
	f.seen = now
	return true, f.reloadLocked()
}

// Watch calls Check every interval until stop is closed.
func (f *FileSource) Watch(stop <-chan struct{}, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			f.Check()
		}
	}
}

func (f *FileSource) reloadLocked() error {
	old := f.cur.Load()
	cert, err := f.readPair()
	if err != nil {
		f.log.Error("TLS certificate not reloaded; the previous one stays in use", "cert", f.certFile, "key", f.keyFile, "err", err)
		return err
	}
	f.cur.Store(cert)
	if old == nil || !old.Leaf.Equal(cert.Leaf) {
		f.logLoaded(cert)
	}
	return nil
}

// logLoaded says which certificate handshakes now get: an operator checks
// a renewal by its serial and expiry.
func (f *FileSource) logLoaded(cert *tls.Certificate) {
	f.log.Info("TLS certificate loaded", "cert", f.certFile, "subject", cert.Leaf.Subject.String(),
		"names", cert.Leaf.DNSNames, "serial", cert.Leaf.SerialNumber.Text(16), "not_after", cert.Leaf.NotAfter.UTC())
}

// load is the first read, at open: its error stops the start.
func (f *FileSource) load() (*tls.Certificate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen = f.stat()
	cert, err := f.readPair()
	if err != nil {
		return nil, err
	}
	f.cur.Store(cert)
	f.logLoaded(cert)
	return cert, nil
}

func (f *FileSource) readPair() (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate %s and key %s: %w", f.certFile, f.keyFile, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("parse TLS certificate %s: %w", f.certFile, err)
		}
	}
	return &cert, nil
}

func (f *FileSource) stat() [2]os.FileInfo {
	var out [2]os.FileInfo
	for i, p := range []string{f.certFile, f.keyFile} {
		out[i], _ = os.Stat(p) // a missing file is a change too; reading it reports the error
	}
	return out
}

func sameFile(a, b os.FileInfo) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// Open returns the certificate source of every listener. With certFile and
// keyFile it reads that pair (both must be given). Without them it uses a
// self-signed ECDSA P-256 certificate kept in dataDir/tls (cert.pem,
// key.pem), generated on first use for localhost, 127.0.0.1, ::1 and
// hostnames, and reused on later starts until it nears expiry. Either way
// the files are watched like any FileSource.
func Open(certFile, keyFile, dataDir string, hostnames []string, log *slog.Logger) (*FileSource, error) {
	switch {
	case certFile != "" && keyFile != "":
		return OpenFiles(certFile, keyFile, log)
	case certFile != "" || keyFile != "":
		return nil, errors.New("--tls-cert and --tls-key must be given together")
	}
	certFile, keyFile, err := selfSigned(selfSignedDir(dataDir), hostnames)
	if err != nil {
		return nil, err
	}
	return OpenFiles(certFile, keyFile, log)
}

// HSTS is the Strict-Transport-Security of HTTPS responses: a year, this
// host only. includeSubDomains would also bind every name under the web
// UI's host to HTTPS for a year, names Postern does not serve and cannot
// vouch for; whoever runs them all over HTTPS can add it at a proxy.
const HSTS = "max-age=31536000"
