// Package mailstore defines the mail store that IMAP, POP3 and SMTP share:
// per-member mailboxes with UIDs, UIDVALIDITY, flags, internal dates and sizes.
// Stores (internal/store/sqlstore) implement Store; every change to a
// mailbox's messages writes an account.EventMailboxChanged event in the same
// transaction, so IDLE on any node sees it.
package mailstore

import (
	"context"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
)

// ErrHasChildren is the cause of DeleteMailbox's refusal of a mailbox that
// has inferior mailboxes (IMAP's HASCHILDREN, RFC 9051 §6.3.5).
var ErrHasChildren = errors.New("the mailbox has inferior mailboxes")

// ErrOverQuota is the cause of AppendIf's refusal of a message that does
// not fit under the member's quota (IMAP's OVERQUOTA, RFC 9208 §4.2).
var ErrOverQuota = errors.New("over quota")

// Special-use attributes (RFC 6154).
const (
	Drafts = `\Drafts`
	Sent   = `\Sent`
	Junk   = `\Junk`
	Trash  = `\Trash`
)

// DefaultMailboxes are created for every member on first use.
var DefaultMailboxes = []struct{ Name, SpecialUse string }{
	{"INBOX", ""}, {"Drafts", Drafts}, {"Sent", Sent}, {"Junk", Junk}, {"Trash", Trash},
}

// MaxMessageSize is the largest message accepted (SMTP SIZE, IMAP APPEND).
const MaxMessageSize = 32 << 20

// Mailbox is a folder. Name uses "/" as the hierarchy separator; "INBOX" is
// always spelled so.
type Mailbox struct {
	ID          int64
	MemberID    int64
	Name        string
	SpecialUse  string
	UIDValidity uint32
	UIDNext     uint32
	Subscribed  bool
	// RecentUID is the first UID no IMAP session has claimed as \Recent
	// (RFC 3501 §2.3.2): the messages from it on are recent for the next
	// session that selects the mailbox read-write (ClaimRecent).
	RecentUID uint32
	// HighestModSeq is the last mod-sequence of the mailbox (RFC 7162's
	// HIGHESTMODSEQ): every change to its messages takes a higher one,
	// expunges included, and none is ever handed out twice.
	HighestModSeq uint64
}

// MessageInfo is a message's metadata; the body is fetched separately.
type MessageInfo struct {
	ID           int64
	MailboxID    int64
	UID          uint32
	Flags        []string // sorted; system flags with their backslash
	InternalDate time.Time
	Size         int64
	// ModSeq is the mod-sequence of the message's last change: its arrival
	// (append, copy, move) or its last flag change (RFC 7162).
	ModSeq uint64
}

// NewMessage is one message of AppendMany.
type NewMessage struct {
	Flags []string
	Date  time.Time // zero: now
	Body  []byte
}

// Delivery is one recipient's copy of a received message.
type Delivery struct {
	MemberID int64
	// Header is this copy's own fields (trace fields, a filter's verdict),
	// stored in front of Body: the copies of one message share its Body.
	Header []byte
	Body   []byte
	// Junk delivers to the member's \Junk mailbox instead of INBOX (a
	// filter's verdict), creating a "Junk" mailbox when the member has none.
	Junk bool
}

// Submission is what a member submitted: the copies for local members and,
// when it has recipients in other domains, the copy to queue for them —
// stored in one transaction, so that the 250 after it covers every
// recipient and a failure leaves nothing anywhere.
type Submission struct {
	MemberID      int64
	AppPasswordID string // the login's app password, "" for the main password
	Local         []Delivery
	Outbound      *Outbound // nil: no recipient outside Postern's domains
	// Recipients is every envelope recipient the message was accepted
	// for, local and outside: the sending caps count them (send log).
	Recipients int
}

// Outbound is a message to addresses of other domains.
type Outbound struct {
	From     string   // the envelope sender
	Rcpts    []string // addresses of other domains
	Body     []byte   // as it leaves: trace fields and DKIM signatures included
	SMTPUTF8 bool     // the envelope needs SMTPUTF8 (RFC 6531)
	EightBit bool     // BODY=8BITMIME
}

// Quota is a member's mail storage (RFC 9208's STORAGE resource): what the
// member's messages take and the limits set on it.
type Quota struct {
	// Used is the octets of all the member's messages, every mailbox
	// together; a copy counts as much as its original.
	Used int64
	// Member is the member's own limit and Domain the default of the
	// member's domain, in octets, 0 for none; nil when not set.
	Member, Domain *int64
}

// Limit is the limit that applies: the member's own, else the domain's
// default, else def (the server's); 0 is none.
func (q Quota) Limit(def int64) int64 {
	switch {
	case q.Member != nil:
		return *q.Member
	case q.Domain != nil:
		return *q.Domain
	}
	return max(def, 0)
}

// Fits says whether size more octets fit under the limit that applies
// (see Limit). Quotas are checked, not reserved: two messages accepted at
// once may together pass the limit, by at most one message each.
func (q Quota) Fits(size, def int64) bool {
	limit := q.Limit(def)
	return limit == 0 || q.Used+size <= limit
}

// FormatSize shows octets in the binary units quotas are set in (postern
// user set --quota 2GiB): 512 B, 12.3 MiB, 2 GiB.
func FormatSize(n int64) string {
	if n < 1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	units := []string{"KiB", "MiB", "GiB", "TiB"}
	v, u := float64(n)/1024, 0
	for v >= 1024 && u < len(units)-1 {
		v /= 1024
		u++
	}
	return strings.TrimSuffix(strconv.FormatFloat(v, 'f', 1, 64), ".0") + " " + units[u]
}

// ParseSize reads octets, or a number with a binary (KiB, MiB, GiB, TiB)
// or decimal (KB, MB, GB, TB) unit.
func ParseSize(v string) (int64, error) {
	v = strings.TrimSpace(v)
	units := []struct {
		suffix string
		mult   float64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
	mult := 1.0
	for _, u := range units {
		if len(v) > len(u.suffix) && strings.EqualFold(v[len(v)-len(u.suffix):], u.suffix) {
			v, mult = strings.TrimSpace(v[:len(v)-len(u.suffix)]), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(v, 64)
	if err != nil || n < 0 || math.IsInf(n, 0) || math.IsNaN(n) || n*mult >= math.MaxInt64 {
		return 0, errors.New("not a size")
	}
	return int64(n * mult), nil
}

// FlagOp is how StoreFlags changes flags.
type FlagOp int

const (
	FlagsSet FlagOp = iota
	FlagsAdd
	FlagsRemove
)

// Store is the mail store.
type Store interface {
	// Mailboxes lists the member's mailboxes, creating the defaults on first use.
	Mailboxes(ctx context.Context, memberID int64) ([]Mailbox, error)
	// Mailbox returns one mailbox by name (INBOX case-insensitively); account.ErrNotFound.
	Mailbox(ctx context.Context, memberID int64, name string) (Mailbox, error)
	// CreateMailbox makes a mailbox; an *account.Error ECONFLICT when it exists.
	CreateMailbox(ctx context.Context, memberID int64, name, specialUse string) (Mailbox, error)
	// DeleteMailbox deletes a mailbox and its messages (not INBOX).
	DeleteMailbox(ctx context.Context, memberID int64, name string) error
	// RenameMailbox renames a mailbox and its children; renaming INBOX moves its
	// messages to the new mailbox (RFC 3501 §6.3.5).
	RenameMailbox(ctx context.Context, memberID int64, oldName, newName string) error
	// SetSubscribed subscribes or unsubscribes a mailbox; unsubscribing
	// also takes a name from SubscribedNames.
	SetSubscribed(ctx context.Context, memberID int64, name string, on bool) error
	// SubscribedNames lists, in order, the subscribed names that have no
	// mailbox: a mailbox deleted while subscribed keeps its subscription
	// (RFC 9051 §6.3.7), and one created again under its name takes it back.
	SubscribedNames(ctx context.Context, memberID int64) ([]string, error)

	// Append stores a message in mailboxID and returns its UID.
	Append(ctx context.Context, mailboxID int64, flags []string, date time.Time, body []byte) (uint32, error)
	// AppendIf is Append with APPEND's checks made in the same write: the
	// message is stored only if mailboxID is still the member's mailbox
	// called name (else account.ErrNotFound: deleted or renamed since it
	// was looked up) and if it fits under the member's quota, quotaDefault
	// being the limit when neither the member nor the domain has one (an
	// *account.Error ELIMIT with ErrOverQuota otherwise, as Quota.Fits
	// says). Nothing is written when it refuses.
	AppendIf(ctx context.Context, memberID, mailboxID int64, name string, quotaDefault int64, flags []string, date time.Time, body []byte) (uint32, error)
	// AppendMany stores the messages in mailboxID in one transaction, all
	// or none (IMAP MULTIAPPEND, RFC 3502), and returns their UIDs in order.
	AppendMany(ctx context.Context, mailboxID int64, msgs []NewMessage) ([]uint32, error)
	// Deliver appends body to the member's INBOX.
	Deliver(ctx context.Context, memberID int64, body []byte) error
	// DeliverAll appends each delivery to its member's INBOX in one
	// transaction: every recipient gets the message or none does, so an SMTP
	// client retrying after a failure never duplicates it.
	DeliverAll(ctx context.Context, ds []Delivery) error
	// Quota returns the member's storage use and the limits set for it
	// (account.ErrNotFound when there is no such member). It costs the same
	// at any mailbox size: every delivery and APPEND reads it.
	Quota(ctx context.Context, memberID int64) (Quota, error)
	// AppendTarget is what APPEND checks before it stores, read at once:
	// the member's Quota, and the mailbox called name as Mailbox finds it
	// (found false when there is none yet; Mailbox then tells why). Of the
	// mailbox only ID and UIDValidity are to be used: its UIDNext and
	// HighestModSeq may include changes not yet durable (Mailbox waits for
	// them), which an APPEND, reporting the UID it stores, never shows.
	AppendTarget(ctx context.Context, memberID int64, name string) (mb Mailbox, found bool, q Quota, err error)
	// Messages lists a mailbox's messages in UID order.
	Messages(ctx context.Context, mailboxID int64) ([]MessageInfo, error)
	// Open returns a mailbox by name with its messages in UID order, read
	// at once from one snapshot (IMAP SELECT, POP3's maildrop), creating the
	// defaults on first use like Mailbox.
	Open(ctx context.Context, memberID int64, name string) (Mailbox, []MessageInfo, error)
	// ClaimRecent makes the caller the one session for which the mailbox's
	// messages not yet claimed are \Recent (RFC 3501 §2.3.2): it moves the
	// mailbox's RecentUID to its UIDNext, atomically on every node, and
	// returns the UIDs the caller now holds, first <= uid < next (first ==
	// next: none). mb is the mailbox as the caller read it: the claim is
	// tried from its RecentUID first (a Mailbox of any age will do), and
	// when the store knows every UID below mb's UIDNext claimed already,
	// nothing is: UIDs that arrived since are left to the caller's next
	// claim, once it has read them.
	ClaimRecent(ctx context.Context, mb Mailbox) (first, next uint32, err error)
	// State returns a mailbox by ID with its messages in UID order, read at
	// once from one snapshot, so that HighestModSeq covers exactly the
	// listed state (IMAP SELECT and the re-reads of a selected mailbox).
	// The listing is shared with other callers (a store may cache it, and
	// make the next listing of the mailbox from it): callers must not
	// change its messages or their Flags.
	State(ctx context.Context, mailboxID int64) (Mailbox, Listing, error)
	// Heard is a count that grows each time this process hears of changes
	// made anywhere (reads the events an account.Bus then carries): a
	// subscriber told of a change notes it, and StateHeard with it returns
	// a state that holds that change.
	Heard() uint64
	// StateHeard is State where the caller needs only the changes this
	// process had heard of when Heard returned heard (the re-read after an
	// event), on a listing no older than HighestModSeq atLeast (the one
	// the caller has): a listing the store read since then may be
	// returned as it is, without reading the mailbox again. Every session
	// of a mailbox is told of each change to it; the first to re-read
	// reads for them all. heard 0 is State.
	StateHeard(ctx context.Context, mailboxID int64, heard, atLeast uint64) (Mailbox, Listing, error)
	// Vanished returns, in order, the UIDs expunged from the mailbox after
	// mod-sequence since (QRESYNC's VANISHED (EARLIER), RFC 7162 §3.2.5).
	// Expunges are remembered for a bounded number of messages: complete is
	// false when some after since may have been forgotten, and the caller
	// then reports every UID it may know of that is not present.
	Vanished(ctx context.Context, mailboxID int64, since uint64) (uids []uint32, complete bool, err error)
	// Body returns the raw RFC 5322 message.
	Body(ctx context.Context, messageID int64) ([]byte, error)
	// StoreFlags changes the flags of the given UIDs and returns their new state.
	StoreFlags(ctx context.Context, mailboxID int64, uids []uint32, op FlagOp, flags []string) ([]MessageInfo, error)
	// StoreFlagsIf is StoreFlags with STORE's UNCHANGEDSINCE (RFC 7162
	// §3.1.3), atomically: only the messages whose ModSeq is at most
	// unchangedSince change (all of them when it is 0); the UIDs of the
	// others come back as modified, in order, and keep their flags.
	StoreFlagsIf(ctx context.Context, mailboxID int64, uids []uint32, op FlagOp, flags []string, unchangedSince uint64) (infos []MessageInfo, modified []uint32, err error)
	// Expunge removes the messages flagged \Deleted, only among uids when uids
	// is not nil (UID EXPUNGE), and returns the removed UIDs in order.
	Expunge(ctx context.Context, mailboxID int64, uids []uint32) ([]uint32, error)
	// Delete removes the given UIDs whatever their flags (POP3 DELE at QUIT).
	Delete(ctx context.Context, mailboxID int64, uids []uint32) error
	// Copy copies uids to dst and returns source and destination UIDs pairwise
	// (UIDPLUS COPYUID) and dst's UIDVALIDITY.
	Copy(ctx context.Context, src int64, uids []uint32, dst int64) (srcUIDs, dstUIDs []uint32, uidValidity uint32, err error)
	// Move is Copy and Delete of the source in one transaction (RFC 6851).
	Move(ctx context.Context, src int64, uids []uint32, dst int64) (srcUIDs, dstUIDs []uint32, uidValidity uint32, err error)

	Indexer
}

// MessageIndex is what a message's IMAP commands need of its content,
// computed once when the message is stored (internal/msgindex builds it)
// instead of parsing the message for every FETCH, SEARCH or SORT. Copies of
// a message share it, as they share the body.
type MessageIndex struct {
	// ENVELOPE, BODY and BODYSTRUCTURE as go-imap writes them, for a
	// connection without UTF-8 quoted strings; the *UTF8 forms are for one
	// with them (UTF8=ACCEPT, IMAP4rev2), nil when they are the same bytes.
	Envelope, EnvelopeUTF8           []byte
	Body, BodyUTF8                   []byte
	BodyStructure, BodyStructureUTF8 []byte
	// The search text of the From, To, Cc, Bcc and Subject fields: each
	// field decoded and lowercased, fields joined by SearchSep; nil when the
	// message has no such field.
	From, To, Cc, Bcc, Subject []byte
	// What SEARCH BODY and TEXT match: the decoded, lowercased text parts,
	// and the header fields of the message and its parts (msgindex's
	// SearchTexts); both nil for a message that does not parse.
	BodyText, HeaderText []byte
	// Sort keys (RFC 5256 §3, RFC 5957): the first address's mailbox
	// (local part), the display name or else the address, and the base
	// subject; SentDate is the Date field's time, zero when it has none.
	SortFrom, SortTo, SortCc string
	DisplayFrom, DisplayTo   string
	BaseSubject              string
	SentDate                 time.Time
	MessageID, InReplyTo     string // message ids without angle brackets
	References               []string
	Preview                  string // RFC 8970: the start of the first text part
	HasAttachment            bool
}

// SearchSep separates the fields of a MessageIndex search text: no IMAP
// search string can hold it (it is a control character), so no match can
// span two fields.
const SearchSep = '\x01'

// SearchField names a MessageIndex search text.
type SearchField string

const (
	SearchFrom    SearchField = "from"
	SearchTo      SearchField = "to"
	SearchCc      SearchField = "cc"
	SearchBcc     SearchField = "bcc"
	SearchSubject SearchField = "subject"
	SearchBody    SearchField = "body"
	SearchText    SearchField = "text" // the header texts or the body's
)

// Counts are a mailbox's totals (IMAP STATUS).
type Counts struct {
	Messages, Unseen, Deleted uint32
	Size, DeletedSize         int64 // DeletedSize: of the messages flagged \Deleted
	// Recent counts the messages no session has claimed as \Recent yet
	// (UID from the mailbox's RecentUID on): STATUS RECENT.
	Recent uint32
}

// Indexer is what a store offers over its messages' indexes.
type Indexer interface {
	// Indexes returns the index of each message of ids (every message when
	// ids is nil) that exists in the mailbox, by message id, building and
	// keeping any index not built yet. With fetch, only what FETCH writes
	// of it is filled in (the ENVELOPE, BODY and BODYSTRUCTURE forms and
	// the preview); without, all but those and the BODY and TEXT search
	// texts. (An index built on the way has everything.)
	Indexes(ctx context.Context, mailboxID int64, ids []int64, fetch bool) (map[int64]*MessageIndex, error)
	// SearchIndex returns the UIDs of the mailbox's messages whose field
	// contains value (already lowercased), or that have the field at all
	// when value is empty.
	SearchIndex(ctx context.Context, mailboxID int64, field SearchField, value string) ([]uint32, error)
	// Bodies calls fn with each message of ids that exists and its raw
	// body, reading them in one pass; fn's error stops it.
	Bodies(ctx context.Context, ids []int64, fn func(id int64, body []byte) error) error
	// Counts returns the mailbox's totals.
	Counts(ctx context.Context, mailboxID int64) (Counts, error)
}
