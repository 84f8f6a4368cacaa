package imapserver

import (
	"fmt"
	"io"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/internal"
	"github.com/emersion/go-imap/v2/internal/imapwire"
)

// defaultAppendLimit is the default maximum size of an APPEND payload.
const defaultAppendLimit = 100 * 1024 * 1024 // 100MiB

func (c *Conn) handleAppend(tag string, dec *imapwire.Decoder) error {
	var mailbox string
	if !dec.ExpectSP() || !dec.ExpectMailbox(&mailbox) || !dec.ExpectSP() {
		return dec.Err()
	}

	multi, _ := c.session.(SessionMultiAppend)
	if !c.server.options.caps().Has(imap.CapMultiAppend) {
		multi = nil
	}
	r := &AppendReader{conn: c, dec: dec, multi: multi != nil, mailbox: mailbox}
	if err := r.readMessage(); err != nil {
		return err
	}

	c.setReadTimeout(literalReadTimeout)
	defer c.setReadTimeout(cmdReadTimeout)

	if err := c.checkState(imap.ConnStateAuthenticated); err != nil {
		return r.drain(err)
	}
	if err := dec.BadMailbox(); err != nil {
		return r.drain(err)
	}

	var (
		data      *imap.AppendData
		appendErr error
	)
	if multi != nil {
		data, appendErr = multi.AppendMulti(mailbox, r)
	} else {
		data, appendErr = c.session.Append(mailbox, r.lit, &r.options)
	}
	if err := r.drain(appendErr); err != nil {
		return err
	}
	if err := c.poll("APPEND"); err != nil {
		return err
	}
	return c.writeAppendOK(tag, data)
}

// AppendReader reads the messages of one APPEND command, in order: one, or
// several with MULTIAPPEND (RFC 3502).
//
// Postern: upstream reads one message per APPEND and has no MULTIAPPEND.
type AppendReader struct {
	conn    *Conn
	dec     *imapwire.Decoder
	multi   bool
	mailbox string
	// announced adds up the sizes of the command's messages so far, for
	// the quota check of the next (SessionQuota.AppendFits).
	announced int64

	lit     *imapwire.LiteralReader
	options imap.AppendOptions
	nonSync bool
	dataExt bool // the message is in "UTF8 (~{n}...)": a ")" follows it
	started bool
	done    bool  // after the last message
	err     error // a syntax or I/O error: the command cannot go on
}

// Next returns the next message: its literal, which must be read (or left
// for the reader to skip) before Next is called again, and its flags and
// date. After the last message it returns io.EOF.
func (r *AppendReader) Next() (imap.LiteralReader, *imap.AppendOptions, error) {
	if r.err != nil {
		return nil, nil, r.err
	}
	if r.done {
		return nil, nil, io.EOF
	}
	if !r.started {
		r.started = true
		return r.lit, &r.options, nil
	}
	if err := r.finishMessage(); err != nil {
		return nil, nil, err
	}
	if !r.dec.SP() {
		r.done = true
		return nil, nil, io.EOF
	}
	if err := r.readMessage(); err != nil {
		return nil, nil, err
	}
	return r.lit, &r.options, nil
}

// readMessage reads one message's flags, date and literal header, and
// accepts the literal ("+" for a synchronizing one).
func (r *AppendReader) readMessage() error {
	if err := r.readHeader(); err != nil {
		return err
	}
	appendLimit := int64(defaultAppendLimit)
	if appendLimitSession, ok := r.conn.session.(SessionAppendLimit); ok {
		appendLimit = int64(appendLimitSession.AppendLimit())
	}
	if r.lit.Size() > appendLimit {
		return r.fail(&imap.Error{
			Type: imap.StatusResponseTypeNo,
			Code: imap.ResponseCodeTooBig,
			Text: fmt.Sprintf("Literals are limited to %v bytes for this command", appendLimit),
		})
	}
	// A message over quota is refused before the client is asked to send
	// it (a synchronizing literal); one already on its way is read and
	// refused by the session's Append.
	r.announced += r.lit.Size()
	c := r.conn
	if qs, ok := c.session.(SessionQuota); ok && !r.nonSync && (c.state == imap.ConnStateAuthenticated || c.state == imap.ConnStateSelected) {
		if err := qs.AppendFits(r.mailbox, r.announced, r.lit); err != nil {
			return r.fail(err)
		}
	}
	if err := r.conn.acceptLiteral(r.lit.Size(), r.nonSync); err != nil {
		return r.fail(err)
	}
	return nil
}

// readHeader reads one message's flags, date and literal header.
func (r *AppendReader) readHeader() error {
	dec := r.dec
	r.options = imap.AppendOptions{}
	r.dataExt = false
	hasFlagList, err := dec.List(func() error {
		flag, err := internal.ExpectFlag(dec)
		if err != nil {
			return err
		}
		r.options.Flags = append(r.options.Flags, flag)
		return nil
	})
	if err != nil {
		return r.fail(err)
	}
	if hasFlagList && !dec.ExpectSP() {
		return r.fail(dec.Err())
	}

	t, err := internal.DecodeDateTime(dec)
	if err != nil {
		return r.fail(err)
	}
	if !t.IsZero() && !dec.ExpectSP() {
		return r.fail(dec.Err())
	}
	r.options.Time = t

	var dataExt string
	if !dec.Special('~') && dec.Atom(&dataExt) { // ignore literal8 prefix if any for BINARY
		switch strings.ToUpper(dataExt) {
		case "UTF8":
			// '~' is the literal8 prefix
			if !dec.ExpectSP() || !dec.ExpectSpecial('(') || !dec.ExpectSpecial('~') {
				return r.fail(dec.Err())
			}
			r.dataExt = true
		default:
			return r.fail(newClientBugError("Unknown APPEND data extension"))
		}
	}

	lit, nonSync, err := dec.ExpectLiteralReader()
	if err != nil {
		return r.fail(err)
	}
	r.lit, r.nonSync = lit, nonSync
	return nil
}

func (r *AppendReader) fail(err error) error {
	r.err = err
	return err
}

// finishMessage skips what the session left of the current literal.
func (r *AppendReader) finishMessage() error {
	if _, err := io.Copy(io.Discard, r.lit); err != nil {
		return r.fail(err)
	}
	if r.dataExt && !r.dec.ExpectSpecial(')') {
		return r.fail(r.dec.Err())
	}
	return nil
}

// drain ends the command after the session: it skips the messages left and
// reads the final CRLF, and returns cause, or else a syntax error. After a
// failure (cause), a further synchronizing literal is not asked for: the
// command ends there with cause (RFC 3502 §6.3.11), the client sends no
// more of it; a non-synchronizing one is already on its way and is skipped.
func (r *AppendReader) drain(cause error) error {
	if r.err != nil {
		return r.err
	}
	for !r.done {
		if err := r.finishMessage(); err != nil {
			return err
		}
		if !r.multi || !r.dec.SP() {
			break
		}
		if cause == nil {
			if err := r.readMessage(); err != nil {
				return err
			}
			continue
		}
		if err := r.readHeader(); err != nil {
			return err
		}
		if !r.nonSync {
			return cause
		}
	}
	if !r.dec.ExpectCRLF() {
		return r.dec.Err()
	}
	return cause
}

func (c *Conn) writeAppendOK(tag string, data *imap.AppendData) error {
	enc := newResponseEncoder(c)
	defer enc.end()

	enc.Atom(tag).SP().Atom("OK").SP()
	if data != nil {
		enc.Special('[')
		enc.Atom("APPENDUID").SP().Number(data.UIDValidity).SP()
		if len(data.UIDs) > 0 {
			enc.NumSet(data.UIDs)
		} else {
			enc.UID(data.UID)
		}
		enc.Special(']').SP()
	}
	enc.Text("APPEND completed")
	return enc.CRLF()
}
