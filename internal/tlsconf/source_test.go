package tlsconf

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// pair is a generated certificate and key, in PEM, and the serial number.
type pair struct {
	cert, key []byte
	serial    *big.Int
}

func newPair(t *testing.T) pair {
	t.Helper()
	certPEM, keyPEM, err := generate(nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(certPEM)
	leaf, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return pair{certPEM, keyPEM, leaf.SerialNumber}
}

// install writes p to the files the way a renewal tool does: a new file
// renamed over the old one.
func (p pair) install(t *testing.T, certFile, keyFile string) {
	t.Helper()
	for path, data := range map[string][]byte{keyFile: p.key, certFile: p.cert} {
		if err := writeFileAtomic(path, data); err != nil {
			t.Fatal(err)
		}
	}
}

// files returns a FileSource over p, installed in a new folder, and its log.
func files(t *testing.T, p pair) (src *FileSource, certFile, keyFile string, log *syncBuffer) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	p.install(t, certFile, keyFile)
	log = &syncBuffer{}
	src, err := OpenFiles(certFile, keyFile, slog.New(slog.NewTextHandler(log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return src, certFile, keyFile, log
}

func servedSerial(t *testing.T, src Source) *big.Int {
	t.Helper()
	cert, err := src.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf.SerialNumber
}

func TestFileSourceCheckReloadsChangedFiles(t *testing.T) {
	a, b := newPair(t), newPair(t)
	src, cf, kf, log := files(t, a)
	if got := servedSerial(t, src); got.Cmp(a.serial) != 0 {
		t.Fatalf("serial %x, want %x", got, a.serial)
	}
	if read, err := src.Check(); read || err != nil {
		t.Errorf("Check on unchanged files = %v, %v; want no read", read, err)
	}
	b.install(t, cf, kf)
	if read, err := src.Check(); !read || err != nil {
		t.Errorf("Check after a renewal = %v, %v; want a read", read, err)
	}
	if got := servedSerial(t, src); got.Cmp(b.serial) != 0 {
		t.Errorf("after the renewal serial %x, want %x", got, b.serial)
	}
	if !strings.Contains(log.String(), "TLS certificate loaded") || !strings.Contains(log.String(), b.serial.Text(16)) {
		t.Errorf("reload not logged with the new serial:\n%s", log)
	}
	if read, _ := src.Check(); read {
		t.Error("Check read the files again although they had not changed since")
	}
}

// TestFileSourceCheckFollowsSymlinks: certbot and Kubernetes renew by
// pointing a symbolic link at new files.
func TestFileSourceCheckFollowsSymlinks(t *testing.T) {
	a, b := newPair(t), newPair(t)
	dir := t.TempDir()
	for name, p := range map[string]pair{"a": a, "b": b} {
		os.Mkdir(filepath.Join(dir, name), 0o700)
		p.install(t, filepath.Join(dir, name, "cert.pem"), filepath.Join(dir, name, "key.pem"))
	}
	link := filepath.Join(dir, "live")
	if err := os.Symlink("a", link); err != nil {
		t.Fatal(err)
	}
	src, err := OpenFiles(filepath.Join(link, "cert.pem"), filepath.Join(link, "key.pem"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "live.tmp")
	os.Symlink("b", tmp)
	if err := os.Rename(tmp, link); err != nil {
		t.Fatal(err)
	}
	if read, err := src.Check(); !read || err != nil {
		t.Errorf("Check after the link moved = %v, %v; want a read", read, err)
	}
	if got := servedSerial(t, src); got.Cmp(b.serial) != 0 {
		t.Errorf("serial %x, want %x", got, b.serial)
	}
}

func TestFileSourceReloadReadsUnchangedFiles(t *testing.T) {
	a, b := newPair(t), newPair(t)
	src, cf, kf, _ := files(t, a)
	// Written in place with the old modification time: Check cannot tell,
	// an explicit Reload (SIGHUP) must read anyway.
	fi, _ := os.Stat(cf)
	os.WriteFile(cf, b.cert, 0o600)
	os.WriteFile(kf, b.key, 0o600)
	os.Chtimes(cf, fi.ModTime(), fi.ModTime())
	if err := src.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := servedSerial(t, src); got.Cmp(b.serial) != 0 {
		t.Errorf("after Reload serial %x, want %x", got, b.serial)
	}
}

func TestFileSourceBrokenFilesKeepTheCertificate(t *testing.T) {
	a, b := newPair(t), newPair(t)
	src, cf, kf, log := files(t, a)

	// A certificate whose key has not been written yet.
	if err := writeFileAtomic(cf, b.cert); err != nil {
		t.Fatal(err)
	}
	if read, err := src.Check(); !read || err == nil {
		t.Errorf("Check with a mismatched pair = %v, %v; want a read and an error", read, err)
	}
	if got := servedSerial(t, src); got.Cmp(a.serial) != 0 {
		t.Errorf("mismatched pair: serial %x, want the previous %x", got, a.serial)
	}
	// Reported once, not at every poll.
	if read, _ := src.Check(); read {
		t.Error("a broken pair is read again at every poll")
	}

	// Garbage.
	writeFileAtomic(cf, []byte("not a certificate"))
	if err := src.Reload(); err == nil {
		t.Error("Reload of a garbage file: no error")
	}
	if got := servedSerial(t, src); got.Cmp(a.serial) != 0 {
		t.Errorf("garbage: serial %x, want the previous %x", got, a.serial)
	}
	// A missing file.
	os.Remove(kf)
	if read, err := src.Check(); !read || err == nil {
		t.Errorf("Check with the key gone = %v, %v; want a read and an error", read, err)
	}
	if got := servedSerial(t, src); got.Cmp(a.serial) != 0 {
		t.Errorf("missing key: serial %x, want the previous %x", got, a.serial)
	}

	out := log.String()
	if !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "previous one stays in use") {
		t.Errorf("failed reload not logged as an error:\n%s", out)
	}
	if strings.Contains(out, "PRIVATE KEY") || strings.Contains(out, string(a.key[40:80])) {
		t.Errorf("the log shows key material:\n%s", out)
	}

	// The pair made whole again is picked up.
	b.install(t, cf, kf)
	if read, err := src.Check(); !read || err != nil {
		t.Errorf("Check after the pair was fixed = %v, %v", read, err)
	}
	if got := servedSerial(t, src); got.Cmp(b.serial) != 0 {
		t.Errorf("fixed pair: serial %x, want %x", got, b.serial)
	}
}

func TestServerConfig(t *testing.T) {
	src, _, _, _ := files(t, newPair(t))
	cfg := ServerConfig(src, "h2", "http/1.1")
	if cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion = %x, want TLS 1.2", cfg.MinVersion)
	}
	if strings.Join(cfg.NextProtos, ",") != "h2,http/1.1" {
		t.Errorf("NextProtos = %q", cfg.NextProtos)
	}
	if len(ServerConfig(src).NextProtos) != 0 {
		t.Error("a mail listener's configuration offers ALPN protocols")
	}
}

// TestSwapKeepsOpenConnections: a connection made before a reload goes on
// working with the certificate it was made with, and the next handshake
// presents the new one.
func TestSwapKeepsOpenConnections(t *testing.T) {
	a, b := newPair(t), newPair(t)
	src, cf, kf, _ := files(t, a)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", ServerConfig(src))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	go func() { // an echo server, one line at a time
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					c.Write([]byte(line))
				}
			}()
		}
	}()
	dial := func() (*tls.Conn, *bufio.Reader) {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", ln.Addr().String(),
			&tls.Config{InsecureSkipVerify: true}) // the test checks the serial itself
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c, bufio.NewReader(c)
	}
	echo := func(c *tls.Conn, r *bufio.Reader, msg string) {
		t.Helper()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write([]byte(msg + "\n")); err != nil {
			t.Fatalf("write on the connection: %v", err)
		}
		got, err := r.ReadString('\n')
		if err != nil || got != msg+"\n" {
			t.Fatalf("echo = %q, %v; want %q", got, err, msg)
		}
	}
	peerSerial := func(c *tls.Conn) *big.Int { return c.ConnectionState().PeerCertificates[0].SerialNumber }

	old, oldR := dial()
	echo(old, oldR, "before")
	if got := peerSerial(old); got.Cmp(a.serial) != 0 {
		t.Fatalf("first handshake: serial %x, want %x", got, a.serial)
	}

	b.install(t, cf, kf)
	if err := src.Reload(); err != nil {
		t.Fatal(err)
	}

	echo(old, oldR, "across the swap")
	if got := peerSerial(old); got.Cmp(a.serial) != 0 {
		t.Errorf("the open connection's certificate changed: %x", got)
	}
	fresh, freshR := dial()
	echo(fresh, freshR, "after")
	if got := peerSerial(fresh); got.Cmp(b.serial) != 0 {
		t.Errorf("new handshake: serial %x, want the new %x", got, b.serial)
	}
	old.Close()
	fresh.Close()
	ln.Close()
}

// syncBuffer is a bytes.Buffer safe for a logger and a test at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestFileSourceWatch: the poll picks up a renewal by itself.
func TestFileSourceWatch(t *testing.T) {
	a, b := newPair(t), newPair(t)
	src, cf, kf, _ := files(t, a)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { src.Watch(stop, time.Millisecond); close(done) }()
	b.install(t, cf, kf)
	deadline := time.Now().Add(30 * time.Second)
	for servedSerial(t, src).Cmp(b.serial) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("Watch did not pick up the new pair")
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	<-done
}
