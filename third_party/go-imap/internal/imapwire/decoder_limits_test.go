package imapwire

import (
	"bufio"
	"bytes"
	"errors"
	"strings"
	"testing"
)

// Postern: the decoder's limits (MaxLine, MaxSize, StrictBytes,
// LiteralFunc), which took over from Postern's input guard.

// countingReader counts what was read from it.
type countingReader struct {
	r *bytes.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func newLimitedDecoder(in []byte, maxLine, maxSize int64) (*Decoder, func() int) {
	src := &countingReader{r: bytes.NewReader(in)}
	r := bufio.NewReader(src)
	dec := NewDecoder(r, ConnSideServer)
	dec.MaxLine, dec.MaxSize, dec.StrictBytes = maxLine, maxSize, true
	return dec, func() int { return src.n - r.Buffered() }
}

// decodeCommand reads one command the way the server does: tag, name and
// values up to CRLF, reading literals through.
func decodeCommand(dec *Decoder) {
	var tag, name string
	if !dec.ExpectAtom(&tag) || !dec.ExpectSP() || !dec.ExpectAtom(&name) {
		return
	}
	for i := 0; i < 1000 && dec.SP(); i++ {
		if lit, _, ok := dec.LiteralReader(); ok {
			var b bytes.Buffer
			b.ReadFrom(lit)
			continue
		}
		if dec.err != nil || !dec.DiscardValue() {
			break
		}
	}
	dec.CRLF()
}

func TestDecoderLimits(t *testing.T) {
	const maxLine, maxSize = 64, 100
	cases := []struct {
		in   string
		want error
	}{
		{"a NOOP\r\n", nil},
		{"a LOGIN " + strings.Repeat("x", 80) + "\r\n", ErrLineTooLong},
		{"a LOGIN {3}\r\nabc " + strings.Repeat("y", 50) + " {3}\r\nabc " + strings.Repeat("z", 50) + "\r\n", ErrCommandTooLong},
		{"a LOGIN \"a\x00\" b\r\n", ErrBadBytes},
		{"a LOGIN a\rb c\r\n", ErrBadBytes},
		{"a LOGIN a b\r\n", nil},
		{"a LOGIN a b\n", nil},
		{"a LOGIN {5}\r\na\x00b\rc d\r\n", nil}, // literal data is anything
		{"a LOGIN {99999999999999999999999}\r\n", errTooBig},
		{"a LOGIN {65}\r\n", errTooBig},
		{"a LOGIN {64}\r\n", nil},
	}
	for _, tc := range cases {
		dec, _ := newLimitedDecoder([]byte(tc.in), maxLine, maxSize)
		dec.LiteralFunc = func(size int64, nonSync bool) error {
			if size > 64 {
				return errTooBig
			}
			return nil
		}
		decodeCommand(dec)
		if got := dec.LimitErr(); got != tc.want {
			t.Errorf("%q: LimitErr %v, want %v", tc.in, got, tc.want)
		}
	}
}

var errTooBig = errors.New("too big")

// FuzzDecoderLimits: whatever the input, the decoder never reads a line
// past MaxLine (plus the octet that broke it) nor a command past MaxSize
// outside literals, refuses NUL and bare CR only where they are, and hands
// LiteralFunc sizes within [0, MaxLiteralSize].
func FuzzDecoderLimits(f *testing.F) {
	for _, s := range []string{
		"a1 CAPABILITY\r\n",
		"a1 LOGIN {17}\r\nalice@example.com {20}\r\nabcdefghijkmnpqrstuv\r\n",
		"a1 LOGIN {4294967295}\r\n",
		"a1 LOGIN {5000+}\r\n" + strings.Repeat("x", 5000) + "\r\n",
		"a1 LOGIN {3+}\r\nabc \"x\"\r\n",
		"a1 AUTHENTICATE PLAIN\r\nAGFsaWNlAHg=\r\n",
		"a1 LOGIN \"a\x00b\" c\r\n",
		"a1 LOGIN a\rb c\r\n",
		"a1 APPEND INBOX (\\Seen) {10}\r\n0123456789\r\n",
		"a1 SEARCH {5}\r\n",
		"* \r\n+ \r\n{}\r\n",
		"a1 NOOP " + strings.Repeat("x", 300) + "\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		const maxLine, maxSize = 128, 256
		dec, consumed := newLimitedDecoder(in, maxLine, maxSize)
		var literals int64
		dec.LiteralFunc = func(size int64, nonSync bool) error {
			if size < 0 || size > MaxLiteralSize {
				t.Fatalf("literal size %d", size)
			}
			if size > 64 {
				return errTooBig
			}
			literals += size
			return nil
		}
		decodeCommand(dec)
		n := consumed()
		if int64(n)-literals > maxSize+1 {
			t.Fatalf("read %d octets outside literals, limit %d", int64(n)-literals, maxSize)
		}
		if errors.Is(dec.LimitErr(), ErrBadBytes) {
			seen := in[:n]
			if bytes.IndexByte(seen, 0) < 0 && !bytes.Contains(seen, []byte("\r")) {
				t.Fatalf("bad bytes in %q", seen)
			}
		}
		if dec.LimitErr() == nil {
			for _, line := range bytes.Split(in[:n], []byte("\n")) {
				if len(line) > maxLine+1 && literals == 0 {
					t.Fatalf("line of %d octets accepted", len(line))
				}
			}
		}
	})
}
