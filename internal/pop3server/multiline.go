package pop3server

import (
	"bufio"
	"bytes"
)

// writeMessage writes msg as the body of a multi-line response (RFC 1939 §3)
// and the terminating ".\r\n". Every line ends in CRLF whatever the store
// holds (LF or CRLF), and a line that starts with "." gets one more "." in
// front (byte-stuffing), so a message line "." can never end the response.
//
// bodyLines < 0 writes the whole message (RETR). bodyLines >= 0 writes the
// header, the blank line that ends it, and that many body lines (TOP,
// RFC 1939 §7); a message without a blank line is all header.
func writeMessage(w *bufio.Writer, msg []byte, bodyLines int) error {
	inHeader := true
	for len(msg) > 0 {
		if !inHeader && bodyLines >= 0 {
			if bodyLines == 0 {
				break
			}
			bodyLines--
		}
		line := msg
		if i := bytes.IndexByte(msg, '\n'); i >= 0 {
			line, msg = msg[:i], msg[i+1:]
		} else {
			msg = nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if inHeader && len(line) == 0 {
			inHeader = false
		}
		if len(line) > 0 && line[0] == '.' {
			w.WriteByte('.')
		}
		w.Write(line)
		w.WriteString("\r\n")
	}
	_, err := w.WriteString(".\r\n")
	return err
}
