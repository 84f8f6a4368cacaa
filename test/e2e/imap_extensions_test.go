package e2e

import (
	"strings"
	"testing"
)

// extensionsScript drives the IMAP extensions of issue 16 with python's
// imaplib, as a client script would: the documented commands where imaplib
// has them, raw command lines (send/readline) where it has not.
const extensionsScript = `
import imaplib, json, ssl, sys
a = json.load(sys.stdin)
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
c = imaplib.IMAP4(a["host"], a["port"], timeout=30)
c.starttls(ssl_context=ctx)
c.login(a["user"], a["password"])
out = {}
out["caps"] = c.capability()[1][0].decode().split()

def raw(tag, data):
    c.send(data)
    lines = []
    while True:
        l = c.readline().decode("latin-1").rstrip("\r\n")
        lines.append(l)
        if l.startswith(tag + " "):
            return lines

def lit(body, plus=True, eight=False):
    return ("~" if eight else "").encode() + ("{%d%s}\r\n" % (len(body), "+" if plus else "")).encode() + body

m1 = b"Subject: one\r\n\r\nfirst\r\n"
m2 = b"Subject: two\r\n\r\nsecond\r\n"
out["multiappend"] = raw("m1", b"m1 APPEND INBOX (\\Seen) " + lit(m1) + b" " + lit(m2) + b"\r\n")
binmsg = b"Subject: bin\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\xe4\r\n"
out["binappend"] = raw("m2", b"m2 APPEND INBOX " + lit(binmsg, eight=True) + b"\r\n")
out["create"] = c._simple_command("CREATE", "Old", "(USE (\\Archive))")[0]
typ, dat = c._simple_command("LIST", "(SPECIAL-USE)", '""', '"*"')
out["specialuse"] = [d.decode() for d in c._untagged_response(typ, dat, "LIST")[1]]
c.select("INBOX")
typ, dat = c._simple_command("UID", "SEARCH", "RETURN", "(MIN MAX COUNT)", "ALL")
out["esearch"] = [d.decode() for d in c._untagged_response(typ, dat, "ESEARCH")[1]]
out["save"] = c._simple_command("SEARCH", "RETURN", "(SAVE)", "SEEN")[0]
typ, dat = c.fetch("$", "(UID)")
out["saved"] = [d.decode() for d in dat if d]
typ, dat = c.fetch("4", "(BINARY.PEEK[1] BINARY.SIZE[1] BODY.PEEK[1])")
out["binary"] = [[x.decode("latin-1") for x in d] if isinstance(d, tuple) else d.decode("latin-1") for d in dat]
c.unselect()
typ, dat = c._simple_command("ENABLE", "IMAP4rev2")
out["enabled"] = [d.decode() for d in c._untagged_response(typ, dat, "ENABLED")[1]]
c.select("INBOX")
typ, dat = c._simple_command("SEARCH", "UNSEEN")
out["rev2search"] = [d.decode() for d in c._untagged_response(typ, dat, "ESEARCH")[1]]
c.logout()
json.dump(out, sys.stdout)
`

// TestIMAPExtensionsPython: a python imaplib client uses IMAP4rev2,
// MULTIAPPEND with LITERAL+, BINARY (literal8 APPEND and FETCH),
// CREATE-SPECIAL-USE with LIST-EXTENDED's SPECIAL-USE selection, ESEARCH and
// SEARCHRES on the real binary, on both engines.
func TestIMAPExtensionsPython(t *testing.T) {
	t.Parallel()
	Engines(t, func(t *testing.T, in *Instance) {
		in.MustRun(t, "domain", "add", "example.com")
		alice := addMember(t, in, "alice@example.com")
		app := createAppPass(t, in, alice.Email, "Thunderbird")
		srv := in.StartServer(t)
		host, port := splitAddr(srv.Addr("imap"))
		var got struct {
			Caps        []string
			Multiappend []string
			Binappend   []string
			Create      string
			Specialuse  []string
			Esearch     []string
			Save        string
			Saved       []string
			Binary      []any
			Enabled     []string
			Rev2search  []string
		}
		runPythonScript(t, extensionsScript, map[string]any{"host": host, "port": port, "user": alice.Email, "password": app.Password}, &got)
		caps := " " + strings.Join(got.Caps, " ") + " "
		for _, c := range []string{"IMAP4rev1", "IMAP4rev2", "LITERAL+", "MULTIAPPEND", "BINARY", "ESEARCH", "SEARCHRES", "LIST-EXTENDED", "CREATE-SPECIAL-USE"} {
			if !strings.Contains(caps, " "+c+" ") {
				t.Errorf("capability %s missing: %v", c, got.Caps)
			}
		}
		if len(got.Multiappend) != 1 || !strings.HasPrefix(got.Multiappend[0], "m1 OK [APPENDUID ") || !strings.HasSuffix(got.Multiappend[0], " 2:3] APPEND completed") {
			t.Errorf("MULTIAPPEND: %q", got.Multiappend)
		}
		if len(got.Binappend) != 1 || !strings.HasSuffix(got.Binappend[0], " 4] APPEND completed") {
			t.Errorf("literal8 APPEND: %q", got.Binappend)
		}
		want := map[string]any{
			"create":     []any{got.Create, "OK"},
			"esearch":    []any{strings.Join(got.Esearch, "|"), `(TAG "` + tagOf(got.Esearch) + `") UID MIN 1 MAX 4 COUNT 4`},
			"save":       []any{got.Save, "OK"},
			"saved":      []any{strings.Join(got.Saved, "|"), "2 (UID 2)"},
			"enabled":    []any{strings.Join(got.Enabled, "|"), "IMAP4rev2"},
			"rev2search": []any{strings.Join(got.Rev2search, "|"), `(TAG "` + tagOf(got.Rev2search) + `") ALL 1,3:4`},
		}
		// The member's INBOX starts with Postern's welcome message (UID 1);
		// the special-use mailboxes are the defaults and the new one.
		if !strings.Contains(strings.Join(got.Specialuse, "|"), `(\HasNoChildren \Archive) "/" "Old"`) || len(got.Specialuse) != 5 {
			t.Errorf("LIST (SPECIAL-USE): %q", got.Specialuse)
		}
		for what, pair := range want {
			p := pair.([]any)
			if p[0] != p[1] {
				t.Errorf("%s: got %q, want %q", what, p[0], p[1])
			}
		}
		// BINARY[1] undoes the base64 the NUL part was stored in; BODY[1]
		// is that base64, without a NUL.
		if len(got.Binary) != 3 {
			t.Fatalf("FETCH BINARY: %q", got.Binary)
		}
		body, bin := got.Binary[0].([]any), got.Binary[1].([]any)
		if !strings.HasSuffix(body[0].(string), "BODY[1] {8}") || body[1] != "AOQNCg==" ||
			bin[0] != " BINARY[1] ~{4}" || bin[1] != "\x00\u00e4\r\n" { // latin-1 through JSON
			t.Errorf("FETCH BINARY: %q", got.Binary)
		}
		if strings.Contains(srv.SettledStderr(), "panic") {
			t.Errorf("server log: %s", srv.Stderr())
		}
	})
}

// tagOf returns the tag of the ESEARCH data in lines: (TAG "x") ….
func tagOf(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	_, after, _ := strings.Cut(lines[0], `(TAG "`)
	tag, _, _ := strings.Cut(after, `"`)
	return tag
}
