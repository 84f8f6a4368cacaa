package imapserver

import (
	"bytes"
	"strings"
)

// Limits of the framing guard (SECURITY-CHECKLIST 4.5). They are checked on
// the raw input before go-imap parses, and so before anything is allocated
// for a literal.
const (
	// maxLine caps one line and maxCommand the non-literal octets of one
	// command (its lines joined by literals). RFC 7162 §4 asks servers to take
	// lines of at least 8 KiB; go-imap's own decoder stops at 50 KiB per
	// command and then drops the connection without a word, so ours is lower
	// and answers with BYE.
	maxLine    = 48 << 10
	maxCommand = 48 << 10
	// maxLiteralPreAuth bounds a literal before login: a user name or a
	// password fits easily (RFC 4616 fields are at most 255 octets).
	maxLiteralPreAuth = 8 << 10
	// maxNonSyncLiteral caps "{n+}" (RFC 7888) in every command but APPEND
	// (whose literals go up to the message size): go-imap buffers those
	// literals, at most 4 KiB. A larger non-synchronizing literal is
	// already on its way, so it is refused with BAD [TOOBIG] and the
	// connection is closed (RFC 7888 §4).
	maxNonSyncLiteral = 4096
)

// lineInfo is what the guard learns from one complete input line.
type lineInfo struct {
	tag, cmd string // of a command's first line; "" when it has no such shape
	rest     string // what follows the command name, trimmed

	literal  bool  // the line ends with a literal announcement "{n}" / "{n+}"
	size     int64 // its size, capped at tooBig
	nonSync  bool
	badBytes bool // NUL or a CR that does not end the line
}

// tooBig stands for every literal size above any limit, so that
// "{99999999999999999999}" needs no big-number arithmetic.
const tooBig = 1 << 40

// parseLine classifies line (which ends with LF). It never fails: a line that
// is no command at all (a SASL response, IDLE's DONE) just has no tag.
func parseLine(line []byte) lineInfo {
	var li lineInfo
	body := bytes.TrimSuffix(line, []byte("\n"))
	body = bytes.TrimSuffix(body, []byte("\r"))
	// A NUL is allowed only inside literal8 data (RFC 3516), never in a line;
	// Dovecot's CVE-2019-11500 came from NULs in quoted strings. A bare CR is
	// no line ending (RFC 9051 §2.2) and a classic smuggling vector.
	li.badBytes = bytes.IndexByte(body, 0) >= 0 || bytes.IndexByte(body, '\r') >= 0

	li.size, li.nonSync, li.literal = literalSuffix(body)

	tag, rest, ok := bytes.Cut(body, []byte(" "))
	if ok && validTag(tag) {
		cmd, args, _ := bytes.Cut(rest, []byte(" "))
		if validCommandName(cmd) {
			li.tag, li.cmd = string(tag), strings.ToUpper(string(cmd))
			li.rest = strings.TrimRight(string(args), " ")
		}
	}
	return li
}

// literalSuffix parses a literal announcement at the end of a line:
// "{" number ["+"] "}" (RFC 9051 §4.3, RFC 7888), with literal8's "~" prefix
// accepted as well.
func literalSuffix(b []byte) (size int64, nonSync, ok bool) {
	if len(b) < 3 || b[len(b)-1] != '}' {
		return 0, false, false
	}
	b = b[:len(b)-1]
	if b[len(b)-1] == '+' {
		nonSync = true
		b = b[:len(b)-1]
	}
	i := len(b)
	for i > 0 && b[i-1] >= '0' && b[i-1] <= '9' {
		i--
	}
	if i == len(b) || i == 0 || b[i-1] != '{' {
		return 0, false, false
	}
	for _, c := range b[i:] {
		size = size*10 + int64(c-'0')
		if size >= tooBig {
			size = tooBig
			break
		}
	}
	return size, nonSync, true
}

// validTag: tag = 1*<any ASTRING-CHAR except "+"> (RFC 9051 §9).
func validTag(b []byte) bool {
	if len(b) == 0 || len(b) > 64 {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\+`, c) >= 0 {
			return false
		}
	}
	return true
}

func validCommandName(b []byte) bool {
	if len(b) == 0 || len(b) > 32 {
		return false
	}
	for _, c := range b {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}
