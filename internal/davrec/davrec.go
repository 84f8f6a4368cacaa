// Package davrec declares the calendars, address books and their objects
// that the CalDAV/CardDAV server (internal/davserver) keeps, with the Store
// interface internal/store/sqlstore implements. It is a package of its own,
// with no imports of ours, so that the store implements it without
// depending on the server (internal/archtest checks that storage imports no
// front end).
package davrec

import (
	"context"
	"fmt"
	"time"
)

// Kind is the kind of a collection.
type Kind string

const (
	KindCalendar    Kind = "calendar"    // CalDAV (RFC 4791)
	KindAddressBook Kind = "addressbook" // CardDAV (RFC 6352)
)

// Collection is a calendar or an address book of one member.
type Collection struct {
	ID          int64
	MemberID    int64
	Kind        Kind
	Name        string // the URL path segment, unique per member and kind
	DisplayName string
	Description string
	Color       string // Apple calendar-color, "#RRGGBB" or "#RRGGBBAA"; calendars only
	// Components is the CalDAV supported-calendar-component-set,
	// comma-separated ("VEVENT,VTODO"); empty for address books.
	Components string
	// Seq counts the changes of the collection: the getctag and the sync
	// token (RFC 6578) are derived from it. Every object change and every
	// property change raises it.
	Seq       int64
	CreatedAt time.Time
}

// Object is a calendar object resource (one .ics) or an address object
// resource (one .vcf).
type Object struct {
	CollectionID int64
	Name         string // the URL path segment
	ETag         string // opaque, set by the store on every write
	Data         []byte // as the client sent it; nil when listed without data
	UID          string // iCalendar/vCard UID, unique per collection when not empty
	Component    string // VEVENT, VTODO, VJOURNAL, VFREEBUSY or VCARD
	// Start and End bound every instance of a calendar object (the index
	// of calendar-query time ranges); a zero Start is unbounded in the
	// past, a zero End unbounded in the future (recurring series without
	// UNTIL, to-dos without dates).
	Start, End time.Time
	Modified   time.Time
	Size       int64
}

// Change is one entry of a collection's change log, for sync-collection
// (RFC 6578): the latest change of each object name, deletions included
// (tombstones), so that a client with an old token learns of both.
type Change struct {
	Name    string
	Seq     int64
	Deleted bool
}

// UIDConflictError is returned by Store.PutObject when another object of the
// collection has the same UID (RFC 4791 §5.3.2.1, RFC 6352 §6.3.2.1
// no-uid-conflict).
type UIDConflictError struct{ Name string }

func (e *UIDConflictError) Error() string {
	return fmt.Sprintf("another object (%s) has the same UID", e.Name)
}

// Store is the storage davserver needs; sqlstore implements it on SQLite and
// PostgreSQL. Missing rows are account.ErrNotFound, duplicate collection
// names account.ECONFLICT errors.
type Store interface {
	// EnsureDefaults creates the defaults the first time it is called for
	// a member, and never again (a deleted default stays deleted).
	EnsureDefaults(ctx context.Context, memberID int64, defaults []Collection) error
	Collections(ctx context.Context, memberID int64, kind Kind) ([]Collection, error)
	Collection(ctx context.Context, memberID int64, kind Kind, name string) (Collection, error)
	// CreateCollection inserts c and sets its ID, Seq and CreatedAt.
	CreateCollection(ctx context.Context, c *Collection) error
	// UpdateCollection stores the display name, description and color of
	// c (found by ID) and raises its Seq.
	UpdateCollection(ctx context.Context, c Collection) error
	// DeleteCollection deletes a collection with its objects and changes.
	DeleteCollection(ctx context.Context, id int64) error

	// Objects lists a collection's objects, with Data when withData.
	Objects(ctx context.Context, collectionID int64, withData bool) ([]Object, error)
	// ObjectsByName returns the objects of names that exist, with Data.
	ObjectsByName(ctx context.Context, collectionID int64, names []string) ([]Object, error)
	// ObjectsInRange returns, with Data, the objects of the component
	// type whose [Start, End] may overlap [start, end] (a zero bound is
	// unbounded): a superset that the caller filters exactly.
	ObjectsInRange(ctx context.Context, collectionID int64, component string, start, end time.Time) ([]Object, error)
	// PutObject creates or replaces o (by CollectionID and Name) and sets
	// its ETag and Modified. check runs in the transaction with the current
	// object (nil when there is none) so that preconditions (If-Match) are
	// checked against what is replaced; its error aborts the write.
	PutObject(ctx context.Context, o *Object, check func(current *Object) error) (created bool, err error)
	// DeleteObject deletes an object, leaving a tombstone in the change
	// log; check runs as for PutObject with the current object.
	DeleteObject(ctx context.Context, collectionID int64, name string, check func(current *Object) error) error
	// Changes returns the changes after seq, oldest first, and the
	// collection's current Seq.
	Changes(ctx context.Context, collectionID int64, since int64) ([]Change, int64, error)
}
