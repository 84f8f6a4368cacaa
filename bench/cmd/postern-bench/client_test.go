package main

import (
	"bufio"
	"net"
	"strings"
	"testing"
)

// TestClientLines checks the benchmark client's reading of replies: a line
// longer than its 512-byte buffer keeps its start and does not run into the
// next, a tagged reply is found after untagged ones, and a tag is matched
// whole ("a" is not "ab").
func TestClientLines(t *testing.T) {
	srv, cli := net.Pipe()
	defer srv.Close()
	go func() {
		w := bufio.NewWriter(srv)
		w.WriteString("* CAPABILITY " + strings.Repeat("X-LONG ", 200) + "\r\n")
		w.WriteString("* OK hello\r\n")
		w.WriteString("ab NO not this one\r\n")
		w.WriteString("a OK done\r\n")
		w.WriteString("b NO refused\r\n")
		w.Flush()
		r := bufio.NewReader(srv)
		l, _ := r.ReadString('\n')
		w.WriteString("echo " + l)
		w.Flush()
	}()
	r := readers.Get().(*bufio.Reader)
	r.Reset(cli)
	c := &conn{c: cli, r: r}
	l, err := c.line()
	if err != nil || !strings.HasPrefix(l, "* CAPABILITY X-LONG X-LONG") || strings.ContainsAny(l, "\r\n") {
		t.Fatalf("long line: %q, %v", l, err)
	}
	if l, err := c.line(); err != nil || l != "* OK hello" {
		t.Fatalf("line after the long one: %q, %v", l, err)
	}
	if ok, err := c.tagged("a"); err != nil || !ok {
		t.Fatalf("tagged a: %v, %v", ok, err)
	}
	if ok, err := c.tagged("b"); err != nil || ok {
		t.Fatalf("tagged b: %v, %v (want a refusal)", ok, err)
	}
	if err := c.send("a LOGIN ", quote(`u"x\`), " ", quote("p")); err != nil {
		t.Fatal(err)
	}
	if l, err := c.line(); err != nil || l != `echo a LOGIN "u\"x\\" "p"` {
		t.Fatalf("sent: %q, %v", l, err)
	}
	c.close()
	if c.r != nil {
		t.Error("close kept the reader")
	}
}
