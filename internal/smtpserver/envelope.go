package smtpserver

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/postern/postern/internal/account"
)

// recipient is one accepted RCPT: the member whose INBOX gets the message.
type recipient struct {
	memberID int64
	email    string
}

// mail runs MAIL FROM (RFC 5321 §4.1.1.2). Submission needs a login first
// (RFC 6409 §4.3, RFC 4954 §6: 530 5.7.0), and the reverse path must be the
// authenticated member's own address (SPEC §5).
func (c *conn) mail(arg string) {
	switch {
	case c.helo == "":
		c.fail(503, "5.5.1", "Send EHLO first")
		return
	case c.login == nil:
		c.fail(530, "5.7.0", "Authentication required")
		return
	case c.inTx:
		c.fail(503, "5.5.1", "Nested MAIL command")
		return
	}
	from, params, err := parsePath(arg, "FROM:")
	if err != nil {
		c.fail(501, "5.5.4", "Syntax: MAIL FROM:<address> [SIZE=n] [BODY=7BIT|8BITMIME]")
		return
	}
	for _, p := range params {
		key, value, _ := strings.Cut(p, "=")
		switch strings.ToUpper(key) {
		case "SIZE": // RFC 1870 §6
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil || n < 0 {
				c.fail(501, "5.5.4", "SIZE needs a number of octets")
				return
			}
			if n > c.cfg.MaxMessageBytes {
				c.reply(552, "5.3.4", fmt.Sprintf("Message too big: the limit is %d octets", c.cfg.MaxMessageBytes))
				return
			}
		case "BODY": // RFC 6152: stored as received either way
			if v := strings.ToUpper(value); v != "7BIT" && v != "8BITMIME" {
				c.fail(501, "5.5.4", "BODY must be 7BIT or 8BITMIME")
				return
			}
		case "AUTH":
			// RFC 4954 §5: accepted; this server is the final destination,
			// so the value has no one to be passed on to.
		default:
			c.fail(555, "5.5.4", "Unsupported MAIL parameter")
			return
		}
	}
	member := c.login.Member.Email
	if !ownAddress(member, from) {
		c.reply(553, "5.7.1", "Sender address must be your own address <"+member+">")
		return
	}
	c.inTx, c.from = true, member
	c.reply(250, "2.1.0", "Sender OK")
}

// rcpt runs RCPT TO (RFC 5321 §4.1.1.3): local members only.
func (c *conn) rcpt(arg string) {
	if !c.inTx {
		c.fail(503, "5.5.1", "Send MAIL first")
		return
	}
	to, params, err := parsePath(arg, "TO:")
	if err != nil || to == "" {
		c.fail(501, "5.5.4", "Syntax: RCPT TO:<address>")
		return
	}
	if len(params) > 0 {
		c.fail(555, "5.5.4", "Unsupported RCPT parameter")
		return
	}
	if len(c.rcpts) >= c.cfg.MaxRecipients {
		// RFC 5321 §4.5.3.1.10: 452, the client sends the rest later.
		c.reply(452, "4.5.3", fmt.Sprintf("Too many recipients: at most %d per message", c.cfg.MaxRecipients))
		return
	}
	at := strings.LastIndexByte(to, '@')
	if at < 0 {
		c.reply(550, "5.1.1", "No such user here")
		return
	}
	domain, err := account.ParseDomain(to[at+1:])
	if err != nil {
		c.fail(501, "5.1.3", "Bad recipient address syntax")
		return
	}
	if _, err := c.cfg.Accounts.DomainByName(c.ctx, domain); isNotFound(err) {
		c.reply(550, "5.7.1", "Relaying is not configured: this server delivers only to its own domains")
		return
	} else if err != nil {
		c.log.Warn("smtp: domain lookup", "err", err)
		c.reply(451, "4.3.0", "Temporary failure looking up the recipient, try again later")
		return
	}
	email, err := account.ParseEmail(to)
	if err != nil {
		c.reply(550, "5.1.1", "No such user here")
		return
	}
	m, err := c.cfg.Accounts.MemberByEmail(c.ctx, email)
	if isNotFound(err) {
		c.reply(550, "5.1.1", "No such user here")
		return
	} else if err != nil {
		c.log.Warn("smtp: member lookup", "err", err)
		c.reply(451, "4.3.0", "Temporary failure looking up the recipient, try again later")
		return
	}
	if m.State != account.StateActive {
		c.reply(550, "5.2.1", "Mailbox disabled, not accepting messages")
		return
	}
	for _, r := range c.rcpts {
		if r.memberID == m.ID {
			c.reply(250, "2.1.5", "Recipient OK (duplicate)")
			return
		}
	}
	c.rcpts = append(c.rcpts, recipient{memberID: m.ID, email: m.Email})
	c.reply(250, "2.1.5", "Recipient OK")
}

func isNotFound(err error) bool {
	return err != nil && (errors.Is(err, account.ErrNotFound) || account.ErrorCode(err) == account.ENOTFOUND)
}

var errPathSyntax = errors.New("bad path syntax")

// parsePath parses the argument of MAIL or RCPT after its keyword:
//
//	FROM:<path> [SP param]...   (RFC 5321 §4.1.2)
//
// It returns the mailbox inside the angle brackets ("" for the null path
// <>), with any source route dropped as §4.1.2 requires, and the ESMTP
// parameters. A space after the colon is tolerated (many clients send one).
// Only US-ASCII is accepted: SMTPUTF8 is not offered.
func parsePath(arg, keyword string) (string, []string, error) {
	if len(arg) < len(keyword) || !strings.EqualFold(arg[:len(keyword)], keyword) {
		return "", nil, errPathSyntax
	}
	s := strings.TrimLeft(arg[len(keyword):], " ")
	if !strings.HasPrefix(s, "<") {
		return "", nil, errPathSyntax
	}
	end, quoted, escaped := -1, false, false
	for i := 1; i < len(s) && end < 0; i++ {
		ch := s[i]
		switch {
		case ch < ' ' || ch >= 0x7f:
			return "", nil, errPathSyntax
		case escaped:
			escaped = false
		case ch == '\\' && quoted:
			escaped = true
		case ch == '"':
			quoted = !quoted
		case ch == '>' && !quoted:
			end = i
		case ch == ' ' && !quoted, ch == '<' && !quoted:
			return "", nil, errPathSyntax
		}
	}
	if end < 0 {
		return "", nil, errPathSyntax
	}
	addr, rest := s[1:end], s[end+1:]
	if rest != "" && rest[0] != ' ' {
		return "", nil, errPathSyntax
	}
	if strings.HasPrefix(addr, "@") {
		// A-d-l ":" Mailbox: the source route is ignored (RFC 5321 §4.1.2, App. C).
		i := strings.IndexByte(addr, ':')
		if i < 0 {
			return "", nil, errPathSyntax
		}
		addr = addr[i+1:]
	}
	if addr != "" && (strings.IndexByte(addr, '@') <= 0 || strings.HasSuffix(addr, "@")) {
		if !strings.EqualFold(addr, "postmaster") { // RFC 5321 §4.1.1.3
			return "", nil, errPathSyntax
		}
	}
	var params []string
	for _, p := range strings.Split(rest, " ") {
		if p == "" {
			continue
		}
		for i := 0; i < len(p); i++ {
			if p[i] < '!' || p[i] >= 0x7f {
				return "", nil, errPathSyntax
			}
		}
		params = append(params, p)
	}
	return addr, params, nil
}
