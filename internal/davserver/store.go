package davserver

import "github.com/postern/postern/internal/davrec"

// What the server keeps is declared in davrec, so that the store implements
// it without importing the server; these names are the server's own for it.
type (
	Kind             = davrec.Kind
	Collection       = davrec.Collection
	Object           = davrec.Object
	Change           = davrec.Change
	UIDConflictError = davrec.UIDConflictError
	Store            = davrec.Store
)

// The kinds of collections.
const (
	KindCalendar    = davrec.KindCalendar
	KindAddressBook = davrec.KindAddressBook
)
