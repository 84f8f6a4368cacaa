package pop3server

import (
	"bufio"
	"errors"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Line limits. RFC 2449 §4 raises the command length to 255 octets including
// the CRLF. An AUTH line with a PLAIN initial response can be longer (1,024
// base64 characters for 767 octets; RFC 5034 §4 lets the client send it or
// wait for "+ "), so AUTH lines and SASL continuation lines get maxAuthLine.
const (
	maxCommandLine = 255
	maxAuthLine    = 4096
	// maxDiscard is how much of an overlong line is read and thrown away, so
	// that the session can answer -ERR and go on; past it the client is not
	// speaking POP3 and the connection is closed.
	maxDiscard = 64 << 10
)

var (
	// errLineTooLong: the line was consumed up to its LF and is unusable.
	errLineTooLong = errors.New("pop3: line too long")
	// errFlood: no LF within maxDiscard octets; the connection must close.
	errFlood = errors.New("pop3: no end of line within the discard limit")
	// errSyntax is any command line ParseCommand refuses.
	errSyntax = errors.New("pop3: malformed command line")
)

// Command is one parsed POP3 command line.
type Command struct {
	// Name is the keyword in upper case (RFC 1939 §3: keywords are
	// case-insensitive).
	Name string
	// Rest is everything after the first space, verbatim: PASS takes it whole
	// because a password may contain spaces (RFC 1939 §7, PASS discussion;
	// app passwords are accepted in their spaced, grouped form).
	Rest string
	// Args is Rest split on spaces, empty fields dropped.
	Args []string
}

// ParseCommand parses one command line, with or without its CRLF (a bare LF
// is tolerated). It refuses control characters (CR inside the line, NUL, ...),
// invalid UTF-8, and keywords that are not 1 to 8 ASCII letters. It neither
// allocates in proportion to anything but its input nor keeps the input.
func ParseCommand(line []byte) (Command, error) {
	line = trimEOL(line)
	if len(line) == 0 || !utf8.Valid(line) {
		return Command{}, errSyntax
	}
	for _, c := range line {
		if c < 0x20 || c == 0x7f {
			return Command{}, errSyntax
		}
	}
	s := string(line)
	name, rest, _ := strings.Cut(s, " ")
	if len(name) == 0 || len(name) > 8 {
		return Command{}, errSyntax
	}
	for i := 0; i < len(name); i++ {
		if c := name[i] | 0x20; c < 'a' || c > 'z' {
			return Command{}, errSyntax
		}
	}
	cmd := Command{Name: strings.ToUpper(name), Rest: rest}
	for _, f := range strings.Split(rest, " ") {
		if f != "" {
			cmd.Args = append(cmd.Args, f)
		}
	}
	return cmd, nil
}

// trimEOL drops one trailing LF and then one CR.
func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}

// parseMsgNum parses a message number (RFC 1939 §3: decimal, from 1). Signs,
// spaces and absurd lengths are refused before strconv sees them.
func parseMsgNum(s string) (int, bool) {
	if s == "" || len(s) > 9 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n > 0
}

// readLine reads one line of at most limit octets including its LF. The
// returned slice is valid until the next read. A longer line is discarded up
// to its LF and gives errLineTooLong; if no LF comes within maxDiscard octets
// it gives errFlood. The bufio.Reader's buffer bounds what is held in memory.
func readLine(r *bufio.Reader, limit int) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	switch {
	case err == nil && len(line) <= limit:
		return line, nil
	case err == nil:
		return nil, errLineTooLong
	case errors.Is(err, bufio.ErrBufferFull):
		// Longer than the buffer: throw the rest away up to the LF.
		discarded := len(line)
		for {
			line, err = r.ReadSlice('\n')
			discarded += len(line)
			if err == nil {
				return nil, errLineTooLong
			}
			if !errors.Is(err, bufio.ErrBufferFull) {
				return nil, err
			}
			if discarded > maxDiscard {
				return nil, errFlood
			}
		}
	case errors.Is(err, io.EOF) && len(line) > 0:
		// A last line without LF is not a command: the client hung up.
		return nil, io.ErrUnexpectedEOF
	default:
		return nil, err
	}
}
