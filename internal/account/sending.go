package account

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Sending caps contain a leaked credential: a script that has a member's app
// password (or main password) can send only so much over SMTP submission
// before it is refused and the member is told. Every message counts, to
// colleagues as to the Internet: a hijacked password spamming the
// organisation is abuse too. The caps apply to the member (every login
// together) and, separately, to each app password; a main-password login
// (an optional domain with the setting off) counts under the member's only.

// SendCaps are the caps of one scope over sliding windows; 0 is no cap.
type SendCaps struct {
	MessagesPerHour, MessagesPerDay     int
	RecipientsPerHour, RecipientsPerDay int
}

// SendLimits are the caps of a member and those of each of its app passwords.
type SendLimits struct {
	Member      SendCaps // everything the member submits, whatever the login
	AppPassword SendCaps // what one app password submits
}

// DefaultSendLimits are the caps of `postern serve` unless its flags say
// otherwise (docs/mail.md, "Sending limits and sender addresses").
//
// A person writes tens of messages a day; a busy one (sales, support,
// an assistant sending invitations) a few hundred, to a handful of
// recipients each; a list sent to an alias counts as one recipient. The
// member's caps leave such a day several times over, in a burst too (200
// messages or 1,000 recipients in one hour), while a spam run is stopped
// within its first hour. One app password gets half the member's, so that
// a member with a phone and a laptop is not stopped by either, and a
// leaked one reaches at most 500 recipients before the member hears of it.
// They are below Google Workspace's and Microsoft 365's (2,000 messages and
// 10,000 recipients a day), which serve organisations large enough to
// notice a spam run by other means; and a spam run from a small server's
// one address costs that address its reputation for everyone.
var DefaultSendLimits = SendLimits{
	Member:      SendCaps{MessagesPerHour: 200, MessagesPerDay: 1000, RecipientsPerHour: 1000, RecipientsPerDay: 3000},
	AppPassword: SendCaps{MessagesPerHour: 100, MessagesPerDay: 500, RecipientsPerHour: 500, RecipientsPerDay: 1500},
}

// SendNoticeEvery is how often, at most, a member is told that one of its
// app passwords (or its main password) reached a cap: a script retrying
// all day gets the member one message, not one per attempt.
const SendNoticeEvery = 24 * time.Hour

// SendTally is what was sent in some window: messages, and their envelope
// recipients (an alias is one recipient).
type SendTally struct{ Messages, Recipients int }

// SendUsage is what one scope sent in the last hour and the last day.
type SendUsage struct{ Hour, Day SendTally }

// SendCounts is what the store counted for a login: the member's usage and
// the app password's (zero for a main-password login).
type SendCounts struct{ Member, AppPassword SendUsage }

// SendPending is what was accepted but is not yet in SendCounts (messages
// whose transactions are still open): the same for every window.
type SendPending struct{ Member, AppPassword SendTally }

// SendLimit is a cap that a submission would pass.
type SendLimit struct {
	AppPassword bool // the app password's cap; false: the member's
	Recipients  bool // a cap on recipients; false: on messages
	Day         bool // the day's cap, a permanent refusal; false: the hour's
	Max         int
}

// String says what the cap is: "100 messages an hour per app password".
func (l SendLimit) String() string {
	what, window, scope := "message", "an hour", "per member"
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
		scope = "per third-party app password"
	}
	return fmt.Sprintf("%d %s %s %s", l.Max, what, window, scope)
}

// SendBudget is what a login may still send: the caps, and what the store
// had counted when the budget was read.
type SendBudget struct {
	Limits      SendLimits
	AppPassword bool // an app-password login: its own caps apply too
	Sent        SendCounts
}

// Over returns the cap that messages more messages and recipients more
// recipients would pass, on top of what was sent and what is pending; nil
// when they fit. Day caps are named before hour caps (a refusal that
// waiting an hour does not cure is the one to tell), an app password's
// before its member's.
func (b SendBudget) Over(p SendPending, messages, recipients int) *SendLimit {
	type scope struct {
		app     bool
		caps    SendCaps
		sent    SendUsage
		pending SendTally
	}
	scopes := []scope{
		{true, b.Limits.AppPassword, b.Sent.AppPassword, p.AppPassword},
		{false, b.Limits.Member, b.Sent.Member, p.Member},
	}
	if !b.AppPassword {
		scopes = scopes[1:]
	}
	for _, day := range []bool{true, false} {
		for _, s := range scopes {
			sent, maxMsgs, maxRcpts := s.sent.Hour, s.caps.MessagesPerHour, s.caps.RecipientsPerHour
			if day {
				sent, maxMsgs, maxRcpts = s.sent.Day, s.caps.MessagesPerDay, s.caps.RecipientsPerDay
			}
			if messages > 0 && maxMsgs > 0 && sent.Messages+s.pending.Messages+messages > maxMsgs {
				return &SendLimit{AppPassword: s.app, Day: day, Max: maxMsgs}
			}
			if recipients > 0 && maxRcpts > 0 && sent.Recipients+s.pending.Recipients+recipients > maxRcpts {
				return &SendLimit{AppPassword: s.app, Recipients: true, Day: day, Max: maxRcpts}
			}
		}
	}
	return nil
}

// sendLimits are the service's caps: DefaultSendLimits unless configured.
func (s *Service) sendLimits() SendLimits {
	if s.Config.SendLimits != nil {
		return *s.Config.SendLimits
	}
	return DefaultSendLimits
}

// SendBudget reads what the login (member m with credential cred) sent in
// the last hour and day, in one store round trip. A store failure is
// EUNAVAILABLE.
func (s *Service) SendBudget(ctx context.Context, m Member, cred Credential) (SendBudget, error) {
	b := SendBudget{Limits: s.sendLimits(), AppPassword: !cred.IsMain()}
	if !b.AppPassword {
		b.Limits.AppPassword = SendCaps{}
	}
	if b.Limits == (SendLimits{}) {
		return b, nil // no caps: nothing to count
	}
	c, err := s.store.SendCounts(ctx, m.ID, cred.AppPasswordID, s.Now())
	if err != nil {
		return SendBudget{}, unavailableErr(err)
	}
	b.Sent = c
	return b, nil
}

// SendLimited tells the member that its login with cred reached the cap l:
// a message naming the app password ("if this was not you, delete it"),
// written with the record of the notice in one transaction, at most once
// per SendNoticeEvery for each app password (or for the main password).
// told says whether this call wrote it.
func (s *Service) SendLimited(ctx context.Context, m Member, cred Credential, l SendLimit) (told bool, err error) {
	now := s.Now().UTC()
	msg := s.sendLimitedMessage(m, cred, l, now, s.Location(ctx, m.ID))
	told, err = s.store.NoteSendLimited(ctx, m.ID, cred.AppPasswordID, now, now.Add(-SendNoticeEvery), Effects{Messages: []Message{msg}})
	if err != nil {
		return false, unavailableErr(err)
	}
	if told {
		s.Log.Warn("sending cap reached; member told", "member", m.Email, "app_password", cred.AppPasswordID, "cap", l.String())
	}
	return told, nil
}

// Senders returns the addresses m may send as (envelope and From:): its
// own first, then those of the aliases whose targets include it, by
// address. Tagged forms (alice+news@) are the caller's rule; see
// docs/mail.md. A store failure is EUNAVAILABLE.
func (s *Service) Senders(ctx context.Context, m Member) ([]string, error) {
	aliases, err := s.store.MemberAliases(ctx, m.ID)
	if err != nil {
		return nil, unavailableErr(err)
	}
	return append([]string{m.Email}, aliases...), nil
}

// sendLimitedMessage is the member's message about a cap reached by a
// login with cred.
func (s *Service) sendLimitedMessage(m Member, cred Credential, l SendLimit, at time.Time, loc *time.Location) Message {
	window, next := "hour", "Mail is accepted again as the count of the last hour falls below the limit."
	if l.Day {
		window, next = "day", "Mail is refused until the count of the last 24 hours falls below the limit."
	}
	what := "messages"
	if l.Recipients {
		what = "recipients"
	}
	noun := strings.TrimSuffix(what, "s") // "at most 1 message"
	if l.Max != 1 {
		noun = what
	}
	scope, per := "member", "from your account, all apps together"
	if l.AppPassword {
		scope, per = "app_password", "with one third-party app password"
	}
	every := map[string]string{"hour": "an hour", "day": "a day"}[window]
	limit := fmt.Sprintf("at most %d %s %s %s", l.Max, noun, every, per)
	apps, password := s.link("/security/app-passwords"), s.link("/security/password")
	var subject, body string
	if cred.IsMain() {
		subject = "Sending limit reached by your account"
		body = fmt.Sprintf(`Mail sent from your account %s by an app that logged in with your account
password reached a sending limit: %s.
%s

Time: %s

If this was not you, someone else knows your password and may be sending spam
with it. Change your password now: %s
`, m.Email, limit, next, FormatTime(loc, at), password)
	} else {
		subject = "Sending limit reached by the third-party app password: " + cred.AppName
		body = fmt.Sprintf(`Mail sent from your account %s with the third-party app password "%s"
reached a sending limit: %s.
%s

Time: %s

If this was not you, someone else has this third-party app password and may be sending spam
with it. Delete it now, and change your password:
  Delete the third-party app password: %s
  Change your password: %s
`, m.Email, cred.AppName, limit, next, FormatTime(loc, at), apps, password)
	}
	return s.message(m, MsgSendLimited, subject, body, at,
		params(m, Actor{}, at, "app", cred.AppName, "app_id", cred.AppPasswordID, "scope", scope, "what", what,
			"window", window, "max", strconv.Itoa(l.Max), "link_apps", apps, "link_password", password))
}
