package imapserver

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// transcripts are the exact bytes the server answers to hostile or unusual
// input, greeting and all (capability lists aside): each limit's reply is
// part of the protocol a client sees, and must not change by accident.
// IMAP_TRANSCRIPTS=1 prints the table anew from what the server says.
var transcripts = []struct {
	name  string
	login bool   // LOGIN first (its reply is not in want)
	in    string // sent in one write, then "zz LOGOUT\r\n" unless in has a LOGOUT
	want  string
}{
	{"huge literal", false, "a1 LOGIN {4294967295}\r\n",
		"* OK [CAPABILITY ...] IMAP server ready\r\na1 BAD [TOOBIG] Literal too big\r\n* BYE Logging out\r\nzz OK LOGOUT completed\r\n"},
	{"huger literal", false, "a1 LOGIN {99999999999999999999999999}\r\n",
		"* OK [CAPABILITY ...] IMAP server ready\r\na1 BAD [TOOBIG] Literal too big\r\n* BYE Logging out\r\nzz OK LOGOUT completed\r\n"},
	{"negative literal", false, "a1 LOGIN {-1}\r\n",
		"* OK [CAPABILITY ...] IMAP server ready\r\na1 BAD [CLIENTBUG] Syntax error: expected number64, got \"-\"\r\n* BYE Logging out\r\nzz OK LOGOUT completed\r\n"},
	{"empty literal", false, "a1 LOGIN {}\r\n",
		"* OK [CAPABILITY ...] IMAP server ready\r\na1 BAD [CLIENTBUG] Syntax error: expected number64, got \"}\"\r\n* BYE Logging out\r\nzz OK LOGOUT completed\r\n"},
	{"append before login", false, "a1 APPEND INBOX {30000000}\r\n",
		"* OK [CAPABILITY ...] IMAP server ready\r\na1 BAD [TOOBIG] Literal too big\r\n* BYE Logging out\r\nzz OK LOGOUT completed\r\n"},
	{"6000 before login", false, "a1 LOGIN {6000}\r\n",
		"* OK [CAPABILITY ...] IMAP server ready\r\na1 BAD [TOOBIG] Literals are limited to 4096 octets for this command\r\n* BYE Logging out\r\nzz OK LOGOUT completed\r\n"},
	{"8192 before login", false, "a1 LOGIN {8192}\r\n",
		"* OK [CAPABILITY ...] IMAP server ready\r\na1 BAD [TOOBIG] Literals are limited to 4096 octets for this command\r\n* BYE Logging out\r\nzz OK LOGOUT completed\r\n"},
	{"8193 before login", false, "a1 LOGIN {8193}\r\n",
		"* OK [CAPABILITY ...] IMAP server ready\r\na1 BAD [TOOBIG] Literal too big\r\n* BYE Logging out\r\nzz OK LOGOUT completed\r\n"},
	{"nonsync 5000", false, "a1 LOGIN {5000+}\r\n",
		"* OK [CAPABILITY ...] IMAP server ready\r\na1 BAD [TOOBIG] Non-synchronizing literal too big\r\n* BYE Literal too big\r\n"},
	{"nonsync 5000 later line", true, "a1 SEARCH SUBJECT {3+}\r\nabc SUBJECT {5000+}\r\n",
		"* OK [CAPABILITY ...] IMAP server ready\r\na1 BAD [TOOBIG] Non-synchronizing literal too big\r\n* BYE Literal too big\r\n"},
	{"big literal later line", true, "a1 SEARCH SUBJECT {3+}\r\nabc SUBJECT {99999999999}\r\n",
		"* OK [CAPABILITY ...] IMAP server ready\r\na1 BAD [TOOBIG] Literals are limited to 4096 octets for this command\r\n* BYE Logging out\r\nzz OK LOGOUT completed\r\n"},
	{"big append", true, "b1 APPEND INBOX {4294967295}\r\n",
		"* OK [CAPABILITY ...] IMAP server ready\r\nb1 NO [TOOBIG] Literal too big\r\n* BYE Logging out\r\nzz OK LOGOUT completed\r\n"},
	{"big append 2", true, "b2 APPEND INBOX {40000000}\r\n",
		"* OK [CAPABILITY ...] IMAP server ready\r\nb2 NO [TOOBIG] Literal too big\r\n* BYE Logging out\r\nzz OK LOGOUT completed\r\n"},
	{"nul", false, "a1 LOGIN \"a\x00\" x\r\n",
		"* OK [CAPABILITY ...] IMAP server ready\r\na1 BAD [CLIENTBUG] NUL and bare CR are not allowed in a command\r\n* BYE Logging out\r\nzz OK LOGOUT completed\r\n"},
	{"bare cr", false, "a1 LOGIN a\rX b\r\n",
		"* OK [CAPABILITY ...] IMAP server ready\r\na1 BAD [CLIENTBUG] NUL and bare CR are not allowed in a command\r\n* BYE Logging out\r\nzz OK LOGOUT completed\r\n"},
	{"nul in tag", false, "a\x001 NOOP\r\n",
		"* OK [CAPABILITY ...] IMAP server ready\r\n* BYE Protocol error\r\n"},
	{"nul in command", false, "a1 NO\x00OP\r\n",
		"* OK [CAPABILITY ...] IMAP server ready\r\na1 BAD [CLIENTBUG] NUL and bare CR are not allowed in a command\r\n* BYE Logging out\r\nzz OK LOGOUT completed\r\n"},
	{"nul later line", true, "a1 SEARCH SUBJECT {3+}\r\nabc SUBJECT \"\x00\"\r\n",
		"* OK [CAPABILITY ...] IMAP server ready\r\na1 BAD [CLIENTBUG] NUL and bare CR are not allowed in a command\r\n* BYE Logging out\r\nzz OK LOGOUT completed\r\n"},
	{"nul after auth", true, "a1 NOOP \x00\r\n",
		"* OK [CAPABILITY ...] IMAP server ready\r\na1 BAD [CLIENTBUG] NUL and bare CR are not allowed in a command\r\n* BYE Logging out\r\nzz OK LOGOUT completed\r\n"},
	{"line too long", false, "a1 NOOP " + strings.Repeat("x", maxLine+10),
		"* OK [CAPABILITY ...] IMAP server ready\r\n* BYE Line too long\r\n"},
	{"command too long", true, "a1 SEARCH SUBJECT " + strings.Repeat("x", 30000) + " SUBJECT {3+}\r\nabc SUBJECT " + strings.Repeat("y", 30000) + "\r\n",
		"* OK [CAPABILITY ...] IMAP server ready\r\n* BYE Command too long\r\n"},
	{"malformed sasl-ir", false, "a1 AUTHENTICATE PLAIN !!!\r\n",
		"* OK [CAPABILITY ...] IMAP server ready\r\na1 BAD Malformed SASL initial response\r\n* BYE Logging out\r\nzz OK LOGOUT completed\r\n"},
	{"empty sasl-ir", false, "a1 AUTHENTICATE PLAIN =\r\n",
		"* OK [CAPABILITY ...] IMAP server ready\r\na1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n* BYE Logging out\r\nzz OK LOGOUT completed\r\n"},
	{"sasl response nul", false, "a1 AUTHENTICATE PLAIN\r\nAG\x00=\r\n",
		"* OK [CAPABILITY ...] IMAP server ready\r\n+ \r\na1 BAD Malformed SASL response\r\n* BYE Logging out\r\nzz OK LOGOUT completed\r\n"},
	{"sasl cancel", false, "a1 AUTHENTICATE PLAIN\r\n*\r\n",
		"* OK [CAPABILITY ...] IMAP server ready\r\n+ \r\na1 BAD AUTHENTICATE cancelled\r\n* BYE Logging out\r\nzz OK LOGOUT completed\r\n"},
	{"unknown before login", false, "a1 FOO\r\n",
		"* OK [CAPABILITY ...] IMAP server ready\r\na1 BAD Unknown command\r\n* BYE Unknown command\r\n"},
	{"unknown after login", true, "a1 FOO {5}\r\n",
		"* OK [CAPABILITY ...] IMAP server ready\r\na1 BAD Unknown command\r\n* BYE Logging out\r\nzz OK LOGOUT completed\r\n"},
	{"empty lines", false, "\r\n   \r\n",
		"* OK [CAPABILITY ...] IMAP server ready\r\n"},
	{"star", false, "* \r\n",
		"* OK [CAPABILITY ...] IMAP server ready\r\n"},
	{"logout", false, "a1 LOGOUT\r\n",
		"* OK [CAPABILITY ...] IMAP server ready\r\n* BYE Logging out\r\na1 OK LOGOUT completed\r\n"},
	{"literal login", false, "a1 LOGIN {17}\r\nalice@example.com {20}\r\nabcdefghijkmnpqrstuv\r\n",
		"* OK [CAPABILITY ...] IMAP server ready\r\n+ Ready for literal data\r\n+ Ready for literal data\r\na1 OK [CAPABILITY ...] Logged in\r\n* BYE Logging out\r\nzz OK LOGOUT completed\r\n"},
	{"nonsync login", false, "a1 LOGIN {17+}\r\nalice@example.com {20+}\r\nabcdefghijkmnpqrstuv\r\n",
		"* OK [CAPABILITY ...] IMAP server ready\r\na1 OK [CAPABILITY ...] Logged in\r\n* BYE Logging out\r\nzz OK LOGOUT completed\r\n"},
	{"idle done nul", true, "a1 IDLE\r\nDO\x00NE\r\n",
		"* OK [CAPABILITY ...] IMAP server ready\r\n+ idling\r\na1 BAD [CLIENTBUG] Syntax error: expected DONE to end IDLE command\r\n* BYE Logging out\r\nzz OK LOGOUT completed\r\n"},
	{"idle bad done", true, "a1 IDLE\r\nDUNNO\r\n",
		"* OK [CAPABILITY ...] IMAP server ready\r\n+ idling\r\na1 BAD [CLIENTBUG] Syntax error: expected DONE to end IDLE command\r\n* BYE Logging out\r\nzz OK LOGOUT completed\r\n"},
	{"starttls args", false, "a1 STARTTLS x\r\n",
		"* OK [CAPABILITY ...] IMAP server ready\r\na1 BAD [CLIENTBUG] Syntax error: expected CRLF, got \"x\"\r\n* BYE Logging out\r\nzz OK LOGOUT completed\r\n"},
	{"starttls after login", true, "a1 STARTTLS\r\n",
		"* OK [CAPABILITY ...] IMAP server ready\r\na1 BAD STARTTLS not available\r\n* BYE Logging out\r\nzz OK LOGOUT completed\r\n"},
	{"pipelined", true, "a1 NOOP\r\na2 STATUS INBOX (MESSAGES)\r\na3 LIST \"\" INBOX\r\n",
		"* OK [CAPABILITY ...] IMAP server ready\r\na1 OK NOOP completed\r\n* STATUS INBOX (MESSAGES 0)\r\na2 OK STATUS completed\r\n* LIST (\\HasNoChildren) \"/\" INBOX\r\na3 OK LIST completed\r\n* BYE Logging out\r\nzz OK LOGOUT completed\r\n"},
}

func TestTranscripts(t *testing.T) {
	e := newEnv(t, envOptions{noTailer: true})
	gen := os.Getenv("IMAP_TRANSCRIPTS") != ""
	for _, tc := range transcripts {
		got := runTranscript(t, e, tc.login, tc.in)
		if gen {
			fmt.Printf("\t{%q, %v, %q,\n\t\t%q},\n", tc.name, tc.login, tc.in, got)
			continue
		}
		if got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

func runTranscript(t *testing.T, e *env, login bool, in string) string {
	nc, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	c := &client{t: t, c: nc, r: bufio.NewReader(nc)}
	greeting := c.line() + "\r\n"
	if login {
		c.login()
	}
	io.WriteString(nc, in)
	if !strings.Contains(in, "LOGOUT") {
		io.WriteString(nc, "zz LOGOUT\r\n")
	}
	b, _ := io.ReadAll(c.r)
	// The capabilities are other tests' business.
	return capList.ReplaceAllString(greeting+string(b), "[CAPABILITY ...]")
}

var capList = regexp.MustCompile(`\[CAPABILITY [^\]]*\]`)
