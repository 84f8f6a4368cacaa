package account

import (
	"context"
	"time"
)

// Touch is one use of an app password for TouchAppPasswords: recorded
// unless the stored last use is newer than NotBefore.
type Touch struct {
	ID           string
	At           time.Time
	Protocol, IP string
	NotBefore    time.Time
}

// Store is what the account service needs from a database. Implementations
// return ErrNotFound (or an *Error wrapping it) for missing rows, and write
// Effects in the same transaction as the change, filling in CreatedAt where zero.
type Store interface {
	AdminStore
	MemberAdminStore
	SecurityPolicyStore
	DomainStore
	ExpiryStore

	// CreateDomain inserts d, and fx with it: ECONFLICT when the name exists.
	CreateDomain(ctx context.Context, d *Domain, fx ...Effects) error
	DomainByName(ctx context.Context, name string) (Domain, error)
	DomainByID(ctx context.Context, id int64) (Domain, error)
	Domains(ctx context.Context) ([]Domain, error)

	// CreateMember inserts m: ECONFLICT when a member or an alias has the
	// address, checked atomically with the insert (as CreateAlias does).
	// fx is written with the insert; its audit entries without a member
	// are about m.
	CreateMember(ctx context.Context, m *Member, fx ...Effects) error
	MemberByEmail(ctx context.Context, email string) (Member, error)
	MemberByID(ctx context.Context, id int64) (Member, error)
	Members(ctx context.Context, domain string) ([]Member, error) // all when domain == ""

	// Credentials returns a member and its app passwords in one round trip:
	// the login hot path. A store may answer from memory when it can tell
	// that nothing a login checks has changed since (sqlstore's credential
	// cache); the app passwords' last uses may then be older than stored
	// (AppPasswords has them fresh). The list may be the cache's own: callers
	// must not modify it, nor its hashes.
	Credentials(ctx context.Context, email string) (Member, []AppPassword, error)

	SetUseAppPasswords(ctx context.Context, memberID int64, on bool, fx Effects) error
	SetState(ctx context.Context, memberID int64, s State, fx Effects) error
	// SetPasswordHash replaces the main password hash; with deleteAppPasswords it
	// also deletes every app password of the member, in the same transaction.
	SetPasswordHash(ctx context.Context, memberID int64, hash string, deleteAppPasswords bool, fx Effects) error

	// CreateAppPassword inserts p unless the member already holds limit app
	// passwords (ELIMIT) or one with the same name ignoring case (ECONFLICT);
	// the check and the insert are atomic. It sets p.CreatedAt when zero.
	CreateAppPassword(ctx context.Context, p *AppPassword, limit int, fx Effects) error
	AppPasswords(ctx context.Context, memberID int64) ([]AppPassword, error) // oldest first
	// DeleteAppPassword deletes the member's app password id (ErrNotFound when
	// it is not the member's).
	DeleteAppPassword(ctx context.Context, memberID int64, id string, fx Effects) error
	// TouchAppPassword records a use unless the stored last use is newer than notBefore
	// (so that it is written at most once a minute per password, across nodes).
	TouchAppPassword(ctx context.Context, id string, at time.Time, protocol, ip string, notBefore time.Time) error
	// TouchAppPasswords is TouchAppPassword for several uses, in one transaction.
	TouchAppPasswords(ctx context.Context, uses []Touch) error

	// AddAliasTargets creates the alias address of the domain domainID
	// unless it exists, and adds the members memberIDs to its targets (those
	// already there are kept). ECONFLICT when a member has the address; the
	// check and the insert are atomic with CreateMember's. ELIMIT when the
	// alias would have more than limit targets; ErrNotFound when a member is
	// gone. created says whether the alias is new.
	AddAliasTargets(ctx context.Context, domainID int64, address string, memberIDs []int64, limit int, at time.Time, fx ...Effects) (created bool, err error)
	// RemoveAliasTargets removes members from the alias's targets, all or
	// nothing: ErrNotFound when the alias does not exist, ENOTFOUND when one
	// of the members is not a target. An alias left with no target stays.
	// Every change below writes its fx (the audit entry) in its
	// transaction.
	RemoveAliasTargets(ctx context.Context, address string, memberIDs []int64, fx ...Effects) error
	DeleteAlias(ctx context.Context, address string, fx ...Effects) error           // ErrNotFound when missing
	Alias(ctx context.Context, address string) (Alias, error)                       // ErrNotFound when missing
	Aliases(ctx context.Context, domain string) ([]Alias, error)                    // by address; all when domain == ""
	SetCatchAll(ctx context.Context, domainID, memberID int64, fx ...Effects) error // memberID 0: none
	// SetMailQuota sets the member's own storage limit in octets (0: none;
	// nil: the domain's default); SetDomainMailQuota the domain's default
	// (nil: the server's). ErrNotFound when the member or domain is gone.
	SetMailQuota(ctx context.Context, memberID int64, limit *int64, fx ...Effects) error
	SetDomainMailQuota(ctx context.Context, domainID int64, limit *int64, fx ...Effects) error
	// LookupAddresses says in one round trip whether domain is served here,
	// its catch-all member, and which of addresses (of that domain) belong
	// to a member or an alias, with the members each reaches: what every
	// RCPT needs.
	LookupAddresses(ctx context.Context, domain string, addresses []string) (AddressLookup, error)

	// MemberAliases returns the addresses of the aliases whose targets
	// include the member, by address.
	MemberAliases(ctx context.Context, memberID int64) ([]string, error)

	// SendCounts returns what the member submitted in the hour and in the
	// 24 hours before now: in all, and with the app password appPasswordID
	// (zero for "", the main password).
	SendCounts(ctx context.Context, memberID int64, appPasswordID string, now time.Time) (SendCounts, error)
	// SentByAppPassword returns how many messages each of the member's app
	// passwords submitted after since, by id; absent ids sent none.
	SentByAppPassword(ctx context.Context, memberID int64, since time.Time) (map[string]int, error)
	// NoteSendLimited records that the member is told, at at, that a login
	// with appPasswordID ("" for the main password) reached a sending cap,
	// and writes fx with the record, unless a notice for the same login was
	// recorded after notBefore; told says whether it did. The check and the
	// write are atomic: nodes racing write one.
	NoteSendLimited(ctx context.Context, memberID int64, appPasswordID string, at, notBefore time.Time, fx Effects) (told bool, err error)

	AddMessage(ctx context.Context, memberID int64, fx Effects) error        // writes fx alone (audit entries too)
	Messages(ctx context.Context, memberID int64) ([]Message, error)         // newest first
	MarkMessagesRead(ctx context.Context, memberID int64, ids []int64) error // all when ids is empty
	UnreadMessages(ctx context.Context, memberID int64) (int, error)

	// SetLanguage records the language of the mail Postern writes to the
	// member (delivery reports).
	SetLanguage(ctx context.Context, memberID int64, lang string) error
	// TimeZone returns the member's time zone (an IANA name), "" when unset.
	TimeZone(ctx context.Context, memberID int64) (string, error)
	// SetTimeZone records the member's time zone; with onlyIfUnset it keeps
	// one already recorded (the browser's guess never overrides a choice).
	SetTimeZone(ctx context.Context, memberID int64, zone string, onlyIfUnset bool) error
	// ServerSetting returns a server-wide setting, "" when unset.
	ServerSetting(ctx context.Context, name string) (string, error)
	// SetServerSetting records a server-wide setting.
	SetServerSetting(ctx context.Context, name, value string) error

	// EventsAfter returns up to limit events after pos, in EventPos order.
	EventsAfter(ctx context.Context, after EventPos, limit int) ([]Event, error)
	// LastEventPos is where a tailer starts to see only what comes next.
	LastEventPos(ctx context.Context) (EventPos, error)
	// PruneEvents deletes events created before t.
	PruneEvents(ctx context.Context, before time.Time) error
}
