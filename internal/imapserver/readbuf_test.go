package imapserver

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
)

// TestReadLineBuffer: the guard's read buffer starts small, grows for a long
// line (fed one byte at a time or all at once), and is dropped once that
// line is consumed, so an idle connection holds no more than idleReadBuf.
func TestReadLineBuffer(t *testing.T) {
	srv := New(Config{})
	defer srv.Close()
	client, server := net.Pipe()
	defer client.Close()
	st := newConnState(srv, server)
	long := "a1 LOGIN " + strings.Repeat("x", 6000) + " pw\r\n"
	lines := []string{"a0 NOOP\r\n", long, "a2 NOOP\r\n", long, "DONE\r\n"}
	go func() {
		for i, l := range lines {
			if i == 1 {
				for k := 0; k < len(l); k++ { // one byte at a time
					client.Write([]byte{l[k]})
				}
				continue
			}
			client.Write([]byte(l))
		}
	}()
	for i, want := range lines {
		got, err := st.readLine()
		if err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if !bytes.Equal(got, []byte(want)) {
			t.Fatalf("line %d: got %d bytes %.20q, want %d bytes", i, len(got), got, len(want))
		}
		if want == long && cap(st.rbuf) < len(long) {
			t.Errorf("line %d: buffer of %d for a %d-byte line", i, cap(st.rbuf), len(long))
		}
		if want != long && cap(st.rbuf) > idleReadBuf {
			t.Errorf("after short line %d the buffer holds %d bytes, want at most %d", i, cap(st.rbuf), idleReadBuf)
		}
	}
	// A line over maxLine is still refused (the BYE that follows is read
	// and discarded: net.Pipe does not buffer).
	go io.Copy(io.Discard, client)
	go client.Write([]byte(strings.Repeat("y", maxLine+10)))
	if _, err := st.readLine(); err == nil {
		t.Error("a line over maxLine was accepted")
	}
}
