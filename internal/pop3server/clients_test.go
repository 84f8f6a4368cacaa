package pop3server

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/internal/tlsconf"
)

// poplibScript drives the server with Python's poplib, a third-party client.
// Modes: "user" (USER/PASS), "plain" (AUTH PLAIN through _shortcmd, as
// poplib has no AUTH helper), "stls" (STLS with an unverified context, then
// USER/PASS), "drop" (like user but the socket is closed instead of QUIT).
const poplibScript = `
import base64, json, poplib, ssl, sys
mode, port, user, pw = sys.argv[1:5]
p = poplib.POP3("127.0.0.1", int(port), timeout=30)
out = {"welcome": p.getwelcome().decode()}
if mode == "stls":
    out["stls"] = p.stls(context=ssl._create_unverified_context()).decode()
if mode == "plain":
    msg = base64.b64encode(("\0" + user + "\0" + pw).encode()).decode()
    out["auth"] = p._shortcmd("AUTH PLAIN " + msg).decode()
else:
    p.user(user)
    out["auth"] = p.pass_(pw).decode()
out["capa"] = sorted(p.capa().keys())
out["stat"] = list(p.stat())
out["list"] = [l.decode() for l in p.list()[1]]
out["retr"] = [l.decode() for l in p.retr(1)[1]]
out["top"] = [l.decode() for l in p.top(2, 1)[1]]
out["uidl"] = [l.decode() for l in p.uidl()[1]]
out["dele"] = p.dele(1).decode()
if mode == "drop":
    p.sock.close()
else:
    out["quit"] = p.quit().decode()
print(json.dumps(out))
`

type poplibResult struct {
	Welcome, STLS, Auth, Dele, Quit string
	Capa                            []string
	Stat                            []int
	List, Retr, Top, UIDL           []string
}

func runPoplib(t *testing.T, addr, mode, user, pass string) poplibResult {
	t.Helper()
	script := filepath.Join(t.TempDir(), "pop.py")
	if err := os.WriteFile(script, []byte(poplibScript), 0o600); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "/usr/bin/python3", script, mode, port, user, pass).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("poplib %s: %v\n%s", mode, err, stderr)
	}
	var r poplibResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("poplib output %q: %v", out, err)
	}
	return r
}

func TestPoplib(t *testing.T) {
	e := newEnv(t, []string{msg1, msg2})
	r := runPoplib(t, e.addr, "user", testUser, testPass)
	if r.Welcome != "+OK pop.example.com POP3 server ready." || !strings.HasPrefix(r.Auth, "+OK Logged in") {
		t.Fatalf("welcome %q, auth %q", r.Welcome, r.Auth)
	}
	if want := []string{"AUTH-RESP-CODE", "IMPLEMENTATION", "PIPELINING", "RESP-CODES", "TOP", "UIDL"}; !reflect.DeepEqual(r.Capa, want) {
		t.Errorf("capa %q", r.Capa)
	}
	if want := []int{2, len(msg1) + len(msg2)}; !reflect.DeepEqual(r.Stat, want) {
		t.Errorf("stat %v, want %v", r.Stat, want)
	}
	if want := []string{"1 " + itoa(len(msg1)), "2 " + itoa(len(msg2))}; !reflect.DeepEqual(r.List, want) {
		t.Errorf("list %q", r.List)
	}
	// poplib un-stuffs the dots: the message comes back as stored.
	if got := strings.Join(r.Retr, "\r\n") + "\r\n"; got != msg1 {
		t.Errorf("retr %q, want %q", got, msg1)
	}
	if want := []string{"From: eve@example.com", "Subject: two", "", "body line 1"}; !reflect.DeepEqual(r.Top, want) {
		t.Errorf("top %q", r.Top)
	}
	if len(r.UIDL) != 2 || !strings.HasPrefix(r.Dele, "+OK") || !strings.HasPrefix(r.Quit, "+OK") {
		t.Errorf("uidl %q dele %q quit %q", r.UIDL, r.Dele, r.Quit)
	}
	if got := e.messages(t); len(got) != 1 || got[0] != msg2 {
		t.Fatalf("after QUIT the INBOX holds %q, want only message 2", got)
	}

	// A client that drops the connection after DELE deletes nothing.
	e.deliver(t, msg1)
	before := e.messages(t)
	runPoplib(t, e.addr, "drop", testUser, testPass)
	waitFor(t, "sessions end", func() bool { tr, d := e.auth.counts(); return tr == d })
	if got := e.messages(t); !reflect.DeepEqual(got, before) {
		t.Fatalf("dropped session changed INBOX: %d messages, want %d", len(got), len(before))
	}
}

func TestPoplibAuthPlain(t *testing.T) {
	e := newEnv(t, []string{msg1, msg2})
	r := runPoplib(t, e.addr, "plain", testUser, testPass)
	if !strings.HasPrefix(r.Auth, "+OK Logged in") || r.Stat[0] != 2 {
		t.Fatalf("auth %q stat %v", r.Auth, r.Stat)
	}
	if a := e.auth.lastAttempt(); a.Mechanism != "PLAIN" {
		t.Fatalf("mechanism %q", a.Mechanism)
	}
}

func TestPoplibSTLS(t *testing.T) {
	// Plaintext never: USER/PASS can only work because STLS happened.
	e := newEnv(t, []string{msg1, msg2}, withPlaintext(tlsconf.PlaintextNever))
	r := runPoplib(t, e.addr, "stls", testUser, testPass)
	if r.STLS != "+OK Begin TLS negotiation." || !strings.HasPrefix(r.Auth, "+OK Logged in") {
		t.Fatalf("stls %q auth %q", r.STLS, r.Auth)
	}
	if a := e.auth.lastAttempt(); !a.TLS {
		t.Fatalf("attempt not marked TLS: %+v", a)
	}
	if got := e.messages(t); len(got) != 1 {
		t.Fatalf("%d messages after QUIT, want 1", len(got))
	}
}

func TestCurl(t *testing.T) {
	e := newEnv(t, []string{msg1, msg2})
	curl := func(args ...string) (string, int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "curl", append([]string{"-s", "--max-time", "30"}, args...)...).Output()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		} else if err != nil {
			t.Fatalf("curl: %v", err)
		}
		return string(out), 0
	}
	url := "pop3://" + e.addr
	// curl un-stuffs the dots (since 7.x it handles the POP3 EOB itself).
	if out, code := curl(url+"/1", "-u", testUser+":"+testPass); code != 0 || out != msg1 {
		t.Fatalf("curl RETR 1: exit %d, %q", code, out)
	}
	if out, code := curl(url+"/", "-u", testUser+":"+testPass); code != 0 || out != "1 "+itoa(len(msg1))+"\r\n2 "+itoa(len(msg2))+"\r\n" {
		t.Fatalf("curl LIST: exit %d, %q", code, out)
	}
	// STLS required, self-signed certificate accepted with -k.
	if out, code := curl(url+"/2", "--ssl-reqd", "-k", "-u", testUser+":"+testPass); code != 0 || !strings.HasPrefix(out, "From: eve@example.com\r\n") {
		t.Fatalf("curl STLS RETR 2: exit %d, %q", code, out)
	}
	// SASL PLAIN through curl's login options.
	if out, code := curl(url+"/1", "--login-options", "AUTH=PLAIN", "-u", testUser+":"+testPass); code != 0 || out != msg1 {
		t.Fatalf("curl AUTH=PLAIN: exit %d, %q", code, out)
	}
	if a := e.auth.lastAttempt(); a.Mechanism != "PLAIN" {
		t.Fatalf("mechanism %q", a.Mechanism)
	}
	// A wrong password: curl's "login denied".
	if _, code := curl(url+"/1", "-u", testUser+":wrong"); code != 67 {
		t.Fatalf("curl wrong password: exit %d, want 67", code)
	}
}

func (e *testEnv) deliver(t testing.TB, body string) {
	t.Helper()
	if err := e.db.Mail().Deliver(context.Background(), e.inbox, []byte(body)); err != nil {
		t.Fatal(err)
	}
}
