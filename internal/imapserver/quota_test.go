package imapserver

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// appendMsg APPENDs a message of size octets with a synchronizing literal
// and returns the responses.
func (c *client) appendMsg(tag, mailbox string, size int) []string {
	c.t.Helper()
	c.send(fmt.Sprintf("%s APPEND %s {%d}\r\n", tag, mailbox, size))
	if l := c.line(); strings.HasPrefix(l, tag+" ") {
		return []string{l} // refused before the literal was sent
	} else if !strings.HasPrefix(l, "+") {
		return append([]string{l}, c.until(tag)...)
	}
	body := "Subject: q\r\n\r\n" + strings.Repeat("x", size-16) + "\r\n"
	c.send(body + "\r\n")
	return c.until(tag)
}

// TestQuota: QUOTA (RFC 9208) once logged in; every mailbox is under the
// root "", whose STORAGE is the member's usage and limit in units of 1024
// octets; APPEND and COPY that would pass the limit get NO [OVERQUOTA],
// MOVE does not grow usage and passes; SETQUOTA is the administrator's.
func TestQuota(t *testing.T) {
	e := newEnv(t, envOptions{noTailer: true})
	ctx := context.Background()
	limit := int64(5 << 10)
	if err := e.db.SetMailQuota(ctx, e.member.ID, &limit); err != nil {
		t.Fatal(err)
	}
	c := dial(t, e.addr)
	if out := c.ok("a0", "CAPABILITY"); hasCap(out, "QUOTA") {
		t.Errorf("QUOTA advertised before login: %q", out)
	}
	c.login()
	if out := c.ok("a1", "CAPABILITY"); !hasCap(out, "QUOTA") || !hasCap(out, "QUOTA=RES-STORAGE") || hasCap(out, "QUOTASET") {
		t.Errorf("capabilities after login: %q", out)
	}
	if out := c.appendMsg("a2", "INBOX", 2048); !strings.HasPrefix(out[len(out)-1], "a2 OK") {
		t.Fatalf("APPEND: %q", out)
	}
	want := func(tag, command string, lines ...string) {
		t.Helper()
		out := c.cmd(tag, command)
		if strings.Join(out, "\n") != strings.Join(lines, "\n") {
			t.Errorf("%s:\n got %q\nwant %q", command, out, lines)
		}
	}
	want("a3", "GETQUOTAROOT INBOX", `* QUOTAROOT INBOX ""`, `* QUOTA "" (STORAGE 2 5)`, "a3 OK GETQUOTAROOT completed")
	want("a4", `GETQUOTAROOT "Sent"`, `* QUOTAROOT "Sent" ""`, `* QUOTA "" (STORAGE 2 5)`, "a4 OK GETQUOTAROOT completed")
	want("a5", `GETQUOTA ""`, `* QUOTA "" (STORAGE 2 5)`, "a5 OK GETQUOTA completed")
	want("a6", `GETQUOTA "User quota"`, `a6 NO [NONEXISTENT] No such quota root; every mailbox is under "".`)
	want("a7", "GETQUOTAROOT Nowhere", "a7 NO [NONEXISTENT] No such mailbox.")
	want("a8", `SETQUOTA "" (STORAGE 1000000)`, "a8 NO [NOPERM] Quotas are set by the server's administrator.")
	if out := c.cmd("a9", `SETQUOTA "" (STORAGE lots)`); !strings.HasPrefix(out[len(out)-1], "a9 BAD") {
		t.Errorf("SETQUOTA with a bad limit: %q", out)
	}
	if out := c.cmd("a10", "GETQUOTA"); !strings.HasPrefix(out[len(out)-1], "a10 BAD") {
		t.Errorf("GETQUOTA without a root: %q", out)
	}

	// 2 KiB used of 5: another 2 KiB fits, then 2 KiB more does not.
	c.ok("b1", "SELECT INBOX")
	want("b2", "COPY 1 INBOX", "* 2 EXISTS", "b2 OK [COPYUID "+fmt.Sprint(e.inbox(t).UIDValidity)+" 1 2] COPY completed")
	want("b3", "COPY 1:2 Trash", "b3 NO [OVERQUOTA] Over quota: the mail storage limit is reached; delete messages and expunge them to make room.")
	want("b4", "APPEND Drafts {2048}", "b4 NO [OVERQUOTA] Over quota: the mail storage limit is reached; delete messages and expunge them to make room.")
	if out := c.appendMsg("b5", "INBOX", 1025); !strings.HasPrefix(out[len(out)-1], "b5 NO [OVERQUOTA]") {
		t.Fatalf("APPEND over quota: %q", out)
	}
	// A non-synchronizing literal is on its way: read, then refused.
	c.send("b6 APPEND INBOX {1100+}\r\n" + strings.Repeat("y", 1100) + "\r\n")
	if out := c.until("b6"); out[len(out)-1] != "b6 NO [OVERQUOTA] Over quota: the mail storage limit is reached; delete messages and expunge them to make room." {
		t.Fatalf("APPEND {n+} over quota: %q", out)
	}
	c.ok("b6a", "NOOP") // in step after the refused literals
	if out := c.ok("b7", "MOVE 2 Trash"); !contains(out, "* 2 EXPUNGE") {
		t.Errorf("MOVE at the limit: %q", out)
	}
	c.ok("b8", `STORE 1 +FLAGS.SILENT (\Deleted)`)
	want("b9", "STATUS INBOX (MESSAGES DELETED DELETED-STORAGE)", "* STATUS INBOX (MESSAGES 1 DELETED 1 DELETED-STORAGE 2)", "b9 OK STATUS completed")
	c.ok("b10", "EXPUNGE")
	want("b11", `GETQUOTA ""`, `* QUOTA "" (STORAGE 2 5)`, "b11 OK GETQUOTA completed") // the copy in Trash

	// No limit: the root has no resources.
	zero := int64(0)
	if err := e.db.SetMailQuota(ctx, e.member.ID, &zero); err != nil {
		t.Fatal(err)
	}
	want("c1", `GETQUOTA ""`, `* QUOTA "" ()`, "c1 OK GETQUOTA completed")
}

// TestQuotaServerDefault: a member and domain without limits get the
// server's (Config.Quota); the domain's default wins over it.
func TestQuotaServerDefault(t *testing.T) {
	e := newEnv(t, envOptions{noTailer: true, quota: 3 << 10})
	c := dial(t, e.addr)
	c.login()
	if out := c.ok("a1", `GETQUOTA ""`); !contains(out, `* QUOTA "" (STORAGE 0 3)`) {
		t.Errorf("server default: %q", out)
	}
	if out := c.appendMsg("a2", "INBOX", 4096); !strings.HasPrefix(out[len(out)-1], "a2 NO [OVERQUOTA]") {
		t.Fatalf("APPEND over the server's limit: %q", out)
	}
	limit := int64(8 << 10)
	if err := e.db.SetDomainMailQuota(context.Background(), e.member.DomainID, &limit); err != nil {
		t.Fatal(err)
	}
	if out := c.appendMsg("a3", "INBOX", 4096); !strings.HasPrefix(out[len(out)-1], "a3 OK") {
		t.Fatalf("APPEND under the domain's limit: %q", out)
	}
	if out := c.ok("a4", `GETQUOTA ""`); !contains(out, `* QUOTA "" (STORAGE 4 8)`) {
		t.Errorf("domain default: %q", out)
	}
}

// TestQuotaMultiAppend: the messages of one APPEND (MULTIAPPEND) count
// together: a second synchronizing literal that would pass the limit is
// refused before it is sent, non-synchronizing ones are read and refused,
// and neither stores any of the command's messages.
func TestQuotaMultiAppend(t *testing.T) {
	e := newEnv(t, envOptions{noTailer: true, quota: 5 << 10})
	c := dial(t, e.addr)
	c.login()
	msg := "Subject: q\r\n\r\n" + strings.Repeat("x", 2048-16) + "\r\n"
	c.send("a1 APPEND INBOX {2048}\r\n")
	if l := c.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("first literal: %q", l)
	}
	c.send(msg + " {2048}\r\n")
	if l := c.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("second literal (4 KiB of 5): %q", l)
	}
	c.send(msg + " {2048}\r\n")
	if l := c.line(); !strings.HasPrefix(l, "a1 NO [OVERQUOTA]") {
		t.Fatalf("third literal (6 KiB of 5): %q", l)
	}
	c.send(fmt.Sprintf("a2 APPEND INBOX {%d+}\r\n%s {%d+}\r\n%s {%d+}\r\n%s\r\n", len(msg), msg, len(msg), msg, len(msg), msg))
	if out := c.until("a2"); !strings.HasPrefix(out[len(out)-1], "a2 NO [OVERQUOTA]") {
		t.Fatalf("non-synchronizing literals over quota: %q", out)
	}
	if out := c.ok("a3", "STATUS INBOX (MESSAGES)"); !contains(out, "* STATUS INBOX (MESSAGES 0)") {
		t.Errorf("refused APPENDs stored messages: %q", out)
	}
	if out := c.ok("a4", fmt.Sprintf("APPEND INBOX {%d+}\r\n%s {%d+}\r\n%s", len(msg), msg, len(msg), msg)); !strings.Contains(out[len(out)-1], "APPENDUID") {
		t.Errorf("two messages that fit: %q", out)
	}
}
