package auth

import (
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/postern/postern/internal/account"
)

// CodeThrottled is the account.Error code of a web sign-in refused unchecked
// because its client or its account already has too many attempts waiting
// (HTTP 429). The third-party protocols never see it: they answer such an
// attempt with their one generic failure.
const CodeThrottled = "too_many_attempts"

// DefaultWebAccountThrottle is the web's per-account schedule: five failures
// against one address without delay (a member who forgot which password they
// chose), then 2, 4, 8, 16 and 30 s between attempts, whatever their source
// address, so that guessing from many addresses at once (where the per-IP
// throttle does not bite) stays at two guesses a minute. A queue reaching
// more than two minutes ahead is refused unchecked; a quiet hour forgets.
var DefaultWebAccountThrottle = ThrottleConfig{Free: 4, Base: 2 * time.Second, Max: 30 * time.Second,
	Backlog: 2 * time.Minute, Forget: time.Hour}

// keyThrottle is a throttle keyed by a string: MemThrottle and
// SharedThrottle, used for the web's per-account schedule.
type keyThrottle interface {
	beginKey(key string, now time.Time) (time.Duration, bool)
	endKey(key string, o Outcome, tags Tags, now time.Time)
}

// newAccountThrottle returns the web's per-account throttle: in the store
// of the per-IP throttle when that is shared between nodes (so that every
// node sees an account's failures), in memory otherwise (one node).
func newAccountThrottle(cfg Config) keyThrottle {
	c := cfg.WebAccountThrottle
	d := DefaultWebAccountThrottle
	c.Free, c.Base, c.Max = orDefault(c.Free, d.Free), orDefault(c.Base, d.Base), orDefault(c.Max, d.Max)
	c.Backlog, c.Forget = orDefault(c.Backlog, d.Backlog), orDefault(c.Forget, d.Forget)
	if st, ok := cfg.Throttle.(*SharedThrottle); ok {
		return NewSharedThrottle(st.store, c, cfg.Log)
	}
	return NewMemThrottle(c)
}

func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

func throttled(reason string) error {
	return &account.Error{Code: CodeThrottled, Message: "Too many failed attempts. Wait a little and try again.",
		Err: errors.New(reason)}
}

// SignIn checks a member's main password for the web UI and API: sign-in,
// re-authentication, and the current password of a password change. App
// passwords never sign in here (account.Service.VerifyMain), whatever the
// domain policy.
//
// A web attempt counts like a third-party login: it waits behind the same
// per-IP throttle (shared between nodes on PostgreSQL), it is a login record
// with protocol "web", and a failure adds to the account's consecutive-failure
// counter, so that failures spread over IMAP, SMTP, POP3, CalDAV and the web
// pause third-party logins at the limit (docs/security.md), and a
// correct web sign-in resets the counter, as a correct third-party login does.
//
// The pause itself does not apply to the web: the member must still be able
// to sign in there to change the password and delete app passwords, and a
// pause that blocked the web would hand anyone who knows the address a way
// to keep the member from the remedy for 15 minutes at a time. The web has
// its own per-account schedule instead (DefaultWebAccountThrottle), kept
// with the per-IP penalties and so shared between nodes too: it limits
// guessing on the web, also while a pause holds (the counter counts nothing
// then), and someone flooding it can at worst make the member's attempt
// wait its backlog or be refused with "try again". A correct sign-in during
// a pause leaves the pause in place: it ends at its time.
//
// Errors: account.ErrAuthFailed's message with code EUNAUTHORIZED for every
// wrong address, password or suspended member; CodeThrottled, at once, when
// the client's or the account's queue reaches further than its Backlog;
// EUNAVAILABLE when the database does not answer. It may sleep (throttling).
func (g *Gateway) SignIn(ctx context.Context, a Attempt) (account.Member, error) {
	start := g.now()
	a.Protocol = Web
	rec := LoginRecord{At: start.UTC(), Username: cleanUsername(a.User), Protocol: Web,
		Mechanism: a.Mechanism, TLS: a.TLS, Client: cleanClient(a.Client)}
	if a.RemoteIP.IsValid() {
		rec.IP = a.RemoteIP.Unmap().String()
	}
	user, err := account.ParseEmail(a.User)
	if err != nil {
		// Unknown addresses are throttled like known ones, so a refusal
		// tells nothing; the key is the address as a member would mistype it.
		user = strings.ToLower(strings.TrimSpace(a.User))
	}
	// As in Authenticate: a stale pair retried over IMAP and the web counts
	// once, and the address's failures are attributed to the same account.
	tags := Tags{Pair: g.tag("ip-pair", 0, user, a.Secret), Account: g.tag("ip-account", 0, user)}
	outcome := Abandoned
	var wait time.Duration // the later of the schedules the attempt was given
	admitted := false
	if device, known := g.knownDevice(user, a.Devices); known {
		// A browser that signed in as this member before has a schedule of
		// its own, in place of its address's and the account's: strangers'
		// failures, from anywhere, never queue the member's own sign-in. The
		// schedule is the account's, so a stolen cookie guesses no faster.
		key := "web-device:" + hex.EncodeToString(device[:])
		if wait, admitted = g.acct.beginKey(key, start); admitted {
			defer func() { g.acct.endKey(key, outcome, tags, g.now()) }()
		}
	} else if ipWait, ipOK := g.throttle.Begin(a.RemoteIP, start); ipOK {
		defer func() { g.throttle.End(a.RemoteIP, outcome, tags, g.now()) }()
		acctTag := g.tag("web-account", 0, user)
		acctKey := "web-account:" + hex.EncodeToString(acctTag[:])
		if acctWait, acctOK := g.acct.beginKey(acctKey, start); acctOK {
			defer func() { g.acct.endKey(acctKey, outcome, tags, g.now()) }()
			wait, admitted = max(ipWait, acctWait), true
		}
	}
	if !admitted {
		// Refused at once, unlike Authenticate's refusals, which wait so as to
		// look like any failure: a 429 says so anyway, it tells nothing of the
		// account (unknown addresses queue alike), and it checks nothing.
		g.finish(start, 0, &rec, failure("throttled"))
		return account.Member{}, throttled("throttled")
	}
	g.m.throttleDelay.Observe(wait.Seconds())
	if wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return account.Member{}, g.finish(start, wait, &rec, failure("canceled"))
		}
	}

	m, err := g.svc.VerifyMain(ctx, user, a.Secret)
	rec.MemberID = m.ID
	if err != nil && account.ErrorCode(err) != account.EUNAUTHORIZED {
		return account.Member{}, g.finish(start, wait, &rec, unavailable(err))
	}
	if m.ID != 0 {
		st, serr := g.store.AuthState(ctx, m.ID)
		if serr != nil {
			return account.Member{}, g.finish(start, wait, &rec, unavailable(serr))
		}
		paused := st.PausedUntil.After(start)
		switch {
		case paused:
			// Neither reset (the pause would end) nor counted (the store
			// counts nothing while paused): the web schedule above applies.
		case err == nil && (st.Failures > 0 || !st.PausedUntil.IsZero() || len(st.Tags) > 0):
			if rerr := g.store.ResetAuthFailures(ctx, m.ID); rerr != nil {
				return account.Member{}, g.finish(start, wait, &rec, unavailable(rerr))
			}
		case err != nil:
			g.countFailure(ctx, m, st, a, rec.IP, start)
		}
	}
	if err != nil {
		outcome = Failed
		return account.Member{}, g.finish(start, wait, &rec, err)
	}
	outcome = Succeeded
	g.finish(start, wait, &rec, nil)
	return m, nil
}
