// Package imapserver is Postern's IMAP4rev1 server: the carried go-imap v2's
// protocol engine over mailstore.Store, with logins through
// auth.Authenticator. go-imap reads each connection itself, through one
// buffer per direction, and enforces the input limits, STARTTLS and the
// per-connection plaintext rule (third_party/go-imap/POSTERN.md); this
// package owns the sockets, TLS on port 993, the connection caps, and the
// ends of sessions (revocation, shutdown).
package imapserver

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
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
	// NoCompress withdraws COMPRESS=DEFLATE (RFC 4978): the capability is
	// not offered and the command is refused. A compressed connection holds
	// the client's 32 KiB DEFLATE window for its whole life, about 39 KiB
	// more per idle connection (docs/benchmarks.md).
	NoCompress bool
}

// Server is an IMAP server; one Server may serve several listeners.
type Server struct {
	cfg        Config
	log        *slog.Logger
	maxLiteral int64

	imap *imapserver.Server

	// conns holds the listeners and the live connections, each tracked
	// by its *connState from handle until connState.close.
	conns *netserver.Group
	limit *netserver.Limiter
	// learner teaches Config.JunkLearner; nil without one.
	learner *learner
	// items holds the FETCH items of the messages fetched lately, bodies
	// their raw messages (itemcache.go).
	items  *msgCache[*mailstore.MessageIndex]
	bodies *msgCache[[]byte]
	// names holds which mailbox each name selected lately named.
	names mailboxNames
}

// New returns a Server for cfg.
func New(cfg Config) *Server { return newServer(cfg, defaultLoginWindow) }

func newServer(cfg Config, loginWindow time.Duration) *Server {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	log := cfg.Log.With("proto", "imap")
	s := &Server{
		cfg:        cfg,
		log:        log,
		maxLiteral: mailstore.MaxMessageSize,
		conns:      netserver.New("imapserver", log),
		limit:      netserver.NewLimiter("imapserver", cfg.Limits, log),
		items:      newItemCache(itemCacheBytes),
		bodies:     newBodyCache(bodyCacheBytes),
	}
	if cfg.JunkLearner != nil {
		s.learner = newLearner(cfg.JunkLearner, cfg.Mail, log)
	}
	s.imap = imapserver.New(&imapserver.Options{
		NewSession: s.newSession,
		Caps:       capsOf(cfg),
		Logger:     imapLogger{s.log},
		TLSConfig:  cfg.TLS,
		// LOGINDISABLED (RFC 9051 §6.2.3) before TLS, unless
		// Config.Plaintext allows this client a password in clear.
		InsecureAuthFunc: func(c *imapserver.Conn) bool {
			st := connOf(c)
			return st != nil && st.plainAuth
		},
		LoginTimeout: loginWindow,
		// In the middle of a command (its literal, or the rest of its line
		// after one) a client that keeps Nagle's algorithm on holds the
		// rest back until the server acknowledges what it sent: the ACK
		// is asked for at once (netserver.QuickAck). Between commands it
		// goes out with the response, as usual.
		ReadingLiteral: func(c *imapserver.Conn) {
			if st := connOf(c); st != nil {
				quickAck(st.Revocable.Conn)
			}
		},
		Limits: imapserver.Limits{
			MaxLine:                    maxLine,
			MaxCommand:                 maxCommand,
			MaxLiteralNotAuthenticated: maxLiteralPreAuth,
			MaxLiteral:                 s.maxLiteral,
		},
		// RFC 2971: iOS Mail and others send ID; the name alone, no
		// version for a scanner to match against.
		ID: &imap.IDData{Name: "Postern"},
	})
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
	// RFC 4978, offered once authenticated (go-imap's compress.go).
	imap.CapCompressDeflate: {},
}

// capsOf is caps less what cfg turns off.
func capsOf(cfg Config) imap.CapSet {
	if !cfg.NoCompress {
		return caps
	}
	out := make(imap.CapSet, len(caps))
	for c := range caps {
		if c != imap.CapCompressDeflate {
			out[c] = struct{}{}
		}
	}
	return out
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
	defer st.close()
	var nc net.Conn = st
	if implicitTLS {
		tc := tls.Server(st, s.cfg.TLS)
		st.SetDeadline(time.Now().Add(handshakeTimeout))
		if err := tc.Handshake(); err != nil {
			st.logger().Debug("imap TLS handshake failed", "err", err)
			return
		}
		st.SetDeadline(time.Time{})
		nc = tc
	}
	// Served here, in the accept loop's goroutine for this connection,
	// STARTTLS included.
	s.imap.ServeConn(nc)
}

// refusal is what a connection over a cap of Config.Limits is told before
// the close: BYE with UNAVAILABLE, "the server is unavailable, try later"
// (RFC 9051 §7.1), as the greeting (§7.1.5).
var refusal = netserver.Refusal{
	PerAddr: "* BYE [UNAVAILABLE] Too many connections from your address, try again later\r\n",
	Total:   "* BYE [UNAVAILABLE] Too many connections, try again later\r\n",
}

// Close closes the listeners and every connection: a connection says BYE
// (RFC 9051 §7.1.5) and closes within a second, and Close waits for it.
func (s *Server) Close() error {
	err := s.conns.Close()
	s.imap.Close()
	if s.learner != nil {
		s.learner.close()
	}
	return err
}

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
