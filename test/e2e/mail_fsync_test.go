package e2e

import (
	"path/filepath"
	"testing"
)

// highestPy logs in with imaplib, optionally appends a message and flags
// every message (a STORE, which --mail-fsync optimized commits without
// the fsync), and prints INBOX's HIGHESTMODSEQ as SELECT (CONDSTORE)
// reports it after.
const highestPy = pyIMAPLogin + `
def ok(typ, data):
    if typ != "OK":
        raise SystemExit("%s %r" % (typ, data))
    return data
if a["store"]:
    ok(*c.append("INBOX", None, None, b"Subject: x\r\n\r\nx\r\n"))
    ok(*c._simple_command("SELECT", "INBOX (CONDSTORE)"))
    c.state = "SELECTED"
    ok(*c.store("1:*", "+FLAGS", "(\\Flagged)"))
    ok(*c.close())
c.untagged_responses.clear()
ok(*c._simple_command("SELECT", "INBOX (CONDSTORE)"))
m = [x for x in c.untagged_responses.get("OK", []) if x.startswith(b"[HIGHESTMODSEQ ")]
c.logout()
json.dump({"highest": int(m[0].split()[1].rstrip(b"]"))}, sys.stdout)
`

// With --mail-fsync optimized (the default) a STORE replies before its
// fsync, so a power cut could take back a mod-sequence a client saw: after
// a stop without a clean shutdown (SIGKILL here) the next start moves
// every HIGHESTMODSEQ past anything lost; after a clean stop (SIGTERM)
// nothing moves; a backup taken while serving restores as after a cut.
func TestMailFsyncUncleanStopMovesModSeqs(t *testing.T) {
	t.Parallel()
	in := NewSQLite(t)
	in.MustRun(t, "domain", "add", "example.com")
	alice := addMember(t, in, "alice@example.com")
	pass := createAppPass(t, in, alice.Email, "Phone").Password
	highest := func(srv *Server, store bool) int64 {
		t.Helper()
		host, port := splitAddr(srv.Addr("imap"))
		var out struct{ Highest int64 }
		runPythonScript(t, highestPy, map[string]any{"host": host, "port": port, "user": alice.Email, "password": pass, "store": store}, &out)
		return out.Highest
	}

	srv := in.StartServer(t)
	seen := highest(srv, true)
	if n := metric(t, srv, "postern_mail_lazy_commits_total"); n < 1 {
		t.Fatalf("postern_mail_lazy_commits_total %v after a STORE", n)
	}
	srv.cmd.Process.Kill()
	<-srv.done

	srv = in.StartServer(t)
	after := highest(srv, false)
	if after < seen+1<<24 {
		t.Fatalf("HIGHESTMODSEQ %d after SIGKILL, %d before: want it moved by at least 2^24", after, seen)
	}
	srv.Stop(t)

	srv = in.StartServer(t)
	if again := highest(srv, false); again != after {
		t.Fatalf("HIGHESTMODSEQ %d after a clean stop, %d before it: want it unmoved", again, after)
	}

	// A backup taken while serving carries the mark: its restore starts as
	// after a power cut.
	dest := filepath.Join(t.TempDir(), "backup")
	if r := in.Run(t, "backup", dest); r.Code != 0 {
		t.Fatalf("backup: %s", r)
	}
	srv.Stop(t)
	restored := &Instance{Engine: "sqlite", Data: filepath.Join(t.TempDir(), "restored")}
	if r := Run(t, nil, "", "restore", dest, "--data", restored.Data); r.Code != 0 {
		t.Fatalf("restore: %s", r)
	}
	srv = restored.StartServer(t)
	if got := highest(srv, false); got < after+1<<24 {
		t.Fatalf("HIGHESTMODSEQ %d after a restore, %d in the backup: want it moved by at least 2^24", got, after)
	}
}
