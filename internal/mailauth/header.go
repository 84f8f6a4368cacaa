package mailauth

import (
	"bytes"
	"strings"
)

// field is one header field as it appears in the message: its name as
// written (before the colon, blanks trimmed) and its raw bytes from the
// first byte of the name to the line end of its last continuation line.
type field struct {
	name       string
	start, end int
}

// headerFields splits the header section of msg (up to the first empty
// line, or all of msg if there is none) into fields. A line that begins
// with a blank continues the field before it; a line with no colon is a
// field with no name, kept so that rewriting the header loses nothing.
// Lines may end in CRLF or a bare LF.
func headerFields(msg []byte) []field {
	var fields []field
	for pos := 0; pos < len(msg); {
		end := lineEnd(msg, pos)
		line := msg[pos:end]
		if isBlankLine(line) {
			break
		}
		if (line[0] == ' ' || line[0] == '\t') && len(fields) > 0 {
			fields[len(fields)-1].end = end
		} else {
			name := ""
			if i := bytes.IndexByte(line, ':'); i >= 0 {
				name = strings.TrimSpace(string(line[:i]))
			}
			fields = append(fields, field{name: name, start: pos, end: end})
		}
		pos = end
	}
	return fields
}

// lineEnd returns the index just past the LF ending the line at pos, or
// len(msg) for a last line without one.
func lineEnd(msg []byte, pos int) int {
	if i := bytes.IndexByte(msg[pos:], '\n'); i >= 0 {
		return pos + i + 1
	}
	return len(msg)
}

func isBlankLine(line []byte) bool {
	return len(line) == 0 || line[0] == '\n' || (line[0] == '\r' && len(line) > 1 && line[1] == '\n')
}

// value returns the field's unfolded value: the text after the colon with
// line breaks removed, blanks around it trimmed.
func (f field) value(msg []byte) string {
	raw := msg[f.start:f.end]
	i := bytes.IndexByte(raw, ':')
	if i < 0 {
		return ""
	}
	v := strings.NewReplacer("\r\n", "", "\n", "", "\r", "").Replace(string(raw[i+1:]))
	return strings.TrimSpace(v)
}

// StripAuthResults returns msg without any Authentication-Results header
// field, whatever the case of its name and however it is folded (RFC 8601
// §5: a receiver removes such fields from outside before adding its own, so
// no sender can claim a result this server did not reach). The rest of the
// message is returned byte for byte; msg itself is not modified.
func StripAuthResults(msg []byte) []byte {
	fields := headerFields(msg)
	var out []byte
	last := 0
	for _, f := range fields {
		if !strings.EqualFold(f.name, "Authentication-Results") {
			continue
		}
		if out == nil {
			out = make([]byte, 0, len(msg))
		}
		out = append(out, msg[last:f.start]...)
		last = f.end
	}
	if out == nil {
		return msg
	}
	return append(out, msg[last:]...)
}

// tagValue returns the value of tag in a DKIM-style tag list
// ("a=1; b=2"), blanks removed, or "".
func tagValue(list, tag string) string {
	for _, kv := range strings.Split(list, ";") {
		k, v, ok := strings.Cut(kv, "=")
		if ok && strings.TrimSpace(k) == tag {
			return strings.Join(strings.Fields(v), "")
		}
	}
	return ""
}
