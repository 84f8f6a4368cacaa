package imap

// SortKey is a SORT criterion's key (RFC 5256 §3, RFC 5957).
type SortKey string

const (
	SortKeyArrival     SortKey = "ARRIVAL"
	SortKeyCc          SortKey = "CC"
	SortKeyDate        SortKey = "DATE"
	SortKeyFrom        SortKey = "FROM"
	SortKeySize        SortKey = "SIZE"
	SortKeySubject     SortKey = "SUBJECT"
	SortKeyTo          SortKey = "TO"
	SortKeyDisplayFrom SortKey = "DISPLAYFROM" // RFC 5957
	SortKeyDisplayTo   SortKey = "DISPLAYTO"   // RFC 5957
)

// SortCriterion is one key of a SORT command, REVERSE or not.
type SortCriterion struct {
	Key     SortKey
	Reverse bool
}

// Thread is a node of a THREAD response (RFC 5256 §4): a message, or a
// dummy (Num 0) that only holds its children together.
type Thread struct {
	Num      uint32 // sequence number or UID, 0 for a dummy
	Children []Thread
}
