package imapserver

import (
	"bufio"
	"bytes"
	"compress/flate"
	"io"
	"strings"
	"sync"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/internal/imapwire"
)

// COMPRESS=DEFLATE (RFC 4978; Postern). After the tagged OK both
// directions are raw DEFLATE (RFC 1951, no zlib header).
//
// Responses: a compressor is taken from flateWriterPool for each response,
// which ends with a sync flush, and given back; the next one starts afresh
// in the same stream (a DEFLATE stream may always stop referring to what
// came before), so a connection waiting for input holds no compressor:
// compress/flate's is over 1 MiB. BestSpeed, because its Reset is cheap
// (the other levels clear 640 KiB of hash tables) and it needs no more
// memory.
//
// Commands: the decompressor's 32 KiB window must live as long as the
// stream (the client may refer back to anything it sent in the last 32 KiB),
// so a compressed connection holds it, about 43 KiB, and a 4 KiB buffer of
// compressed input, even while it waits (docs/benchmarks.md).

const (
	flateLevel       = flate.BestSpeed
	compressedBufLen = 4096
)

var flateWriterPool = sync.Pool{
	New: func() any {
		w, err := flate.NewWriter(nil, flateLevel)
		if err != nil {
			panic(err) // unreachable: the level is valid
		}
		return w
	},
}

func getFlateWriter(w io.Writer) *flate.Writer {
	fw := flateWriterPool.Get().(*flate.Writer)
	fw.Reset(w)
	return fw
}

func putFlateWriter(fw *flate.Writer) {
	fw.Reset(nil)
	flateWriterPool.Put(fw)
}

func (c *Conn) handleCompress(tag string, dec *imapwire.Decoder) error {
	var mech string
	if !dec.ExpectSP() || !dec.ExpectAtom(&mech) || !dec.ExpectCRLF() {
		return dec.Err()
	}
	if err := c.checkState(imap.ConnStateAuthenticated); err != nil {
		return err
	}
	if !c.server.options.caps().Has(imap.CapCompressDeflate) {
		return &imap.Error{Type: imap.StatusResponseTypeBad, Text: "COMPRESS not supported"}
	}
	if !strings.EqualFold(mech, "DEFLATE") {
		return &imap.Error{
			Type: imap.StatusResponseTypeBad,
			Code: imap.ResponseCodeClientBug,
			Text: "Unknown compression mechanism, only DEFLATE is supported",
		}
	}
	if c.compressed {
		return &imap.Error{
			Type: imap.StatusResponseTypeNo,
			Code: imap.ResponseCodeCompressionActive,
			Text: "DEFLATE is already active",
		}
	}

	// The OK goes out uncompressed; every response after it is compressed.
	// encMutex, held from here to enc.end, keeps an IDLE update or a BYE
	// from slipping between the two.
	enc := newResponseEncoder(c)
	defer enc.end()
	if err := writeStatusResp(enc.Encoder, tag, &imap.StatusResponse{
		Type: imap.StatusResponseTypeOK,
		Text: "DEFLATE active",
	}); err != nil {
		return err
	}
	c.compressed = true

	// Input the client sent after the command is already compressed.
	var pending []byte
	if n := c.br.Buffered(); n > 0 {
		pending = make([]byte, n)
		io.ReadFull(c.br, pending)
	}
	var src io.Reader = c.rd.r
	if len(pending) > 0 {
		src = io.MultiReader(bytes.NewReader(pending), src)
	}
	c.rd.r = flate.NewReader(bufio.NewReaderSize(src, compressedBufLen))
	c.br.Reset(&c.rd)
	return nil
}
