package smtpserver

import (
	"context"
	"strings"
	"testing"

	"github.com/postern/postern/internal/mailstore"
)

// TestQuotaPrecedence: the limit that applies to a recipient is the
// member's own, else the domain's default, else the server's Config.Quota;
// 0 set on the member lifts the others.
func TestQuotaPrecedence(t *testing.T) {
	e := newEnv(t, mx) // no server-wide quota
	ctx := context.Background()
	if err := e.mail.DeliverAll(ctx, []mailstore.Delivery{{MemberID: e.alice.ID, Body: []byte(strings.Repeat("x", 100))}}); err != nil {
		t.Fatal(err)
	}
	n := func(v int64) *int64 { return &v }
	full := "452 4.2.2 Mailbox full: <alice@example.test> is over its quota\r\n"
	rcpt := func(want string) {
		t.Helper()
		c := dial(t, e.addr)
		c.wantCmd("EHLO client.test", "250")
		c.wantCmd("MAIL FROM:<x@sender.test>", "250")
		if got := c.cmd("RCPT TO:<alice@example.test>"); !strings.HasPrefix(got, want) {
			t.Fatalf("RCPT: %q, want %q", got, want)
		}
		c.wantCmd("RCPT TO:<bob@other.test>", "250 2.1.5") // bob's domain sets nothing
	}
	rcpt("250 2.1.5")
	if err := e.db.SetDomainMailQuota(ctx, e.alice.DomainID, n(99)); err != nil {
		t.Fatal(err)
	}
	rcpt(full) // the domain's default: 100 used of 99
	if err := e.db.SetMailQuota(ctx, e.alice.ID, n(0)); err != nil {
		t.Fatal(err)
	}
	rcpt("250 2.1.5") // the member's own: none
	if err := e.db.SetMailQuota(ctx, e.alice.ID, n(50)); err != nil {
		t.Fatal(err)
	}
	rcpt(full)
}
