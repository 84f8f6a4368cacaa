package smtpserver

import (
	"bytes"
	"errors"
)

// Verdicts on a message that was read to its end but is refused.
var (
	errBareNewline = errors.New("bare LF or CR in message")
	errDataLine    = errors.New("message line too long")
	errTooBig      = errors.New("message too big")
	errNUL         = errors.New("NUL in message")
	errHeaderBig   = errors.New("message header too big")
)

// bodyWriter holds the content rules of a message, the same for DATA (fed
// line by line after dot-unstuffing) and BDAT (fed chunks cut anywhere):
// every line ends in CRLF and holds no other CR or LF (RFC 5321 §2.3.8: a
// bare newline is how SMTP smuggling hides an end of data from one server
// and not another), no NUL (RFC 5321 §4.5.2, RFC 6152 §3), lines of at most
// maxLine octets, a header of at most maxHeader octets and maxFields
// fields, and at most maxSize octets in all. The first broken rule is the
// verdict; past it nothing more is kept, so memory stays bounded whatever
// the client sends.
type bodyWriter struct {
	maxSize   int64
	maxLine   int
	maxHeader int
	maxFields int

	buf       bytes.Buffer
	n         int64 // octets written, kept or not
	verdict   error
	cr        bool // the last octet was a CR
	line      int  // octets of the current line so far
	lineStart bool // the current line's first octet is the next one
	body      bool // the header's empty line has passed
	header    int  // header octets so far
	fields    int  // header fields so far
}

func (c *conn) newBody() *bodyWriter {
	return &bodyWriter{
		maxSize: c.cfg.MaxMessageBytes, maxLine: c.cfg.MaxDataLine,
		maxHeader: c.cfg.MaxHeaderBytes, maxFields: c.cfg.MaxHeaderFields,
		lineStart: true,
	}
}

// fail records a verdict unless there is one already. A broken content
// rule overrides errTooBig: the reply should name what is wrong with the
// message, not only its size.
func (w *bodyWriter) fail(err error) {
	if w.verdict == nil || errors.Is(w.verdict, errTooBig) && !errors.Is(err, errTooBig) {
		w.verdict = err
	}
}

// Write checks and keeps p; it never fails (the verdict is for the end).
func (w *bodyWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	for _, b := range p {
		if w.cr != (b == '\n') {
			w.fail(errBareNewline)
		}
		w.cr = b == '\r'
		if b == 0 {
			w.fail(errNUL)
		}
		if !w.body {
			w.header++
			if w.lineStart && b != ' ' && b != '\t' && b != '\r' {
				w.fields++
			}
			if w.header > w.maxHeader || w.fields > w.maxFields {
				w.fail(errHeaderBig)
			}
		}
		w.line++
		if w.line > w.maxLine {
			w.fail(errDataLine)
		}
		w.lineStart = b == '\n'
		if b == '\n' {
			if w.line == 2 { // an empty line: the header ends
				w.body = true
			}
			w.line = 0
		}
	}
	if w.verdict != nil {
		w.buf = bytes.Buffer{}
		return len(p), nil
	}
	if int64(w.buf.Len()+len(p)) > w.maxSize {
		w.fail(errTooBig)
		w.buf = bytes.Buffer{}
		return len(p), nil
	}
	w.buf.Write(p)
	return len(p), nil
}

// end returns the message, or nil and the verdict. A message whose last
// octet is a CR ends in a bare CR.
func (w *bodyWriter) end() ([]byte, error) {
	if w.cr {
		w.fail(errBareNewline)
	}
	if w.verdict != nil {
		return nil, w.verdict
	}
	return w.buf.Bytes(), nil
}
