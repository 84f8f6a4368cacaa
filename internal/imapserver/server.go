// Package imapserver is Postern's IMAP4rev1 server: go-imap v2's protocol
// engine over mailstore.Store, with logins through auth.Authenticator.
//
// Between the socket and go-imap sits an input guard (conn.go, frame.go)
// that enforces limits before anything is allocated, owns STARTTLS, and
// decides per connection whether a password may be sent: go-imap takes those
// decisions per server, so the Server runs three go-imap servers and hands
// each connection to the right one.
package imapserver

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/postern/postern/internal/auth"
	"github.com/postern/postern/internal/events"
	"github.com/postern/postern/internal/mailstore"
	"github.com/postern/postern/internal/netserver"
	"github.com/postern/postern/internal/tlsconf"
)

// Config is what the server needs.
type Config struct {
	Auth auth.Authenticator
	Mail mailstore.Store
	// Bus carries account.EventMailboxChanged events: sessions re-read their
	// selected mailbox when one names it. Without a Bus they re-read it after
	// every command and IDLE sees nothing.
	Bus *events.Bus
	// TLS is for STARTTLS and implicit TLS; nil turns both off.
	TLS *tls.Config
	// Plaintext says where LOGIN and AUTHENTICATE are allowed before TLS.
	Plaintext tlsconf.Plaintext
	Log       *slog.Logger
	// Limits caps the connections of both listeners together; over a cap
	// a connection is told refusal's BYE and closed (closed at once on
	// implicit TLS).
	Limits netserver.Limits
	// JunkLearner, when set, is taught from the members' filing: a message
	// moved or copied into \Junk as spam, one taken out of \Junk (not into
	// \Trash) as ham. It runs on a goroutine of its own behind a bounded
	// queue, after the command has succeeded; IMAP never waits for it.
	JunkLearner JunkLearner
	// Quota is the server's mail storage limit in octets for members whose
	// own setting and domain set none (mailstore.Quota.Limit); 0 is none.
	// Over the limit APPEND and COPY get NO [OVERQUOTA].
	Quota int64
}

// Server is an IMAP server; one Server may serve several listeners.
type Server struct {
	cfg         Config
	log         *slog.Logger
	maxLiteral  int64
	loginWindow time.Duration

	// The go-imap servers: before TLS with and without password logins
	// (LOGINDISABLED, RFC 9051 §6.2.3), and with TLS.
	plainAuth, plainNoAuth, secure *backend

	// conns holds the listeners and the live connections, each tracked
	// by its *connState from handle until connState.close.
	conns *netserver.Group
	limit *netserver.Limiter
	// byes counts the BYEs said at shutdown; Close waits for them.
	byes sync.WaitGroup
	// learner teaches Config.JunkLearner; nil without one.
	learner *learner
}

// New returns a Server for cfg.
func New(cfg Config) *Server {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	log := cfg.Log.With("proto", "imap")
	s := &Server{
		cfg:         cfg,
		log:         log,
		maxLiteral:  mailstore.MaxMessageSize,
		loginWindow: defaultLoginWindow,
		conns:       netserver.New("imapserver", log),
		limit:       netserver.NewLimiter("imapserver", cfg.Limits, log),
	}
	// go-imap only advertises STARTTLS when it has a tls.Config; the guard
	// runs STARTTLS itself, so the one given to go-imap refuses every
	// handshake in case a command ever slipped past the guard.
	var advertiseTLS *tls.Config
	if cfg.TLS != nil {
		advertiseTLS = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return nil, errors.New("imapserver: STARTTLS is handled by the input guard")
		}}
	}
	if cfg.JunkLearner != nil {
		s.learner = newLearner(cfg.JunkLearner, cfg.Mail, log)
	}
	s.plainAuth = s.newBackend(advertiseTLS, true)
	s.plainNoAuth = s.newBackend(advertiseTLS, false)
	s.secure = s.newBackend(nil, true)
	return s
}

// caps are the capabilities beyond those go-imap adds by itself (SASL-IR,
// LITERAL-, IDLE, UNSELECT, ENABLE, AUTH=PLAIN / LOGINDISABLED, STARTTLS, and
// APPENDLIMIT from session.AppendLimit).
var caps = imap.CapSet{
	imap.CapIMAP4rev1:        {},
	imap.CapNamespace:        {},
	imap.CapUIDPlus:          {},
	imap.CapMove:             {},
	imap.CapSpecialUse:       {},
	imap.CapChildren:         {},
	imap.CapStatusSize:       {},
	imap.CapListStatus:       {},
	imap.CapCondStore:        {},
	imap.CapQResync:          {},
	imap.CapIMAP4rev2:        {},
	imap.CapESearch:          {},
	imap.CapSearchRes:        {},
	imap.CapLiteralPlus:      {},
	imap.CapBinary:           {},
	imap.CapListExtended:     {},
	imap.CapCreateSpecialUse: {},
	imap.CapMultiAppend:      {},
	imap.CapQuota:            {}, // RFC 9208, with its one resource:
	"QUOTA=RES-STORAGE":      {},
	imap.CapPreview:          {},
	imap.CapSort:             {},
	imap.CapSortDisplay:      {},
	imap.Cap("THREAD=" + imap.ThreadOrderedSubject): {},
	imap.Cap("THREAD=" + imap.ThreadReferences):     {},
}

func (s *Server) newBackend(tlsConfig *tls.Config, insecureAuth bool) *backend {
	b := &backend{ln: newChanListener()}
	b.srv = imapserver.New(&imapserver.Options{
		NewSession:   s.newSession,
		Caps:         caps,
		Logger:       imapLogger{s.log},
		TLSConfig:    tlsConfig,
		InsecureAuth: insecureAuth,
		// RFC 2971: iOS Mail and others send ID; the name alone, no
		// version for a scanner to match against.
		ID: &imap.IDData{Name: "Postern"},
	})
	go b.srv.Serve(b.ln)
	// go-imap's Serve counts itself in a WaitGroup that Close waits on;
	// waiting for its first Accept orders that Add before any Close.
	<-b.ln.accepting
	return b
}

// Serve accepts connections on l until l fails or the server is closed. With
// implicitTLS the connections start with a TLS handshake (port 993, RFC
// 8314); otherwise they start in plaintext and may use STARTTLS (port 143).
// It returns nil after Close (at once when called after it) and the accept
// error otherwise.
func (s *Server) Serve(l net.Listener, implicitTLS bool) error {
	if implicitTLS && s.cfg.TLS == nil {
		return errors.New("imapserver: implicit TLS needs a TLS configuration")
	}
	r := refusal
	if implicitTLS {
		// The client's first expectation is a TLS handshake, to which a BYE
		// in clear is garbage; completing one for a connection that is to
		// be refused would spend the CPU and the goroutine the caps save.
		r = netserver.Refusal{}
	}
	// handle runs the connection (go-imap serves it on handle's goroutine)
	// and closes it; the connection tracks itself (connState).
	return s.conns.ServeHandoff(s.limit.Listener(l, r), func(raw net.Conn) { s.handle(raw, implicitTLS) })
}

func (s *Server) handle(raw net.Conn, implicitTLS bool) {
	st := newConnState(s, raw)
	if !s.conns.Track(st, st.shutdown) {
		raw.Close()
		return
	}
	var b *backend
	switch {
	case implicitTLS:
		tc := tls.Server(raw, s.cfg.TLS)
		raw.SetDeadline(time.Now().Add(handshakeTimeout))
		if err := tc.Handshake(); err != nil {
			st.logger().Debug("imap TLS handshake failed", "err", err)
			st.close()
			return
		}
		raw.SetDeadline(time.Time{})
		st.tmu.Lock()
		st.transport = tc
		st.tmu.Unlock()
		st.isTLS.Store(true)
		b = s.secure
	case s.cfg.Plaintext.Allows(raw.RemoteAddr(), false):
		b = s.plainAuth
	default:
		b = s.plainNoAuth
	}
	// Served here, in the accept loop's goroutine for this connection; after
	// STARTTLS the connection goes on in the secure backend's (startTLS).
	if err := b.srv.ServeConn(&vconn{st: st}); err != nil {
		st.close()
	}
}

// refusal is what a connection over a cap of Config.Limits is told before
// the close: BYE with UNAVAILABLE, "the server is unavailable, try later"
// (RFC 9051 §7.1), as the greeting (§7.1.5).
var refusal = netserver.Refusal{
	PerAddr: "* BYE [UNAVAILABLE] Too many connections from your address, try again later\r\n",
	Total:   "* BYE [UNAVAILABLE] Too many connections, try again later\r\n",
}

// Close closes the listeners and every connection.
func (s *Server) Close() error {
	// First the go-imap servers' inlets, so that a connection being handed
	// over now is closed rather than keep Close waiting for its handler.
	for _, b := range s.backends() {
		b.ln.Close()
	}
	err := s.conns.Close()
	s.byes.Wait()
	for _, b := range s.backends() {
		b.srv.Close()
	}
	if s.learner != nil {
		s.learner.close()
	}
	return err
}

func (s *Server) backends() []*backend { return []*backend{s.plainAuth, s.plainNoAuth, s.secure} }

// backend is one go-imap server: handle serves new connections with it
// directly (ServeConn), and startTLS hands connections to it through its
// chanListener.
type backend struct {
	srv *imapserver.Server
	ln  *chanListener
}

func (b *backend) push(c net.Conn) bool { return b.ln.push(c) }

// chanListener is a net.Listener whose connections come from push.
type chanListener struct {
	ch         chan net.Conn
	done       chan struct{}
	closeOnce  sync.Once
	accepting  chan struct{} // closed at the first Accept
	acceptOnce sync.Once
}

func newChanListener() *chanListener {
	return &chanListener{ch: make(chan net.Conn), done: make(chan struct{}), accepting: make(chan struct{})}
}

func (l *chanListener) push(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	l.acceptOnce.Do(func() { close(l.accepting) })
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return chanAddr{} }

type chanAddr struct{}

func (chanAddr) Network() string { return "imap" }
func (chanAddr) String() string  { return "imapserver" }

// imapLogger routes go-imap's messages (mostly clients that went away in the
// middle of a command) to slog.
type imapLogger struct{ log *slog.Logger }

func (l imapLogger) Printf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if strings.Contains(msg, "panic") {
		l.log.Error("go-imap: " + msg)
		return
	}
	l.log.Debug("go-imap: " + msg)
}
