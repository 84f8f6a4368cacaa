package imapserver

import (
	"bytes"
	"errors"
	"io"
	"strings"

	gomessage "github.com/emersion/go-message"
)

// encodeNULParts returns body with every part whose content holds a NUL
// re-encoded in base64, or body itself when it has no NUL. APPEND takes
// binary content in a literal8 (BINARY, RFC 3516 §4.4), but no IMAP string
// may carry a NUL: BODY[] and BODY[1] could not send such a message, and
// BINARY[1] decodes the base64 back to the same octets. A message that
// cannot be rewritten is kept as it came.
func encodeNULParts(body []byte) []byte {
	if bytes.IndexByte(body, 0) < 0 {
		return body
	}
	e, err := gomessage.Read(bytes.NewReader(body))
	if e == nil || (err != nil && !gomessage.IsUnknownCharset(err)) {
		return body
	}
	var buf bytes.Buffer
	if err := writeEncoded(&buf, nil, e, 0); err != nil {
		return body
	}
	return buf.Bytes()
}

// writeEncoded writes e, as a part of parent (nil: the message itself),
// with its NUL-holding leaves in base64.
func writeEncoded(out io.Writer, parent *gomessage.Writer, e *gomessage.Entity, depth int) error {
	if depth > maxPartDepth {
		return errTooDeep
	}
	create := func(h gomessage.Header) (*gomessage.Writer, error) {
		if parent == nil {
			return gomessage.CreateWriter(out, h)
		}
		return parent.CreatePart(h)
	}
	if mr := e.MultipartReader(); mr != nil {
		w, err := create(e.Header)
		if err != nil {
			return err
		}
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			if err := writeEncoded(nil, w, p, depth+1); err != nil {
				return err
			}
		}
		return w.Close()
	}
	content, err := io.ReadAll(e.Body)
	if err != nil {
		return err
	}
	h := e.Header.Copy()
	t, _, _ := h.ContentType()
	if bytes.IndexByte(content, 0) >= 0 && !strings.HasPrefix(t, "message/") {
		h.Set("Content-Transfer-Encoding", "base64")
	}
	w, err := create(h)
	if err != nil {
		return err
	}
	if _, err := w.Write(content); err != nil {
		return err
	}
	return w.Close()
}

var errTooDeep = errors.New("MIME parts nested too deeply")
