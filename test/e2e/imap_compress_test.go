package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"
)

// TestIMAPCompressImapflow runs test/imapflow/compress.mjs: imapflow, a
// real client that asks for COMPRESS=DEFLATE (RFC 4978) when offered, over
// STARTTLS against the binary's IMAP port. It logs in with an app password,
// lists, appends a 150 KiB message, fetches it back byte for byte, idles
// until a second (also compressed) connection's APPEND wakes it, fetches
// the envelopes and logs out, all compressed; on connecting it sent ID
// (RFC 2971), as iOS Mail does, and got the server's name.
//
// It never skips: CI installs the npm package (scripts/test-deps.sh); when
// node_modules is missing it runs npm ci itself.
func TestIMAPCompressImapflow(t *testing.T) {
	dir := imapflowDir(t)
	Engines(t, func(t *testing.T, in *Instance) {
		in.MustRun(t, "domain", "add", "example.com")
		m := addMember(t, in, "carol@example.com")
		p := createAppPass(t, in, m.Email, "imapflow")
		srv := in.StartServer(t)
		host, port := splitAddr(srv.Addr("imap"))
		cfg, _ := json.Marshal(map[string]any{"host": host, "port": port, "user": m.Email, "pass": p.Password})
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "node", "compress.mjs", string(cfg))
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("compress.mjs: %v\n%s\n%s\nserver stderr:\n%s", err, out, stderr, srv.Stderr())
		}
		var got struct {
			Compressed, OtherCompressed, Secure, SourceMatches bool
			Mailboxes, Flags, Subjects                         []string
			Subject                                            string
			AppendUID                                          int `json:"appendUid"`
			ExistsCount                                        int
			ServerInfo                                         map[string]string
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("compress.mjs output %q: %v", out, err)
		}
		if !got.Compressed || !got.OtherCompressed || !got.Secure {
			t.Fatalf("imapflow did not run COMPRESS=DEFLATE over TLS: %s", out)
		}
		// ID: the server's name only, no version for a scanner to match.
		if !reflect.DeepEqual(got.ServerInfo, map[string]string{"name": "Postern"}) {
			t.Errorf("ID: imapflow's serverInfo = %v, want the name only", got.ServerInfo)
		}
		if !slices.Contains(got.Mailboxes, "INBOX") {
			t.Errorf("LIST: %q", got.Mailboxes)
		}
		if got.AppendUID == 0 || got.Subject != "first" || !got.SourceMatches || !reflect.DeepEqual(got.Flags, []string{`\Seen`}) {
			t.Errorf("APPEND then FETCH: %s", out)
		}
		// INBOX also holds the notice of the app password's creation.
		n := len(got.Subjects)
		if n < 2 || got.ExistsCount != n || !reflect.DeepEqual(got.Subjects[n-2:], []string{"first", "second"}) {
			t.Errorf("IDLE then FETCH: %s", out)
		}
	})
}

// imapflowDir returns test/imapflow with its npm packages installed.
func imapflowDir(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "test", "imapflow")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "imapflow")); err != nil {
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in test/imapflow (run scripts/test-deps.sh): %v\n%s", err, out)
		}
	}
	return dir
}

// TestIMAPCompressOff: postern serve --imap-compress off withdraws
// COMPRESS=DEFLATE. Python's imaplib logs in over STARTTLS and finds it
// neither in the capabilities nor accepted; the default server offers it.
func TestIMAPCompressOff(t *testing.T) {
	Engines(t, func(t *testing.T, in *Instance) {
		in.MustRun(t, "domain", "add", "example.com")
		m := addMember(t, in, "dave@example.com")
		p := createAppPass(t, in, m.Email, "imaplib")
		const script = `
import imaplib, json, ssl, sys
imaplib.Commands["COMPRESS"] = ("AUTH",)
cfg = json.load(sys.stdin)
c = imaplib.IMAP4(cfg["host"], cfg["port"])
c.starttls(ssl_context=ssl._create_unverified_context())
c.login(cfg["user"], cfg["pass"])
caps = [x.decode() for x in c.capability()[1][0].split()]
try:
    typ, data = c._simple_command("COMPRESS", "DEFLATE")
    reply = typ
except c.error as e:
    reply = "BAD"
if reply == "OK":
    c.shutdown()  # every octet from here on would be compressed
else:
    c.noop()
    c.logout()
print(json.dumps({"caps": caps, "reply": reply}))
`
		for _, tc := range []struct {
			args []string
			on   bool
		}{{nil, true}, {[]string{"--imap-compress", "off"}, false}} {
			srv := in.StartServer(t, tc.args...)
			host, port := splitAddr(srv.Addr("imap"))
			var got struct {
				Caps  []string
				Reply string
			}
			runPythonScript(t, script, map[string]any{"host": host, "port": port, "user": m.Email, "pass": p.Password}, &got)
			srv.Stop(t)
			if offered := slices.Contains(got.Caps, "COMPRESS=DEFLATE"); offered != tc.on || (got.Reply == "OK") != tc.on {
				t.Errorf("%v: capabilities %q, COMPRESS DEFLATE answered %s", tc.args, got.Caps, got.Reply)
			}
		}
	})
}
