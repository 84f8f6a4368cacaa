package pop3server

import (
	"fmt"
	"strconv"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/mailstore"
)

// openInbox takes the snapshot the session works on: message numbers, sizes
// and UIDs are fixed at login (RFC 1939 §4), whatever IMAP or SMTP do
// meanwhile. Bodies are fetched one at a time, on RETR and TOP.
//
// There is no exclusive maildrop lock (RFC 1939 §8 lets a server take one),
// so [IN-USE] is never sent: a member's phone and laptop may both poll, each
// on its own snapshot, and the store's Delete ignores UIDs already gone.
// Sizes are the store's; SMTP stores CRLF, so they match what RETR sends.
func (s *session) openInbox(memberID int64) error {
	mb, msgs, err := s.cfg.Mail.Open(s.ctx, memberID, "INBOX")
	if err != nil {
		return fmt.Errorf("INBOX: %w", err)
	}
	s.mailbox, s.msgs, s.deleted = mb, msgs, make([]bool, len(msgs))
	return nil
}

// transaction runs a command in the TRANSACTION state (RFC 1939 §5).
func (s *session) transaction(cmd Command) bool {
	switch cmd.Name {
	case "STAT":
		n, size := s.count()
		s.replyf("+OK %d %d", n, size)
	case "LIST":
		s.scanListing(cmd, "scan listing", func(n int, m mailstore.MessageInfo) string {
			return strconv.Itoa(n) + " " + strconv.FormatInt(m.Size, 10)
		})
	case "UIDL":
		s.scanListing(cmd, "unique-id listing", func(n int, m mailstore.MessageInfo) string {
			return strconv.Itoa(n) + " " + s.uniqueID(m)
		})
	case "RETR":
		if len(cmd.Args) != 1 {
			s.reply(replySyntax)
			return true
		}
		if n, m, ok := s.message(cmd.Args[0]); ok {
			s.sendMessage(n, m, -1)
		}
	case "TOP":
		if len(cmd.Args) != 2 {
			s.reply(replySyntax)
			return true
		}
		lines, ok := parseCount(cmd.Args[1])
		if !ok {
			s.reply(replySyntax)
			return true
		}
		if n, m, ok := s.message(cmd.Args[0]); ok {
			s.sendMessage(n, m, lines)
		}
	case "DELE":
		if len(cmd.Args) != 1 {
			s.reply(replySyntax)
			return true
		}
		if n, _, ok := s.message(cmd.Args[0]); ok {
			s.deleted[n-1] = true
			s.replyf("+OK Message %d deleted.", n)
		}
	case "RSET":
		clear(s.deleted)
		n, size := s.count()
		s.replyf("+OK Maildrop has %d messages (%d octets).", n, size)
	case "NOOP":
		s.reply("+OK")
	case "USER", "PASS", "AUTH", "STLS":
		s.reply(replyBadState)
	default:
		return s.badCommand(replyUnknown)
	}
	return true
}

// scanListing answers LIST and UIDL: one line for "CMD n", a multi-line
// listing of the messages not marked deleted for "CMD".
func (s *session) scanListing(cmd Command, what string, line func(int, mailstore.MessageInfo) string) {
	switch len(cmd.Args) {
	case 0:
		s.reply("+OK " + what + " follows.")
		for i, m := range s.msgs {
			if !s.deleted[i] {
				s.reply(line(i+1, m))
			}
		}
		s.reply(".")
	case 1:
		if n, m, ok := s.message(cmd.Args[0]); ok {
			s.reply("+OK " + line(n, m))
		}
	default:
		s.reply(replySyntax)
	}
}

// uniqueID is the UIDL unique-id (RFC 1939 §7): UIDVALIDITY.UID stays the same
// across sessions for as long as the message exists, and is made of digits
// and a dot only, well inside 0x21-0x7E and 70 characters.
func (s *session) uniqueID(m mailstore.MessageInfo) string {
	return strconv.FormatUint(uint64(s.mailbox.UIDValidity), 10) + "." + strconv.FormatUint(uint64(m.UID), 10)
}

// message resolves a message-number argument, answering -ERR itself when it
// names no message or one marked deleted (RFC 1939 §5).
func (s *session) message(arg string) (int, mailstore.MessageInfo, bool) {
	n, ok := parseMsgNum(arg)
	if !ok {
		s.reply(replySyntax)
		return 0, mailstore.MessageInfo{}, false
	}
	if n > len(s.msgs) {
		s.reply("-ERR No such message.")
		return 0, mailstore.MessageInfo{}, false
	}
	if s.deleted[n-1] {
		s.replyf("-ERR Message %d already deleted.", n)
		return 0, mailstore.MessageInfo{}, false
	}
	return n, s.msgs[n-1], true
}

// sendMessage answers RETR (lines < 0) and TOP. The body is read from the
// store for this message only and dropped after it is written.
func (s *session) sendMessage(n int, m mailstore.MessageInfo, lines int) {
	body, err := s.cfg.Mail.Body(s.ctx, m.ID)
	if account.ErrorCode(err) == account.ENOTFOUND {
		// Expunged by another session since the snapshot.
		s.replyf("-ERR Message %d no longer exists.", n)
		return
	}
	if err != nil {
		s.logger().Error("pop3 message body", "uid", m.UID, "err", err)
		s.reply(replyTempFailure)
		return
	}
	if lines < 0 {
		s.replyf("+OK %d octets", m.Size)
	} else {
		s.reply("+OK Top of message follows.")
	}
	writeMessage(s.w, body, lines)
}

// update is QUIT in the TRANSACTION state: the UPDATE state of RFC 1939 §6
// removes the messages marked deleted, all or none.
func (s *session) update() {
	var uids []uint32
	for i, m := range s.msgs {
		if s.deleted[i] {
			uids = append(uids, m.UID)
		}
	}
	if len(uids) > 0 {
		if err := s.cfg.Mail.Delete(s.ctx, s.mailbox.ID, uids); err != nil {
			s.logger().Error("pop3 update", "err", err)
			s.reply("-ERR [SYS/TEMP] Deleted messages not removed, try again later.")
			return
		}
	}
	s.replyf("+OK Bye, %d messages deleted.", len(uids))
}

// count is the number and total size of the messages not marked deleted.
func (s *session) count() (int, int64) {
	var n int
	var size int64
	for i, m := range s.msgs {
		if !s.deleted[i] {
			n++
			size += m.Size
		}
	}
	return n, size
}

func (s *session) replyf(format string, args ...any) {
	fmt.Fprintf(s.w, format, args...)
	s.w.WriteString("\r\n")
}

// parseCount parses TOP's line count: a non-negative decimal number.
func parseCount(arg string) (int, bool) {
	if arg == "0" {
		return 0, true
	}
	return parseMsgNum(arg)
}
