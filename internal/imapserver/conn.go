package imapserver

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/postern/postern/internal/netserver"
)

// Timeouts. go-imap adds its own: 30 s to finish a command, 30 s of silence
// before login and 35 min after it (RFC 9051 §5.4 asks for at least 30 min,
// IDLE included).
const (
	handshakeTimeout = 30 * time.Second
	// defaultLoginWindow bounds the whole unauthenticated phase, so that a
	// client cannot hold a connection open for ever with NOOPs and no login.
	defaultLoginWindow = 3 * time.Minute
	guardWrite         = 10 * time.Second
)

// Read modes of the guard.
const (
	modeLine    = iota // reading lines
	modeLiteral        // passing litLeft octets of literal data through
	modeAwait          // a synchronizing literal was announced: what did go-imap answer?
)

// What go-imap wrote while the guard awaited its answer to a literal.
const (
	obsNone  = iota
	obsCont  // "+": the literal is accepted
	obsOther // a tagged reply: the command is over, the literal will not come
)

var errGuardClosed = errors.New("imapserver: connection closed by the input guard")

// connState is one client connection. go-imap serves it through a vconn; the
// pre-STARTTLS and post-STARTTLS conversations are two go-imap connections
// (see handleStartTLS) sharing this state.
//
// Its read side is the input guard: it hands go-imap one line, or one
// literal, at a time, after checking it against the limits in frame.go. Line
// at a time also means that go-imap's buffered reader never holds input past
// the command being run, which is what makes STARTTLS injection
// (CVE-2011-0411, CVE-2021-33515) impossible: the plaintext sent after
// STARTTLS sits in the guard's buffer, which is thrown away.
type connState struct {
	srv      *Server
	raw      net.Conn
	remoteIP netip.Addr
	started  time.Time

	wmu       sync.Mutex // serializes writes; close never waits for it
	dmu       sync.Mutex
	deadlines [2]time.Time // go-imap's last read and write deadlines as set (setDeadline); guarded by dmu
	dlKnown   [2]bool      // false: unknown (the guard set its own), so the next one is set
	held      []byte       // an untagged BYE not yet sent (write); guarded by wmu
	tmu       sync.Mutex
	transport net.Conn // raw or *tls.Conn; replaced under tmu at STARTTLS
	isTLS     atomic.Bool
	authed    atomic.Bool
	closeOnce sync.Once

	// Read side: used only by the goroutine go-imap reads from.
	rbuf     []byte
	rpos     int
	pending  []byte
	mode     int
	litLeft  int64
	cmdStart bool
	cmdBytes int
	cmdTag   string // the current command's tag and name, from its first line
	cmdName  string
	obs      atomic.Int32
	awaiting atomic.Bool
	failed   error // set once the guard closed the connection

	sess atomic.Pointer[session] // set once go-imap has the connection: shutdown says BYE through it
}

// logger returns the server's logger with the client's address. It is made
// when something is logged, which most connections never do: slog's With
// allocates a handler, a few per cent of a login's CPU when done for every
// connection.
func (st *connState) logger() *slog.Logger {
	return st.srv.log.With("remote", st.remoteIP.String())
}

func newConnState(s *Server, raw net.Conn) *connState {
	return &connState{srv: s, raw: raw, transport: raw, started: time.Now(), cmdStart: true, remoteIP: netserver.RemoteIP(raw)}
}

func (st *connState) conn() net.Conn {
	st.tmu.Lock()
	defer st.tmu.Unlock()
	return st.transport
}

// shutdown ends the connection when the server closes: a connection served by
// go-imap is told BYE first (RFC 9051 §7.1.5), the others are cut at once.
func (st *connState) shutdown() {
	if s := st.sess.Load(); s != nil {
		// Close waits for these BYEs (a second at most) before it stops go-imap.
		st.srv.byes.Add(1)
		go func() {
			defer st.srv.byes.Done()
			s.endWait("Server shutting down")
		}()
		return
	}
	st.abort()
}

// abort cuts the connection at once: a write stuck on a client that does
// not read, or TLS's close_notify, cannot delay it.
func (st *connState) abort() {
	st.raw.Close()
	st.close()
}

func (st *connState) close() error {
	var err error
	st.closeOnce.Do(func() {
		st.sendHeld()
		err = st.conn().Close()
		st.raw.Close()
		st.srv.conns.Untrack(st)
	})
	return err
}

// write sends p to the client and, while the guard awaits go-imap's answer
// to a synchronizing literal, notes whether it was "+".
//
// An untagged BYE is held back and sent with what follows it: the tagged
// completion of LOGOUT, or nothing before the close (RFC 9051 §7.1.5: the
// server closes after BYE, so nothing else waits for it). LOGOUT then costs
// one write instead of two, as in a server that buffers its output.
func (st *connState) write(p []byte) (int, error) {
	if st.awaiting.Load() && len(p) > 0 && st.obs.Load() == obsNone {
		if p[0] == '+' {
			st.obs.Store(obsCont)
		} else {
			st.obs.Store(obsOther)
		}
	}
	st.wmu.Lock()
	defer st.wmu.Unlock()
	if st.held == nil && bytes.HasPrefix(p, bye) {
		st.held = bytes.Clone(p)
		return len(p), nil
	}
	if st.held != nil {
		buf := append(st.held, p...)
		st.held = nil
		n, err := st.conn().Write(buf)
		return max(n-(len(buf)-len(p)), 0), err
	}
	return st.conn().Write(p)
}

var bye = []byte("* BYE ")

// sendHeld sends a held BYE before the close, unless a write is stuck (the
// connection is being cut then, and close must not wait).
func (st *connState) sendHeld() {
	if !st.wmu.TryLock() {
		return
	}
	defer st.wmu.Unlock()
	if st.held != nil {
		c := st.conn()
		c.SetWriteDeadline(time.Now().Add(guardWrite))
		c.Write(st.held)
		st.held = nil
	}
}

// reply writes a response of the guard's own.
func (st *connState) reply(s string) {
	c := st.conn()
	c.SetWriteDeadline(time.Now().Add(guardWrite))
	st.write([]byte(s))
	c.SetWriteDeadline(time.Time{})
	st.forgetDeadlines()
}

const (
	readDeadline = iota
	writeDeadline
)

// setDeadline sets go-imap's read or write deadline, except when it only
// extends the one in force by less than a second: go-imap sets both before
// every command and response, and each costs a timer update in the runtime
// (3% of a login's CPU). A deadline may thus fall up to a second early.
func (st *connState) setDeadline(kind int, t time.Time) error {
	st.dmu.Lock()
	cur, known := st.deadlines[kind], st.dlKnown[kind]
	if known && !t.IsZero() && !cur.IsZero() && !t.Before(cur) && t.Sub(cur) < time.Second {
		st.dmu.Unlock()
		return nil
	}
	st.deadlines[kind], st.dlKnown[kind] = t, true
	st.dmu.Unlock()
	if kind == readDeadline {
		return st.conn().SetReadDeadline(t)
	}
	return st.conn().SetWriteDeadline(t)
}

// forgetDeadlines makes the next deadlines go-imap sets take effect, after
// the guard set its own or the transport changed.
func (st *connState) forgetDeadlines() {
	st.dmu.Lock()
	st.dlKnown = [2]bool{}
	st.dmu.Unlock()
}

// fatal says BYE and closes the connection.
func (st *connState) fatal(text string) error {
	st.failed = errGuardClosed
	st.logger().Info("imap connection closed by the input guard", "reason", text)
	st.reply("* BYE " + text + "\r\n")
	st.close()
	return errGuardClosed
}

// read is vconn.Read: the input guard.
func (st *connState) read(vc *vconn, p []byte) (int, error) {
	if st.failed != nil {
		return 0, st.failed
	}
	for {
		if len(st.pending) > 0 {
			n := copy(p, st.pending)
			st.pending = st.pending[n:]
			return n, nil
		}
		switch st.mode {
		case modeLiteral:
			if st.litLeft == 0 {
				st.mode, st.cmdStart = modeLine, false // the command goes on after its literal
				continue
			}
			if int64(len(p)) > st.litLeft {
				p = p[:st.litLeft]
			}
			var n int
			var err error
			if len(st.rbuf) > st.rpos {
				n = copy(p, st.rbuf[st.rpos:])
				st.rpos += n
			} else {
				n, err = st.readSocket(p)
			}
			st.litLeft -= int64(n)
			return n, st.readErr(err)
		case modeAwait:
			st.awaiting.Store(false)
			switch st.obs.Load() {
			case obsCont:
				st.mode = modeLiteral
			case obsOther:
				st.endCommand()
			default:
				// go-imap refused a literal it would have had to buffer
				// (over 4 KiB) without a reply and parses on, waiting for
				// input the client will never send, since the client waits
				// for "+". An empty line ends the command with a BAD.
				st.pending = []byte("\r\n")
				st.endCommand()
			}
			continue
		}
		line, err := st.readLine()
		if err != nil {
			return 0, err
		}
		ok, err := st.admit(vc, line)
		if err != nil {
			return 0, err
		}
		if ok {
			st.pending = line
		}
	}
}

func (st *connState) endCommand() {
	st.mode, st.cmdStart, st.cmdBytes = modeLine, true, 0
}

// admit checks one line and sets the next read mode. It returns false for a
// line answered by the guard itself, which go-imap never sees.
func (st *connState) admit(vc *vconn, line []byte) (bool, error) {
	li := parseLine(line)
	first := st.cmdStart
	if first {
		st.cmdTag, st.cmdName = li.tag, li.cmd
	}
	st.cmdBytes += len(line)
	if st.cmdBytes > maxCommand {
		return false, st.fatal("Command too long")
	}
	refuse := func(resp string) (bool, error) {
		// A command's first line can be refused alone; anything else
		// would leave go-imap in the middle of a command.
		if !first || li.tag == "" {
			return false, st.fatal("Protocol error")
		}
		st.reply(li.tag + " " + resp + "\r\n")
		st.endCommand()
		return false, nil
	}
	if li.badBytes {
		return refuse("BAD [CLIENTBUG] NUL and bare CR are not allowed in a command")
	}
	if li.literal {
		limit := int64(maxLiteralPreAuth)
		if st.authed.Load() {
			limit = st.srv.maxLiteral
		}
		// LITERAL+ (RFC 7888): APPEND's messages may come in
		// non-synchronizing literals up to the limit of any literal; other
		// commands' literals are strings go-imap buffers, at most 4 KiB.
		nonSyncLimit := int64(maxNonSyncLiteral)
		if st.cmdName == "APPEND" {
			nonSyncLimit = limit
		}
		switch {
		case li.nonSync && li.size > nonSyncLimit:
			// The literal is on its way: the connection cannot stay in step.
			if st.cmdTag != "" {
				st.reply(st.cmdTag + " BAD [TOOBIG] Non-synchronizing literal too big\r\n")
			}
			return false, st.fatal("Literal too big")
		case li.size > limit && !first && st.cmdName == "APPEND" && st.authed.Load():
			// A later message of a MULTIAPPEND (RFC 3502): go-imap, in the
			// middle of the command, answers NO [TOOBIG] instead of "+",
			// which ends the command.
		case li.size > limit && !st.authed.Load():
			return refuse("BAD [TOOBIG] Literal too big")
		case li.size > limit:
			return refuse("NO [TOOBIG] Literal too big")
		}
	}
	if first && li.cmd == "AUTHENTICATE" && !validInitialResponse(li.rest) {
		// go-imap answers a malformed SASL-IR with an internal error.
		return refuse("BAD Malformed SASL initial response")
	}
	if first && li.cmd == "STARTTLS" && li.rest == "" && st.canStartTLS() {
		return false, st.startTLS(vc, li.tag)
	}
	switch {
	case li.literal && li.nonSync:
		st.mode, st.litLeft = modeLiteral, li.size
	case li.literal:
		st.obs.Store(obsNone)
		st.awaiting.Store(true)
		st.mode, st.litLeft = modeAwait, li.size
	default:
		st.endCommand()
		return true, nil
	}
	st.cmdStart = false
	return true, nil
}

// validInitialResponse checks the base64 of AUTHENTICATE's optional initial
// response (RFC 4959 §3: "=" stands for an empty one).
func validInitialResponse(args string) bool {
	_, ir, ok := strings.Cut(args, " ")
	if !ok || ir == "=" {
		return true
	}
	_, err := base64.StdEncoding.DecodeString(ir)
	return err == nil
}

func (st *connState) canStartTLS() bool {
	return st.srv.cfg.TLS != nil && !st.isTLS.Load() && !st.authed.Load()
}

// idleReadBuf is the size of the guard's read buffer between long lines.
const idleReadBuf = 512

// readLine returns the next line, LF included, reading at most maxLine
// octets for it.
func (st *connState) readLine() ([]byte, error) {
	for {
		if i := bytes.IndexByte(st.rbuf[st.rpos:], '\n'); i >= 0 {
			line := bytes.Clone(st.rbuf[st.rpos : st.rpos+i+1])
			st.rpos += i + 1
			return line, nil
		}
		if len(st.rbuf)-st.rpos >= maxLine {
			return nil, st.fatal("Line too long")
		}
		// Compact, then grow the buffer as needed, up to maxLine. It starts
		// small and a long line's buffer is dropped once consumed: most
		// connections sit in IDLE with this buffer waiting in Read, and at
		// 10,000 of them every KiB here is 10 MB (docs/benchmarks.md).
		n := copy(st.rbuf, st.rbuf[st.rpos:])
		st.rbuf, st.rpos = st.rbuf[:n], 0
		if n == 0 && cap(st.rbuf) > idleReadBuf {
			st.rbuf = nil
		}
		if cap(st.rbuf)-n < idleReadBuf/2 {
			grown := make([]byte, n, min(max(2*cap(st.rbuf), idleReadBuf), maxLine+1024))
			copy(grown, st.rbuf)
			st.rbuf = grown
		}
		m, err := st.readSocket(st.rbuf[n:cap(st.rbuf)])
		st.rbuf = st.rbuf[:n+m]
		if m == 0 && err != nil {
			return nil, st.readErr(err)
		}
	}
}

// quickAck is netserver.QuickAck; tests watch it.
var quickAck = netserver.QuickAck

// readSocket reads from the client. In the middle of a command (its literal,
// or the rest of its line after one) the client may be holding that rest
// back until the server acknowledges what it sent (Nagle's algorithm, see
// netserver.QuickAck), so the ACK is asked for at once. Between commands
// the ACK goes out with the response, as usual.
func (st *connState) readSocket(p []byte) (int, error) {
	if !st.cmdStart {
		quickAck(st.raw)
	}
	return st.conn().Read(p)
}

// readErr says BYE when the client was silent for too long (RFC 9051 §7.1.5).
func (st *connState) readErr(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		st.reply("* BYE Autologout; idle for too long\r\n")
	}
	return err
}

// startTLS runs STARTTLS for the connection (RFC 9051 §6.2.1): it answers,
// discards any input that came with the command, runs the handshake, and
// hands the connection to the go-imap server for TLS connections; the
// current go-imap connection sees EOF and ends. Nothing of the plaintext
// conversation survives: the client must ask for CAPABILITY again.
func (st *connState) startTLS(vc *vconn, tag string) error {
	st.reply(tag + " OK Begin TLS negotiation now\r\n")
	if n := len(st.rbuf) - st.rpos; n > 0 {
		st.logger().Info("discarded plaintext sent after STARTTLS", "bytes", n)
	}
	st.rbuf, st.rpos = nil, 0
	tc := tls.Server(st.raw, st.srv.cfg.TLS)
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		st.logger().Debug("STARTTLS handshake failed", "err", err)
		st.close()
		return fmt.Errorf("starttls: %w", err)
	}
	st.tmu.Lock()
	st.transport = tc
	st.tmu.Unlock()
	st.forgetDeadlines()
	st.isTLS.Store(true)
	st.endCommand()
	vc.handedOver.Store(true)
	if !st.srv.secure.push(&vconn{st: st, swallowGreeting: true}) {
		st.close()
	}
	return io.EOF
}

// vconn is the net.Conn go-imap serves.
type vconn struct {
	st              *connState
	handedOver      atomic.Bool // after STARTTLS: this go-imap connection is over
	swallowGreeting bool        // after STARTTLS: no greeting (RFC 9051 §6.2.1)
}

var _ net.Conn = (*vconn)(nil)

func (c *vconn) Read(p []byte) (int, error) {
	if c.handedOver.Load() {
		return 0, io.EOF
	}
	return c.st.read(c, p)
}

func (c *vconn) Write(p []byte) (int, error) {
	if c.swallowGreeting {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			return len(p), nil
		}
		c.swallowGreeting = false
		if _, err := c.st.write(p[i+1:]); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.st.write(p)
}

func (c *vconn) Close() error {
	if c.handedOver.Load() {
		return nil
	}
	return c.st.close()
}

func (c *vconn) LocalAddr() net.Addr  { return c.st.raw.LocalAddr() }
func (c *vconn) RemoteAddr() net.Addr { return c.st.raw.RemoteAddr() }

func (c *vconn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// SetReadDeadline passes go-imap's deadlines on, bounded before login by
// loginWindow.
func (c *vconn) SetReadDeadline(t time.Time) error {
	if !c.st.authed.Load() {
		if end := c.st.started.Add(c.st.srv.loginWindow); t.IsZero() || t.After(end) {
			t = end
		}
	}
	return c.st.setDeadline(readDeadline, t)
}

func (c *vconn) SetWriteDeadline(t time.Time) error { return c.st.setDeadline(writeDeadline, t) }
