package web

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/internal/auth"
	"github.com/postern/postern/internal/events"
	"github.com/postern/postern/internal/imapserver"
	"github.com/postern/postern/internal/tlsconf"
)

// TestBrowserWalk runs test/browser/walk.mjs (playwright-core driving the
// system's /usr/bin/chromium) against this package's handler over a real
// SQLite store, with the real IMAP server of internal/imapserver beside it:
// the seed's whole path by clicking, on desktop and phone widths, in English
// and Japanese, on an optional and an enforced domain. The app password the
// browser reads from the page and the clipboard must log in over IMAP
// (python3 imaplib) and find the notification in INBOX; after Delete, the
// same login must fail. Screenshots go to test/e2e/screenshots.
//
// It never skips: CI installs chromium and the npm package
// (scripts/test-deps.sh); when node_modules is missing it runs npm ci itself.
func TestBrowserWalk(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "test", "browser")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core")); err != nil {
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in test/browser (run scripts/test-deps.sh): %v\n%s", err, out)
		}
	}

	e := newEnvClock(t, false, true)
	imapAddr := startIMAP(t, e)

	type member struct{ email, name string }
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
	text := func(l string) map[string]string {
		m := map[string]string{}
		for k, key := range map[string]string{"email": "signin.email", "password": "signin.password", "signin": "signin.submit",
			"security": "nav.security", "messages": "nav.messages", "signout": "nav.signout", "setting": "setting.title",
			"logout": "setting.confirm.logout", "turnOn": "setting.turnon", "enforced": "setting.enforced",
			"createEntry": "apps.entry", "createNew": "apps.create", "appName": "new.name", "createPassword": "new.submit",
			"copy": "copy", "copied": "copied", "delete": "delete"} {
			m[k] = tr(l, key)
		}
		return m
	}
	runs := []run{
		{Tag: "en-desktop", Email: "bob@old.example", Name: "Bob Builder", Lang: "en", Width: 1280, Height: 800, Timezone: "Europe/London"},
		{Tag: "ja-phone", Email: "hanako@old.example", Name: "佐藤 花子", Lang: "ja", Width: 390, Height: 844, Timezone: "Asia/Tokyo"},
		{Tag: "en-phone-enforced", Email: "alice@new.example", Name: "Alice Liddell", Lang: "en", Width: 390, Height: 844, Timezone: "America/New_York", Enforced: true},
		{Tag: "ja-desktop-enforced", Email: "taro@new.example", Name: "山田 太郎", Lang: "ja", Width: 1280, Height: 800, Timezone: "Asia/Tokyo", Enforced: true},
	}
	for i := range runs {
		e.member(runs[i].Email, runs[i].Name)
		runs[i].Password = testPassword
		runs[i].Text = text(runs[i].Lang)
	}
	out := filepath.Join(root, "test", "e2e", "screenshots")
	cfg, _ := json.Marshal(map[string]any{"baseURL": e.ts.URL, "outDir": out, "runs": runs})

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
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
	passwords := map[string]string{}
	done := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		var ev struct{ Event, Tag, Email, Password, Clipboard string }
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Logf("walk.mjs: %s", sc.Text())
			continue
		}
		switch ev.Event {
		case "created":
			t.Logf("%s: created; logging in over IMAP", ev.Tag)
			passwords[ev.Tag] = ev.Password
			if got := imapLogin(t, imapAddr, ev.Email, ev.Password); !strings.HasPrefix(got, "OK") || !strings.Contains(got, "Thunderbird") {
				t.Errorf("%s: IMAP login with the created password: %s", ev.Tag, got)
			}
			io.WriteString(stdin, "continue\n")
		case "deleted":
			var email string
			for _, r := range runs {
				if r.Tag == ev.Tag {
					email = r.Email
				}
			}
			if got := imapLogin(t, imapAddr, email, passwords[ev.Tag]); !strings.HasPrefix(got, "NO") {
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
		t.Fatalf("walk.mjs: %v\n%s", err, stderr.String())
	}
	if len(passwords) != len(runs) {
		t.Fatalf("passwords created: %d of %d", len(passwords), len(runs))
	}
}

// startIMAP serves IMAP on 127.0.0.1 over the test's store, through the
// auth gateway that every protocol uses.
func startIMAP(t *testing.T, e *env) string {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	bus := events.NewBus()
	gw, err := auth.New(auth.Config{Service: e.svc, Store: e.db, Bus: bus, Key: []byte("0123456789abcdef0123456789abcdef"), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Close() })
	srv := imapserver.New(imapserver.Config{Auth: gw, Mail: e.db.Mail(), Bus: bus, Plaintext: tlsconf.PlaintextLoopback, Log: log})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln, false)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// imapLogin logs in with python3's imaplib and lists the subjects in INBOX:
// "OK <subjects>" or "NO <error>".
func imapLogin(t *testing.T, addr, user, pw string) string {
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
