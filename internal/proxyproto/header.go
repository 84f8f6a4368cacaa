// Package proxyproto reads the PROXY protocol header (HAProxy's "PROXY
// protocol" specification, versions 1 and 2) that a TCP load balancer sends
// before the client's bytes, so that a server behind it sees the real client
// address. Listener accepts the header only from configured trusted
// networks: from anyone else it would let a client choose the address that
// throttling and "last used from" record.
package proxyproto

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
)

// Header is a parsed PROXY header.
type Header struct {
	Version int // 1 or 2
	// Local is true for a connection the proxy made on its own behalf (v2
	// LOCAL, v1 UNKNOWN, v2 AF_UNSPEC): health checks. The receiver then
	// uses the connection's real addresses (spec §2.1 and §2.2).
	Local       bool
	Source      netip.AddrPort // the client, when !Local
	Destination netip.AddrPort // the address the client connected to, when !Local
}

// v1 limits (spec §2.1): the whole line, CRLF included, is at most 107 bytes.
const v1MaxLen = 107

// v2Sig is the 12-byte signature of a version 2 header (spec §2.2); its
// CR LF CR LF NUL sequence cannot start a valid text protocol line.
var v2Sig = []byte("\r\n\r\n\x00\r\nQUIT\n")

var v1Prefix = []byte("PROXY ")

// ErrNoHeader is returned when the stream does not start with a PROXY header.
var ErrNoHeader = errors.New("proxyproto: no PROXY protocol header")

// errInvalid wraps every malformed-header error.
var errInvalid = errors.New("proxyproto: invalid header")

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errInvalid}, args...)...)
}

// maybeHeader reports whether b, the first bytes of a stream, could still be
// (complete is false) or definitely is (complete is true) the start of a
// PROXY header. It lets a reader decide with as few bytes as the peer sent.
func maybeHeader(b []byte) (possible, complete bool) {
	for _, sig := range [][]byte{v1Prefix, v2Sig} {
		n := min(len(b), len(sig))
		if bytes.Equal(b[:n], sig[:n]) {
			if n == len(sig) {
				return true, true
			}
			possible = true
		}
	}
	return possible, false
}

// Read reads one PROXY header, version 1 or 2, from r and nothing after it:
// the bytes that follow stay in r for the protocol. It returns ErrNoHeader
// when the stream starts with anything else.
func Read(r *bufio.Reader) (Header, error) {
	first, err := r.Peek(1)
	if err != nil {
		return Header{}, err
	}
	switch first[0] {
	case 'P':
		return readV1(r)
	case v2Sig[0]:
		return readV2(r)
	}
	return Header{}, ErrNoHeader
}

// readV1 reads "PROXY TCP4|TCP6|UNKNOWN ... CRLF" (spec §2.1).
func readV1(r *bufio.Reader) (Header, error) {
	line := make([]byte, 0, v1MaxLen)
	for {
		c, err := r.ReadByte()
		if err != nil {
			return Header{}, err
		}
		line = append(line, c)
		if c == '\n' {
			break
		}
		if len(line) >= v1MaxLen {
			return Header{}, invalidf("v1 line longer than %d bytes", v1MaxLen)
		}
		if len(line) <= len(v1Prefix) && line[len(line)-1] != v1Prefix[len(line)-1] {
			return Header{}, ErrNoHeader
		}
	}
	return ParseV1(line)
}

// ParseV1 parses a complete version 1 line, CRLF included.
func ParseV1(line []byte) (Header, error) {
	if len(line) > v1MaxLen {
		return Header{}, invalidf("v1 line longer than %d bytes", v1MaxLen)
	}
	if !bytes.HasPrefix(line, v1Prefix) {
		return Header{}, ErrNoHeader
	}
	if !bytes.HasSuffix(line, []byte("\r\n")) {
		return Header{}, invalidf("v1 line does not end in CRLF")
	}
	body := line[len(v1Prefix) : len(line)-2]
	if bytes.Equal(body, []byte("UNKNOWN")) || bytes.HasPrefix(body, []byte("UNKNOWN ")) {
		// The proxy does not know (or will not tell) the addresses; the
		// rest of the line is to be ignored (spec §2.1).
		return Header{Version: 1, Local: true}, nil
	}
	f := bytes.Split(body, []byte(" "))
	if len(f) != 5 {
		return Header{}, invalidf("v1 line has %d fields, want 5", len(f)+1)
	}
	var want4 bool
	switch string(f[0]) {
	case "TCP4":
		want4 = true
	case "TCP6":
	default:
		return Header{}, invalidf("v1 protocol %q", f[0])
	}
	src, err := v1Addr(f[1], want4)
	if err != nil {
		return Header{}, err
	}
	dst, err := v1Addr(f[2], want4)
	if err != nil {
		return Header{}, err
	}
	sport, err := v1Port(f[3])
	if err != nil {
		return Header{}, err
	}
	dport, err := v1Port(f[4])
	if err != nil {
		return Header{}, err
	}
	return Header{Version: 1, Source: netip.AddrPortFrom(src, sport), Destination: netip.AddrPortFrom(dst, dport)}, nil
}

func v1Addr(b []byte, want4 bool) (netip.Addr, error) {
	a, err := netip.ParseAddr(string(b))
	if err != nil || a.Zone() != "" || a.Is4() != want4 {
		return netip.Addr{}, invalidf("v1 address %q", b)
	}
	return a, nil
}

// v1Port reads a port: 1 to 5 decimal digits without a sign or a leading
// zero (the spec's "decimal integer in the range [0..65535]").
func v1Port(b []byte) (uint16, error) {
	if len(b) == 0 || len(b) > 5 || (len(b) > 1 && b[0] == '0') {
		return 0, invalidf("v1 port %q", b)
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, invalidf("v1 port %q", b)
		}
	}
	n, err := strconv.ParseUint(string(b), 10, 16)
	if err != nil {
		return 0, invalidf("v1 port %q", b)
	}
	return uint16(n), nil
}

// v2 constants (spec §2.2).
const (
	v2HeaderLen = 16 // signature, ver_cmd, fam, len
	cmdLocal    = 0x0
	cmdProxy    = 0x1
	famUnspec   = 0x00
	famTCP4     = 0x11
	famTCP6     = 0x21
	addrLenTCP4 = 12
	addrLenTCP6 = 36
)

// readV2 reads a binary version 2 header; the TLVs after the addresses are
// skipped (none changes what we do with the connection).
func readV2(r *bufio.Reader) (Header, error) {
	var fixed [v2HeaderLen]byte
	for i := range fixed {
		c, err := r.ReadByte()
		if err != nil {
			return Header{}, err
		}
		fixed[i] = c
		if i < len(v2Sig) && c != v2Sig[i] {
			return Header{}, ErrNoHeader
		}
	}
	n := int(binary.BigEndian.Uint16(fixed[14:16]))
	rest := make([]byte, n) // at most 64 KiB, as the 16-bit length allows
	for i := range rest {
		c, err := r.ReadByte()
		if err != nil {
			return Header{}, err
		}
		rest[i] = c
	}
	return ParseV2(append(fixed[:], rest...))
}

// ParseV2 parses a complete version 2 header (the 16 fixed bytes and the
// length they announce).
func ParseV2(b []byte) (Header, error) {
	if len(b) >= len(v2Sig) && !bytes.Equal(b[:len(v2Sig)], v2Sig) {
		return Header{}, ErrNoHeader
	}
	if len(b) < v2HeaderLen {
		return Header{}, invalidf("v2 header too short")
	}
	verCmd, fam := b[12], b[13]
	n := int(binary.BigEndian.Uint16(b[14:16]))
	if len(b) != v2HeaderLen+n {
		return Header{}, invalidf("v2 length %d, have %d bytes", n, len(b)-v2HeaderLen)
	}
	if verCmd>>4 != 2 {
		return Header{}, invalidf("v2 version %d", verCmd>>4)
	}
	addr := b[v2HeaderLen:]
	switch verCmd & 0xf {
	case cmdLocal:
		// Health checks of the proxy itself: keep the real addresses, and
		// ignore the address block whatever it holds (spec §2.2).
		return Header{Version: 2, Local: true}, nil
	case cmdProxy:
	default:
		return Header{}, invalidf("v2 command %d", verCmd&0xf)
	}
	switch fam {
	case famUnspec:
		return Header{Version: 2, Local: true}, nil
	case famTCP4:
		if len(addr) < addrLenTCP4 {
			return Header{}, invalidf("v2 TCP4 address block of %d bytes", len(addr))
		}
		src := netip.AddrFrom4([4]byte(addr[0:4]))
		dst := netip.AddrFrom4([4]byte(addr[4:8]))
		return Header{Version: 2,
			Source:      netip.AddrPortFrom(src, binary.BigEndian.Uint16(addr[8:10])),
			Destination: netip.AddrPortFrom(dst, binary.BigEndian.Uint16(addr[10:12]))}, nil
	case famTCP6:
		if len(addr) < addrLenTCP6 {
			return Header{}, invalidf("v2 TCP6 address block of %d bytes", len(addr))
		}
		src := netip.AddrFrom16([16]byte(addr[0:16]))
		dst := netip.AddrFrom16([16]byte(addr[16:32]))
		return Header{Version: 2,
			Source:      netip.AddrPortFrom(src, binary.BigEndian.Uint16(addr[32:34])),
			Destination: netip.AddrPortFrom(dst, binary.BigEndian.Uint16(addr[34:36]))}, nil
	}
	// UDP and UNIX sockets cannot arrive on a TCP listener as such.
	return Header{}, invalidf("v2 address family 0x%02x", fam)
}

// AppendV1 appends h as a version 1 line (for tests and tools). Source and
// Destination must be of the same family.
func (h Header) AppendV1(b []byte) []byte {
	if h.Local || !h.Source.IsValid() {
		return append(b, "PROXY UNKNOWN\r\n"...)
	}
	proto := "TCP6"
	if h.Source.Addr().Is4() {
		proto = "TCP4"
	}
	return fmt.Appendf(b, "PROXY %s %s %s %d %d\r\n", proto, h.Source.Addr(), h.Destination.Addr(),
		h.Source.Port(), h.Destination.Port())
}

// AppendV2 appends h as a version 2 header without TLVs (for tests and
// tools). Source and Destination must be of the same family.
func (h Header) AppendV2(b []byte) []byte {
	b = append(b, v2Sig...)
	if h.Local || !h.Source.IsValid() {
		return append(b, 0x20|cmdLocal, famUnspec, 0, 0)
	}
	if h.Source.Addr().Is4() {
		b = append(b, 0x20|cmdProxy, famTCP4, 0, addrLenTCP4)
		s, d := h.Source.Addr().As4(), h.Destination.Addr().As4()
		b = append(append(b, s[:]...), d[:]...)
	} else {
		b = append(b, 0x20|cmdProxy, famTCP6, 0, addrLenTCP6)
		s, d := h.Source.Addr().As16(), h.Destination.Addr().As16()
		b = append(append(b, s[:]...), d[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, h.Source.Port())
	return binary.BigEndian.AppendUint16(b, h.Destination.Port())
}
