package sqlstore

import (
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/mailstore"
)

// inbox is the one mailbox name IMAP treats case-insensitively (RFC 3501 §5.1).
const inbox = "INBOX"

// maxMailboxName is the longest mailbox name accepted, in bytes.
const maxMailboxName = 255

// cleanMailboxName checks a mailbox name and returns it with a leading INBOX
// component spelled "INBOX", which is also its key: "INBOX" is
// case-insensitive, every other name case-sensitive (RFC 3501 §5.1). Names of
// INBOX's children ("inbox/x") fold the same way, as Dovecot does, so that one
// mailbox cannot be listed under two spellings.
func cleanMailboxName(name string) (string, error) {
	switch {
	case name == "":
		return "", account.Errorf(account.EINVALID, "A mailbox name cannot be empty.")
	case len(name) > maxMailboxName:
		return "", account.Errorf(account.EINVALID, "A mailbox name can have at most %d bytes.", maxMailboxName)
	case !utf8.ValidString(name):
		return "", account.Errorf(account.EINVALID, "A mailbox name must be valid UTF-8.")
	case strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") || strings.Contains(name, "//"):
		return "", account.Errorf(account.EINVALID, "A mailbox name cannot begin or end with “/” or contain “//”.")
	case strings.ContainsAny(name, "*%"):
		// The LIST wildcards (RFC 3501 §6.3.8): such a name could not be listed alone.
		return "", account.Errorf(account.EINVALID, "A mailbox name cannot contain “*” or “%%”.")
	}
	for _, r := range name {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) {
			return "", account.Errorf(account.EINVALID, "A mailbox name cannot contain control characters.")
		}
	}
	first, rest, hasRest := strings.Cut(name, "/")
	if strings.EqualFold(first, inbox) {
		name = inbox
		if hasRest {
			name += "/" + rest
		}
	}
	return name, nil
}

// isInside reports whether name is a descendant of parent.
func isInside(name, parent string) bool {
	return len(name) > len(parent) && strings.HasPrefix(name, parent) && name[len(parent)] == '/'
}

// parents returns the superior names of name, outermost first ("a/b/c":
// "a", "a/b"), which CREATE makes when missing (RFC 3501 §6.3.3).
func parents(name string) []string {
	var out []string
	for i := 0; i < len(name); i++ {
		if name[i] == '/' {
			out = append(out, name[:i])
		}
	}
	return out
}

// specialUses are the attributes of RFC 6154 §2.
var specialUses = map[string]bool{
	`\All`: true, `\Archive`: true, mailstore.Drafts: true, `\Flagged`: true,
	mailstore.Junk: true, mailstore.Sent: true, mailstore.Trash: true,
}

func checkSpecialUse(s string) error {
	if s != "" && !specialUses[s] {
		return account.Errorf(account.EINVALID, "Unknown special-use attribute.")
	}
	return nil
}

// systemFlags maps the lower-cased system flags (RFC 3501 §2.3.2) to their
// spelling.
var systemFlags = map[string]string{
	`\seen`: `\Seen`, `\answered`: `\Answered`, `\flagged`: `\Flagged`,
	`\deleted`: `\Deleted`, `\draft`: `\Draft`, `\recent`: `\Recent`,
}

const deletedFlag = `\Deleted`

// maxFlag caps a keyword's length; IMAP sets none, this keeps rows bounded.
const maxFlag = 100

// cleanFlags checks flags and returns them with system flags spelled as in
// RFC 3501, without duplicates (flags compare case-insensitively) and sorted.
// \Recent is dropped: it belongs to a session and no client may set it
// (RFC 3501 §2.3.2).
func cleanFlags(flags []string) ([]string, error) {
	seen := make(map[string]bool, len(flags))
	out := make([]string, 0, len(flags))
	for _, f := range flags {
		if strings.HasPrefix(f, `\`) {
			canon, ok := systemFlags[strings.ToLower(f)]
			if !ok {
				return nil, account.Errorf(account.EINVALID, "Unknown system flag.")
			}
			f = canon
			if f == `\Recent` {
				continue
			}
		} else if err := checkKeyword(f); err != nil {
			return nil, err
		}
		k := strings.ToLower(f)
		if !seen[k] {
			seen[k] = true
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return out, nil
}

// checkKeyword accepts an IMAP atom (RFC 3501 §9, flag-keyword): no space,
// control character or atom-special, so that flags can be stored space-separated.
func checkKeyword(f string) error {
	if f == "" || len(f) > maxFlag {
		return account.Errorf(account.EINVALID, "A flag must have 1 to %d characters.", maxFlag)
	}
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			return account.Errorf(account.EINVALID, "A flag cannot contain spaces, control characters or any of (){%%*\"\\].")
		}
	}
	return nil
}

// applyFlags returns the sorted result of op on cur; flags compare
// case-insensitively, so removing "$junk" removes "$Junk".
func applyFlags(cur []string, op mailstore.FlagOp, flags []string) []string {
	switch op {
	case mailstore.FlagsSet:
		return append([]string(nil), flags...)
	case mailstore.FlagsAdd:
		out := append([]string(nil), cur...)
		for _, f := range flags {
			if !hasFlag(out, f) {
				out = append(out, f)
			}
		}
		sort.Strings(out)
		return out
	default:
		out := make([]string, 0, len(cur))
		for _, f := range cur {
			if !hasFlag(flags, f) {
				out = append(out, f)
			}
		}
		return out
	}
}

func hasFlag(flags []string, f string) bool {
	for _, g := range flags {
		if strings.EqualFold(g, f) {
			return true
		}
	}
	return false
}

func joinFlags(flags []string) string { return strings.Join(flags, " ") }

// flagSets hands out one []string per distinct flags column within a read
// of many messages (SELECT of a large mailbox, where most messages share a
// few sets): no allocation per message. The slices are shared, so nothing
// may change them in place (applyFlags makes new ones).
type flagSets map[string][]string

// split is splitFlags of b, shared with the other rows holding the same.
func (fs flagSets) split(b []byte) []string {
	if f, ok := fs[string(b)]; ok {
		return f
	}
	s := string(b)
	f := splitFlags(s)
	fs[s] = f
	return f
}

func splitFlags(s string) []string {
	f := strings.Fields(s)
	if f == nil {
		f = []string{}
	}
	return f
}

func checkSize(body []byte) error { return checkLen(len(body)) }

// checkLen is checkSize of a message of n octets.
func checkLen(n int) error {
	if n > mailstore.MaxMessageSize {
		return account.Errorf(account.EINVALID, "The message is larger than the limit of %d MiB.", mailstore.MaxMessageSize>>20)
	}
	return nil
}
