package main

import (
	"context"
	"net"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/postern/postern/internal/auth"
	"github.com/postern/postern/internal/imapserver"
	"github.com/postern/postern/internal/pop3server"
	"github.com/postern/postern/internal/smtpserver"
)

// protocolServer is what the IMAP, POP3 and SMTP servers have in common: one
// server, several listeners (STARTTLS and implicit TLS), closed together.
type protocolServer interface {
	Serve(l net.Listener, implicitTLS bool) error
	Close() error
}

// setupProtocols builds the authentication gateway and the IMAP, POP3 and
// SMTP submission servers on it, and declares their listeners.
func (s *server) setupProtocols() error {
	gw, err := auth.New(auth.Config{
		Service:    s.svc,
		Store:      s.db,
		Bus:        s.bus,
		Key:        s.svc.Config.Key,
		Log:        s.log,
		Registerer: s.reg,
		Throttle:   s.authThrottle(), // scaleout.go: shared on PostgreSQL, --auth-max-delay
		Sessions:   s.db,             // every node lists every node's live sessions
	})
	if err != nil {
		return err
	}
	s.gw = gw
	// The name this server gives in SMTP greetings, EHLO and Received
	// fields: the mail host's, which receivers check against the address
	// it sends from.
	host := s.flags.sending.mailHost
	if host == "" {
		host, _ = os.Hostname()
	}
	mail := s.db.Mail()
	inspector, spam, err := s.setupInspection(host) // inspect.go: sender checks, rspamd
	if err != nil {
		return err
	}
	imapCfg := imapserver.Config{Auth: gw, Mail: mail, Bus: s.bus, TLS: s.tls, Plaintext: s.plaintext, Log: s.log, Limits: s.limits}
	switch strings.ToLower(strings.TrimSpace(s.flags.imapCompress)) {
	case "on":
	case "off":
		imapCfg.NoCompress = true
	default:
		return usagef(serveCommand, "--imap-compress must be on or off, not %q", s.flags.imapCompress)
	}
	if spam != nil && s.flags.inspect.rspamdController != "" {
		imapCfg.JunkLearner = spam // rspamd learns from what members file in and out of Junk
	}
	pop3 := pop3server.New(pop3server.Config{Auth: gw, Mail: mail, TLS: s.tls, Plaintext: s.plaintext, Log: s.log, Hostname: host, Limits: s.limits})
	smtpCfg := smtpserver.Config{Auth: gw, Recipients: s.svc, Mail: mail, TLS: s.tls, Plaintext: s.plaintext, Log: s.log, Hostname: host, Limits: s.limits}
	if err := s.setupMail(&smtpCfg, inspector); err != nil { // mx.go: MX and LMTP listeners, quota
		return err
	}
	imapCfg.Quota = s.mailQuota
	imap := imapserver.New(imapCfg)
	if imapCfg.JunkLearner != nil {
		s.learnMetrics(imap)
	}
	if err := s.setupOutbound(&smtpCfg, host); err != nil { // outbound.go: the queue and its runner
		return err
	}
	smtpCfg.Sending = s.svc // submission only: sender addresses and caps (sendlimits.go)
	smtp := smtpserver.New(smtpCfg)
	s.addProtocol("imap", s.flags.imap, false, imap)
	s.addProtocol("imaps", s.flags.imaps, true, imap)
	s.addProtocol("pop3", s.flags.pop3, false, pop3)
	s.addProtocol("pop3s", s.flags.pop3s, true, pop3)
	s.addProtocol("submission", s.flags.submission, false, smtp)
	s.addProtocol("submissions", s.flags.submissions, true, smtp)
	return nil
}

// addProtocol declares one listener of ps. Closing ps ends all its listeners
// and connections; the second close of a shared server is a no-op.
func (s *server) addProtocol(name, addr string, implicitTLS bool, ps protocolServer) {
	s.add(&listener{
		name:  name,
		addr:  addr,
		serve: func(ln net.Listener) error { return ps.Serve(s.proxied(name, ln), implicitTLS) }, // proxied: PROXY protocol (scaleout.go)
		stop:  func(context.Context) error { return ps.Close() },
	})
}

// learnMetrics exports what the members' filing taught rspamd: a learner
// that fails, or a queue that drops, is otherwise invisible.
func (s *server) learnMetrics(imap *imapserver.Server) {
	stat := func(name, help string, pick func(learnt, failed, dropped uint64) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 {
			return float64(pick(imap.LearnStats()))
		})
	}
	s.reg.MustRegister(
		stat("postern_junk_learned_total", "Messages filed into or out of Junk over IMAP that the spam filter was taught.",
			func(l, _, _ uint64) uint64 { return l }),
		stat("postern_junk_learn_failed_total", "Messages the spam filter could not be taught (it did not answer or refused).",
			func(_, f, _ uint64) uint64 { return f }),
		stat("postern_junk_learn_dropped_total", "Messages not taught because the learning queue was full.",
			func(_, _, d uint64) uint64 { return d }),
	)
}
