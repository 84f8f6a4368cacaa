// Package auth is the one authentication gateway of every third-party
// protocol (IMAP, POP3, SMTP, CalDAV/CardDAV): policy (through
// account.Service.Verify), throttling, login records, last-used updates, and
// the registry of live sessions that closes them when their credential is
// revoked. The web UI's main-password checks go through it too
// (Gateway.SignIn), so that their failures are throttled and counted alike.
//
// Wiring (cmd/postern):
//
//	bus := events.NewBus()
//	gw, err := auth.New(auth.Config{
//		Service:    svc,   // *account.Service: Verify, PausedMessage, TouchAppPasswords
//		Store:      db,    // *sqlstore.DB: failure counters and login records
//		Bus:        bus,   // revocation events close live sessions
//		Key:        key,   // the server secret (same as account.Config.Key)
//		Log:        logger,
//		Registerer: reg,   // the *prometheus.Registry served on /metrics
//	})
//	defer gw.Close()   // flushes queued login records
//	go (&events.Tailer{Store: db, Bus: bus, Wake: db.Listen(ctx)}).Run(ctx)
//
// and hand gw (an Authenticator) to every protocol server, and gw.SignIn to
// the web UI. A correct app password is let in first, by one HMAC, and is
// never throttled or paused; everything else is throttled per client IP block
// (ThrottleConfig; Dovecot-like 0, 2, 4, 8, 15 s), in memory or shared between
// nodes (SharedThrottle), where a success forgives only its own account's
// failures; the per-account failure counter (100 by default, then a
// 15-minute pause of the main password for third-party logins and at most
// one message a day to the member) lives in the database and is shared by
// every process and node. docs/security.md has the threat model.
package auth

import (
	"context"
	"net/netip"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/authrec"
)

// Protocols, as recorded in login records and "last used".
const (
	IMAP    = authrec.IMAP
	POP3    = authrec.POP3
	SMTP    = authrec.SMTP
	CalDAV  = authrec.CalDAV
	CardDAV = authrec.CardDAV
	Web     = authrec.Web
)

// Attempt is one login by a third-party app.
type Attempt struct {
	User      string // the address as the client sent it
	Secret    string
	Protocol  string // IMAP, POP3, ...
	Mechanism string // "LOGIN", "PLAIN", "USER", "BASIC"
	RemoteIP  netip.Addr
	TLS       bool
	// Client names the client when the protocol says it (a browser's or a
	// DAV client's User-Agent), for the login records; "" otherwise.
	Client string
	// Devices (web sign-in only) are the device tokens the browser holds
	// (Gateway.DeviceToken), joined by "."; one issued for User gives the
	// attempt the browser's own schedule instead of its address's and the
	// account's.
	Devices string
}

// Login is a successful authentication.
type Login struct {
	Member     account.Member
	Credential account.Credential

	// gen is the registry's revocation counter when the login was checked,
	// so that Track closes a session revoked between check and Track.
	gen uint64
	// ip is the client's address, which a change of the domain's address
	// allowlist checks the session against again.
	ip netip.Addr
	// client is Attempt.Client, shown with the live session.
	client string
}

// Authenticator is what protocol servers need. Authenticate returns an error
// whose account.ErrorCode is EUNAUTHORIZED for every failed login (reply with
// the protocol's one generic failure) or EUNAVAILABLE for a temporary failure
// (database down: a temporary-failure reply). It may sleep (throttling).
//
// Track registers a live session after a successful login: close is called,
// at most once and from any goroutine, when the login's credential is revoked
// (app password deleted, setting or main password changed, member suspended)
// or the domain's security policy no longer allows it.
// The returned done must be called when the session ends.
type Authenticator interface {
	Authenticate(ctx context.Context, a Attempt) (Login, error)
	Track(l Login, protocol string, close func()) (done func())
}
