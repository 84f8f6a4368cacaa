package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/internal/web"
)

// TestWebBrowserWalk runs test/browser/walk.mjs (playwright-core driving the
// system's /usr/bin/chromium) against the web listener of the real binary,
// started as "postern demo" with two more members: the seed's whole path by
// clicking — sign in (after a wrong password: focus on the password field),
// profile picture, Security (with "Where you're signed in", and the time
// zone the browser sent), turn the setting on (optional domain), create
// "Thunderbird" (after a blank name: the error at the field), copy it,
// download the Apple profile that carries it, log in over the binary's IMAP
// port with python3 imaplib, reload the page (no form re-sent, no password
// shown again), read the message about it (the browser named for people),
// delete it, and the same IMAP login fails. Desktop and phone widths, English and Japanese, an
// optional and an enforced domain; screenshots of every step go to
// test/e2e/screenshots.
//
// It never skips: CI installs chromium and the npm package
// (scripts/test-deps.sh); when node_modules is missing it runs npm ci itself.
func TestWebBrowserWalk(t *testing.T) {
	root, dir := browserDir(t)

	// The demo's members (alice on the enforced example.com, bob with the
	// setting off on the optional legacy.example), and one Japanese member of
	// each domain, added with the CLI before the demo starts.
	in := NewSQLite(t)
	in.MustRun(t, "domain", "add", "legacy.example", "--created", "2020-04-01")
	in.MustRun(t, "domain", "add", "example.com")
	const jaPassword = "ひらけごま and a long one"
	for _, u := range [][2]string{{"hanako@legacy.example", "佐藤 花子"}, {"taro@example.com", "山田 太郎"}} {
		if r := in.RunStdin(t, jaPassword+"\n", "user", "add", u[0], "--name", u[1], "--password-stdin"); r.Code != 0 {
			t.Fatalf("user add %s: %s", u[0], r)
		}
	}
	srv := in.Start(t, "demo")
	demo := demoPasswords(t, filepath.Join(in.Data, "demo-passwords.txt"))

	type run struct {
		Tag      string            `json:"tag"`
		Email    string            `json:"email"`
		Name     string            `json:"name"`
		Password string            `json:"password"`
		Lang     string            `json:"lang"`
		Width    int               `json:"width"`
		Height   int               `json:"height"`
		Timezone string            `json:"timezone"`
		Enforced bool              `json:"enforced"`
		Text     map[string]string `json:"text"`
	}
	runs := []run{
		{Tag: "en-desktop", Email: "bob@legacy.example", Name: "Bob Legacy", Password: demo["bob@legacy.example"], Lang: "en", Width: 1280, Height: 800, Timezone: "Europe/London"},
		{Tag: "ja-phone", Email: "hanako@legacy.example", Name: "佐藤 花子", Password: jaPassword, Lang: "ja", Width: 390, Height: 844, Timezone: "Asia/Tokyo"},
		{Tag: "en-phone-enforced", Email: "alice@example.com", Name: "Alice Example", Password: demo["alice@example.com"], Lang: "en", Width: 390, Height: 844, Timezone: "America/New_York", Enforced: true},
		{Tag: "ja-desktop-enforced", Email: "taro@example.com", Name: "山田 太郎", Password: jaPassword, Lang: "ja", Width: 1280, Height: 800, Timezone: "Asia/Tokyo", Enforced: true},
	}
	for i := range runs {
		if runs[i].Password == "" {
			t.Fatalf("no demo password for %s", runs[i].Email)
		}
		runs[i].Text = walkText(runs[i].Lang)
		runs[i].Text["zoneNote"] = web.Text(runs[i].Lang, "timezone", runs[i].Timezone)
		runs[i].Text["browserName"] = web.Text(runs[i].Lang, "sessions.on", "Chrome", "Linux")
	}
	out := filepath.Join(root, "test", "e2e", "screenshots")
	cfg, _ := json.Marshal(map[string]any{"baseURL": srv.URL(""), "outDir": out, "runs": runs, "checkProfile": true})

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute) // a watchdog: four walks on a loaded machine
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "walk.mjs", string(cfg))
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	imap := srv.Addr("imap")
	passwords := map[string]string{}
	email := map[string]string{}
	for _, r := range runs {
		email[r.Tag] = r.Email
	}
	done := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		var ev struct {
			Event, Tag, Email, Password, Clipboard string
			Profile                                bool
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Logf("walk.mjs: %s", sc.Text())
			continue
		}
		switch ev.Event {
		case "created":
			passwords[ev.Tag] = ev.Password
			if !ev.Profile || ev.Clipboard != ev.Password {
				t.Errorf("%s: profile %v, clipboard matches %v", ev.Tag, ev.Profile, ev.Clipboard == ev.Password)
			}
			got := webIMAPLogin(t, imap, ev.Email, ev.Password)
			t.Logf("%s: IMAP login with the created password: %.120s", ev.Tag, got)
			if !strings.HasPrefix(got, "OK") || !strings.Contains(got, "Thunderbird") {
				t.Errorf("%s: IMAP login with the created password, notification in INBOX: %s", ev.Tag, got)
			}
			io.WriteString(stdin, "continue\n")
		case "deleted":
			got := webIMAPLogin(t, imap, email[ev.Tag], passwords[ev.Tag])
			t.Logf("%s: IMAP login after Delete: %s", ev.Tag, got)
			if !strings.HasPrefix(got, "NO") {
				t.Errorf("%s: IMAP login after Delete: %s", ev.Tag, got)
			}
			io.WriteString(stdin, "continue\n")
		case "done":
			done = true
			stdin.Close()
		}
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil || !done {
		t.Fatalf("walk.mjs: %v\n%s\nserver stderr:\n%s", err, stderr.String(), srv.Stderr())
	}
	if len(passwords) != len(runs) {
		t.Fatalf("passwords created: %d of %d", len(passwords), len(runs))
	}
	for _, pw := range passwords {
		if strings.Contains(srv.Stdout()+srv.SettledStderr(), pw) {
			t.Fatal("an app password reached the server's output")
		}
	}
}

// browserDir returns the repository's root and test/browser, with its npm
// packages installed (npm ci when one is missing).
func browserDir(t *testing.T) (root, dir string) {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir = filepath.Join(root, "test", "browser")
	for _, pkg := range []string{"playwright-core", "axe-core"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg)); err == nil {
			continue
		}
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in test/browser (run scripts/test-deps.sh): %v\n%s", err, out)
		}
		break
	}
	return root, dir
}

// walkText is the UI's strings in language l that walk.mjs finds elements
// by, taken from the web package's catalog so that the test follows the UI.
func walkText(l string) map[string]string {
	m := map[string]string{}
	for k, key := range map[string]string{"email": "signin.email", "password": "signin.password", "signin": "signin.submit",
		"security": "nav.security", "messages": "nav.messages", "signout": "nav.signout", "setting": "setting.title",
		"logout": "setting.confirm.logout", "turnOn": "setting.turnon", "enforced": "setting.enforced",
		"createEntry": "apps.entry", "createNew": "apps.create", "appName": "new.name", "createPassword": "new.submit",
		"copy": "copy", "copied": "copied", "delete": "delete", "thisSession": "sessions.this", "sessionSignOut": "sessions.signout",
		"signinError": "err.signin", "deleteHint": "apps.deletehint", "createdGone": "created.gone.title"} {
		m[k] = web.Text(l, key)
	}
	return m
}

// demoPasswords reads the main passwords that postern demo keeps in its data folder.
func demoPasswords(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if e, pw, ok := strings.Cut(strings.TrimSpace(line), " "); ok && !strings.HasPrefix(e, "#") {
			out[e] = pw
		}
	}
	return out
}

// webIMAPLogin logs in to addr with python3's imaplib (plaintext on
// loopback, as the binary allows by default) and lists the subjects in
// INBOX: "OK <subjects>" or "NO <error>".
func webIMAPLogin(t *testing.T, addr, user, pw string) string {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	script := `
import imaplib, sys
host, port, user, pw = sys.argv[1:5]
m = imaplib.IMAP4(host, int(port))
try:
    m.login(user, pw)
except imaplib.IMAP4.error as e:
    print("NO", e)
    sys.exit(0)
m.select("INBOX", readonly=True)
typ, data = m.search(None, "ALL")
subjects = []
for num in data[0].split():
    typ, msg = m.fetch(num, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    subjects.append(msg[0][1].decode().strip())
print("OK", " | ".join(subjects))
m.logout()
`
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "python3", "-c", script, host, port, user, pw).CombinedOutput()
	if err != nil {
		t.Fatalf("python3 imaplib: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}
