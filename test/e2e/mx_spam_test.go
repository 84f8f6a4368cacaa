package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/internal/rspamd/rspamdtest"
)

// TestMXSpamFilter: with a real rspamd on loopback, the MX listener refuses
// GTUBE at DATA (550 5.7.1, nothing stored), files a message rspamd wants
// marked in Junk with its X-Spam fields (a forged "X-Spam-Status: No"
// dropped), delivers a clean one to INBOX, and a member moving a message
// into Junk over IMAP teaches rspamd's Bayes classifier.
func TestMXSpamFilter(t *testing.T) {
	t.Parallel()
	rs := rspamdtest.Start(t)
	in := NewSQLite(t)
	in.MustRun(t, "domain", "add", "example.com")
	bob := addMember(t, in, "bob@example.com")
	pw := createAppPass(t, in, bob.Email, "imap")
	srv := in.StartServer(t, "--rspamd-url", rs.CheckURL, "--rspamd-controller-url", rs.ControllerURL,
		"--rspamd-password", rspamdtest.Password)

	send := func(subject, body string) string {
		t.Helper()
		msg := "From: someone@sender.test\r\nTo: bob@example.com\r\nSubject: " + subject +
			"\r\nX-Spam-Status: No, forged by the sender\r\nDate: Wed, 02 Dec 2026 08:00:00 +0000\r\nMessage-ID: <" +
			subject + "@e2e.test>\r\n\r\n" + body + "\r\n"
		file := filepath.Join(t.TempDir(), "msg.eml")
		if err := os.WriteFile(file, []byte(msg), 0o600); err != nil {
			t.Fatal(err)
		}
		_, out := tool(t, "swaks", "--server", srv.Addr("smtp"), "--local-interface", nextSrc(), "--timeout", "60",
			"--helo", "client.e2e.test", "--from", "someone@sender.test", "--to", bob.Email, "--data", "@"+file)
		return dataReply(out)
	}
	if r := send("gtube", "Buy now. "+rspamdtest.GTUBE); !strings.HasPrefix(r, "550 5.7.1") {
		t.Errorf("GTUBE: %q, want 550 5.7.1", r)
	}
	if got := findMessage(t, srv, bob.Email, pw.Password, "Subject: gtube"); len(got) > 0 {
		t.Errorf("a refused message was delivered to %v", folderNames(got))
	}
	for _, c := range []struct{ subject, body, folder, status string }{
		{"spammy", "Cheap pills. " + rspamdtest.AddHeader, "Junk", "X-Spam-Status: Yes"},
		{"clean", "Hello Bob, the minutes of Monday's meeting are attached.", "INBOX", "X-Spam-Status: No, score="},
	} {
		if r := send(c.subject, c.body); !strings.HasPrefix(r, "250 ") {
			t.Fatalf("%s: %q", c.subject, r)
		}
		got := findMessage(t, srv, bob.Email, pw.Password, "Subject: "+c.subject)
		raw, ok := got[c.folder]
		if !ok || len(got) != 1 {
			t.Fatalf("%s: in %v, want %s only", c.subject, folderNames(got), c.folder)
		}
		header := strings.SplitN(raw, "\r\n\r\n", 2)[0]
		if !strings.Contains(header, c.status) || strings.Contains(header, "forged by the sender") {
			t.Errorf("%s: header\n%s", c.subject, header)
		}
	}

	spam, _ := rs.Learns(t)
	imapSession(t, srv, bob.Email, pw.Password, []any{"select", "INBOX"}, []any{"uid", "MOVE", "1:*", "Junk"})
	deadline := time.Now().Add(60 * time.Second)
	for {
		now, _ := rs.Learns(t)
		if now > spam {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("moving a message into Junk taught rspamd nothing (spam learns %d)\n%s", now, rs.Log())
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The server counts the lesson once rspamd's answer is back.
	for metric(t, srv, "postern_junk_learned_total") < 1 {
		if time.Now().After(deadline) {
			t.Fatal("postern_junk_learned_total stays 0 after a message was taught")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
