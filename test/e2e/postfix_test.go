package e2e

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/test/postfix"
)

// Debian's Postfix next to Postern: as the sending side that
// relays to Postern's MX listener, and as the organisation's MX that hands
// mail over to Postern by LMTP. The main.cf lines here are the ones
// docs/mail.md gives.

// startPostfix starts a private Postfix (test/postfix) with the further
// main.cf lines, stopped when the test ends.
func startPostfix(t *testing.T, main ...string) *postfix.Instance {
	t.Helper()
	pf, err := postfix.Start(postfix.Config{Dir: filepath.Join(postfix.OpenTempDir(t), "postfix"), Main: main})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pf.Stop() })
	return pf
}

// swaksSend sends one message with swaks (plain SMTP) to addr and fails the
// test unless it was accepted.
func swaksSend(t *testing.T, addr, from string, to []string, subject, body string) {
	t.Helper()
	code, out := tool(t, "swaks", "--server", addr, "--timeout", "60", "--from", from, "--to", strings.Join(to, ","),
		"--header", "Subject: "+subject, "--body", body)
	if code != 0 {
		t.Fatalf("swaks to %s: exit %d\n%s", addr, code, out)
	}
}

// waitQueue waits until Postfix's queue is empty; deferred mail fails the
// test with Postfix's log.
func waitQueue(t *testing.T, pf *postfix.Instance) {
	t.Helper()
	if _, err := pf.WaitEmpty(60 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// waitPostfixLog waits until Postfix's log has a line matching re: its
// daemons log through postlogd, a moment after they act.
func waitPostfixLog(t *testing.T, pf *postfix.Instance, re string) {
	t.Helper()
	r := regexp.MustCompile(re)
	deadline := time.Now().Add(10 * time.Second)
	for !r.MatchString(pf.Log()) {
		if time.Now().After(deadline) {
			t.Fatalf("no line matching %s in Postfix's log:\n%s", re, pf.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// headerOf returns the header field name of the message with UID uid in
// INBOX, read with imaplib.
func headerOf(t *testing.T, srv *Server, user, password, uid, name string) string {
	t.Helper()
	res := imapSession(t, srv, user, password,
		[]any{"select", "INBOX"},
		[]any{"uid", "FETCH", uid, fmt.Sprintf("(BODY.PEEK[HEADER.FIELDS (%s)])", name)})
	return fmt.Sprint(res[1].Data)
}

// TestPostfixRelaysToMX: Postfix, with Postern's MX listener as its
// relayhost, delivers a message that a member then reads over IMAP, with
// Postfix's Received line kept under Postern's own.
func TestPostfixRelaysToMX(t *testing.T) {
	Engines(t, func(t *testing.T, in *Instance) {
		in.MustRun(t, "domain", "add", "example.test")
		alice := addMember(t, in, "alice@example.test")
		ap := createAppPass(t, in, alice.Email, "Phone")
		srv := in.StartServer(t, "--smtp-addr", "127.0.0.1:0")

		pf := startPostfix(t, postfix.RelayHost(srv.Addr("smtp")))
		swaksSend(t, pf.SMTPAddr, "carol@example.org", []string{alice.Email}, "Relayed by Postfix", "Hello from outside.")
		waitQueue(t, pf)
		waitPostfixLog(t, pf, `to=<alice@example\.test>, relay=[^ ]+, .*status=sent \(250`)

		msgs, _ := readInbox(t, srv, alice.Email, ap.Password)
		m, ok := findSubject(msgs, "Relayed by Postfix")
		if !ok {
			t.Fatalf("not in alice's INBOX: %+v\n%s", msgs, pf.Log())
		}
		if rcv := headerOf(t, srv, alice.Email, ap.Password, m.UID, "RECEIVED"); !strings.Contains(rcv, "by mx.postfix.test (Postfix)") {
			t.Errorf("Received lines lack Postfix's: %s", rcv)
		}
	})
}

// TestPostfixLMTP: Postfix as the MX of the domain hands mail to Postern
// over LMTP (TCP and a unix socket). One message to two members and an
// address Postern does not know: both members get it (a reply for each after
// the data, RFC 2033), and the unknown recipient is bounced by Postfix on
// Postern's 550 at RCPT, the bounce reaching the sender (a member too,
// through the same LMTP).
func TestPostfixLMTP(t *testing.T) {
	for _, transport := range []string{"inet", "unix"} {
		t.Run(transport, func(t *testing.T) {
			in := NewSQLite(t)
			in.MustRun(t, "domain", "add", "example.test")
			alice := addMember(t, in, "alice@example.test")
			bob := addMember(t, in, "bob@example.test")
			carol := addMember(t, in, "carol@example.test")
			aliceAP := createAppPass(t, in, alice.Email, "Phone")
			carolAP := createAppPass(t, in, carol.Email, "Phone")
			bobAP := createAppPass(t, in, bob.Email, "Phone")

			lmtpAddr := "127.0.0.1:0"
			sock := filepath.Join(postfix.OpenTempDir(t), "lmtp.sock")
			if transport == "unix" {
				lmtpAddr = "unix:" + sock
			}
			srv := in.StartServer(t, "--lmtp-addr", lmtpAddr)
			target := "inet:" + srv.Addr("lmtp")
			if transport == "unix" {
				// The socket is 0660: Postfix's lmtp client (user postfix)
				// gets in through the socket's group, as docs/mail.md says.
				target = "unix:" + sock
				giveGroup(t, sock, "postfix")
			}
			pf := startPostfix(t,
				"virtual_mailbox_domains = example.test",
				"virtual_transport = lmtp:"+target,
				// Postern knows the members: Postfix takes every address
				// of the domain and lets LMTP's per-recipient replies decide.
				"smtpd_reject_unlisted_recipient = no",
			)
			swaksSend(t, pf.SMTPAddr, bob.Email, []string{alice.Email, "ghost@example.test", carol.Email}, "Handed over by LMTP", "Hello through the MX.")
			waitQueue(t, pf)

			waitPostfixLog(t, pf, `to=<alice@example\.test>, relay=[^ ]+, .*status=sent \(250`)
			waitPostfixLog(t, pf, `to=<carol@example\.test>, relay=[^ ]+, .*status=sent \(250`)
			waitPostfixLog(t, pf, `to=<ghost@example\.test>, relay=[^ ]+, .*status=bounced \(host [^)]* said: 550 5\.1\.1`)
			log := pf.Log()
			for _, m := range []struct{ email, pass string }{{alice.Email, aliceAP.Password}, {carol.Email, carolAP.Password}} {
				msgs, _ := readInbox(t, srv, m.email, m.pass)
				if _, ok := findSubject(msgs, "Handed over by LMTP"); !ok {
					t.Fatalf("not in %s's INBOX: %+v\n%s", m.email, msgs, log)
				}
			}
			msgs, _ := readInbox(t, srv, bob.Email, bobAP.Password)
			if _, ok := findSubject(msgs, "Undelivered Mail Returned to Sender"); !ok {
				t.Fatalf("no bounce in bob's INBOX: %+v\n%s", msgs, log)
			}
		})
	}
}

// giveGroup gives path the group name.
func giveGroup(t *testing.T, path, name string) {
	t.Helper()
	g, err := user.LookupGroup(name)
	if err != nil {
		t.Fatal(err)
	}
	gid, _ := strconv.Atoi(g.Gid)
	if err := os.Chown(path, -1, gid); err != nil {
		t.Fatal(err)
	}
}

// TestPostfixLMTPVerify: with address verification (docs/mail.md), Postfix
// asks Postern over the same LMTP whether a recipient exists before it
// accepts it: an address Postern does not know is refused at Postfix's RCPT
// (no bounce to a forged sender), a member's is accepted and delivered.
func TestPostfixLMTPVerify(t *testing.T) {
	in := NewSQLite(t)
	in.MustRun(t, "domain", "add", "example.test")
	alice := addMember(t, in, "alice@example.test")
	ap := createAppPass(t, in, alice.Email, "Phone")
	srv := in.StartServer(t, "--lmtp-addr", "127.0.0.1:0")
	pf := startPostfix(t,
		"virtual_mailbox_domains = example.test",
		"virtual_transport = lmtp:inet:"+srv.Addr("lmtp"),
		"smtpd_reject_unlisted_recipient = no",
		"smtpd_recipient_restrictions = reject_unverified_recipient",
		"unverified_recipient_reject_code = 550",
	)
	code, out := tool(t, "swaks", "--server", pf.SMTPAddr, "--timeout", "60", "--from", "dave@example.org",
		"--to", "ghost@example.test", "--header", "Subject: To nobody")
	if code == 0 || !strings.Contains(out, "<** 550 5.1.1 <ghost@example.test>: Recipient address rejected") {
		t.Fatalf("ghost not refused at RCPT (exit %d):\n%s\n%s", code, out, pf.Log())
	}
	swaksSend(t, pf.SMTPAddr, "dave@example.org", []string{alice.Email}, "Verified first", "Hello.")
	waitQueue(t, pf)
	waitPostfixLog(t, pf, `to=<alice@example\.test>, relay=[^ ]+, .*status=sent \(250`)
	msgs, _ := readInbox(t, srv, alice.Email, ap.Password)
	if _, ok := findSubject(msgs, "Verified first"); !ok {
		t.Fatalf("not in alice's INBOX: %+v\n%s", msgs, pf.Log())
	}
	if strings.Contains(pf.Log(), "status=bounced") {
		t.Errorf("a bounce was sent:\n%s", pf.Log())
	}
}
