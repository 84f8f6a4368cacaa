package main

import (
	"context"
	"flag"

	"github.com/postern/postern/internal/mailauth"
	"github.com/postern/postern/internal/smtpserver"
)

// Sender authentication on the MX listener: SPF, DKIM and DMARC checks with
// an Authentication-Results field (internal/mailauth), and the DNS server
// they ask (--dns-resolver).

type mailAuthFlags struct {
	resolver string
}

func (f *mailAuthFlags) register(a *app, fs *flag.FlagSet) {
	a.configVar(fs, &f.resolver, "dns-resolver", "", "DNS server IP:PORT asked for the SPF, DKIM and DMARC records of received mail; empty: the system's resolver")
}

// senderAuth returns the MX listener's sender authentication, naming this
// server hostname in Authentication-Results.
func (s *server) senderAuth(hostname string) (smtpserver.Inspector, error) {
	r, err := mailauth.ParseResolver(s.flags.mailAuth.resolver)
	if err != nil {
		return nil, usagef(serveCommand, "--dns-resolver: %v", err)
	}
	cfg := mailauth.Config{AuthServID: hostname, Log: s.log}
	if r != nil { // a nil *net.Resolver in the interface would not read as nil
		cfg.Resolver = r
	}
	return authInspector{mailauth.New(cfg)}, nil
}

// authInspector turns a check's disposition into the listener's verdict:
// the Authentication-Results field on top, Junk for quarantine, 550 5.7.1
// for reject. Authentication-Results fields from outside are removed by the
// listener itself.
type authInspector struct{ c *mailauth.Checker }

func (a authInspector) Inspect(ctx context.Context, e smtpserver.Envelope, msg []byte) (smtpserver.Inspection, error) {
	r := a.c.Check(ctx, mailauth.Input{RemoteIP: e.RemoteIP, Helo: e.Helo, MailFrom: e.MailFrom, Message: msg})
	ins := smtpserver.Inspection{Prepend: r.Header, Junk: r.Disposition == mailauth.Quarantine}
	if r.Disposition == mailauth.Reject {
		ins.Reject = &smtpserver.Reply{Code: 550, Enhanced: "5.7.1", Text: r.Reason}
	}
	return ins, nil
}
