package smtpserver

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/postern/postern/internal/account"
)

// recipient is one accepted RCPT: its address (normalised, the plus tag
// kept: the "for" of Received and Delivered-To) and the members it reaches.
type recipient struct {
	address  string
	members  []int64
	external bool // another domain's: queued for delivery (submission)
}

// mail runs MAIL FROM (RFC 5321 §4.1.1.2). Submission needs a login first
// (RFC 6409 §4.3, RFC 4954 §6: 530 5.7.0), the reverse path must be an
// address the authenticated member may send as (its own or an alias's,
// SPEC §5), and the member's sending caps must allow one more message. MX
// and LMTP take any sender, the null one <> included (RFC 5321 §4.5.5:
// bounces).
func (c *conn) mail(arg string) {
	switch {
	case c.helo == "":
		c.fail(503, "5.5.1", "Send "+c.helloVerb()+" first")
		return
	case c.cfg.Mode == Submission && c.login == nil:
		c.fail(530, "5.7.0", "Authentication required")
		return
	case c.inTx:
		c.fail(503, "5.5.1", "Nested MAIL command")
		return
	}
	from, params, err := parsePath(arg, "FROM:")
	if err != nil {
		c.fail(501, "5.5.4", "Syntax: MAIL FROM:<address> [SIZE=n] [BODY=7BIT|8BITMIME] [SMTPUTF8]")
		return
	}
	var size int64
	smtputf8 := false
	for _, p := range params {
		key, value, hasValue := strings.Cut(p, "=")
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
			size = n
		case "BODY": // RFC 6152: stored as received either way
			if v := strings.ToUpper(value); v != "7BIT" && v != "8BITMIME" {
				c.fail(501, "5.5.4", "BODY must be 7BIT or 8BITMIME")
				return
			}
		case "SMTPUTF8": // RFC 6531 §3.4: no value
			if hasValue {
				c.fail(501, "5.5.4", "SMTPUTF8 takes no value")
				return
			}
			smtputf8 = true
		case "AUTH":
			// RFC 4954 §5: accepted; this server is the final destination,
			// so the value has no one to be passed on to.
		default:
			c.fail(555, "5.5.4", "Unsupported MAIL parameter")
			return
		}
	}
	if !smtputf8 && !isASCII(from) {
		// RFC 6531 §3.5: a non-ASCII address without SMTPUTF8.
		c.reply(553, "5.6.7", "Non-ASCII sender address needs the SMTPUTF8 parameter")
		return
	}
	if c.cfg.Mode == Submission {
		var ok bool
		if from, ok = c.submissionSender(from); !ok { // sending.go: sender rule, caps
			return
		}
	}
	c.inTx, c.from, c.utf8, c.sizeHint = true, from, smtputf8, size
	c.reply(250, "2.1.0", "Sender OK")
}

// rcpt runs RCPT TO (RFC 5321 §4.1.1.3): addresses of local members only,
// through Recipients in every mode, so that mail to one address goes to the
// same place whoever sends it.
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
	if !c.recipientFits() { // sending.go: submission's caps
		return
	}
	if c.s.rate != nil && !c.s.rate.allow(c.remoteIP) {
		c.log.Info("smtp: recipient refused", "reason", "rate-limit")
		c.reply(451, "4.7.1", fmt.Sprintf("Too many recipients from your address: at most %d a minute, try again later", c.cfg.RateLimit))
		return
	}
	if !isASCII(to) {
		// Every address here is US-ASCII (account.ParseEmail): a UTF-8
		// one, allowed by SMTPUTF8, names nobody.
		c.reply(550, "5.1.1", "No such user here")
		return
	}
	r, err := c.cfg.Recipients.ResolveRecipient(c.ctx, to)
	if err == nil && len(r.Members) == 0 {
		err = account.Errorf(account.ENOTFOUND, "No one receives mail for %s.", to)
	}
	switch account.ErrorCode(err) {
	case "":
	case account.ENOTFOUND:
		c.reply(550, "5.1.1", "No such user here")
		return
	case account.ENOTLOCAL:
		if c.cfg.Mode == Submission && c.cfg.Submit != nil && c.cfg.Relay {
			if !remoteAddress(to) {
				c.fail(501, "5.1.3", "Bad recipient address syntax")
				return
			}
			c.rcpts = append(c.rcpts, recipient{address: to, external: true})
			c.reply(250, "2.1.5", "Recipient OK")
			return
		}
		text := "Relaying denied: this server accepts mail only for its own domains"
		if c.cfg.Mode == Submission {
			text = "Relaying is not configured: this server delivers only to its own domains"
		}
		c.reply(550, "5.7.1", text)
		return
	case account.EINVALID:
		c.fail(501, "5.1.3", "Bad recipient address syntax")
		return
	default:
		c.log.Warn("smtp: recipient lookup", "err", err)
		c.reply(451, "4.3.0", "Temporary failure looking up the recipient, try again later")
		return
	}
	rc := recipient{address: r.Address}
	full := 0
	for _, m := range r.Members {
		rc.members = append(rc.members, m.ID)
		ok, err := c.fits(m.ID, c.sizeHint)
		if err != nil {
			c.log.Warn("smtp: mailbox usage", "err", err)
			c.reply(451, "4.3.0", "Temporary failure looking up the recipient, try again later")
			return
		}
		if !ok {
			full++
		}
	}
	if full > 0 && full == len(r.Members) {
		c.reply(452, "4.2.2", "Mailbox full: <"+r.Address+"> is over its quota")
		return
	}
	c.rcpts = append(c.rcpts, rc)
	c.reply(250, "2.1.5", "Recipient OK")
}

// fits says whether size more octets fit in the member's quota: the
// member's own limit, else the domain's, else the server's (RFC 3463 4.2.2
// when not). The quota is checked, not reserved: two messages accepted at
// once may together pass it by at most one message each.
func (c *conn) fits(member, size int64) (bool, error) {
	q, err := c.cfg.Mail.Quota(c.ctx, member)
	if err != nil {
		return false, err
	}
	return q.Fits(size, c.cfg.Quota), nil
}

// remoteAddress says whether addr is fit to be queued for another domain:
// a local part and a host name that DNS could hold (RFC 5321 §4.1.2,
// §4.5.3.1; address literals are not delivered to).
func remoteAddress(addr string) bool {
	i := strings.LastIndexByte(addr, '@')
	if i < 1 || i > 64 || len(addr)-i-1 > 253 {
		return false
	}
	labels := strings.Split(addr[i+1:], ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for j := 0; j < len(l); j++ {
			if b := l[j]; !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-') {
				return false
			}
		}
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

var errPathSyntax = errors.New("bad path syntax")

// parsePath parses the argument of MAIL or RCPT after its keyword:
//
//	FROM:<path> [SP param]...   (RFC 5321 §4.1.2)
//
// It returns the mailbox inside the angle brackets ("" for the null path
// <>), with any source route dropped as §4.1.2 requires, and the ESMTP
// parameters. A space after the colon is tolerated (many clients send one).
// The mailbox may be UTF-8 (RFC 6531); parameters are US-ASCII.
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
		case ch < ' ' || ch == 0x7f:
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
	if !utf8.ValidString(addr) {
		return "", nil, errPathSyntax
	}
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
