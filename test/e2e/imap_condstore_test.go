package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// condstorePy is python imaplib speaking CONDSTORE and QRESYNC with raw
// commands. Input {host, port, user, password, step, ...}; steps:
//
//	setup:  appends four messages, ENABLE QRESYNC, SELECT: prints
//	        {uids, uidvalidity, highest}
//	change: another session without CONDSTORE flags the second message,
//	        expunges the third and moves the fourth to Trash
//	resync: ENABLE QRESYNC, SELECT INBOX (QRESYNC (uidvalidity highest)),
//	        then UID FETCH 1:* (FLAGS) (CHANGEDSINCE highest VANISHED):
//	        prints the untagged VANISHED and FETCH of each
const condstorePy = `
import imaplib, json, re, ssl, sys
a = json.load(sys.stdin)
c = imaplib.IMAP4(a["host"], a["port"])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
c.starttls(ctx)
c.login(a["user"], a["password"])
def ok(typ, data):
    if typ != "OK":
        raise SystemExit("%s %r" % (typ, data))
    return data
def untagged(name):
    return [x.decode() if isinstance(x, bytes) else repr(x) for x in c.untagged_responses.pop(name, [])]
out = {}
if a["step"] == "setup":
    for i in range(1, 5):
        ok(*c.append("INBOX", None, None, ("Subject: message %d\r\n\r\nbody %d\r\n" % (i, i)).encode()))
    ok(*c._simple_command("ENABLE", "QRESYNC"))
    ok(*c.select("INBOX"))
    out["uidvalidity"] = int(c.untagged_responses["UIDVALIDITY"][0])
    m = [x for x in c.untagged_responses.get("OK", []) if x.startswith(b"[HIGHESTMODSEQ ")]
    out["highest"] = int(m[0].split()[1].rstrip(b"]"))
    data = ok(*c.uid("FETCH", "1:*", "(UID)"))
    out["uids"] = [int(re.search(rb"UID (\d+)", d).group(1)) for d in data]
elif a["step"] == "change":
    ok(*c.select("INBOX"))
    u = a["uids"]
    ok(*c.uid("STORE", str(u[1]), "+FLAGS", "(\\Flagged)"))
    ok(*c.uid("STORE", str(u[2]), "+FLAGS", "(\\Deleted)"))
    ok(*c.expunge())
    ok(*c._simple_command("UID", "MOVE", str(u[3]), "Trash"))
elif a["step"] == "resync":
    ok(*c._simple_command("ENABLE", "QRESYNC"))
    c.untagged_responses.clear()
    ok(*c._simple_command("SELECT", "INBOX (QRESYNC (%d %d))" % (a["uidvalidity"], a["highest"])))
    c.state = "SELECTED"
    out["select"] = {"VANISHED": untagged("VANISHED"), "FETCH": untagged("FETCH")}
    ok(*c._simple_command("UID", "FETCH", "1:*", "(FLAGS)", "(CHANGEDSINCE %d VANISHED)" % a["highest"]))
    out["fetch"] = {"VANISHED": untagged("VANISHED"), "FETCH": untagged("FETCH")}
c.logout()
json.dump(out, sys.stdout)
`

// TestIMAPCondStore: real clients resynchronise a mailbox by CONDSTORE and
// QRESYNC (RFC 7162) after another session changed it — imapflow (npm,
// which enables both and uses SELECT (QRESYNC …), CHANGEDSINCE, VANISHED
// and UNCHANGEDSINCE) and python imaplib with raw commands — and see
// exactly the flags changed and the UIDs expunged or moved away.
func TestIMAPCondStore(t *testing.T) {
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
	Engines(t, func(t *testing.T, in *Instance) {
		t.Parallel()
		testIMAPCondStore(t, in, dir)
	})
}

func testIMAPCondStore(t *testing.T, in *Instance, dir string) {
	in.MustRun(t, "domain", "add", "example.com")
	alice := addMember(t, in, "alice@example.com")
	pass := createAppPass(t, in, alice.Email, "Phone").Password
	srv := in.StartServer(t)
	host, port := splitAddr(srv.Addr("imap"))
	py := func(step string, extra map[string]any) map[string]any {
		t.Helper()
		input := map[string]any{"host": host, "port": port, "user": alice.Email, "password": pass, "step": step}
		for k, v := range extra {
			input[k] = v
		}
		var out map[string]any
		runPythonScript(t, condstorePy, input, &out)
		return out
	}
	node := func(mode string, extra map[string]any, out any) {
		t.Helper()
		cfg := map[string]any{"host": host, "port": port, "user": alice.Email, "pass": pass, "mode": mode}
		for k, v := range extra {
			cfg[k] = v
		}
		b, _ := json.Marshal(cfg)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "node", "resync.mjs", string(b))
		cmd.Dir = dir
		var stderr strings.Builder
		cmd.Stderr = &stderr
		stdout, err := cmd.Output()
		if err != nil {
			t.Fatalf("imapflow %s: %v\n%s", mode, err, stderr.String())
		}
		if err := json.Unmarshal(stdout, out); err != nil {
			t.Fatalf("imapflow %s: %v\n%s", mode, err, stdout)
		}
	}

	setup := py("setup", nil)
	var uids []int
	for _, u := range setup["uids"].([]any) {
		uids = append(uids, int(u.(float64)))
	}
	validity, highest := int64(setup["uidvalidity"].(float64)), int64(setup["highest"].(float64))
	if len(uids) < 4 {
		t.Fatalf("setup: %v", setup)
	}
	uids = uids[len(uids)-4:] // the four appended (INBOX may hold a notification first)

	type msg struct {
		UID    int      `json:"uid"`
		Flags  []string `json:"flags"`
		ModSeq string   `json:"modseq"`
	}
	var snap struct {
		Enabled       []string `json:"enabled"`
		UIDValidity   string   `json:"uidValidity"`
		HighestModseq string   `json:"highestModseq"`
		Messages      []msg    `json:"messages"`
	}
	node("snapshot", nil, &snap)
	if !slices.Contains(snap.Enabled, "CONDSTORE") || !slices.Contains(snap.Enabled, "QRESYNC") {
		t.Fatalf("imapflow enabled %v", snap.Enabled)
	}
	if snap.UIDValidity != fmt.Sprint(validity) || snap.HighestModseq != fmt.Sprint(highest) {
		t.Fatalf("imapflow sees UIDVALIDITY %s HIGHESTMODSEQ %s, imaplib %d %d", snap.UIDValidity, snap.HighestModseq, validity, highest)
	}
	for _, m := range snap.Messages {
		if m.ModSeq == "" || m.ModSeq == "0" {
			t.Fatalf("imapflow: message without MODSEQ: %+v", snap.Messages)
		}
	}

	py("change", map[string]any{"uids": uids})

	// imapflow resynchronises from its snapshot.
	type expunge struct {
		UID      int  `json:"uid"`
		Vanished bool `json:"vanished"`
		Earlier  bool `json:"earlier"`
	}
	var rs struct {
		Enabled        []string  `json:"enabled"`
		HighestModseq  string    `json:"highestModseq"`
		QResync        bool      `json:"qresync"`
		SelectFlags    []msg     `json:"selectFlags"`
		SelectVanished []expunge `json:"selectVanished"`
		Fetched        []msg     `json:"fetched"`
		FetchVanished  []expunge `json:"fetchVanished"`
		AfterStore     []msg     `json:"afterStore"`
		LiveVanished   []expunge `json:"liveVanished"`
	}
	node("resync", map[string]any{"uidValidity": snap.UIDValidity, "highestModseq": snap.HighestModseq,
		"changedUID": uids[1], "freshUID": uids[0]}, &rs)
	if !rs.QResync {
		t.Errorf("imapflow did not take the SELECT as a QRESYNC resync: %+v", rs)
	}
	earlier := []expunge{{uids[2], true, true}, {uids[3], true, true}}
	gotVanished := func(what string, got []expunge, want []expunge) {
		t.Helper()
		slices.SortFunc(got, func(a, b expunge) int { return a.UID - b.UID })
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: %+v, want %+v", what, got, want)
		}
	}
	gotVanished("imapflow SELECT (QRESYNC) vanished", rs.SelectVanished, earlier)
	gotVanished("imapflow UID FETCH (CHANGEDSINCE VANISHED) vanished", rs.FetchVanished, earlier)
	for what, got := range map[string][]msg{"SELECT (QRESYNC)": rs.SelectFlags, "UID FETCH (CHANGEDSINCE)": rs.Fetched} {
		if len(got) != 1 || got[0].UID != uids[1] || !slices.Equal(got[0].Flags, []string{`\Flagged`}) || got[0].ModSeq == "" {
			t.Errorf("imapflow %s changes: %+v, want only UID %d with \\Flagged", what, got, uids[1])
		}
	}
	// STORE (UNCHANGEDSINCE): refused for the message changed since
	// imapflow's snapshot, done for the one unchanged.
	slices.SortFunc(rs.AfterStore, func(a, b msg) int { return a.UID - b.UID })
	if len(rs.AfterStore) != 2 || !slices.Equal(rs.AfterStore[0].Flags, []string{"$Fresh"}) || !slices.Equal(rs.AfterStore[1].Flags, []string{`\Flagged`}) {
		t.Errorf("imapflow STORE (UNCHANGEDSINCE): flags after %+v, want $Fresh on %d and no $Stale on %d", rs.AfterStore, uids[0], uids[1])
	}
	gotVanished("imapflow NOOP after another session's expunge", rs.LiveVanished, []expunge{{uids[0], true, false}})

	// imaplib resynchronises from the same point: message 2's flags (and
	// the $Stale imapflow could not add, nor the $Fresh on the expunged
	// message) and all three UIDs gone.
	res := py("resync", map[string]any{"uidvalidity": validity, "highest": highest})
	if uids[3] != uids[2]+1 || uids[1] != uids[0]+1 {
		t.Fatalf("UIDs not consecutive: %v", uids)
	}
	vanished := fmt.Sprintf("(EARLIER) %d,%d:%d", uids[0], uids[2], uids[3])
	for _, step := range []string{"select", "fetch"} {
		got := res[step].(map[string]any)
		if v := fmt.Sprint(got["VANISHED"]); v != "["+vanished+"]" {
			t.Errorf("imaplib %s VANISHED: %s, want [%s]", step, v, vanished)
		}
		f := got["FETCH"].([]any)
		if len(f) != 1 || !strings.Contains(f[0].(string), fmt.Sprintf("UID %d ", uids[1])) ||
			!strings.Contains(f[0].(string), `FLAGS (\Flagged)`) || !strings.Contains(f[0].(string), "MODSEQ (") {
			t.Errorf("imaplib %s FETCH: %q, want UID %d with FLAGS (\\Flagged) and MODSEQ", step, f, uids[1])
		}
	}
}
