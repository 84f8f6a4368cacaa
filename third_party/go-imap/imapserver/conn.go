package imapserver

import (
	"bufio"
	"compress/flate"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/internal/imapwire"
)

const (
	cmdReadTimeout     = 30 * time.Second
	idleReadTimeout    = 35 * time.Minute // section 5.4 says 30min minimum
	literalReadTimeout = 5 * time.Minute

	respWriteTimeout    = 30 * time.Second
	batchDeadlineEvery  = 64 // responses of a batch per move of the write deadline
	literalWriteTimeout = 5 * time.Minute

	maxCommandSize = 50 * 1024 // RFC 2683 section 3.2.1.5 says 8KiB minimum
)

var internalServerErrorResp = &imap.StatusResponse{
	Type: imap.StatusResponseTypeNo,
	Code: imap.ResponseCodeServerBug,
	Text: "Internal server error",
}

// A Conn represents an IMAP connection to the server.
type Conn struct {
	server   *Server
	rw       io.ReadWriter // what bw writes to
	rd       connReader    // what br reads from
	br       *bufio.Reader // nil while waiting for input: see waitInput
	bw       *bufio.Writer // nil between responses: see newResponseEncoder
	encMutex sync.Mutex
	first    firstReader

	// Postern: the connection's start (for Options.LoginTimeout), the
	// deadlines last set (see setDeadline), the text of the BYE said after
	// a read timed out (SetTimeoutBye), and the BYE that ends the
	// connection after a refused non-synchronizing literal.
	started    time.Time
	deadlines  [2]time.Time
	dlSet      [2]bool
	timeoutBye atomic.Pointer[string]
	byeAfter   string
	// The command being read: its name and how many literals it
	// announced so far; readingLiteral calls Options.ReadingLiteral.
	cmdName        string
	cmdLiterals    int
	readingLiteral func()

	// compressed: COMPRESS=DEFLATE is on (compress.go); fw is the
	// compressor bw writes to while a response is written, nil between
	// responses. Both guarded by encMutex.
	compressed bool
	fw         *flate.Writer
	// batched: responses stay in bw until one ends unbatched, the
	// command's tagged reply: a FETCH of thousands of messages is a few
	// writes, not one per message (Postern). batchN counts the batch's
	// responses. Guarded by encMutex.
	batched bool
	batchN  int

	mutex   sync.Mutex
	conn    net.Conn
	enabled imap.CapSet

	state   imap.ConnState
	session Session
}

func newConn(c net.Conn, server *Server) *Conn {
	rw := server.options.wrapReadWriter(c)
	conn := &Conn{
		conn:    c,
		server:  server,
		rw:      rw,
		rd:      connReader{r: rw},
		enabled: make(imap.CapSet),
		started: time.Now(),
	}
	if f := server.options.ReadingLiteral; f != nil {
		conn.readingLiteral = func() { f(conn) }
	}
	return conn
}

// connReader reads from the connection and keeps the first error (Postern):
// once a read failed (a timeout above all: an idle client, the login window,
// or a connection woken to end), the connection ends with a BYE
// (byeAfterReadError) instead of answering the command the failure
// interrupted.
type connReader struct {
	r   io.Reader
	err error
	// beforeRead is Options.ReadingLiteral's call while the command being
	// read has announced a literal, nil otherwise.
	beforeRead func()
}

func (cr *connReader) Read(p []byte) (int, error) {
	if cr.beforeRead != nil {
		cr.beforeRead()
	}
	n, err := cr.r.Read(p)
	if err != nil && cr.err == nil {
		cr.err = err
	}
	return n, err
}

// SetTimeoutBye sets the text of the BYE the connection says when a read
// fails with a timeout, "Autologout; idle for too long" by default. With a
// connection whose reads can be made to time out from another goroutine
// (a past read deadline), that is how it is ended politely: by the
// goroutine serving it, between two responses (Postern).
func (c *Conn) SetTimeoutBye(text string) {
	c.timeoutBye.Store(&text)
}

// readerPool holds the buffered readers of the connections waiting for
// input (Postern): see waitInput.
var readerPool = sync.Pool{
	New: func() any { return bufio.NewReader(nil) },
}

// waitInput waits for the next input (a command, or DONE after IDLE) without
// holding a read buffer, as most connections spend most of their time there
// (Postern). It gives the buffered reader back when it holds nothing, reads
// one octet (or an error), and takes a reader again that returns that octet
// (or error) first. c.br is not nil after it.
func (c *Conn) waitInput() {
	if c.br != nil {
		if c.br.Buffered() > 0 {
			return
		}
		c.putReader()
	}
	c.first.r = &c.rd
	c.first.n, c.first.err = c.rd.Read(c.first.buf[:])
	c.br = readerPool.Get().(*bufio.Reader)
	c.br.Reset(&c.first)
}

// putReader gives c.br back to the pool (Postern).
func (c *Conn) putReader() {
	c.br.Reset(nil)
	readerPool.Put(c.br)
	c.br = nil
}

// firstReader returns what waitInput read, then reads from r.
type firstReader struct {
	r   io.Reader
	buf [1]byte
	n   int
	err error
}

func (fr *firstReader) Read(p []byte) (int, error) {
	if fr.n == 0 && fr.err == nil || len(p) == 0 {
		return fr.r.Read(p)
	}
	n, err := copy(p, fr.buf[:fr.n]), fr.err
	fr.n, fr.err = 0, nil
	return n, err
}

// writerPool holds the buffered writers of the connections that are not
// writing a response. A connection takes one for each response and gives it
// back once the response is sent: most connections are idle most of the
// time, and need no write buffer then (Postern).
var writerPool = sync.Pool{
	New: func() any { return bufio.NewWriter(nil) },
}

// batchWriterPool holds the larger writers a batch (see Conn.batched)
// starts with: a FETCH of thousands of messages leaves in writes of
// batchWriterSize, not of bufio's 4 KiB, so the client reads it in fewer,
// fuller reads and the server makes a sixteenth of the system calls
// (Postern).
var batchWriterPool = sync.Pool{
	New: func() any { return bufio.NewWriterSize(nil, batchWriterSize) },
}

const batchWriterSize = 64 << 10

// NetConn returns the underlying connection that is wrapped by the IMAP
// connection.
//
// Writing to or reading from this connection directly will corrupt the IMAP
// session.
func (c *Conn) NetConn() net.Conn {
	c.mutex.Lock()
	defer c.mutex.Unlock()
	return c.conn
}

// Bye terminates the IMAP connection.
func (c *Conn) Bye(text string) error {
	// Postern: unbatched, the BYE goes out, with what a batch holds, before
	// the connection closes.
	c.batch(false)
	respErr := c.writeStatusResp("", &imap.StatusResponse{
		Type: imap.StatusResponseTypeBye,
		Text: text,
	})
	closeErr := c.conn.Close()
	if respErr != nil {
		return respErr
	}
	return closeErr
}

// Enabled reports whether the client enabled cap (ENABLE, RFC 5161), or
// one that implies it (QRESYNC implies CONDSTORE), or, for CONDSTORE, used
// a command that enables it (RFC 7162 §3.1).
func (c *Conn) Enabled(cap imap.Cap) bool {
	c.mutex.Lock()
	defer c.mutex.Unlock()
	return c.enabled.Has(cap)
}

func (c *Conn) EnabledCaps() imap.CapSet {
	c.mutex.Lock()
	defer c.mutex.Unlock()

	return c.enabled.Copy()
}

func (c *Conn) serve() {
	defer func() {
		if v := recover(); v != nil {
			c.server.logger().Printf("panic handling command: %v\n%s", v, debug.Stack())
		}

		// Postern: output held back (a BYE waiting for LOGOUT's tagged
		// reply, see handleLogout) goes out before the close.
		c.encMutex.Lock()
		if c.bw != nil {
			c.bw.Flush()
		}
		c.encMutex.Unlock()
		c.conn.Close()
		// Postern: the read buffer goes back to the pool (see waitInput)
		// when the connection ends too, or every connection would take a
		// new one. Nothing reads c.br after serve.
		if c.br != nil {
			c.putReader()
		}
	}()

	c.server.mutex.Lock()
	c.server.conns[c] = struct{}{}
	c.server.mutex.Unlock()
	defer func() {
		c.server.mutex.Lock()
		delete(c.server.conns, c)
		c.server.mutex.Unlock()
	}()

	var (
		greetingData *GreetingData
		err          error
	)
	c.session, greetingData, err = c.server.options.NewSession(c)
	if err != nil {
		var (
			resp    *imap.StatusResponse
			imapErr *imap.Error
		)
		if errors.As(err, &imapErr) && imapErr.Type == imap.StatusResponseTypeBye {
			resp = (*imap.StatusResponse)(imapErr)
		} else {
			c.server.logger().Printf("failed to create session: %v", err)
			resp = internalServerErrorResp
		}
		if err := c.writeStatusResp("", resp); err != nil {
			c.server.logger().Printf("failed to write greeting: %v", err)
		}
		return
	}

	defer func() {
		if c.session != nil {
			if err := c.session.Close(); err != nil {
				c.server.logger().Printf("failed to close session: %v", err)
			}
		}
	}()

	caps := c.server.options.caps()
	if _, ok := c.session.(SessionIMAP4rev2); !ok && caps.Has(imap.CapIMAP4rev2) {
		panic("imapserver: server advertises IMAP4rev2 but session doesn't support it")
	}
	if _, ok := c.session.(SessionNamespace); !ok && caps.Has(imap.CapNamespace) {
		panic("imapserver: server advertises NAMESPACE but session doesn't support it")
	}
	if _, ok := c.session.(SessionMove); !ok && caps.Has(imap.CapMove) {
		panic("imapserver: server advertises MOVE but session doesn't support it")
	}
	if _, ok := c.session.(SessionCondStore); !ok && caps.Has(imap.CapCondStore) {
		panic("imapserver: server advertises CONDSTORE but session doesn't support it")
	}
	if _, ok := c.session.(SessionUnauthenticate); !ok && caps.Has(imap.CapUnauthenticate) {
		panic("imapserver: server advertises UNAUTHENTICATE but session doesn't support it")
	}

	c.state = imap.ConnStateNotAuthenticated
	statusType := imap.StatusResponseTypeOK
	if greetingData != nil && greetingData.PreAuth {
		c.state = imap.ConnStateAuthenticated
		statusType = imap.StatusResponseTypePreAuth
	}
	if err := c.writeCapabilityStatus("", statusType, "IMAP server ready"); err != nil {
		c.server.logger().Printf("failed to write greeting: %v", err)
		return
	}

	for {
		var readTimeout time.Duration
		switch c.state {
		case imap.ConnStateAuthenticated, imap.ConnStateSelected:
			readTimeout = idleReadTimeout
		default:
			readTimeout = cmdReadTimeout
		}
		c.setReadTimeout(readTimeout)

		if c.state == imap.ConnStateLogout {
			break
		}
		c.cmdName, c.cmdLiterals, c.rd.beforeRead = "", 0, nil
		c.waitInput()

		dec := imapwire.NewDecoder(c.br, imapwire.ConnSideServer)
		dec.MaxSize = maxCommandSize
		if lim := &c.server.options.Limits; lim.on() {
			dec.MaxSize = lim.MaxCommand
			dec.MaxLine = lim.MaxLine
			dec.StrictBytes = true
			dec.LiteralFunc = c.checkLiteral
		}
		dec.UTF8 = c.enabled.Has(imap.CapIMAP4rev2) || c.enabled.Has(imap.CapUTF8Accept)
		dec.CheckBufferedLiteralFunc = c.checkBufferedLiteral

		if dec.EOF() {
			break
		}

		c.setReadTimeout(cmdReadTimeout)
		if err := c.readCommand(dec); err != nil {
			if !errors.Is(err, net.ErrClosed) && !errors.Is(err, errConnEnded) && c.rd.err == nil {
				c.server.logger().Printf("failed to read command: %v", err)
			}
			break
		}
	}
	c.byeAfterReadError()
}

// errConnEnded ends serve after the connection said BYE for a broken limit
// (Postern).
var errConnEnded = errors.New("imapserver: connection ended")

// byeAfterReadError says BYE when a read timed out (RFC 9051 §7.1.5):
// the client was silent too long, or the connection was woken to end
// (SetTimeoutBye) (Postern).
func (c *Conn) byeAfterReadError() {
	var ne net.Error
	if c.state == imap.ConnStateLogout || !errors.As(c.rd.err, &ne) || !ne.Timeout() {
		return
	}
	text := "Autologout; idle for too long"
	if t := c.timeoutBye.Load(); t != nil {
		text = *t
	}
	c.state = imap.ConnStateLogout
	c.writeStatusResp("", &imap.StatusResponse{Type: imap.StatusResponseTypeBye, Text: text})
}

// endWithBye says BYE and ends the connection (Postern).
func (c *Conn) endWithBye(text string) error {
	c.server.logger().Printf("connection closed: %v", text)
	c.state = imap.ConnStateLogout
	if err := c.writeStatusResp("", &imap.StatusResponse{Type: imap.StatusResponseTypeBye, Text: text}); err != nil {
		return err
	}
	return errConnEnded
}

// answerLimit answers a command that broke a limit of Options.Limits
// (Postern): the input that broke it was not used, so the reply is the
// limit's, whatever the command's parser made of the failed read.
func (c *Conn) answerLimit(tag string, dec *imapwire.Decoder) error {
	lerr := dec.LimitErr()
	var imapErr *imap.Error
	switch {
	case errors.Is(lerr, imapwire.ErrLineTooLong):
		return c.endWithBye("Line too long")
	case errors.Is(lerr, imapwire.ErrCommandTooLong):
		return c.endWithBye("Command too long")
	case errors.Is(lerr, imapwire.ErrBadBytes):
		if tag == "" {
			return c.endWithBye("Protocol error")
		}
		if !dec.DiscardLineAfterLimit() {
			if c.rd.err != nil {
				return c.rd.err
			}
			return c.endWithBye("Line too long")
		}
		return c.writeStatusResp(tag, &imap.StatusResponse{
			Type: imap.StatusResponseTypeBad,
			Code: imap.ResponseCodeClientBug,
			Text: "NUL and bare CR are not allowed in a command",
		})
	case errors.As(lerr, &imapErr):
		if err := c.writeStatusResp(tag, (*imap.StatusResponse)(imapErr)); err != nil {
			return err
		}
		if c.byeAfter != "" {
			return c.endWithBye(c.byeAfter)
		}
		return nil
	}
	return lerr
}

// checkLiteral applies Options.Limits to a literal announcement, before
// anything is read or sent for it (Postern).
func (c *Conn) checkLiteral(size int64, nonSync bool) error {
	c.cmdLiterals++
	err := c.literalRefusal(size, nonSync)
	if err != nil {
		if nonSync {
			// RFC 7888 §4: the literal is already on its way, so after
			// the refusal the connection ends.
			c.byeAfter = "Literal too big"
		}
		return err
	}
	// From here to the command's end the client may be waiting for an
	// ACK: asked for now, and before each read.
	if c.readingLiteral != nil {
		c.readingLiteral()
	}
	c.rd.beforeRead = c.readingLiteral
	return nil
}

func (c *Conn) literalRefusal(size int64, nonSync bool) error {
	lim := &c.server.options.Limits
	limit := lim.MaxLiteral
	if c.state == imap.ConnStateNotAuthenticated {
		limit = lim.MaxLiteralNotAuthenticated
	}
	if nonSync {
		// Only APPEND streams its literals (up to the message size); the
		// other commands' are strings go-imap buffers, at most 4 KiB.
		max := int64(4096)
		if c.cmdName == "APPEND" && c.server.options.caps().Has(imap.CapLiteralPlus) && (limit == 0 || limit > max) {
			max = limit
		}
		if max > 0 && size > max {
			return &imap.Error{
				Type: imap.StatusResponseTypeBad,
				Code: imap.ResponseCodeTooBig,
				Text: "Non-synchronizing literal too big",
			}
		}
		return nil
	}
	if c.cmdLiterals > 1 || limit <= 0 || size <= limit {
		// A later literal of the command (a MULTIAPPEND's next message, a
		// LOGIN's password) meets the command's own bound before its "+".
		return nil
	}
	if c.state == imap.ConnStateNotAuthenticated {
		return &imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeTooBig, Text: "Literal too big"}
	}
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTooBig, Text: "Literal too big"}
}

func (c *Conn) readCommand(dec *imapwire.Decoder) error {
	var tag, name string
	if !dec.ExpectAtom(&tag) || !dec.ExpectSP() || !dec.ExpectAtom(&name) {
		if dec.LimitErr() != nil {
			return c.answerLimit(tag, dec)
		}
		return fmt.Errorf("in command: %w", dec.Err())
	}
	name = strings.ToUpper(name)

	numKind := NumKindSeq
	if name == "UID" {
		numKind = NumKindUID
		var subName string
		if !dec.ExpectSP() || !dec.ExpectAtom(&subName) {
			if dec.LimitErr() != nil {
				return c.answerLimit(tag, dec)
			}
			return fmt.Errorf("in command: %w", dec.Err())
		}
		name = "UID " + strings.ToUpper(subName)
	}
	c.cmdName = name

	// Postern: after login, a command's responses wait in the buffer for
	// its tagged reply, as Dovecot corks its output: SELECT's eight
	// untagged lines, the updates before a reply and the reply are one
	// write, not one per line (a socket write per line was a tenth of the
	// server's CPU under imaptest). Continuation requests go out at once
	// (writeContReq), as does a BYE (Bye). IDLE, AUTHENTICATE, STARTTLS
	// and COMPRESS answer as they go.
	if c.state == imap.ConnStateAuthenticated || c.state == imap.ConnStateSelected {
		switch name {
		case "IDLE", "AUTHENTICATE", "STARTTLS", "COMPRESS":
		default:
			c.batch(true)
			defer c.endBatch()
		}
	}

	// TODO: handle multiple commands concurrently
	sendOK := true
	var err error
	switch name {
	case "NOOP", "CHECK":
		err = c.handleNoop(dec)
	case "LOGOUT":
		err = c.handleLogout(dec)
	case "CAPABILITY":
		err = c.handleCapability(dec)
	case "STARTTLS":
		err = c.handleStartTLS(tag, dec)
		sendOK = false
	case "AUTHENTICATE":
		err = c.handleAuthenticate(tag, dec)
		sendOK = false
	case "UNAUTHENTICATE":
		err = c.handleUnauthenticate(dec)
	case "LOGIN":
		err = c.handleLogin(tag, dec)
		sendOK = false
	case "ENABLE":
		err = c.handleEnable(dec)
	case "CREATE":
		err = c.handleCreate(dec)
	case "DELETE":
		err = c.handleDelete(dec)
	case "RENAME":
		err = c.handleRename(dec)
	case "SUBSCRIBE":
		err = c.handleSubscribe(dec)
	case "UNSUBSCRIBE":
		err = c.handleUnsubscribe(dec)
	case "STATUS":
		err = c.handleStatus(dec)
	case "LIST":
		err = c.handleList(dec)
	case "LSUB":
		err = c.handleLSub(dec)
	case "NAMESPACE":
		err = c.handleNamespace(dec)
	case "ID":
		err = c.handleID(dec)
	case "GETQUOTAROOT":
		err = c.handleGetQuotaRoot(dec)
	case "GETQUOTA":
		err = c.handleGetQuota(dec)
	case "SETQUOTA":
		err = c.handleSetQuota(dec)
	case "IDLE":
		err = c.handleIdle(dec)
	case "SELECT", "EXAMINE":
		err = c.handleSelect(tag, dec, name == "EXAMINE")
		sendOK = false
	case "CLOSE", "UNSELECT":
		err = c.handleUnselect(dec, name == "CLOSE")
	case "APPEND":
		err = c.handleAppend(tag, dec)
		sendOK = false
	case "FETCH", "UID FETCH":
		err = c.handleFetch(dec, numKind)
	case "EXPUNGE":
		err = c.handleExpunge(dec)
	case "UID EXPUNGE":
		err = c.handleUIDExpunge(dec)
	case "STORE", "UID STORE":
		err = c.handleStore(tag, dec, numKind)
		sendOK = false
	case "COPY", "UID COPY":
		err = c.handleCopy(tag, dec, numKind)
		sendOK = false
	case "MOVE", "UID MOVE":
		err = c.handleMove(dec, numKind)
	case "SEARCH", "UID SEARCH":
		err = c.handleSearch(tag, dec, numKind)
	case "SORT", "UID SORT":
		err = c.handleSort(dec, numKind)
	case "THREAD", "UID THREAD":
		err = c.handleThread(dec, numKind)
	case "COMPRESS":
		err = c.handleCompress(tag, dec)
		sendOK = false
	default:
		if c.state == imap.ConnStateNotAuthenticated {
			// Don't allow a single unknown command before authentication to
			// mitigate cross-protocol attacks:
			// https://www-archive.mozilla.org/projects/netlib/portbanning
			c.state = imap.ConnStateLogout
			defer c.Bye("Unknown command")
		}
		err = &imap.Error{
			Type: imap.StatusResponseTypeBad,
			Text: "Unknown command",
		}
	}

	dec.DiscardLine()
	if dec.LimitErr() != nil {
		return c.answerLimit(tag, dec)
	}

	var (
		resp    *imap.StatusResponse
		imapErr *imap.Error
		decErr  *imapwire.DecoderExpectError
	)
	if c.rd.err != nil && err != nil {
		// Postern: the connection failed under the command (or was woken
		// to end): no reply, the connection ends (byeAfterReadError).
		return err
	} else if errors.As(err, &imapErr) {
		resp = (*imap.StatusResponse)(imapErr)
	} else if errors.As(err, &decErr) {
		resp = &imap.StatusResponse{
			Type: imap.StatusResponseTypeBad,
			Code: imap.ResponseCodeClientBug,
			Text: "Syntax error: " + decErr.Message,
		}
	} else if err != nil {
		c.server.logger().Printf("handling %v command: %v", name, err)
		resp = internalServerErrorResp
	} else {
		if !sendOK {
			return nil
		}
		if err := c.poll(name); err != nil {
			return err
		}
		resp = &imap.StatusResponse{
			Type: imap.StatusResponseTypeOK,
			Text: fmt.Sprintf("%v completed", name),
		}
	}
	return c.writeStatusResp(tag, resp)
}

func (c *Conn) handleNoop(dec *imapwire.Decoder) error {
	if !dec.ExpectCRLF() {
		return dec.Err()
	}
	if s, ok := c.session.(SessionNoop); ok && c.state == imap.ConnStateSelected {
		s.Noop()
	}
	return nil
}

func (c *Conn) handleLogout(dec *imapwire.Decoder) error {
	if !dec.ExpectCRLF() {
		return dec.Err()
	}

	c.state = imap.ConnStateLogout

	// Postern: the BYE waits in the buffer for the tagged reply, so that
	// LOGOUT costs one write.
	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Hold, enc.keep = true, true
	return writeStatusResp(enc.Encoder, "", &imap.StatusResponse{
		Type: imap.StatusResponseTypeBye,
		Text: "Logging out",
	})
}

func (c *Conn) handleDelete(dec *imapwire.Decoder) error {
	var name string
	if !dec.ExpectSP() || !dec.ExpectMailbox(&name) || !dec.ExpectCRLF() {
		return dec.Err()
	}
	if err := c.checkState(imap.ConnStateAuthenticated); err != nil {
		return err
	}
	return c.session.Delete(name)
}

func (c *Conn) handleRename(dec *imapwire.Decoder) error {
	var oldName, newName string
	if !dec.ExpectSP() || !dec.ExpectMailbox(&oldName) || !dec.ExpectSP() || !dec.ExpectMailbox(&newName) || !dec.ExpectCRLF() {
		return dec.Err()
	}
	if err := c.checkState(imap.ConnStateAuthenticated); err != nil {
		return err
	}
	var options imap.RenameOptions
	return c.session.Rename(oldName, newName, &options)
}

func (c *Conn) handleSubscribe(dec *imapwire.Decoder) error {
	var name string
	if !dec.ExpectSP() || !dec.ExpectMailbox(&name) || !dec.ExpectCRLF() {
		return dec.Err()
	}
	if err := c.checkState(imap.ConnStateAuthenticated); err != nil {
		return err
	}
	return c.session.Subscribe(name)
}

func (c *Conn) handleUnsubscribe(dec *imapwire.Decoder) error {
	var name string
	if !dec.ExpectSP() || !dec.ExpectMailbox(&name) || !dec.ExpectCRLF() {
		return dec.Err()
	}
	if err := c.checkState(imap.ConnStateAuthenticated); err != nil {
		return err
	}
	return c.session.Unsubscribe(name)
}

func (c *Conn) checkBufferedLiteral(size int64, nonSync bool) error {
	if size > 4096 {
		// Postern: BAD, as a literal over Options.Limits before login.
		return &imap.Error{
			Type: imap.StatusResponseTypeBad,
			Code: imap.ResponseCodeTooBig,
			Text: "Literals are limited to 4096 octets for this command",
		}
	}

	return c.acceptLiteral(size, nonSync)
}

func (c *Conn) acceptLiteral(size int64, nonSync bool) error {
	if nonSync && size > 4096 && !c.server.options.caps().Has(imap.CapLiteralPlus) {
		return &imap.Error{
			Type: imap.StatusResponseTypeBad,
			Text: "Non-synchronizing literals are limited to 4096 bytes",
		}
	}

	if nonSync {
		return nil
	}

	return c.writeContReq("Ready for literal data")
}

func (c *Conn) canAuth() bool {
	if c.state != imap.ConnStateNotAuthenticated {
		return false
	}
	_, isTLS := c.conn.(*tls.Conn)
	if isTLS {
		return true
	}
	if f := c.server.options.InsecureAuthFunc; f != nil {
		return f(c)
	}
	return c.server.options.InsecureAuth
}

func (c *Conn) writeStatusResp(tag string, statusResp *imap.StatusResponse) error {
	enc := newResponseEncoder(c)
	defer enc.end()
	return writeStatusResp(enc.Encoder, tag, statusResp)
}

func (c *Conn) writeContReq(text string) error {
	// Postern: the client waits for it, so it goes out with what a batch
	// holds before it, and the batch goes on after.
	c.encMutex.Lock()
	batched := c.batched
	c.batched = false
	c.encMutex.Unlock()
	if batched {
		defer func() {
			c.encMutex.Lock()
			c.batched = true
			c.encMutex.Unlock()
		}()
	}
	enc := newResponseEncoder(c)
	defer enc.end()
	return writeContReq(enc.Encoder, text)
}

func (c *Conn) writeCapabilityStatus(tag string, typ imap.StatusResponseType, text string) error {
	enc := newResponseEncoder(c)
	defer enc.end()
	var buf [capBuf]imap.Cap
	return writeCapabilityStatus(enc.Encoder, tag, typ, c.availableCaps(buf[:0]), text)
}

func (c *Conn) checkState(state imap.ConnState) error {
	if state == imap.ConnStateAuthenticated && c.state == imap.ConnStateSelected {
		return nil
	}
	if c.state != state {
		return newClientBugError(fmt.Sprintf("This command is only valid in the %s state", state))
	}
	return nil
}

func (c *Conn) setReadTimeout(dur time.Duration) {
	var t time.Time
	if dur > 0 {
		t = time.Now().Add(dur)
	}
	// Postern: Options.LoginTimeout bounds the whole not authenticated
	// state, so that NOOPs cannot hold a connection open for ever.
	if lt := c.server.options.LoginTimeout; lt > 0 && c.state == imap.ConnStateNotAuthenticated {
		if end := c.started.Add(lt); t.IsZero() || t.After(end) {
			t = end
		}
	}
	c.setDeadline(readDeadline, t)
}

func (c *Conn) setWriteTimeout(dur time.Duration) {
	var t time.Time
	if dur > 0 {
		t = time.Now().Add(dur)
	}
	c.setDeadline(writeDeadline, t)
}

const (
	readDeadline = iota
	writeDeadline
)

// setDeadline sets the read or write deadline, except when it only extends
// the one in force by less than a second (Postern): both are set before
// every command and response, and each costs a timer update in the runtime
// (3% of a login's CPU). A deadline may thus fall up to a second early.
// Read deadlines are set by the serving goroutine only, write deadlines
// under encMutex.
func (c *Conn) setDeadline(kind int, t time.Time) {
	cur := c.deadlines[kind]
	if c.dlSet[kind] && !t.IsZero() && !cur.IsZero() && !t.Before(cur) && t.Sub(cur) < time.Second {
		return
	}
	c.deadlines[kind], c.dlSet[kind] = t, true
	if kind == readDeadline {
		c.conn.SetReadDeadline(t)
	} else {
		c.conn.SetWriteDeadline(t)
	}
}

func (c *Conn) poll(cmd string) error {
	switch c.state {
	case imap.ConnStateAuthenticated, imap.ConnStateSelected:
		// nothing to do
	default:
		return nil
	}

	allowExpunge := true
	switch cmd {
	case "FETCH", "STORE", "SEARCH", "SORT", "THREAD":
		allowExpunge = false
	}

	w := &UpdateWriter{conn: c, allowExpunge: allowExpunge}
	return c.session.Poll(w, allowExpunge)
}

type responseEncoder struct {
	*imapwire.Encoder
	conn *Conn
	// keep: the response is not sent at end, but with the next one
	// (Postern).
	keep bool
}

func newResponseEncoder(conn *Conn) *responseEncoder {
	enc := new(responseEncoder)
	initResponseEncoder(conn, enc, new(imapwire.Encoder))
	return enc
}

// initResponseEncoder makes enc, writing through wire, the connection's
// response encoder, as newResponseEncoder does: a caller that writes many
// responses allocates them together (Postern: FETCH).
func initResponseEncoder(conn *Conn, enc *responseEncoder, wire *imapwire.Encoder) {
	conn.mutex.Lock()
	quotedUTF8 := conn.enabled.Has(imap.CapIMAP4rev2) || conn.enabled.Has(imap.CapUTF8Accept)
	conn.mutex.Unlock()

	conn.encMutex.Lock() // released by responseEncoder.end
	if conn.bw == nil {
		if conn.batched {
			conn.bw = batchWriterPool.Get().(*bufio.Writer)
		} else {
			conn.bw = writerPool.Get().(*bufio.Writer)
		}
		if conn.compressed {
			conn.fw = getFlateWriter(conn.rw)
			conn.bw.Reset(conn.fw)
		} else {
			conn.bw.Reset(conn.rw)
		}
	}
	*wire = *imapwire.NewEncoder(conn.bw, imapwire.ConnSideServer)
	wire.QuotedUTF8 = quotedUTF8
	// Compressed, lines wait in the buffer until the response is over
	// (end): a sync flush per line would cost a write and 5 octets each.
	wire.Hold = conn.compressed || conn.batched

	// In a batch the write deadline moves every batchDeadlineEvery
	// responses: reading the clock for each was a fifth of the CPU of a
	// FETCH of many small responses (Postern).
	if !conn.batched || conn.batchN%batchDeadlineEvery == 0 {
		conn.setWriteTimeout(respWriteTimeout)
	}
	if conn.batched {
		conn.batchN++
	}
	*enc = responseEncoder{Encoder: wire, conn: conn}
}

func (enc *responseEncoder) end() {
	if enc.Encoder == nil {
		panic("imapserver: responseEncoder.end called twice")
	}
	enc.Encoder = nil
	c := enc.conn
	// Send the response and give the writer back, unless it is held for
	// the next response (handleLogout) or holds a write error (which
	// bufio.Writer keeps and Flush returns): the next response must meet
	// it as it would with a writer of its own. Compressed, the response
	// ends with a sync flush (RFC 4978 §4), and the compressor goes back
	// too, unless it failed.
	if !enc.keep && !c.batched {
		c.send()
	}
	// A batch's responses share one write deadline, cleared when the
	// command's tagged reply ends the batch: clearing and setting it again
	// per message cost two runtime timer updates per FETCH response
	// (Postern).
	if !c.batched {
		c.setWriteTimeout(0)
	}
	c.encMutex.Unlock()
}

// batch makes the responses that follow wait in the buffer (see batched)
// until it is undone; the buffer still goes out whenever it is full.
func (c *Conn) batch(on bool) {
	c.encMutex.Lock()
	c.batched, c.batchN = on, 0
	c.encMutex.Unlock()
}

// endBatch ends the batch of a command (readCommand) and sends what it
// holds, if its tagged reply did not: a handler that wrote its own reply
// wrote it batched.
func (c *Conn) endBatch() {
	c.encMutex.Lock()
	defer c.encMutex.Unlock()
	c.batched, c.batchN = false, 0
	if c.bw != nil {
		c.send()
	}
	c.setWriteTimeout(0)
}

// send writes out what the response writer holds and gives it back, with
// the compressor, unless a write failed: bufio.Writer keeps the error and
// Flush returns it, so the writer stays for the next response to meet it
// as it would with a writer of its own. Called with encMutex held.
func (c *Conn) send() {
	if c.bw.Flush() != nil || c.fw != nil && c.fw.Flush() != nil {
		return
	}
	if c.fw != nil {
		putFlateWriter(c.fw)
		c.fw = nil
	}
	putWriter(c.bw)
	c.bw = nil
}

// putWriter gives a response writer back to the pool it came from.
func putWriter(bw *bufio.Writer) {
	bw.Reset(nil)
	if bw.Size() == batchWriterSize {
		batchWriterPool.Put(bw)
	} else {
		writerPool.Put(bw)
	}
}

// flush sends what the response wrote so far, for a response that waits
// for the client before it ends (AUTHENTICATE's challenges): compressed,
// lines wait in the buffer and the compressor until end (Postern).
func (enc *responseEncoder) flush() error {
	if err := enc.conn.bw.Flush(); err != nil {
		return err
	}
	if enc.conn.fw != nil {
		return enc.conn.fw.Flush()
	}
	return nil
}

func (enc *responseEncoder) Literal(size int64) io.WriteCloser {
	enc.conn.setWriteTimeout(literalWriteTimeout)
	return literalWriter{
		WriteCloser: enc.Encoder.Literal(size, nil),
		conn:        enc.conn,
	}
}

type literalWriter struct {
	io.WriteCloser
	conn *Conn
}

func (lw literalWriter) Close() error {
	lw.conn.setWriteTimeout(respWriteTimeout)
	return lw.WriteCloser.Close()
}

func writeStatusResp(enc *imapwire.Encoder, tag string, statusResp *imap.StatusResponse) error {
	if tag == "" {
		tag = "*"
	}
	enc.Atom(tag).SP().Atom(string(statusResp.Type)).SP()
	if statusResp.Code != "" {
		enc.Atom(fmt.Sprintf("[%v]", statusResp.Code)).SP()
	}
	enc.Text(statusResp.Text)
	return enc.CRLF()
}

func writeCapabilityOK(enc *imapwire.Encoder, tag string, caps []imap.Cap, text string) error {
	return writeCapabilityStatus(enc, tag, imap.StatusResponseTypeOK, caps, text)
}

func writeCapabilityStatus(enc *imapwire.Encoder, tag string, typ imap.StatusResponseType, caps []imap.Cap, text string) error {
	if tag == "" {
		tag = "*"
	}

	enc.Atom(tag).SP().Atom(string(typ)).SP().Special('[').Atom("CAPABILITY")
	for _, c := range caps {
		enc.SP().Atom(string(c))
	}
	enc.Special(']').SP().Text(text)
	return enc.CRLF()
}

func writeContReq(enc *imapwire.Encoder, text string) error {
	return enc.Atom("+").SP().Text(text).CRLF()
}

func newClientBugError(text string) error {
	return &imap.Error{
		Type: imap.StatusResponseTypeBad,
		Code: imap.ResponseCodeClientBug,
		Text: text,
	}
}

// UpdateWriter writes status updates.
type UpdateWriter struct {
	conn         *Conn
	allowExpunge bool
}

// WriteExpunge writes an EXPUNGE response.
func (w *UpdateWriter) WriteExpunge(seqNum uint32) error {
	if !w.allowExpunge {
		return fmt.Errorf("imapserver: EXPUNGE updates are not allowed in this context")
	}
	return w.conn.writeExpunge(seqNum)
}

// WriteNumMessages writes an EXISTS response.
func (w *UpdateWriter) WriteNumMessages(n uint32) error {
	return w.conn.writeExists(n)
}

// WriteNumRecent writes an RECENT response (not used in IMAP4rev2, will be ignored).
func (w *UpdateWriter) WriteNumRecent(n uint32) error {
	if w.conn.enabled.Has(imap.CapIMAP4rev2) || !w.conn.server.options.caps().Has(imap.CapIMAP4rev1) {
		return nil
	}
	return w.conn.writeObsoleteRecent(n)
}

// WriteMailboxFlags writes a FLAGS response.
func (w *UpdateWriter) WriteMailboxFlags(flags []imap.Flag) error {
	return w.conn.writeFlags(flags)
}

// WritePermanentFlags writes an OK [PERMANENTFLAGS] response: with FLAGS,
// how a session announces a keyword before the first FETCH that shows it
// (RFC 3501 §7.2.6).
func (w *UpdateWriter) WritePermanentFlags(flags []imap.Flag) error {
	return w.conn.writePermanentFlags(flags)
}

// WriteMessageFlags writes a FETCH response with FLAGS.
func (w *UpdateWriter) WriteMessageFlags(seqNum uint32, uid imap.UID, flags []imap.Flag) error {
	fetchWriter := &FetchWriter{conn: w.conn}
	respWriter := fetchWriter.CreateMessage(seqNum)
	if uid != 0 {
		respWriter.WriteUID(uid)
	}
	respWriter.WriteFlags(flags)
	return respWriter.Close()
}
