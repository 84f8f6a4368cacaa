package e2e

// Abuse-resistance replays against the real binary: the author of submitted
// mail, SEARCH nesting, the modes of the files Postern creates, and app
// password names made to deceive.

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// fromScript submits each message with Python's smtplib over STARTTLS as
// the given user and prints, for each, [code, text] of the reply to the end
// of data (250 when accepted).
const fromScript = `
import json, smtplib, ssl, sys
a = json.load(sys.stdin)
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
c = smtplib.SMTP(a["host"], a["port"], timeout=30, source_address=(a["src"], 0))
c.starttls(context=ctx)
c.login(a["user"], a["password"])
out = []
for m in a["messages"]:
    try:
        c.sendmail(a["user"], [a["to"]], m.encode())
        out.append([250, ""])
    except smtplib.SMTPDataError as e:
        out.append([e.smtp_code, e.smtp_error.decode()])
c.quit()
json.dump(out, sys.stdout)
`

// TestAbuseFromForged: a member authenticated as alice cannot submit a
// message whose From: is bob's (refused at the end of DATA with 550 5.7.1,
// nothing delivered); alice's own address, with a display name or in
// another case, goes through, and a message without From: gets alice's.
func TestAbuseFromForged(t *testing.T) {
	t.Parallel()
	in := NewSQLite(t)
	in.MustRun(t, "domain", "add", "example.com")
	alice := addMember(t, in, "alice@example.com")
	bob := addMember(t, in, "bob@example.com")
	app := createAppPass(t, in, alice.Email, "Thunderbird")
	bobApp := createAppPass(t, in, bob.Email, "Thunderbird")
	srv := in.StartServer(t)

	const refusal = "5.7.1 The From: address must be your own address <alice@example.com>"
	cases := []struct {
		msg      string
		code     int
		text     string
		delivers string // a line the delivered copy holds
	}{
		{"From: Bob <bob@example.com>\r\nSubject: forged\r\n\r\nfrom bob, really\r\n", 550, refusal, ""},
		{"From: =?utf-8?q?Alice?= <alice@example.com>, bob@example.com\r\nSubject: two\r\n\r\nx\r\n", 550, refusal, ""},
		{"Subject: x\r\nnot a field\r\nFrom: bob@example.com\r\n\r\nx\r\n", 550, refusal, ""},
		{"From: Alice Liddell <alice@example.com>\r\nSubject: own\r\n\r\nx\r\n", 250, "", "Subject: own"},
		{"From: ALICE@Example.COM\r\nSubject: case\r\n\r\nx\r\n", 250, "", "Subject: case"},
		{"Subject: no author\r\n\r\nx\r\n", 250, "", "From: <alice@example.com>"},
	}
	host, port := splitAddr(srv.Addr("submission"))
	input := map[string]any{"host": host, "port": port, "src": nextSrc(), "user": alice.Email,
		"password": app.Password, "to": bob.Email}
	var msgs []string
	for _, c := range cases {
		msgs = append(msgs, c.msg)
	}
	input["messages"] = msgs
	var got [][]any
	runPythonScript(t, fromScript, input, &got)
	if len(got) != len(cases) {
		t.Fatalf("%d replies for %d messages", len(got), len(cases))
	}
	for i, c := range cases {
		if code := int(got[i][0].(float64)); code != c.code || got[i][1] != c.text {
			t.Errorf("message %d: got %v %q, want %d %q", i, code, got[i][1], c.code, c.text)
		}
	}

	// Bob's INBOX holds the accepted messages only (and Postern's own
	// notice of his new app password), as IMAP shows them.
	var res []struct {
		Typ  string `json:"typ"`
		Data []any  `json:"data"`
	}
	runPython(t, "imap", map[string]any{
		"host": host, "port": func() int { _, p := splitAddr(srv.Addr("imap")); return p }(),
		"src": nextSrc(), "tls": "starttls", "user": bob.Email, "password": bobApp.Password,
		"commands": [][]any{{"select", "INBOX"}, {"fetch", "1:*", "(BODY.PEEK[HEADER])"}},
	}, &res)
	var all bytes.Buffer
	enc := json.NewEncoder(&all)
	enc.SetEscapeHTML(false)
	enc.Encode(res)
	text := strings.ReplaceAll(all.String(), `\r\n`, "\n")
	if n := strings.Count(text, "Received: from"); n != 3 {
		t.Fatalf("bob got %d messages, want 3: %s", n, text)
	}
	for _, c := range cases {
		if c.delivers != "" && !strings.Contains(text, c.delivers) {
			t.Errorf("no %q in bob's INBOX: %s", c.delivers, text)
		}
	}
	if strings.Contains(text, "forged") || strings.Contains(text, "From: Bob") {
		t.Errorf("a forged message was delivered: %s", text)
	}
}

// searchScript logs in with Python's imaplib over STARTTLS, selects INBOX,
// runs each SEARCH and prints, for each, the reply's type and text (imaplib
// raises on BAD), and whether a NOOP after it still worked.
const searchScript = pyIMAPLogin + `
c.select("INBOX")
out = []
for keys in a["searches"]:
    try:
        typ, data = c.search(None, keys)
        r = [typ, data[0].decode()]
    except imaplib.IMAP4.error as e:
        r = ["error", str(e)]
    r.append(c.noop()[0])
    out.append(r)
c.logout()
json.dump(out, sys.stdout)
`

// TestAbuseSearchTooDeep: SEARCH keys nested 1000 deep (NOT, parentheses,
// OR chains) get BAD with a clear text from the real binary, never NO
// [SERVERBUG], and the session goes on; a search at the limit works.
func TestAbuseSearchTooDeep(t *testing.T) {
	t.Parallel()
	in := NewSQLite(t)
	in.MustRun(t, "domain", "add", "example.com")
	alice := addMember(t, in, "alice@example.com")
	app := createAppPass(t, in, alice.Email, "Thunderbird")
	srv := in.StartServer(t)

	const bad = "SEARCH command error: BAD [b'[CLIENTBUG] SEARCH keys nested too deeply: at most 100 levels of NOT, OR and parentheses']"
	cases := []struct{ keys, typ, text string }{
		{strings.Repeat("NOT ", 1000) + "ALL", "error", bad},
		{strings.Repeat("(", 1000) + "ALL" + strings.Repeat(")", 1000), "error", bad},
		{strings.Repeat("OR SEEN ", 1000) + "ALL", "error", bad},
		{strings.Repeat("OR ", 1000) + "ALL" + strings.Repeat(" SEEN", 1000), "error", bad},
		{strings.Repeat("NOT ", 100) + "ALL", "OK", ""},
		{"OR OR FROM alice SUBJECT hello TO alice", "OK", ""},
	}
	host, port := splitAddr(srv.Addr("imap"))
	var keys []string
	for _, c := range cases {
		keys = append(keys, c.keys)
	}
	var got [][]string
	runPythonScript(t, searchScript, map[string]any{"host": host, "port": port, "user": alice.Email,
		"password": app.Password, "searches": keys}, &got)
	if len(got) != len(cases) {
		t.Fatalf("%d results for %d searches", len(got), len(cases))
	}
	for i, c := range cases {
		if got[i][0] != c.typ || (c.text != "" && got[i][1] != c.text) || got[i][2] != "OK" {
			t.Errorf("search %d (%.40s…): got %q, want %s %q and NOOP OK", i, c.keys, got[i], c.typ, c.text)
		}
	}
	if strings.Contains(srv.SettledStderr(), "panic") {
		t.Errorf("server log: %s", srv.Stderr())
	}
}

// checkPrivate fails the test for every file in dir that is not 0600 (or
// stricter) and every folder that is not 0700, and returns the names seen.
func checkPrivate(t *testing.T, dir, when string) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		names = append(names, rel)
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if info.Mode().Perm() != want {
			t.Errorf("%s: %s is %v, want %v", when, rel, info.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestAbuseMiscFileModes: every file Postern creates in its data folder is
// 0600 and every folder 0700, under the usual umask 022: after serve's
// first start and some work (a member, an app password, logins, so that
// SQLite's -wal and -shm files exist), after it stops, after a restart, and
// after demo. Looser modes found at start are tightened, with a warning.
func TestAbuseMiscFileModes(t *testing.T) {
	// Not parallel: the umask is the whole test process's.
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)

	in := NewSQLite(t)
	in.Data = filepath.Join(in.Data, "data") // made by postern itself
	in.MustRun(t, "domain", "add", "example.com")
	alice := addMember(t, in, "alice@example.com")
	app := createAppPass(t, in, alice.Email, "Thunderbird")
	work := func(srv *Server) {
		t.Helper()
		for _, r := range pyLogins(t, []pyAttempt{
			newAttempt("imap-login", srv.Addr("imap"), alice.Email, app.Password, "starttls"),
			newAttempt("smtp", srv.Addr("submission"), alice.Email, app.Password, "starttls"),
		}) {
			if !r.OK {
				t.Fatalf("login: %s", r.Error)
			}
		}
	}

	srv := in.StartServer(t)
	work(srv)
	names := checkPrivate(t, in.Data, "running")
	for _, want := range []string{".", "postern.db", "postern.db-wal", "postern.db-shm", "postern.db-gen", "secret.key", "tls", "tls/cert.pem", "tls/key.pem"} {
		if !slices.Contains(names, want) {
			t.Errorf("no %s in the data folder (%q): the test no longer sees every file", want, names)
		}
	}
	srv.Stop(t)
	checkPrivate(t, in.Data, "stopped")

	srv = in.StartServer(t)
	work(srv)
	checkPrivate(t, in.Data, "restarted")
	srv.Stop(t)

	// Loosened by hand (or restored from a backup): tightened at the next start.
	for name, mode := range map[string]fs.FileMode{".": 0o755, "postern.db": 0o644, "tls/key.pem": 0o644, "secret.key": 0o666} {
		if err := os.Chmod(filepath.Join(in.Data, name), mode); err != nil {
			t.Fatal(err)
		}
	}
	srv = in.StartServer(t)
	work(srv)
	checkPrivate(t, in.Data, "loosened, restarted")
	if n := strings.Count(srv.SettledStderr(), "tightened the mode of a file in the data folder"); n != 4 {
		t.Errorf("%d warnings about tightened modes, want 4:\n%s", n, srv.Stderr())
	}
	srv.Stop(t)

	demo := NewSQLite(t)
	demo.Data = filepath.Join(demo.Data, "demo")
	d := demo.Start(t, "demo")
	d.Stop(t)
	if names := checkPrivate(t, demo.Data, "demo"); !slices.Contains(names, "demo-passwords.txt") {
		t.Errorf("no demo-passwords.txt in %q", names)
	}
}

// TestAbuseAppNames: with the real CLI on both engines, app names made of
// invisible characters are refused, and so are names that look like one the
// member already has (Cyrillic Т, a trailing Hangul filler, mathematical
// bold), with a message naming the existing one; another member may use it.
func TestAbuseAppNames(t *testing.T) {
	Engines(t, func(t *testing.T, in *Instance) {
		t.Parallel()
		in.MustRun(t, "domain", "add", "example.com")
		addMember(t, in, "alice@example.com")
		addMember(t, in, "bob@example.com")
		const blank = "postern: The app name needs at least one visible letter, digit or symbol.\n"
		for _, name := range []string{"\u3164", "\u3164\u3164", "\u115f", "\uffa0", "\u2800", "\ufe0f", "\u2800\u3164"} {
			r := in.Run(t, "apppass", "create", "alice@example.com", "--name", name)
			if r.Code != 1 || r.Stderr != blank {
				t.Errorf("--name %+q: %s", name, r)
			}
		}
		createAppPass(t, in, "alice@example.com", "Thunderbird")
		for _, name := range []string{"\u0422hunderbird", "Thunderbird\u3164", "\U0001d413hunderbird", "THUNDERB\u0399RD"} {
			r := in.Run(t, "apppass", "create", "alice@example.com", "--name", name)
			want := "postern: You already have a third-party app password named “Thunderbird”, which looks the same as “" + name + "”. Choose a name that looks different.\n"
			if r.Code != 1 || r.Stderr != want {
				t.Errorf("--name %+q: %s\nwant stderr %q", name, r, want)
			}
		}
		var list []struct{ Name string }
		in.RunJSON(t, &list, "apppass", "list", "alice@example.com")
		if len(list) != 1 || list[0].Name != "Thunderbird" {
			t.Errorf("alice's app passwords: %+v", list)
		}
		createAppPass(t, in, "bob@example.com", "\u0422hunderbird") // another member's names do not count
		createAppPass(t, in, "alice@example.com", "Thunderbird 2")
	})
}
