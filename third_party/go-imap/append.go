package imap

import (
	"time"
)

// AppendOptions contains options for the APPEND command.
type AppendOptions struct {
	Flags []Flag
	Time  time.Time
}

// AppendData is the data returned by an APPEND command.
type AppendData struct {
	// requires UIDPLUS or IMAP4rev2
	UID         UID
	UIDValidity uint32
	// UIDs is every message's UID after an APPEND of several messages
	// (MULTIAPPEND, RFC 3502); when set, APPENDUID carries it instead of UID.
	UIDs UIDSet
}
