package imapserver

import (
	"bufio"
	"bytes"
	"compress/flate"
	"fmt"
	"net"
	"strings"
	"testing"
)

// deflateClient turns a logged-in client's connection into a COMPRESS=
// DEFLATE one (RFC 4978): raw DEFLATE both ways, a sync flush after each
// command.
func deflateClient(c *client) *flate.Writer {
	c.t.Helper()
	if c.r.Buffered() > 0 {
		c.t.Fatalf("%d octets after the COMPRESS reply", c.r.Buffered())
	}
	w, err := flate.NewWriter(c.c, flate.DefaultCompression)
	if err != nil {
		c.t.Fatal(err)
	}
	c.c = &deflateConn{Conn: c.c, w: w}
	c.r = bufio.NewReader(flate.NewReader(c.r))
	return w
}

type deflateConn struct {
	net.Conn
	w *flate.Writer
}

func (d *deflateConn) Write(p []byte) (int, error) {
	n, err := d.w.Write(p)
	if err == nil {
		err = d.w.Flush()
	}
	return n, err
}

func TestCompressDeflate(t *testing.T) {
	e := newEnv(t, envOptions{noTailer: true})
	c := dial(t, e.addr)

	// Before login: neither advertised nor accepted.
	if caps := c.ok("a0", "CAPABILITY"); contains(caps, "COMPRESS") {
		t.Fatalf("COMPRESS before login: %q", caps)
	}
	if out := c.cmd("a1", "COMPRESS DEFLATE"); out[0] != "a1 BAD [CLIENTBUG] This command is only valid in the authenticated state" {
		t.Fatalf("COMPRESS before login: %q", out)
	}
	c.login()
	if caps := c.ok("a2", "CAPABILITY"); !contains(caps, " COMPRESS=DEFLATE") {
		t.Fatalf("capabilities after login: %q", caps)
	}
	if out := c.cmd("a3", "COMPRESS GZIP"); len(out) != 1 || out[0] != "a3 BAD [CLIENTBUG] Unknown compression mechanism, only DEFLATE is supported" {
		t.Fatalf("COMPRESS GZIP: %q", out)
	}
	if out := c.cmd("a4", "COMPRESS DEFLATE"); len(out) != 1 || out[0] != "a4 OK DEFLATE active" {
		t.Fatalf("COMPRESS DEFLATE: %q", out)
	}
	deflateClient(c)

	// From here on every octet both ways is compressed.
	if out := c.cmd("b1", "COMPRESS DEFLATE"); len(out) != 1 || out[0] != "b1 NO [COMPRESSIONACTIVE] DEFLATE is already active" {
		t.Fatalf("second COMPRESS: %q", out)
	}
	if caps := c.ok("b2", "CAPABILITY"); contains(caps, "COMPRESS") {
		t.Fatalf("COMPRESS offered while active: %q", caps)
	}
	msg := bigMessage("deflate", 300<<10)
	uid := appendUIDOf(c, "b3", msg)
	c.ok("b4", "SELECT INBOX")
	if got := fetchBody(c, "b5", uid); got != msg {
		t.Fatalf("BODY[] differs: %d octets back for %d", len(got), len(msg))
	}
	idleCycle(c, "b6")
	out := c.cmd("b7", "LOGOUT")
	if strings.Join(out, "\n") != "* BYE Logging out\nb7 OK LOGOUT completed" {
		t.Fatalf("LOGOUT: %q", out)
	}
	if _, err := c.readLine(); err == nil {
		t.Fatal("connection open after LOGOUT")
	}
}

// A client may send compressed commands right behind COMPRESS, in the
// same packet: they are read as compressed, not lost.
func TestCompressPipelined(t *testing.T) {
	e := newEnv(t, envOptions{noTailer: true})
	c := dial(t, e.addr)
	c.login()
	var z bytes.Buffer
	w, _ := flate.NewWriter(&z, flate.BestCompression)
	for i := 0; i < 3; i++ {
		fmt.Fprintf(w, "p%d NOOP\r\n", i)
	}
	w.Flush()
	c.send("a1 COMPRESS DEFLATE\r\n" + z.String())
	if l := c.line(); l != "a1 OK DEFLATE active" {
		t.Fatalf("COMPRESS: %q", l)
	}
	c.r = bufio.NewReader(flate.NewReader(c.r))
	for i := 0; i < 3; i++ {
		if l := c.line(); l != fmt.Sprintf("p%d OK NOOP completed", i) {
			t.Fatalf("pipelined %d: %q", i, l)
		}
	}
}

// Config.NoCompress (postern serve --imap-compress off): COMPRESS=DEFLATE
// is not offered, after login either, and the command is refused; the
// connection goes on uncompressed.
func TestCompressOff(t *testing.T) {
	e := newEnv(t, envOptions{noTailer: true, noCompress: true})
	c := dial(t, e.addr)
	c.login()
	if caps := c.ok("a1", "CAPABILITY"); contains(caps, "COMPRESS") || !contains(caps, " IDLE") {
		t.Fatalf("capabilities after login: %q", caps)
	}
	if out := c.cmd("a2", "COMPRESS DEFLATE"); len(out) != 1 || !strings.HasPrefix(out[0], "a2 BAD ") {
		t.Fatalf("COMPRESS DEFLATE: %q", out)
	}
	c.ok("a3", "NOOP")
}
