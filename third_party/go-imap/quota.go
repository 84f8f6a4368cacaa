package imap

// QuotaResourceType is a QUOTA resource type.
//
// See RFC 9208 section 5.
type QuotaResourceType string

const (
	QuotaResourceStorage           QuotaResourceType = "STORAGE"
	QuotaResourceMessage           QuotaResourceType = "MESSAGE"
	QuotaResourceMailbox           QuotaResourceType = "MAILBOX"
	QuotaResourceAnnotationStorage QuotaResourceType = "ANNOTATION-STORAGE"
)

// QuotaResource is one resource of a quota root: its usage and limit, in
// the resource's units (RFC 9208 §5: STORAGE counts units of 1024 octets).
type QuotaResource struct {
	Type         QuotaResourceType
	Usage, Limit int64
}

// QuotaData is a quota root and its resources, as a QUOTA response gives
// them (RFC 9208 §4.1.1); no resources is a root without limits.
type QuotaData struct {
	Root      string
	Resources []QuotaResource
}
