package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"

	"github.com/postern/postern/internal/mailstore"
	"github.com/postern/postern/internal/smtpserver"
)

// Receiving mail: the MX listener (--smtp-addr) and LMTP (--lmtp-addr),
// with the mailbox quota and the MX rate limit.

// demoSMTPAddr is the demo's MX listener: a loopback port anyone can use
// without root, for trying delivery with swaks.
const demoSMTPAddr = "127.0.0.1:2525"

// defaultSMTPRate is --smtp-rate-limit's default: 600 recipients a minute
// from one address (10 a second, with bursts of 600) lets a large sender's
// outbound host deliver a mailing list to a whole organisation at once,
// while a single host trying addresses (directory harvest) or flooding is
// slowed to that pace. Botnets use many addresses; against them the limit is
// only one layer, beside the filters.
const defaultSMTPRate = 600

type mailFlags struct {
	smtp, lmtp, quota, rate string
}

func (f *mailFlags) register(a *app, fs *flag.FlagSet) {
	a.configVar(fs, &f.smtp, "smtp-addr", "", "MX listener receiving mail from the Internet (SMTP, STARTTLS, no AUTH), e.g. :25; empty: off")
	a.configVar(fs, &f.lmtp, "lmtp-addr", "", "LMTP for a mail server in front (Postfix's lmtp transport): host:port, or unix:/path for a socket made 0660; empty: off")
	a.configVar(fs, &f.quota, "mailbox-quota", "0", "mail storage limit of members whose own (user set --quota) and domain's (domain set --quota) set none, every folder together: octets or a size such as 500MiB or 2GiB; 0: none")
	a.configVar(fs, &f.rate, "smtp-rate-limit", strconv.Itoa(defaultSMTPRate), "recipients per minute one client address (IPv4, IPv6 /56) may give the MX listener; 0: no limit")
}

// setupMail sets the quota in cfg, submission's configuration, and in
// s.mailQuota for IMAP and the web UI, and
// declares the MX listener (with inspector) and LMTP on the same engine,
// store, recipients, hostname and TLS.
func (s *server) setupMail(sub *smtpserver.Config, inspector smtpserver.Inspector) error {
	f := &s.flags.mail
	quota, err := mailstore.ParseSize(f.quota)
	if err != nil {
		return usagef(serveCommand, "--mailbox-quota must be a size such as 1073741824, 500MiB or 2GiB, or 0, not %q", f.quota)
	}
	rate, err := parseCount(f.rate)
	if err != nil {
		return usagef(serveCommand, "--smtp-rate-limit must be a number of recipients a minute, or 0, not %q", f.rate)
	}
	sub.Quota, s.mailQuota = quota, quota
	cfg := *sub
	cfg.Auth = nil

	mx := cfg
	// LMTP gets no inspection: its client is the mail server in front, not
	// the sender, and that server filters (docs/mail.md).
	mx.Mode, mx.RateLimit, mx.Inspector = smtpserver.MX, rate, inspector
	s.addProtocol("smtp", f.smtp, false, smtpserver.New(mx))

	lmtp := cfg
	lmtp.Mode = smtpserver.LMTP
	s.addProtocol("lmtp", f.lmtp, false, smtpserver.New(lmtp))
	return nil
}

// listenUnix makes the unix socket of "unix:/path", mode 0660: the server's
// user and group may connect (put the MTA's user in Postern's group, or
// give the socket the MTA's group), no one else. A socket left by a
// previous run is replaced; one that still answers is in use.
func listenUnix(path string) (net.Listener, error) {
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return nil, fmt.Errorf("%s is in use by another server", path)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket", path)
		}
		os.Remove(path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}
