package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/internal/store/sqlstore"
)

// swaksMX sends one message with swaks to the MX listener (or, with
// --protocol LMTP and --socket, to LMTP) and returns its exit code and
// transcript.
func swaksMX(t *testing.T, args ...string) (int, string) {
	t.Helper()
	return tool(t, "swaks", append([]string{"--from", "sender@elsewhere.test", "--helo", "mta.elsewhere.test",
		"--timeout", "30", "--hide-informational"}, args...)...)
}

// TestMXDelivery: mail from outside, sent with swaks and smtplib to the MX
// listener and with swaks over LMTP on a unix socket, lands in every
// recipient's INBOX (read back with imaplib); plus-addressing reaches the
// member with the tag kept in Delivered-To; an unknown user and a foreign
// domain are refused at RCPT.
func TestMXDelivery(t *testing.T) {
	t.Parallel()
	in := NewSQLite(t)
	in.MustRun(t, "domain", "add", "example.com")
	var ms []member
	var pws []appPass
	for _, name := range []string{"alice", "bob", "carol"} {
		m := addMember(t, in, name+"@example.com")
		ms = append(ms, m)
		pws = append(pws, createAppPass(t, in, m.Email, "Mail"))
	}
	sock := filepath.Join(t.TempDir(), "lmtp.sock")
	srv := in.StartServer(t, "--smtp-addr", "127.0.0.1:0", "--lmtp-addr", "unix:"+sock)
	if !strings.Contains(srv.Stdout(), "listening lmtp "+sock+"\n") || !strings.Contains(srv.Stdout(), "listening smtp 127.0.0.1:") {
		t.Fatalf("listening lines: %q", srv.Stdout())
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
		t.Fatalf("LMTP socket: %v, %v", fi.Mode(), err)
	}
	mxAddr := srv.Addr("smtp")

	code, out := swaksMX(t, "--server", mxAddr, "--tls", "--to", "alice@example.com,bob@example.com,carol@example.com",
		"--header", "Subject: To three")
	if code != 0 || !strings.Contains(out, "<~  250 2.0.0 Message accepted and delivered") || !strings.Contains(out, "<-  220 2.0.0 Ready to start TLS") {
		t.Fatalf("swaks to three: %d\n%s", code, out)
	}
	code, out = swaksMX(t, "--server", mxAddr, "--to", "alice+news@example.com", "--header", "Subject: Tagged")
	if code != 0 {
		t.Fatalf("swaks plus-addressing: %d\n%s", code, out)
	}
	code, out = swaksMX(t, "--server", mxAddr, "--to", "nobody@example.com")
	if code == 0 || !strings.Contains(out, "<** 550 5.1.1 No such user here") {
		t.Fatalf("swaks to an unknown user: %d\n%s", code, out)
	}
	code, out = swaksMX(t, "--server", mxAddr, "--to", "someone@gmail.com")
	if code == 0 || !strings.Contains(out, "<** 550 5.7.1 Relaying denied") {
		t.Fatalf("swaks relay attempt: %d\n%s", code, out)
	}
	code, out = swaksMX(t, "--protocol", "LMTP", "--socket", sock, "--to", "bob@example.com,carol@example.com", "--header", "Subject: Over LMTP")
	if code != 0 || !strings.Contains(out, "<-  250 2.0.0 <bob@example.com> delivered") || !strings.Contains(out, "<-  250 2.0.0 <carol@example.com> delivered") {
		t.Fatalf("swaks over LMTP: %d\n%s", code, out)
	}

	// smtplib, with STARTTLS: one recipient refused, the other delivered.
	host, port := splitAddr(mxAddr)
	var refused map[string][]any
	runPythonScript(t, `
import json, smtplib, ssl, sys
a = json.load(sys.stdin)
s = smtplib.SMTP(a["host"], a["port"], timeout=30)
s.starttls(context=ssl._create_unverified_context())
msg = "From: someone@elsewhere.test\r\nSubject: From smtplib\r\n\r\nHello.\r\n"
refused = s.sendmail("someone@elsewhere.test", ["carol@example.com", "ghost@example.com"], msg)
s.quit()
print(json.dumps({k: [v[0], v[1].decode()] for k, v in refused.items()}))
`, map[string]any{"host": host, "port": port}, &refused)
	if r := refused["ghost@example.com"]; len(refused) != 1 || len(r) != 2 || r[0] != float64(550) || !strings.HasPrefix(r[1].(string), "5.1.1 ") {
		t.Fatalf("smtplib refused %v", refused)
	}

	want := map[string][]string{
		"alice": {"To three", "Tagged"},
		"bob":   {"To three", "Over LMTP"},
		"carol": {"To three", "Over LMTP", "From smtplib"},
	}
	for i, m := range ms {
		msgs, _ := readInbox(t, srv, m.Email, pws[i].Password)
		name, _, _ := strings.Cut(m.Email, "@")
		for _, s := range want[name] {
			if _, ok := findSubject(msgs, s); !ok {
				t.Errorf("%s's INBOX lacks %q: %v", m.Email, s, msgs)
			}
		}
	}
	res := imapSession(t, srv, ms[0].Email, pws[0].Password,
		[]any{"select", "INBOX"},
		[]any{"search", nil, "SUBJECT", "Tagged"},
		[]any{"fetch", "1:*", "(BODY.PEEK[HEADER.FIELDS (DELIVERED-TO RETURN-PATH RECEIVED)])"},
	)
	if got := fmt.Sprint(res[2].Data); !strings.Contains(got, "Delivered-To: alice+news@example.com") ||
		!strings.Contains(got, "Return-Path: <sender@elsewhere.test>") || !strings.Contains(got, "with ESMTP id ") ||
		!strings.Contains(got, "for <alice+news@example.com>") {
		t.Fatalf("trace fields: %s", got)
	}
}

// TestMXIdleOtherNode: a message received on node A's MX listener wakes an
// IMAP IDLE on node B (the delivery's mailbox event through the outbox and
// PostgreSQL's NOTIFY).
func TestMXIdleOtherNode(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2, "")
	a := c.nodes[0]
	a.MustRun(t, "domain", "add", "example.com")
	alice := addMember(t, a, "alice@example.com")
	ap := createAppPass(t, a, alice.Email, "Phone")
	c.start(t, "--smtp-addr", "127.0.0.1:0")
	sa, sb := c.srvs[0], c.srvs[1]
	idle, r := imapLogin(t, sb.Addr("imap"), nextSrc(), alice.Email, ap.Password)
	if !strings.Contains(r, "a1 OK") {
		t.Fatalf("login on node B: %q", r)
	}
	idle.cmd("a2 SELECT INBOX", "a2 OK")
	idle.cmd("a3 IDLE", "+")
	sent := time.Now()
	if code, out := swaksMX(t, "--server", sa.Addr("smtp"), "--to", alice.Email, "--header", "Subject: Across nodes"); code != 0 {
		t.Fatalf("swaks: %d\n%s", code, out)
	}
	got, at := idleUntilExists(t, idle, revocationDeadline)
	t.Logf("IDLE on node B saw the mail received on node A after %v: %q", at.Sub(sent).Round(time.Millisecond), strings.TrimSpace(got))
}

// TestMXCrashDuringData kills the server (SIGKILL) while senders are in
// the middle of DATA and BDAT, restarts it on the same data, and checks that
// every message acknowledged with 250 is stored exactly once and whole, and
// that no message is stored in part: each copy must end with its own END
// line, and a message whose end was never sent must be absent.
func TestMXCrashDuringData(t *testing.T) {
	t.Parallel()
	in := NewSQLite(t)
	in.MustRun(t, "domain", "add", "example.com")
	addMember(t, in, "alice@example.com")
	addMember(t, in, "bob@example.com")
	srv := in.StartServer(t, "--smtp-addr", "127.0.0.1:0")
	addr := srv.Addr("smtp")

	// One sender stops in the middle of a message: its end is never sent.
	half := dial(t, addr)
	half.until("220 ")
	half.cmd("EHLO half.test", "250 ")
	half.cmd("MAIL FROM:<half@elsewhere.test>", "250 ")
	half.cmd("RCPT TO:<alice@example.com>", "250 ")
	half.cmd("DATA", "354 ")
	half.send("Subject: never-finished\r\n\r\n" + strings.Repeat("partial line\r\n", 1000))

	var mu sync.Mutex
	acked := map[string]bool{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for s := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mxSendUntilDead(addr, s, stop, func(id string) {
				mu.Lock()
				acked[id] = true
				mu.Unlock()
			})
		}()
	}
	// Let some messages through, then kill mid-stream: at that moment the
	// senders are reading, writing DATA/BDAT, or waiting for their 250.
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 40 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	srv.cmd.Process.Kill()
	<-srv.done
	close(stop)
	wg.Wait()

	// Read the store as the restarted server would: every copy of the mail.
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, filepath.Join(in.Data, "postern.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.SQL.QueryContext(ctx, `SELECT b.body FROM mail_messages m JOIN mail_bodies b ON b.id = m.body_id`)
	if err != nil {
		t.Fatal(err)
	}
	copies := map[string]int{}
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&body); err != nil {
			t.Fatal(err)
		}
		s := string(body)
		if strings.Contains(s, "never-finished") {
			t.Errorf("the unfinished message was stored: %d octets", len(s))
		}
		_, subj, ok := strings.Cut(s, "\r\nSubject: ")
		if !ok || !strings.HasPrefix(subj, "crash-") {
			continue // the app password notifications
		}
		id, _, _ := strings.Cut(subj, "\r\n")
		if !strings.HasSuffix(s, "\r\nEND "+id+"\r\n") {
			t.Errorf("copy of %s stored in part: ends %q", id, s[max(0, len(s)-40):])
		}
		copies[id]++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	for id := range acked {
		if copies[id] != 2 {
			t.Errorf("acknowledged %s has %d copies, want 2 (alice and bob)", id, copies[id])
		}
	}
	for id, n := range copies {
		if n != 2 {
			t.Errorf("%s has %d copies: half-delivered", id, n)
		}
	}
	t.Logf("%d messages acknowledged before the kill, %d stored (at most the ones in flight more)", len(acked), len(copies))
	if len(copies) < len(acked) || len(copies) > len(acked)+4 {
		t.Errorf("%d stored for %d acknowledged and 4 senders", len(copies), len(acked))
	}
	// The server starts again on the same data and serves the mail.
	srv2 := in.StartServer(t, "--smtp-addr", "127.0.0.1:0")
	if code, out := swaksMX(t, "--server", srv2.Addr("smtp"), "--to", "alice@example.com"); code != 0 {
		t.Fatalf("after the restart: %d\n%s", code, out)
	}
}

// mxSendUntilDead sends messages of about 200 KiB to alice and bob, by
// DATA and BDAT in turn, until the server is gone, calling ack for each one
// answered 250.
func mxSendUntilDead(addr string, sender int, stop chan struct{}, ack func(id string)) {
	body := strings.Repeat("0123456789 abcdefghijklmnopqrstuvwxyz 0123456789 abcdefghijklmnopqrstuvwxyz\r\n", 2600)
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return
		}
		nc.SetDeadline(time.Now().Add(30 * time.Second))
		r := bufio.NewReader(nc)
		reply := func() string {
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				b.WriteString(l)
				if err != nil || len(l) < 4 || l[3] != '-' {
					return b.String()
				}
			}
		}
		id := fmt.Sprintf("crash-%d-%d", sender, i)
		msg := "From: s@elsewhere.test\r\nSubject: " + id + "\r\n\r\n" + body + "END " + id + "\r\n"
		reply()
		fmt.Fprintf(nc, "EHLO s%d.test\r\nMAIL FROM:<s@elsewhere.test>\r\nRCPT TO:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\n", sender)
		ok := strings.HasPrefix(reply(), "250") && strings.HasPrefix(reply(), "250") && strings.HasPrefix(reply(), "250") && strings.HasPrefix(reply(), "250")
		if ok && i%2 == 0 {
			fmt.Fprintf(nc, "DATA\r\n")
			ok = strings.HasPrefix(reply(), "354")
			if ok {
				// Written in pieces, so that a kill finds messages half sent.
				for j := 0; j < len(msg); j += 32 << 10 {
					nc.Write([]byte(msg[j:min(j+32<<10, len(msg))]))
				}
				nc.Write([]byte(".\r\n"))
			}
		} else if ok {
			fmt.Fprintf(nc, "BDAT %d\r\n%s", len(msg)/2, msg[:len(msg)/2])
			ok = strings.HasPrefix(reply(), "250")
			if ok {
				fmt.Fprintf(nc, "BDAT %d LAST\r\n%s", len(msg)-len(msg)/2, msg[len(msg)/2:])
			}
		}
		if ok && strings.HasPrefix(reply(), "250 2.0.0") {
			ack(id)
		}
		nc.Close()
	}
}

// TestMXDemo: the demo's box names the MX listener and how to send to it,
// and a message sent as it says arrives.
func TestMXDemo(t *testing.T) {
	t.Parallel()
	in := NewSQLite(t)
	srv := in.Start(t, "demo", "--smtp-addr", "127.0.0.1:0")
	addr := srv.Addr("smtp")
	// The commands below the box are wrapped for 80 columns, continued with a backslash.
	box := regexp.MustCompile(` \\\n +`).ReplaceAllString(srv.Stdout(), " ")
	for _, want := range []string{"SMTP             " + addr + " (incoming mail (MX), no AUTH)", "swaks --server " + addr + " --from someone@elsewhere.test --to alice@example.com"} {
		if !strings.Contains(box, want) {
			t.Errorf("demo box lacks %q:\n%s", want, box)
		}
	}
	if code, out := swaksMX(t, "--server", addr, "--to", "alice@example.com"); code != 0 {
		t.Fatalf("swaks to the demo: %d\n%s", code, out)
	}
}

// TestMXLimits: the MX listener and LMTP honour --max-connections-per-ip,
// and the MX listener --smtp-rate-limit, per client address.
func TestMXLimits(t *testing.T) {
	t.Parallel()
	in := NewSQLite(t)
	in.MustRun(t, "domain", "add", "example.com")
	addMember(t, in, "alice@example.com")
	srv := in.StartServer(t, "--smtp-addr", "127.0.0.1:0", "--lmtp-addr", "127.0.0.1:0",
		"--max-connections-per-ip", "2", "--smtp-rate-limit", "3")
	for _, l := range []string{"smtp", "lmtp"} {
		src := nextSrc()
		for range 2 {
			dialFrom(t, srv.Addr(l), src).until("220 ")
		}
		if got, _ := dialFrom(t, srv.Addr(l), src).drain(30 * time.Second); !strings.HasPrefix(got, "421 4.7.0 ") || !strings.Contains(got, "Too many connections from your address") {
			t.Errorf("%s: third connection from one address got %q", l, got)
		}
	}
	c := dial(t, srv.Addr("smtp"))
	c.until("220 ")
	c.cmd("EHLO client.test", "250 ")
	c.cmd("MAIL FROM:<x@elsewhere.test>", "250 ")
	for _, r := range []struct{ to, want string }{
		{"alice", "250 2.1.5"}, {"nobody", "550 5.1.1"}, {"alice", "250 2.1.5"},
		{"alice", "451 4.7.1 Too many recipients from your address: at most 3 a minute"},
	} {
		if got := c.cmd("RCPT TO:<"+r.to+"@example.com>", ""); !strings.HasPrefix(got, r.want) {
			t.Fatalf("RCPT %s: %q, want %q", r.to, got, r.want)
		}
	}
}
