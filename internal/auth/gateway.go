package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/events"
)

// Config of the Gateway. Service, Store and Key are required.
type Config struct {
	Service *account.Service // policy and hashing (Verify); its Store gets messages and last-used updates
	Store   Store            // failure counters and login records
	Bus     *events.Bus      // revocation events; nil: sessions are never closed by events
	Key     []byte           // server secret for the tags of failed secrets; never stored in the database

	Throttle       Throttle       // nil: an in-memory MemThrottle with ThrottleConfig
	ThrottleConfig ThrottleConfig // used when Throttle is nil
	// WebAccountThrottle is the web sign-in's per-account schedule (zero
	// fields: DefaultWebAccountThrottle's). It is shared between nodes when
	// Throttle is a SharedThrottle, in memory otherwise.
	WebAccountThrottle ThrottleConfig

	MaxFailures int           // consecutive failures per account before a pause (default 100)
	Pause       time.Duration // how long third-party logins stay paused (default 15 min)

	RecordBuffer    int           // login records queued before dropping (default 4096)
	FlushInterval   time.Duration // how long a record or last use waits for others to be written with (default 1 s)
	FlushBatch      int           // records written at once (default 1000)
	RecordRetention time.Duration // login records kept (default 30 days)

	// Sessions receives this node's live third-party sessions, for every
	// node to list (account.Service.LiveSessions); nil: not published.
	Sessions account.LiveSessionStore

	Log        *slog.Logger          // default slog.Default()
	Registerer prometheus.Registerer // nil: a private registry (metrics not exported)
	Now        func() time.Time      // default time.Now
}

// Gateway is the Authenticator of every third-party protocol.
type Gateway struct {
	svc      *account.Service
	store    Store
	key      []byte
	throttle Throttle
	acct     keyThrottle // the web's per-account schedule (signin.go)
	maxFail  int
	pause    time.Duration
	log      *slog.Logger
	now      func() time.Time
	m        *metrics
	reg      *Registry
	rec      *recorder
	unsub    func()
	closed   sync.Once
}

var _ Authenticator = (*Gateway)(nil)

// New returns a running Gateway; Close stops its background writers.
func New(cfg Config) (*Gateway, error) {
	if cfg.Service == nil || cfg.Store == nil || len(cfg.Key) == 0 {
		return nil, errors.New("auth: Service, Store and Key are required")
	}
	if cfg.MaxFailures <= 0 {
		cfg.MaxFailures = 100
	}
	if cfg.Pause <= 0 {
		cfg.Pause = 15 * time.Minute
	}
	if cfg.RecordBuffer <= 0 {
		cfg.RecordBuffer = 4096
	}
	if cfg.FlushInterval <= 0 {
		// Fewer, larger commits: each costs an fsync and rewrites the index
		// pages it touched, and nothing waits for the records.
		cfg.FlushInterval = time.Second
	}
	if cfg.FlushBatch <= 0 {
		cfg.FlushBatch = 1000
	}
	if cfg.RecordRetention <= 0 {
		cfg.RecordRetention = 30 * 24 * time.Hour
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Throttle == nil {
		cfg.Throttle = NewMemThrottle(cfg.ThrottleConfig)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("auth: metrics: %w", err)
	}
	g := &Gateway{svc: cfg.Service, store: cfg.Store, key: cfg.Key, throttle: cfg.Throttle, acct: newAccountThrottle(cfg),
		maxFail: cfg.MaxFailures, pause: cfg.Pause, log: cfg.Log, now: cfg.Now, m: m}
	g.reg = newRegistry(m, cfg.Now)
	g.reg.domain = cfg.Service.DomainByID
	g.reg.cutoff = cfg.Service.Config.Cutoff
	g.reg.log = cfg.Log
	g.rec = newRecorder(cfg.Store, cfg.Service, cfg.Log, m, cfg.Now,
		cfg.FlushInterval, cfg.FlushBatch, cfg.RecordBuffer, cfg.RecordRetention)
	g.rec.start()
	if cfg.Bus != nil {
		g.unsub = cfg.Bus.Subscribe(0, g.reg.HandleEvent)
	}
	if cfg.Sessions != nil {
		g.reg.pub = newPublisher(cfg.Sessions, cfg.FlushInterval, cfg.Log, cfg.Now)
		go g.reg.pub.run()
	}
	return g, nil
}

// Close stops listening to events and writes the queued records. Records
// of attempts made after Close are dropped.
func (g *Gateway) Close() error {
	g.closed.Do(func() {
		if g.unsub != nil {
			g.unsub()
		}
		if g.reg.pub != nil {
			g.reg.pub.shutdown()
		}
		g.rec.close()
	})
	return nil
}

// Registry returns the live-session registry.
func (g *Gateway) Registry() *Registry { return g.reg }

// Track implements Authenticator.
func (g *Gateway) Track(l Login, protocol string, close func()) (done func()) {
	return g.reg.Track(l, protocol, close)
}

// tag returns a short keyed tag of data under purpose: enough to recognise a
// repeated secret, useless to recover it, and unlike the app password hash.
func (g *Gateway) tag(purpose string, id int64, parts ...string) PairTag {
	h := hmac.New(sha256.New, g.key)
	h.Write([]byte(purpose))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(id))
	h.Write(b[:])
	for _, p := range parts {
		binary.BigEndian.PutUint64(b[:], uint64(len(p)))
		h.Write(b[:])
		h.Write([]byte(p))
	}
	var t PairTag
	copy(t[:], h.Sum(nil))
	return t
}

var errUnavailable = &account.Error{Code: account.EUNAVAILABLE, Message: "Temporary failure, try again later."}

func unavailable(err error) error {
	return &account.Error{Code: account.EUNAVAILABLE, Message: errUnavailable.Message, Err: err}
}

func failure(reason string) error {
	return &account.Error{Code: account.EUNAUTHORIZED, Message: account.ErrAuthFailed.Message, Err: errors.New(reason)}
}

// Authenticate implements Authenticator. A correct app password is let in
// first, at the cost of one HMAC (account.Service.MatchAppPassword): it is
// never delayed by the per-IP throttle, never refused by the account's
// pause, and resets neither (see docs/security.md: a secret of 20 random
// characters is not guessed, and holding it back would only let an attacker
// hold back the member). Everything else is a guess until proven otherwise:
// per-IP throttling, then account.Service.Verify (policy and one argon2id
// hash), then the account's failure counter, whose pause refuses only the
// main password. Every failure is account.ErrAuthFailed's message; a
// database outage fails closed with EUNAVAILABLE.
func (g *Gateway) Authenticate(ctx context.Context, a Attempt) (Login, error) {
	start := g.now()
	gen := g.reg.generation()
	rec := LoginRecord{At: start.UTC(), Username: cleanUsername(a.User), Protocol: a.Protocol,
		Mechanism: a.Mechanism, TLS: a.TLS, Client: cleanClient(a.Client)}
	if a.RemoteIP.IsValid() {
		rec.IP = a.RemoteIP.Unmap().String()
	}
	user := a.User
	if e, err := account.ParseEmail(a.User); err == nil {
		user = e
	}
	m, cred, ok, err := g.svc.MatchAppPassword(ctx, user, a.Secret)
	if err != nil {
		return Login{}, g.finish(start, 0, &rec, unavailable(err))
	}
	if ok {
		if reason := m.Security.Refusal(a.Protocol, a.RemoteIP); reason != "" {
			// What a failure costs, so that the reply's timing does not
			// tell that the app password was right.
			g.svc.Hasher.Verify(ctx, "", a.Secret)
			rec.MemberID = m.ID
			return Login{}, g.finish(start, 0, &rec, failure(reason))
		}
		return g.succeed(start, 0, &rec, a, m, cred, gen), nil
	}

	wait, admitted := g.throttle.Begin(a.RemoteIP, start)
	g.m.throttleDelay.Observe(wait.Seconds())
	outcome := Abandoned
	if admitted {
		defer func() { g.throttle.End(a.RemoteIP, outcome, g.tags(outcome, user, a.Secret), g.now()) }()
	}
	if wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return Login{}, g.finish(start, wait, &rec, failure("canceled"))
		}
	}
	if !admitted {
		return Login{}, g.finish(start, wait, &rec, failure("throttled"))
	}

	m, cred, err = g.svc.Verify(ctx, user, a.Secret)
	rec.MemberID = m.ID
	if err != nil && account.ErrorCode(err) != account.EUNAUTHORIZED {
		return Login{}, g.finish(start, wait, &rec, unavailable(err))
	}
	// A successful login of a member with no failure or pause on record (the
	// common case, known from Verify's one query) skips the second read.
	if m.ID != 0 && (err != nil || m.FailuresOnRecord) {
		st, serr := g.store.AuthState(ctx, m.ID)
		if serr != nil {
			return Login{}, g.finish(start, wait, &rec, unavailable(serr))
		}
		switch {
		case st.PausedUntil.After(start) && (err != nil || cred.IsMain()):
			// The pause holds the main password back, even the right one,
			// with the same reply; the attempt is not counted again. An app
			// password created since the cheap check above gets through.
			outcome = Failed
			return Login{}, g.finish(start, wait, &rec, failure("paused"))
		case err == nil && cred.IsMain() && (st.Failures > 0 || !st.PausedUntil.IsZero() || len(st.Tags) > 0):
			// Only the main password itself proves the guesses against it
			// over: an app password's success leaves the count, or anyone
			// holding one (a stolen phone, the attacker's own account at
			// the member's side) could keep the pause from ever starting.
			if rerr := g.store.ResetAuthFailures(ctx, m.ID); rerr != nil {
				return Login{}, g.finish(start, wait, &rec, unavailable(rerr))
			}
		case err != nil:
			g.countFailure(ctx, m, st, a, rec.IP, start)
		}
	}
	if err == nil {
		// The domain's security policy, after the credential: it never
		// tells a guesser anything, and a member's refused app (wrong
		// network, protocol not allowed) does not count toward the pause.
		if reason := m.Security.Refusal(a.Protocol, a.RemoteIP); reason != "" {
			err = failure(reason)
		}
	}
	if err != nil {
		outcome = Failed
		return Login{}, g.finish(start, wait, &rec, err)
	}
	outcome = Succeeded
	return g.succeed(start, wait, &rec, a, m, cred, gen), nil
}

// succeed records a successful login and returns it.
func (g *Gateway) succeed(start time.Time, wait time.Duration, rec *LoginRecord, a Attempt, m account.Member, cred account.Credential, gen uint64) Login {
	rec.MemberID = m.ID
	rec.AppPasswordID = cred.AppPasswordID
	if cred.AppPasswordID != "" {
		g.rec.touch(cred.AppPasswordID, a.Protocol, rec.IP, start.UTC())
	}
	g.finish(start, wait, rec, nil)
	return Login{Member: m, Credential: cred, gen: gen, ip: a.RemoteIP, client: cleanClient(a.Client)}
}

// tags returns the throttle's tags of an attempt: the pair only for a
// failure (the common success needs no second HMAC), the account always.
func (g *Gateway) tags(o Outcome, user, secret string) Tags {
	t := Tags{Account: g.tag("ip-account", 0, user)}
	if o == Failed {
		t.Pair = g.tag("ip-pair", 0, user, secret)
	}
	return t
}

// countFailure adds one to the member's failure counter and, when that
// starts a pause, tells the member. A counting error is logged: the login
// has failed anyway.
func (g *Gateway) countFailure(ctx context.Context, m account.Member, st AuthState, a Attempt, ip string, now time.Time) {
	tag := g.tag("account-secret", m.ID, a.Secret)
	for _, t := range st.Tags {
		if subtle.ConstantTimeCompare(t[:], tag[:]) == 1 {
			// A stale secret retried (a phone with an old password): it was
			// counted once already, and the flood of such retries costs no
			// write. The store checks again under its lock otherwise.
			return
		}
	}
	ctx = context.WithoutCancel(ctx) // a client hanging up must not skip the count
	from := ip
	if from == "" {
		from = "an unknown address"
	}
	// The message is written by the store only if this failure starts the
	// pause, in the same transaction: exactly one per pause, even on a crash.
	until := now.Add(g.pause)
	onPause := account.Effects{
		Messages: []account.Message{g.svc.PausedMessage(ctx, m, until, from)},
		Events:   []account.Event{{Kind: account.EventAccountPaused, MemberID: m.ID}},
		Audit: []account.AuditEntry{g.svc.Audit(account.AuditAccountPaused, m,
			account.Actor{Via: "system", IP: ip, UserAgent: a.Protocol},
			"third-party logins with the main password paused until "+until.UTC().Format(time.RFC3339))},
	}
	res, err := g.store.RecordAuthFailure(ctx, m.ID, tag, now, g.maxFail, g.pause, onPause)
	if err != nil {
		g.log.Error("counting a failed login", "member", m.Email, "err", err)
		return
	}
	if res.Paused {
		g.m.paused.Inc()
		g.log.Warn("third-party logins paused after too many failures", "member", m.Email,
			"until", res.PausedUntil, "ip", ip, "protocol", a.Protocol)
	}
}

// logAttempt writes the log line of an attempt (err only for ResultError).
func logAttempt(log *slog.Logger, rec *LoginRecord, wait time.Duration, err error) {
	// LogAttrs with a fixed-size array: no boxing of each value into an any.
	var buf [10]slog.Attr
	attrs := append(buf[:0], slog.String("protocol", rec.Protocol), slog.String("mechanism", rec.Mechanism),
		slog.String("ip", rec.IP), slog.Bool("tls", rec.TLS), slog.String("user", rec.Username), slog.String("result", rec.Result))
	if rec.Reason != "" {
		attrs = append(attrs, slog.String("reason", rec.Reason))
	}
	if rec.AppPasswordID != "" {
		attrs = append(attrs, slog.String("app_password", rec.AppPasswordID))
	}
	if wait > 0 {
		attrs = append(attrs, slog.Duration("delay", wait))
	}
	msg := "third-party login"
	if rec.Protocol == Web {
		msg = "web sign-in"
	}
	level := slog.LevelInfo
	if rec.Result == ResultError {
		level = slog.LevelError
		attrs = append(attrs, slog.Any("err", err))
	}
	// With the attempt's time: the line is written on the recorder's
	// goroutine, up to lineGather later.
	ctx, h := context.Background(), log.Handler()
	if !h.Enabled(ctx, level) {
		return
	}
	at := rec.At
	if at.IsZero() {
		at = time.Now()
	}
	r := slog.NewRecord(at, level, msg, 0)
	r.AddAttrs(attrs...)
	h.Handle(ctx, r)
}

// finish logs, counts and records an attempt and returns err.
func (g *Gateway) finish(start time.Time, wait time.Duration, rec *LoginRecord, err error) error {
	reason := ""
	switch account.ErrorCode(err) {
	case "":
		rec.Result = ResultOK
	case account.EUNAUTHORIZED:
		rec.Result = ResultFail
		reason = account.FailureReason(err)
	default:
		rec.Result = ResultError
		reason = "unavailable"
	}
	rec.Reason = reason
	g.m.attempts.WithLabelValues(rec.Protocol, rec.Result).Inc()
	g.m.duration.WithLabelValues(rec.Protocol, rec.Result).Observe(g.now().Sub(start).Seconds())
	if rec.Result == ResultError {
		logAttempt(g.log, rec, wait, err) // at once, with the cause
	} else {
		g.rec.logLine(*rec, wait)
	}
	g.rec.add(*rec)
	return err
}
