package imapserver

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/internal/tlsconf"
)

// pythonClient drives the server with Python's imaplib, a third-party client
// that real scripts use.
const pythonClient = `
import imaplib, os, ssl, sys

host, port = "127.0.0.1", int(os.environ["PORT"])
user, secret = os.environ["USER_NAME"], os.environ["SECRET"]
mode = os.environ["MODE"]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

def check(cond, what):
    if not cond:
        print("FAILED:", what, file=sys.stderr)
        sys.exit(1)

msg = (b"From: Bob <bob@example.org>\r\nTo: " + user.encode() +
       b"\r\nSubject: Hello from imaplib\r\n\r\nA body line.\r\n")

if mode == "full":
    M = imaplib.IMAP4(host, port)
    M.login(user, secret)
    typ, data = M.list()
    check(typ == "OK" and any(b"\\Sent" in l for l in data), "LIST %r" % data)
    typ, data = M.select("INBOX")
    check(typ == "OK", "SELECT")
    typ, data = M.append("INBOX", None, None, msg)
    check(typ == "OK" and b"APPENDUID" in data[0], "APPEND %r" % data)
    M.append("INBOX", None, None, msg.replace(b"Hello", b"Second"))
    typ, data = M.search(None, "SUBJECT", "imaplib")
    check(data[0].split() == [b"1", b"2"], "SEARCH %r" % data)
    typ, data = M.fetch("1", "(RFC822 FLAGS)")
    check(typ == "OK" and data[0][1] == msg, "FETCH %r" % data)
    typ, data = M.uid("FETCH", "1:*", "(UID RFC822.SIZE)")
    check(typ == "OK" and len(data) == 2, "UID FETCH %r" % data)
    typ, data = M.store("1", "+FLAGS", "(\\Flagged)")
    check(typ == "OK" and b"\\Flagged" in data[0], "STORE %r" % data)
    typ, data = M.search(None, "FLAGGED")
    check(data[0] == b"1", "SEARCH FLAGGED %r" % data)
    typ, data = M.copy("1", "Trash")
    check(typ == "OK", "COPY %r" % data)
    M.store("2", "+FLAGS", "(\\Deleted)")
    typ, data = M.expunge()
    check(typ == "OK" and data == [b"2"], "EXPUNGE %r" % data)
    typ, data = M.status("Trash", "(MESSAGES)")
    check(b"MESSAGES 1" in data[0], "STATUS %r" % data)
    M.close()
    M.logout()

    M = imaplib.IMAP4(host, port)
    M.authenticate("PLAIN", lambda _: b"\0" + user.encode() + b"\0" + secret.encode())
    typ, data = M.select("INBOX", readonly=True)
    check(data == [b"1"], "SELECT after AUTHENTICATE %r" % data)
    M.logout()

    M = imaplib.IMAP4(host, port)
    try:
        M.login(user, "wrong")
        check(False, "wrong password accepted")
    except imaplib.IMAP4.error as e:
        check("AUTHENTICATIONFAILED" in str(e), "failure reply %r" % e)
    M.logout()

    M = imaplib.IMAP4_SSL(host, int(os.environ["TLS_PORT"]), ssl_context=ctx)
    M.login(user, secret)
    M.logout()

elif mode == "never":
    M = imaplib.IMAP4(host, port)
    check("LOGINDISABLED" in M.capabilities, "capabilities %r" % (M.capabilities,))
    try:
        M.login(user, secret)
        check(False, "LOGIN accepted before TLS")
    except imaplib.IMAP4.error:
        pass
    M.starttls(ssl_context=ctx)
    check("LOGINDISABLED" not in M.capabilities, "capabilities after STARTTLS %r" % (M.capabilities,))
    M.login(user, secret)
    typ, data = M.select("INBOX")
    check(typ == "OK", "SELECT over STARTTLS")
    M.logout()
print("ok")
`

func runPython(t *testing.T, e *env, mode string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/bin/python3", "-c", pythonClient)
	cmd.Env = []string{
		"PORT=" + port(e.addr), "TLS_PORT=" + port(e.tlsAddr), "MODE=" + mode,
		"USER_NAME=" + testUser, "SECRET=" + testSecret,
	}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok") {
		t.Fatalf("python imaplib (%s): %v\n%s", mode, err, out)
	}
}

func port(addr string) string { return addr[strings.LastIndexByte(addr, ':')+1:] }

func TestPythonImaplib(t *testing.T) {
	runPython(t, newEnv(t, envOptions{noTailer: true}), "full")
}

func TestPythonImaplibLoginDisabled(t *testing.T) {
	runPython(t, newEnv(t, envOptions{plaintext: tlsconf.PlaintextNever, noTailer: true}), "never")
}
