// Package account holds Postern's domain: domains and their policy, members,
// app passwords, messages and the events that changes emit. It knows no
// database, protocol or web framework; stores implement its Store interface.
package account

import (
	"strings"
	"time"
)

// Policy says which credential third-party apps log in with.
type Policy string

const (
	// PolicyEnforced: app passwords only (domains created on or after the cut-off).
	PolicyEnforced Policy = "enforced"
	// PolicyOptional: each member's "Use a third-party app password" setting decides.
	PolicyOptional Policy = "optional"
)

// DefaultCutoff is 2022-10-13 00:00 Asia/Tokyo: domains created from then on
// are enforced (the LINE WORKS rule this product follows).
var DefaultCutoff = time.Date(2022, 10, 13, 0, 0, 0, 0, time.FixedZone("Asia/Tokyo", 9*3600))

// MaxAppPasswords is how many app passwords a member may hold at once.
const MaxAppPasswords = 5

// Domain is a tenant.
type Domain struct {
	ID        int64
	Name      string
	CreatedAt time.Time
	// CatchAll is the address of the member who receives the domain's mail
	// to addresses no member or alias has; "" when there is none and such
	// mail is refused.
	CatchAll string
	// MailQuota is the default storage limit of the domain's members, in
	// octets, 0 for none; nil leaves them to the server's (mailstore.Quota).
	MailQuota *int64
	// Security is the domain's policy for third-party logins.
	Security SecurityPolicy
}

// Policy returns the domain's policy under cutoff: enforced when created
// on or after it, or when its administrators turned the setting on for
// every member.
func (d Domain) Policy(cutoff time.Time) Policy {
	if d.Security.ForceAppPasswords {
		return PolicyEnforced
	}
	return PolicyFor(d.CreatedAt, cutoff)
}

// PolicyAt returns the domain's policy for the given cut-off.
func PolicyFor(domainCreated, cutoff time.Time) Policy {
	if domainCreated.Before(cutoff) {
		return PolicyOptional
	}
	return PolicyEnforced
}

// State of a member.
type State string

const (
	StateActive    State = "active"
	StateSuspended State = "suspended"
)

// Member is an account, local@domain.
type Member struct {
	ID              int64
	DomainID        int64
	Email           string // lower case, local@domain
	Name            string
	PasswordHash    string // argon2id, PHC string
	UseAppPasswords bool   // the member's setting; ignored for enforced domains
	State           State
	CreatedAt       time.Time
	// DomainCreatedAt and Security are the domain's, carried with the
	// member so that the policy needs no second query.
	DomainCreatedAt time.Time
	Security        SecurityPolicy
	// FailuresOnRecord is set by Store.Credentials when the authentication
	// gateway holds failed logins or a pause for the member: without it, a
	// successful login needs no second read of that state.
	FailuresOnRecord bool
	// MustChangePassword: the main password is a one-time password an
	// administrator set. It signs in to the web only, which asks for a new
	// one before anything else; third-party logins refuse it.
	MustChangePassword bool
}

// Local returns the part before the @.
func (m Member) Local() string { l, _, _ := strings.Cut(m.Email, "@"); return l }

// Domain returns the part after the @.
func (m Member) Domain() string { _, d, _ := strings.Cut(m.Email, "@"); return d }

// Policy returns the member's domain policy under cutoff.
func (m Member) Policy(cutoff time.Time) Policy {
	return Domain{CreatedAt: m.DomainCreatedAt, Security: m.Security}.Policy(cutoff)
}

// AppPasswordsOnly reports whether third-party apps must use app passwords:
// enforced domain, or the member turned the setting on.
func (m Member) AppPasswordsOnly(cutoff time.Time) bool {
	return m.Policy(cutoff) == PolicyEnforced || m.UseAppPasswords
}

// AppPassword is one stored app password. The plaintext is never stored: Hash
// is HMAC-SHA-256 under the server key.
type AppPassword struct {
	ID               string
	MemberID         int64
	Name             string
	Hash             []byte
	CreatedAt        time.Time
	LastUsedAt       time.Time // zero when never used
	LastUsedProtocol string
	LastUsedIP       string
}

// Message is a notification shown in the web UI's Messages and, when the store
// has a mail store, delivered as Mail into the member's INBOX in the same transaction.
type Message struct {
	ID        int64
	MemberID  int64
	Kind      string
	Subject   string
	Body      string
	CreatedAt time.Time
	Read      bool
	// Params are what Subject and Body were made from (app name, time, IP,
	// browser, via, links), by name, so that a client can render the
	// message of this Kind in another language; Subject and Body are the
	// English rendering and the fallback. Stored as a JSON object.
	Params map[string]string
	// Mail is the RFC 5322 rendering delivered to INBOX; not stored with the message row.
	Mail []byte
}

// EventKind names what changed; protocol servers react to events to close sessions.
type EventKind string

const (
	EventAppPasswordCreated EventKind = "apppass.created"
	EventAppPasswordDeleted EventKind = "apppass.deleted"  // AppPasswordID set: close its sessions
	EventSettingChanged     EventKind = "setting.changed"  // close all the member's third-party sessions
	EventPasswordChanged    EventKind = "password.changed" // close sessions that used the main password
	EventMemberSuspended    EventKind = "member.suspended" // close all the member's sessions
	EventMemberResumed      EventKind = "member.resumed"
	EventAccountPaused      EventKind = "account.paused"  // too many failed logins
	EventMailboxChanged     EventKind = "mailbox.changed" // Mailbox set: new mail, flags, expunges
	EventMemberRenamed      EventKind = "member.renamed"  // close all the member's sessions: they name the old address
	EventMemberDeleted      EventKind = "member.deleted"  // close all the member's sessions
	EventSessionsEnded      EventKind = "sessions.ended"  // an administrator ended all the member's sessions
	// EventPolicyChanged: DomainID's security policy changed; close the
	// sessions of its members that the new policy refuses.
	EventPolicyChanged EventKind = "domain.policy_changed"
)

// Event is one row of the outbox: written in the transaction of the change it
// describes, read by every node in EventPos order.
type Event struct {
	Seq           int64
	Txn           int64 // the writing transaction's place; see EventPos
	Kind          EventKind
	MemberID      int64
	AppPasswordID string
	MailboxID     int64
	DomainID      int64 // events about a whole domain (MemberID 0)
	CreatedAt     time.Time
}

// EventPos is a place in the outbox, in the order tailers read it: by the
// writing transaction (Txn: PostgreSQL's transaction id, 0 on SQLite, whose
// writers take turns), then by Seq. On PostgreSQL a transaction's events are
// read only once every transaction that began before it has ended, so a
// tailer never finds an event appearing behind its position; writers are
// never made to wait for one another (see sqlstore.EventsAfter). Events of
// different transactions may therefore be read in another order than they
// committed: consumers re-read the state an event names, never replay it.
type EventPos struct{ Txn, Seq int64 }

// Pos is e's place in the outbox.
func (e Event) Pos() EventPos { return EventPos{e.Txn, e.Seq} }

// Before reports whether p comes before q.
func (p EventPos) Before(q EventPos) bool {
	return p.Txn < q.Txn || p.Txn == q.Txn && p.Seq < q.Seq
}

// Effects are written in the same transaction as the change they go with.
type Effects struct {
	Events   []Event
	Messages []Message
	Audit    []AuditEntry // Service.Audit makes them
}
