package main

import (
	"context"
	"flag"
	"time"

	"github.com/postern/postern/internal/mailauth"
	"github.com/postern/postern/internal/rspamd"
	"github.com/postern/postern/internal/smtpserver"
)

// What the MX listener does with a message before delivery: sender
// authentication (SPF, DKIM, DMARC, internal/mailauth, asking
// --dns-resolver) and, with --rspamd-url, spam filtering by rspamd
// (internal/rspamd), whose controller also learns from the members' Junk
// folders over IMAP.

type inspectFlags struct {
	resolver                                    string
	rspamdURL, rspamdController, rspamdPassword string
	rspamdUnavailable                           string
}

func (f *inspectFlags) register(a *app, fs *flag.FlagSet) {
	a.configVar(fs, &f.resolver, "dns-resolver", "", "DNS server IP:PORT asked for the SPF, DKIM and DMARC records of received mail; empty: the system's resolver")
	a.configVar(fs, &f.rspamdURL, "rspamd-url", "", "rspamd's normal worker, e.g. http://127.0.0.1:11333, asked about every message the MX listener receives; empty: no spam filter")
	a.configVar(fs, &f.rspamdController, "rspamd-controller-url", "", "rspamd's controller, e.g. http://127.0.0.1:11334, taught from messages members move into and out of Junk; empty: no learning")
	a.configVar(fs, &f.rspamdPassword, "rspamd-password", "", "the password of rspamd's controller, if it asks for one")
	a.configVar(fs, &f.rspamdUnavailable, "rspamd-unavailable", "tempfail", "when rspamd does not answer: tempfail (451 4.7.1, the sender retries) or accept (INBOX, marked unchecked)")
}

// setupInspection builds the MX listener's Inspector and the rspamd client
// (nil without --rspamd-url) whose controller learns from Junk.
func (s *server) setupInspection(hostname string) (smtpserver.Inspector, *rspamd.Client, error) {
	f := &s.flags.inspect
	r, err := mailauth.ParseResolver(f.resolver)
	if err != nil {
		return nil, nil, usagef(serveCommand, "--dns-resolver: %v", err)
	}
	cfg := mailauth.Config{AuthServID: hostname, Log: s.log}
	if r != nil { // a nil *net.Resolver in the interface would not read as nil
		cfg.Resolver = r
	}
	ins := inspector{auth: mailauth.New(cfg), hostname: hostname}
	if f.rspamdURL == "" {
		if f.rspamdController != "" {
			return nil, nil, usagef(serveCommand, "--rspamd-controller-url needs --rspamd-url")
		}
		return ins, nil, nil
	}
	onError, err := rspamd.ParseOnError(f.rspamdUnavailable)
	if err != nil {
		return nil, nil, usagef(serveCommand, "--rspamd-unavailable must be tempfail or accept, not %q", f.rspamdUnavailable)
	}
	ins.spam, err = rspamd.New(rspamd.Config{URL: f.rspamdURL, ControllerURL: f.rspamdController,
		Password: f.rspamdPassword, OnError: onError, Log: s.log})
	if err != nil {
		return nil, nil, usagef(serveCommand, "--rspamd-url: %v", err)
	}
	s.log.Info("spam filter", "rspamd", f.rspamdURL, "learning", f.rspamdController != "", "unavailable", f.rspamdUnavailable)
	return ins, ins.spam, nil
}

// inspector is sender authentication, then the spam filter. A DMARC reject
// is final without asking rspamd; otherwise both verdicts count: either
// one's Junk files the message in Junk, and the Authentication-Results
// field is on top of rspamd's X-Spam fields.
type inspector struct {
	auth     *mailauth.Checker
	spam     *rspamd.Client // nil: no spam filter
	hostname string
}

func (in inspector) Inspect(ctx context.Context, e smtpserver.Envelope, msg []byte) (smtpserver.Inspection, error) {
	r := in.auth.Check(ctx, mailauth.Input{RemoteIP: e.RemoteIP, Helo: e.Helo, MailFrom: e.MailFrom, Message: msg})
	ins := smtpserver.Inspection{Prepend: r.Header, Junk: r.Disposition == mailauth.Quarantine}
	if r.Disposition == mailauth.Reject {
		ins.Reject = &smtpserver.Reply{Code: 550, Enhanced: "5.7.1", Text: r.Reason}
		return ins, nil
	}
	if in.spam == nil {
		return ins, nil
	}
	d := in.spam.Decide(ctx, rspamd.Message{IP: e.RemoteIP, Helo: e.Helo, From: e.MailFrom, Rcpts: e.Rcpts,
		Hostname: in.hostname, QueueID: time.Now().UTC().Format("20060102T150405.000000000"), Body: msg})
	switch d.Outcome {
	case rspamd.Refuse, rspamd.TempFail:
		ins.Reject = &smtpserver.Reply{Code: d.Code, Enhanced: d.Enhanced, Text: d.Text}
		return ins, nil
	case rspamd.Junk:
		ins.Junk = true
	}
	// Its X-Spam fields on the message itself, forged ones dropped and the
	// Subject rewritten when rspamd says so.
	ins.Rewrite = d.Apply
	return ins, nil
}
