package imapserver

import (
	"strings"
	"testing"
)

// TestBinary: FETCH BINARY (RFC 3516) undoes the part's encoding, sends a
// literal8 only when the content holds a NUL, names the origin of a
// partial fetch, counts decoded octets in BINARY.SIZE, and answers NO
// [UNKNOWN-CTE] for an encoding it cannot undo. APPEND of a literal8 with
// a NUL stores that part in base64, so BODY[] never carries a NUL.
func TestBinary(t *testing.T) {
	_, c := loggedIn(t, "BINARY")
	msg := "Content-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8gd29ybGQ=\r\n" +
		"--b\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nx=3Dy=\r\nz\r\n" +
		"--b\r\nContent-Transfer-Encoding: x-unknown\r\n\r\nzzz\r\n" +
		"--b\r\nContent-Transfer-Encoding: base64\r\n\r\nAGE=\r\n--b--\r\n"
	c.send("a1 APPEND INBOX {" + itoa(uint32(len(msg))) + "+}\r\n" + msg + "\r\n")
	c.until("a1")
	c.ok("a2", "SELECT INBOX")
	wantReply(t, c.cmd("a3", "FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1] BINARY.PEEK[2] BINARY.PEEK[1]<6.100> BINARY.PEEK[4])"),
		"* 1 FETCH (UID 1 BINARY[1] {11}\r\nhello world BINARY[2] {4}\r\nx=yz BINARY[1]<6> {5}\r\nworld BINARY[4] ~{2}\r\n\x00a BINARY.SIZE[1] 11)",
		"a3 OK FETCH completed")
	wantReply(t, c.cmd("a4", "FETCH 1 (BINARY.PEEK[3])"), "a4 NO [UNKNOWN-CTE] The part's Content-Transfer-Encoding is unknown")
	wantReply(t, c.cmd("a5", "FETCH 1 (BINARY.SIZE[3])"), "a5 NO [UNKNOWN-CTE] The part's Content-Transfer-Encoding is unknown")
	// BINARY without .PEEK sets \Seen.
	wantReply(t, c.cmd("a6", "FETCH 1 (BINARY[2])"), "* 1 FETCH (UID 1 FLAGS (\\Seen) BINARY[2] {4}\r\nx=yz)", "a6 OK FETCH completed")

	bin := "Subject: x\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\xe4\r\n"
	c.send("b1 APPEND INBOX ~{" + itoa(uint32(len(bin))) + "+}\r\n" + bin + "\r\n")
	if out := c.until("b1"); !strings.HasPrefix(out[len(out)-1], "b1 OK [APPENDUID ") {
		t.Fatalf("append literal8: %q", out)
	}
	c.ok("b2", "NOOP")
	out := c.ok("b3", "FETCH 2 (BODY.PEEK[] BINARY.PEEK[1])")
	if strings.Contains(strings.SplitN(out[0], "BINARY[1]", 2)[0], "\x00") {
		t.Errorf("BODY[] carries a NUL: %q", out)
	}
	if !strings.HasSuffix(out[0], "BINARY[1] ~{4}\r\n\x00\xe4\r\n)") || !strings.Contains(out[0], "Content-Transfer-Encoding: base64") {
		t.Errorf("binary append: %q", out)
	}
}
