package imapserver

import (
	"bufio"
	"bytes"
	"sync"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/internal/imapwire"
)

// Pre-encoded FETCH items (Postern). A server that keeps an index of its
// messages encodes ENVELOPE and BODY/BODYSTRUCTURE once, when a message
// arrives, and writes the stored bytes for every FETCH instead of parsing
// the message again: the bytes are those WriteEnvelope and
// WriteBodyStructure would write.

// EncodeEnvelope returns the ENVELOPE value as WriteEnvelope writes it on a
// connection whose quoted strings may (quotedUTF8: UTF8=ACCEPT or
// IMAP4rev2 enabled) or may not hold UTF-8.
func EncodeEnvelope(envelope *imap.Envelope, quotedUTF8 bool) []byte {
	return encodeValue(quotedUTF8, func(enc *imapwire.Encoder) { writeEnvelope(enc, envelope) })
}

// EncodeBodyStructure returns the BODYSTRUCTURE (extended) or BODY value
// as WriteBodyStructure writes it; see EncodeEnvelope for quotedUTF8.
// Extended needs a body structure with its extension data, as
// ExtractBodyStructure returns.
func EncodeBodyStructure(bs imap.BodyStructure, extended, quotedUTF8 bool) []byte {
	return encodeValue(quotedUTF8, func(enc *imapwire.Encoder) { writeBodyStructure(enc, bs, extended) })
}

func encodeValue(quotedUTF8 bool, write func(enc *imapwire.Encoder)) []byte {
	v := valueBuffers.Get().(*valueBuffer)
	enc := imapwire.NewEncoder(v.bw, imapwire.ConnSideServer)
	enc.QuotedUTF8 = quotedUTF8
	write(enc)
	v.bw.Flush()
	out := bytes.Clone(v.buf.Bytes())
	v.buf.Reset()
	valueBuffers.Put(v)
	return out
}

// valueBuffer is encodeValue's buffer and the writer into it, kept for the
// next value: a message's index encodes six (Postern's msgindex, at every
// APPEND and delivery), and a writer of its own for each was most of the
// memory that took.
type valueBuffer struct {
	buf bytes.Buffer
	bw  *bufio.Writer
}

var valueBuffers = sync.Pool{New: func() any {
	v := &valueBuffer{}
	v.bw = bufio.NewWriter(&v.buf)
	return v
}}

// QuotedUTF8 reports whether this response's quoted strings may hold
// UTF-8: which of the pre-encoded forms the connection takes.
func (w *FetchResponseWriter) QuotedUTF8() bool {
	return w.enc.QuotedUTF8
}

// WriteEnvelopeEncoded writes an envelope encoded by EncodeEnvelope with
// the connection's QuotedUTF8 setting.
func (w *FetchResponseWriter) WriteEnvelopeEncoded(b []byte) {
	w.writeItemSep()
	w.enc.Atom("ENVELOPE").SP().Raw(b)
}

// WriteBodyStructureEncoded writes the body structure items the client
// asked for (BODY, BODYSTRUCTURE or both) from their encoded forms: body
// is EncodeBodyStructure's non-extended value, bodyStructure its extended
// one, with the connection's QuotedUTF8 setting.
func (w *FetchResponseWriter) WriteBodyStructureEncoded(body, bodyStructure []byte) {
	if w.options.bodyStructure.nonExtended {
		w.writeItemSep()
		w.enc.Atom("BODY").SP().Raw(body)
	}
	if w.options.bodyStructure.extended {
		w.writeItemSep()
		w.enc.Atom("BODYSTRUCTURE").SP().Raw(bodyStructure)
	}
}

// WritePreview writes the PREVIEW item (RFC 8970 §3): the message's
// preview text, NIL when there is none to give.
func (w *FetchResponseWriter) WritePreview(text string, ok bool) {
	w.writeItemSep()
	enc := w.enc.Encoder
	enc.Atom("PREVIEW").SP()
	if !ok {
		enc.NIL()
		return
	}
	enc.String(text)
}
