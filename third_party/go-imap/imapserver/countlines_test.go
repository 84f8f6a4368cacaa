package imapserver

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// countLines counts what io.ReadAll would read, whatever the reads return:
// ExtractBodyStructure's sizes and line counts are those of the whole
// part, as when the part was read whole.
func TestCountLines(t *testing.T) {
	text := strings.Repeat("a line of text\r\n", 700) + "no line feed at the end"
	for name, r := range map[string]func() io.Reader{
		"whole":     func() io.Reader { return strings.NewReader(text) },
		"byte":      func() io.Reader { return iotest.OneByteReader(strings.NewReader(text)) },
		"half":      func() io.Reader { return iotest.HalfReader(strings.NewReader(text)) },
		"data, EOF": func() io.Reader { return iotest.DataErrReader(strings.NewReader(text)) },
		"error": func() io.Reader {
			return io.MultiReader(strings.NewReader(text[:5000]), iotest.ErrReader(errors.New("broken")))
		},
		"empty":      func() io.Reader { return strings.NewReader("") },
		"line feeds": func() io.Reader { return strings.NewReader(strings.Repeat("\n", 9000)) },
	} {
		body, _ := io.ReadAll(r())
		size, lines := countLines(r())
		if size != int64(len(body)) || lines != int64(bytes.Count(body, []byte("\n"))) {
			t.Errorf("%s: %d octets, %d lines; want %d, %d", name, size, lines, len(body), bytes.Count(body, []byte("\n")))
		}
	}
}
