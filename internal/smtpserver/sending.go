package smtpserver

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/postern/postern/internal/account"
)

// Sending is what submission asks before it takes a message from a member:
// the addresses the member may send as (Senders: its own, then its
// aliases'), what its sending caps leave (SendBudget, read once per
// transaction), and whom to tell when a cap is reached (SendLimited, which
// tells the member at most once a day per app password). *account.Service
// implements it; its errors are EUNAVAILABLE when the store does not
// answer. nil: a member sends only as its own address, without caps.
type Sending interface {
	Senders(ctx context.Context, m account.Member) ([]string, error)
	SendBudget(ctx context.Context, m account.Member, cred account.Credential) (account.SendBudget, error)
	SendLimited(ctx context.Context, m account.Member, cred account.Credential, l account.SendLimit) (told bool, err error)
}

// sendKey names a scope of the caps: a member (app "") or one of its app
// passwords.
type sendKey struct {
	member int64
	app    string
}

// sendLedger counts, per scope, what this server's sessions have accepted
// (MAIL, RCPT) in transactions that the store's counts may not show yet:
// without it, a script on 50 connections would pass every check at once
// (each MAIL reads the same counts) and send 50 messages' worth past a cap.
// A session holds its transaction's message and recipients from their
// acceptance until its next MAIL or its end, by which time the message is
// committed (and counted by the store) or was never sent. Between the
// commit and then it counts twice: stricter, never laxer. Other nodes'
// open transactions are not seen; each node bounds its own.
type sendLedger struct {
	mu sync.Mutex
	m  map[sendKey]account.SendTally
}

// reserve moves the session's hold by adjust, then adds messages and
// recipients to it unless they pass a cap of b with what every session
// holds; it returns that cap, holding nothing more. Checking and adding
// under one lock, sessions cannot both take the last place.
func (l *sendLedger) reserve(k sendKey, b account.SendBudget, adjust account.SendTally, messages, recipients int) *account.SendLimit {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.addLocked(k, adjust)
	p := account.SendPending{Member: l.m[sendKey{k.member, ""}]}
	if k.app != "" {
		p.AppPassword = l.m[k]
	}
	if limit := b.Over(p, messages, recipients); limit != nil {
		return limit
	}
	l.addLocked(k, account.SendTally{Messages: messages, Recipients: recipients})
	return nil
}

// release takes back a session's hold.
func (l *sendLedger) release(k sendKey, held account.SendTally) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.addLocked(k, account.SendTally{Messages: -held.Messages, Recipients: -held.Recipients})
}

// addLocked adds d to the member's scope and, for an app password, to its
// own; scopes back at zero are dropped, so the map holds only open
// transactions.
func (l *sendLedger) addLocked(k sendKey, d account.SendTally) {
	if d == (account.SendTally{}) {
		return
	}
	if l.m == nil {
		l.m = map[sendKey]account.SendTally{}
	}
	keys := []sendKey{{k.member, ""}}
	if k.app != "" {
		keys = append(keys, k)
	}
	for _, key := range keys {
		t := l.m[key]
		t.Messages += d.Messages
		t.Recipients += d.Recipients
		if t == (account.SendTally{}) {
			delete(l.m, key)
		} else {
			l.m[key] = t
		}
	}
}

// sendState is a submission session's part in the sender rule and the caps.
type sendState struct {
	senders []string           // the addresses the member may send as, read at MAIL FROM
	budget  account.SendBudget // read at MAIL FROM
	key     sendKey            // the scope held is in
	held    account.SendTally  // what this session holds in the server's ledger
	told    sendKey            // the scope whose member this session has told of a cap
}

// submissionSender runs MAIL FROM's checks in submission: from must be an
// address the member may send as, and one more message must fit the caps.
// It returns the reverse path to use (from, lower-cased: an alias's
// address stays the alias's), or false after replying with the refusal.
func (c *conn) submissionSender(from string) (string, bool) {
	// The previous transaction's message is committed, and counted by the
	// store, or was never sent.
	c.releaseSend()
	m, cred := c.login.Member, c.login.Credential
	c.send.senders = []string{m.Email}
	if c.cfg.Sending != nil {
		list, err := c.cfg.Sending.Senders(c.ctx, m)
		if err != nil {
			c.log.Warn("smtp: sender lookup", "err", err)
			c.reply(451, "4.3.0", "Temporary failure checking the sender, try again later")
			return "", false
		}
		c.send.senders = list
	}
	ok, err := c.maySendAs(from)
	if err != nil {
		c.log.Warn("smtp: sender lookup", "err", err)
		c.reply(451, "4.3.0", "Temporary failure checking the sender, try again later")
		return "", false
	}
	if !ok {
		c.reply(553, "5.7.1", "Sender address must be "+c.yourAddresses())
		return "", false
	}
	if c.cfg.Sending != nil {
		b, err := c.cfg.Sending.SendBudget(c.ctx, m, cred)
		if err != nil {
			c.log.Warn("smtp: sending caps", "err", err)
			c.reply(451, "4.3.0", "Temporary failure checking the sending limits, try again later")
			return "", false
		}
		c.send.budget, c.send.key = b, sendKey{m.ID, cred.AppPasswordID}
		if limit := c.s.ledger.reserve(c.send.key, b, account.SendTally{}, 1, 0); limit != nil {
			c.sendLimited(limit)
			return "", false
		}
		c.send.held = account.SendTally{Messages: 1}
	}
	return strings.ToLower(from), true
}

// recipientFits checks, in submission, that one more recipient fits the
// caps with those this transaction already has (local and external alike),
// or replies with the refusal and returns false. It holds exactly the
// recipients accepted so far plus this one: one refused after this check
// (unknown, over quota) is let go at the next RCPT, MAIL or the end.
func (c *conn) recipientFits() bool {
	if c.cfg.Mode != Submission || c.cfg.Sending == nil {
		return true
	}
	adjust := account.SendTally{Recipients: len(c.rcpts) - c.send.held.Recipients}
	c.send.held.Recipients = len(c.rcpts)
	if limit := c.s.ledger.reserve(c.send.key, c.send.budget, adjust, 0, 1); limit != nil {
		c.sendLimited(limit)
		return false
	}
	c.send.held.Recipients++
	return true
}

// releaseSend gives back what the session holds in the ledger.
func (c *conn) releaseSend() {
	if c.send.held != (account.SendTally{}) {
		c.s.ledger.release(c.send.key, c.send.held)
		c.send.held = account.SendTally{}
	}
}

// sendLimited refuses with the cap l: 450 4.7.1 for an hour's cap (the
// client tries again later), 550 5.7.1 for a day's, and tells the member,
// once per session (the service keeps it to once a day).
func (c *conn) sendLimited(l *account.SendLimit) {
	m, cred := c.login.Member, c.login.Credential
	c.log.Warn("smtp: sending cap reached", "member", m.Email, "app_password", cred.AppPasswordID, "cap", l.String())
	if c.send.told != c.send.key {
		c.send.told = c.send.key
		// A client hanging up must not cost the member the warning.
		if _, err := c.cfg.Sending.SendLimited(context.WithoutCancel(c.ctx), m, cred, *l); err != nil {
			c.log.Error("smtp: telling the member of a sending cap", "member", m.Email, "err", err)
		}
	}
	what, window, whose := "message", "an hour", "from your account"
	if l.Recipients {
		what = "recipient"
	}
	if l.Max != 1 {
		what += "s"
	}
	if l.Day {
		window = "a day"
	}
	if l.AppPassword {
		whose = "with this app password"
	}
	text := fmt.Sprintf("Sending limit reached: at most %d %s %s %s", l.Max, what, window, whose)
	if l.Day {
		c.reply(550, "5.7.1", text)
		return
	}
	c.reply(450, "4.7.1", text+"; try again later")
}

// maySendAs applies allowedSender with the addresses read at MAIL FROM. A
// tagged form is the member's only when mail to it reaches the member by
// its tag, not someone who has the address as written; the recipient
// lookup tells (err: it did not answer).
func (c *conn) maySendAs(addr string) (bool, error) {
	ok, tagged := allowedSender(c.send.senders, addr)
	if !ok || !tagged {
		return ok, nil
	}
	r, err := c.cfg.Recipients.ResolveRecipient(c.ctx, addr)
	switch account.ErrorCode(err) {
	case "":
		return r.Tag != "", nil
	case account.EUNAVAILABLE, account.EINTERNAL:
		return false, err
	}
	return false, nil
}

// yourAddresses says in a refusal which addresses the member may send as.
func (c *conn) yourAddresses() string {
	s := "your own address <" + c.login.Member.Email + ">"
	if len(c.send.senders) > 1 {
		s += " or an alias of yours"
	}
	return s
}

// checkIdentity holds a submitted message's From: and Sender: to the
// sender rule (checkIdentity): nil when they pass, else the reply (550
// 5.7.1, or 451 4.3.0 when the rule could not be applied).
func (c *conn) checkIdentity(body []byte) *Reply {
	refusal, err := checkIdentity(body, c.maySendAs, c.yourAddresses())
	switch {
	case err != nil:
		c.log.Warn("smtp: sender lookup", "err", err)
		return &Reply{451, "4.3.0", "Temporary failure checking the sender, try again later"}
	case refusal != "":
		// The author shown to recipients must be the member who logged in,
		// as the envelope sender must (SPEC §5).
		c.log.Info("smtp: message refused", "reason", "from-not-own", "member", c.login.Member.Email)
		return &Reply{550, "5.7.1", refusal}
	}
	return nil
}
