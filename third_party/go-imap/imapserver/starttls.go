package imapserver

import (
	"crypto/tls"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/internal/imapwire"
)

func (c *Conn) canStartTLS() bool {
	_, isTLS := c.conn.(*tls.Conn)
	return c.server.options.TLSConfig != nil && c.state == imap.ConnStateNotAuthenticated && !isTLS
}

func (c *Conn) handleStartTLS(tag string, dec *imapwire.Decoder) error {
	if !dec.ExpectCRLF() {
		return dec.Err()
	}

	if c.server.options.TLSConfig == nil {
		return &imap.Error{
			Type: imap.StatusResponseTypeNo,
			Text: "STARTTLS not supported",
		}
	}
	if !c.canStartTLS() {
		return &imap.Error{
			Type: imap.StatusResponseTypeBad,
			Text: "STARTTLS not available",
		}
	}

	// Do not allow to write cleartext data past this point: keep c.encMutex
	// locked until the end
	enc := newResponseEncoder(c)
	defer enc.end()

	err := writeStatusResp(enc.Encoder, tag, &imap.StatusResponse{
		Type: imap.StatusResponseTypeOK,
		Text: "Begin TLS negotiation now",
	})
	if err != nil {
		return err
	}

	// Postern: what the client sent after STARTTLS, before the handshake,
	// is thrown away, not run as commands of the TLS session (command
	// injection: CVE-2011-0411, CVE-2021-33515). Upstream handed it to the
	// TLS layer as handshake data.
	if n := c.br.Buffered(); n > 0 {
		c.br.Discard(n)
		c.server.logger().Printf("discarded %v octets of plaintext sent after STARTTLS", n)
	}

	tlsConn := tls.Server(c.conn, c.server.options.TLSConfig)

	c.mutex.Lock()
	c.conn = tlsConn
	c.mutex.Unlock()

	rw := c.server.options.wrapReadWriter(tlsConn)
	c.rw = rw
	c.rd.r = rw
	c.br.Reset(&c.rd)
	if c.bw != nil { // nil between responses (Postern: see newResponseEncoder)
		c.bw.Reset(rw)
	}

	return nil
}
