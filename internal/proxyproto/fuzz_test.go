package proxyproto

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/netip"
	"testing"
)

// readAll runs Read over b and returns the header, the error and the bytes
// left for the protocol.
func readAll(b []byte) (Header, error, []byte) {
	br := bufio.NewReaderSize(bytes.NewReader(b), 16)
	h, err := Read(br)
	rest, _ := io.ReadAll(br)
	return h, err, rest
}

// checkParsed holds for every header a parser accepts: it is well formed,
// and writing it again and reading that gives the same header.
func checkParsed(t *testing.T, h Header) {
	t.Helper()
	if h.Local {
		if h.Source.IsValid() || h.Destination.IsValid() {
			t.Fatalf("local header with addresses: %+v", h)
		}
		return
	}
	if !h.Source.IsValid() || !h.Destination.IsValid() || h.Source.Addr().Is4() != h.Destination.Addr().Is4() {
		t.Fatalf("accepted header with bad addresses: %+v", h)
	}
	for _, enc := range [][]byte{h.AppendV1(nil), h.AppendV2(nil)} {
		h2, err, rest := readAll(append(enc, "x"...))
		if err != nil || string(rest) != "x" {
			t.Fatalf("re-reading %q: %v, rest %q", enc, err, rest)
		}
		h2.Version = h.Version
		if h2 != h {
			t.Fatalf("round trip %+v -> %q -> %+v", h, enc, h2)
		}
	}
}

func FuzzV1(f *testing.F) {
	for _, s := range []string{
		"PROXY TCP4 192.0.2.1 198.51.100.2 56324 143\r\n",
		"PROXY TCP6 2001:db8::1 2001:db8::2 4000 993\r\nA1 LOGIN",
		"PROXY UNKNOWN\r\n",
		"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 056324 143\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 65536 1\r\n",
		"PROXY TCP4 ::1 5.6.7.8 1 1\r\n",
		"PROXY TCP4 1.2.3.4  5.6.7.8 1 1\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 1\n",
		"PROXY TCP6 fe80::1%eth0 fe80::2 1 2\r\n",
		"PROXY " + string(bytes.Repeat([]byte("9"), 200)) + "\r\n",
		"PROXYTCP4",
		"a1 LOGIN x y\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err, rest := readAll(b)
		if err != nil {
			if errors.Is(err, ErrNoHeader) && bytes.HasPrefix(b, v1Prefix) {
				t.Fatalf("ErrNoHeader for %q", b)
			}
			return
		}
		if h.Version != 1 && h.Version != 2 {
			t.Fatalf("version %d", h.Version)
		}
		consumed := b[:len(b)-len(rest)]
		if h.Version == 1 {
			if len(consumed) > v1MaxLen || !bytes.HasSuffix(consumed, []byte("\r\n")) || bytes.Count(consumed, []byte("\n")) != 1 {
				t.Fatalf("v1 header %q consumed %q", b, consumed)
			}
			if h2, err := ParseV1(consumed); err != nil || h2 != h {
				t.Fatalf("ParseV1(%q) = %+v, %v; Read gave %+v", consumed, h2, err, h)
			}
		}
		checkParsed(t, h)
	})
}

func FuzzV2(f *testing.F) {
	src4 := netip.MustParseAddrPort("192.0.2.1:56324")
	dst4 := netip.MustParseAddrPort("198.51.100.2:993")
	src6 := netip.MustParseAddrPort("[2001:db8::1]:4000")
	dst6 := netip.MustParseAddrPort("[2001:db8::2]:110")
	f.Add(Header{Source: src4, Destination: dst4}.AppendV2(nil))
	f.Add(append(Header{Source: src6, Destination: dst6}.AppendV2(nil), "USER x\r\n"...))
	f.Add(Header{Local: true}.AppendV2(nil))
	withTLV := Header{Source: src4, Destination: dst4}.AppendV2(nil)
	withTLV[15] += 7
	withTLV = append(withTLV, 0x20, 0, 4, 1, 2, 3, 4) // PP2_TYPE_SSL
	f.Add(withTLV)
	f.Add(append(append([]byte{}, v2Sig...), 0x21, 0x31, 0, 216))
	f.Add(append(append([]byte{}, v2Sig...), 0x22, 0x11, 0, 12))
	f.Add(append(append([]byte{}, v2Sig...), 0x11, 0x11, 0, 12, 1, 2, 3))
	f.Add(append(append([]byte{}, v2Sig...), 0x21, 0x21, 0xff, 0xff))
	f.Add([]byte("\r\n\r\n\x00\r\nQUIX\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err, rest := readAll(b)
		if err != nil {
			if errors.Is(err, ErrNoHeader) && bytes.HasPrefix(b, v2Sig) {
				t.Fatalf("ErrNoHeader for a v2 signature: %q", b)
			}
			return
		}
		consumed := b[:len(b)-len(rest)]
		if h.Version == 2 {
			if len(consumed) < v2HeaderLen || !bytes.HasPrefix(consumed, v2Sig) {
				t.Fatalf("v2 header %q consumed %q", b, consumed)
			}
			if h2, err := ParseV2(consumed); err != nil || h2 != h {
				t.Fatalf("ParseV2(%q) = %+v, %v; Read gave %+v", consumed, h2, err, h)
			}
		}
		checkParsed(t, h)
	})
}

// FuzzGuard: whatever an untrusted peer sends, the guard either refuses a
// stream that starts with a PROXY header or returns every byte unchanged.
func FuzzGuard(f *testing.F) {
	f.Add([]byte("a1 CAPABILITY\r\n"))
	f.Add([]byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"))
	f.Add([]byte("PROX"))
	f.Add(append([]byte{}, v2Sig...))
	f.Add([]byte{0x16, 3, 1, 0, 5})
	f.Fuzz(func(t *testing.T, b []byte) {
		g := &guardConn{Conn: &pipeConn{r: &oneByteReader{b: b}}, log: discardLog}
		got, err := io.ReadAll(g)
		possible, complete := maybeHeader(b)
		switch {
		case complete:
			if !errors.Is(err, ErrUntrustedHeader) {
				t.Fatalf("%q: want refusal, got %q, %v", b, got, err)
			}
		case possible:
			// A truncated signature: nothing to hand over, no refusal needed.
			if err != nil || len(got) != 0 {
				t.Fatalf("%q: got %q, %v", b, got, err)
			}
		default:
			if err != nil || !bytes.Equal(got, b) {
				t.Fatalf("%q: got %q, %v", b, got, err)
			}
		}
	})
}
