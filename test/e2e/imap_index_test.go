package e2e

import (
	"strings"
	"testing"
)

// indexScript appends messages with imaplib, then sends SORT, THREAD,
// FETCH PREVIEW and a SEARCH answered from the message index as raw
// commands (imaplib's xatom/uid), printing each untagged reply.
const indexScript = `
import imaplib, json, ssl, sys
a = json.load(sys.stdin)
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
c = imaplib.IMAP4(a["host"], a["port"], timeout=30)
c.starttls(ssl_context=ctx)
c.login(a["user"], a["password"])
c.create("Threads")
for m in a["messages"]:
    c.append("Threads", None, None, m.encode())
c.select("Threads")
out = {"caps": c.capability()[1][0].decode()}
typ, data = c.sort("(REVERSE DATE)", "UTF-8", "ALL")
out["sort"] = data[0].decode()
typ, data = c.uid("SORT", "(SUBJECT)", "UTF-8", "ALL")
out["uid_sort"] = data[0].decode()
typ, data = c.thread("REFERENCES", "UTF-8", "ALL")
out["thread"] = data[0].decode()
typ, data = c.thread("ORDEREDSUBJECT", "UTF-8", "ALL")
out["orderedsubject"] = data[0].decode()
typ, data = c.fetch("1:*", "(PREVIEW)")
out["preview"] = [d.decode() for d in data]
typ, data = c.fetch("2", "(PREVIEW (LAZY))")
out["lazy"] = data[0].decode()
typ, data = c.uid("SEARCH", "FROM", '"carol@example.org"')
out["search"] = data[0].decode()
typ, data = c.uid("SEARCH", "BODY", "agenda")
out["body"] = data[0].decode()
c.logout()
json.dump(out, sys.stdout)
`

// TestIMAPIndexCommands: SORT, THREAD and PREVIEW from python's imaplib
// against the real binary, and searches the message index answers, on
// both engines.
func TestIMAPIndexCommands(t *testing.T) {
	t.Parallel()
	Engines(t, func(t *testing.T, in *Instance) {
		in.MustRun(t, "domain", "add", "example.com")
		alice := addMember(t, in, "alice@example.com")
		app := createAppPass(t, in, alice.Email, "imaplib")
		srv := in.StartServer(t)
		host, port := splitAddr(srv.Addr("imap"))
		messages := []string{
			"From: Carol <carol@example.org>\r\nSubject: Agenda\r\nDate: Mon, 01 Jan 2024 10:00:00 +0000\r\nMessage-ID: <1@x>\r\n\r\nThe   agenda\r\nfor Monday.\r\n",
			"From: dave@example.org\r\nSubject: Re: Agenda\r\nDate: Tue, 02 Jan 2024 10:00:00 +0000\r\nMessage-ID: <2@x>\r\nIn-Reply-To: <1@x>\r\n\r\nFine by me.\r\n",
			"From: erin@example.org\r\nSubject: Lunch\r\nDate: Wed, 03 Jan 2024 10:00:00 +0000\r\nMessage-ID: <3@x>\r\n\r\nNoon?\r\n",
		}
		var out struct {
			Caps, Sort, UIDSort, Thread, OrderedSubject, Lazy, Search, Body string
			Preview                                                         []string
		}
		var raw map[string]any
		runPythonScript(t, indexScript, map[string]any{"host": host, "port": port, "user": alice.Email,
			"password": app.Password, "messages": messages}, &raw)
		str := func(k string) string { s, _ := raw[k].(string); return s }
		out.Caps, out.Sort, out.UIDSort, out.Thread = str("caps"), str("sort"), str("uid_sort"), str("thread")
		out.OrderedSubject, out.Lazy, out.Search, out.Body = str("orderedsubject"), str("lazy"), str("search"), str("body")
		for _, p := range raw["preview"].([]any) {
			out.Preview = append(out.Preview, p.(string))
		}
		for _, c := range []string{" SORT ", " THREAD=REFERENCES", " THREAD=ORDEREDSUBJECT", " PREVIEW"} {
			if !strings.Contains(out.Caps+" ", c) {
				t.Errorf("capability %q missing: %s", c, out.Caps)
			}
		}
		for _, c := range []struct{ got, want string }{
			{out.Sort, "3 2 1"},
			{out.UIDSort, "1 2 3"},
			{out.Thread, "(1 2)(3)"},
			{out.OrderedSubject, "(1 2)(3)"},
			{out.Lazy, `2 (UID 2 PREVIEW "Fine by me.")`},
			{out.Search, "1"},
			{out.Body, "1"},
		} {
			if c.got != c.want {
				t.Errorf("got %q, want %q", c.got, c.want)
			}
		}
		want := []string{`1 (UID 1 PREVIEW "The agenda for Monday.")`, `2 (UID 2 PREVIEW "Fine by me.")`, `3 (UID 3 PREVIEW "Noon?")`}
		if len(out.Preview) != 3 {
			t.Fatalf("preview: %q", out.Preview)
		}
		for i := range want {
			if out.Preview[i] != want[i] {
				t.Errorf("preview %d: %q, want %q", i+1, out.Preview[i], want[i])
			}
		}
	})
}
