// Package pop3server is Postern's POP3 server, written by hand: RFC 1939
// (the protocol), RFC 2449 (CAPA and extended response codes), RFC 2595
// (STLS) and RFC 5034 (AUTH, PLAIN only). It serves the member's INBOX from a
// mailstore.Store and authenticates through the one auth.Authenticator.
package pop3server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/postern/postern/internal/auth"
	"github.com/postern/postern/internal/mailstore"
	"github.com/postern/postern/internal/tlsconf"
)

// Timeouts. RFC 1939 §3: an autologout timer "MUST be of at least 10 minutes
// duration". Before authentication nothing is at stake for the client, so an
// idle connection is dropped sooner; this bounds what idle scanners can hold.
const (
	idleTimeout      = 10 * time.Minute
	preAuthTimeout   = 60 * time.Second
	writeTimeout     = 5 * time.Minute
	handshakeTimeout = 30 * time.Second
)

// Config is what the server needs; cmd/postern wires the concrete types.
type Config struct {
	Auth      auth.Authenticator
	Mail      mailstore.Store
	TLS       *tls.Config // nil: no STLS, no implicit TLS
	Plaintext tlsconf.Plaintext
	Log       *slog.Logger
	Hostname  string // shown in the greeting
}

// Server serves POP3 on any number of listeners.
type Server struct {
	cfg    Config
	ctx    context.Context // cancelled by Close: aborts store and auth calls
	cancel context.CancelFunc

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{}
	wg        sync.WaitGroup
}

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("pop3server: server closed")

// New returns a server; call Serve for each listener.
func New(cfg Config) *Server {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "localhost"
	}
	if cfg.Plaintext == "" {
		cfg.Plaintext = tlsconf.PlaintextLoopback
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		cfg: cfg, ctx: ctx, cancel: cancel,
		listeners: map[net.Listener]struct{}{},
		conns:     map[net.Conn]struct{}{},
	}
}

// Serve accepts connections on l until l fails or the server is closed. With
// implicitTLS (port 995, RFC 8314) every connection starts with a TLS
// handshake; otherwise it starts in clear and may upgrade with STLS.
func (s *Server) Serve(l net.Listener, implicitTLS bool) error {
	if implicitTLS && s.cfg.TLS == nil {
		return errors.New("pop3server: implicit TLS needs a TLS config")
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()

	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Out of file descriptors and the like: wait, as net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.cfg.Log.Warn("pop3 accept", "err", err, "retry_in", backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("pop3server: accept: %w", err)
		}
		backoff = 0
		if !s.track(c) {
			c.Close()
			return ErrServerClosed
		}
		go func() {
			defer s.wg.Done()
			defer s.untrack(c)
			s.handle(c, implicitTLS)
		}()
	}
}

// Close stops every listener, closes every connection without entering the
// UPDATE state (nothing is deleted, RFC 1939 §6), and waits for the sessions.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for l := range s.listeners {
		l.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(c net.Conn) {
	c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// handle runs one connection from greeting to close.
func (s *Server) handle(raw net.Conn, implicitTLS bool) {
	log := s.cfg.Log.With("proto", "pop3", "remote", raw.RemoteAddr().String())
	defer func() {
		// A bug in one session must not take the server down.
		if r := recover(); r != nil {
			log.Error("pop3 session panic", "panic", r)
		}
	}()
	c := raw
	if implicitTLS {
		tc := tls.Server(raw, s.cfg.TLS)
		raw.SetDeadline(time.Now().Add(handshakeTimeout))
		if err := tc.HandshakeContext(s.ctx); err != nil {
			log.Debug("pop3 TLS handshake failed", "err", err)
			return
		}
		raw.SetDeadline(time.Time{})
		c = tc
	}
	sess := newSession(s, raw, c, implicitTLS, log)
	sess.run()
}
