package imapserver

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/internal/mailstore"
)

// callCounter counts the store calls an APPEND makes: on PostgreSQL each
// is a round trip (a statement), which is most of an APPEND's time.
type callCounter struct {
	mailstore.Store
	mu    sync.Mutex
	calls []string
}

func (c *callCounter) note(name string) {
	c.mu.Lock()
	c.calls = append(c.calls, name)
	c.mu.Unlock()
}

// take returns the calls so far and forgets them.
func (c *callCounter) take() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := strings.Join(c.calls, " ")
	c.calls = nil
	return s
}

func (c *callCounter) Quota(ctx context.Context, memberID int64) (mailstore.Quota, error) {
	c.note("Quota")
	return c.Store.Quota(ctx, memberID)
}

func (c *callCounter) Mailbox(ctx context.Context, memberID int64, name string) (mailstore.Mailbox, error) {
	c.note("Mailbox")
	return c.Store.Mailbox(ctx, memberID, name)
}

func (c *callCounter) AppendTarget(ctx context.Context, memberID int64, name string) (mailstore.Mailbox, bool, mailstore.Quota, error) {
	c.note("AppendTarget")
	return c.Store.AppendTarget(ctx, memberID, name)
}

func (c *callCounter) Append(ctx context.Context, mailboxID int64, flags []string, date time.Time, body []byte) (uint32, error) {
	c.note("Append")
	return c.Store.Append(ctx, mailboxID, flags, date, body)
}

func (c *callCounter) AppendIf(ctx context.Context, memberID, mailboxID int64, name string, def int64, flags []string, date time.Time, body []byte) (uint32, error) {
	c.note("AppendIf")
	return c.Store.AppendIf(ctx, memberID, mailboxID, name, def, flags, date, body)
}

func (c *callCounter) AppendMany(ctx context.Context, mailboxID int64, msgs []mailstore.NewMessage) ([]uint32, error) {
	c.note("AppendMany")
	return c.Store.AppendMany(ctx, mailboxID, msgs)
}

// TestAppendReads: an APPEND reads the store at most once before it
// stores the message, the destination mailbox with the quota: before the
// "+" of a synchronizing literal (the quota check that may refuse it
// unsent), or, for a non-synchronizing one, once it has come; and not at
// all to the mailbox of the session's last APPEND when the message fits by
// what that one learned, the store checking the mailbox and the quota as
// it stores (AppendIf). What changed meanwhile is still seen: a mailbox
// renamed away is [TRYCREATE], one made again under the name is appended
// to, a quota filled by another session is [OVERQUOTA].
func TestAppendReads(t *testing.T) {
	calls := &callCounter{}
	e := newEnv(t, envOptions{noTailer: true, quota: 16 << 10, wrapMail: func(m mailstore.Store) mailstore.Store {
		calls.Store = m
		return calls
	}})
	ctx := context.Background()
	e.inbox(t) // the member's default mailboxes, made on first use
	c := dial(t, e.addr)
	c.login()
	calls.take()
	for _, tc := range []struct {
		name, command string
		size          int
		before        func()
		want, calls   string
	}{
		{"synchronizing", "a1 APPEND INBOX {%d}", 1024, nil, "a1 OK [APPENDUID", "AppendTarget AppendIf"},
		{"again", "a2 APPEND INBOX {%d}", 1024, nil, "a2 OK [APPENDUID", "AppendIf"},
		{"non-synchronizing, again", "a3 APPEND INBOX {%d+}", 1024, nil, "a3 OK [APPENDUID", "AppendIf"},
		{"another mailbox", "a4 APPEND Drafts (\\Seen) {%d}", 1024, nil, "a4 OK [APPENDUID", "AppendTarget AppendIf"},
		{"non-synchronizing, another mailbox", "a5 APPEND INBOX {%d+}", 1024, nil, "a5 OK [APPENDUID", "AppendTarget AppendIf"},
		{"no such mailbox", "a6 APPEND Nowhere {%d}", 1024, nil, "a6 NO [TRYCREATE]", "AppendTarget Mailbox"},
		{"no such mailbox, non-synchronizing", "a7 APPEND Nowhere {%d+}", 1024, nil, "a7 NO [TRYCREATE]", "AppendTarget Mailbox"},
		{"over quota", "a8 APPEND INBOX {%d}", 14 << 10, nil, "a8 NO [OVERQUOTA]", "AppendTarget"},
		{"over quota, non-synchronizing", "a9 APPEND INBOX {%d+}", 14 << 10, nil, "a9 NO [OVERQUOTA]", "AppendIf"},
		{"to learn", "b1 APPEND Drafts {%d}", 1024, nil, "b1 OK [APPENDUID", "AppendTarget AppendIf"},
		{"renamed away", "b2 APPEND Drafts {%d}", 1024, func() {
			if err := e.mail.RenameMailbox(ctx, e.member.ID, "Drafts", "Old drafts"); err != nil {
				t.Fatal(err)
			}
		}, "b2 NO [TRYCREATE]", "AppendIf Mailbox"},
		{"made again", "b3 APPEND Sent {%d}", 1024, nil, "b3 OK [APPENDUID", "AppendTarget AppendIf"},
		{"made again under the name", "b4 APPEND Sent {%d}", 1024, func() {
			if err := e.mail.RenameMailbox(ctx, e.member.ID, "Sent", "Old sent"); err != nil {
				t.Fatal(err)
			}
			if _, err := e.mail.CreateMailbox(ctx, e.member.ID, "Sent", ""); err != nil {
				t.Fatal(err)
			}
		}, "b4 OK [APPENDUID", "AppendIf Mailbox AppendIf"},
		{"to learn again", "b4a APPEND Sent {%d}", 1024, nil, "b4a OK [APPENDUID", "AppendTarget AppendIf"},
		{"quota filled by another session", "b5 APPEND Sent {%d}", 2048, func() {
			if err := e.mail.Deliver(ctx, e.member.ID, []byte("Subject: big\r\n\r\n"+strings.Repeat("z", 7<<10))); err != nil {
				t.Fatal(err)
			}
		}, "b5 NO [OVERQUOTA]", "AppendIf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.before != nil {
				tc.before()
			}
			tag, _, _ := strings.Cut(tc.command, " ")
			body := "Subject: r\r\n\r\n" + strings.Repeat("x", tc.size-16) + "\r\n"
			c.send(fmt.Sprintf(tc.command, tc.size) + "\r\n")
			if !strings.HasSuffix(tc.command, "+}") {
				if l := c.line(); !strings.HasPrefix(l, "+") {
					if !strings.HasPrefix(l, tc.want) {
						t.Fatalf("got %q, want %s", l, tc.want)
					}
					if got := calls.take(); got != tc.calls {
						t.Errorf("store calls %q, want %q", got, tc.calls)
					}
					return
				}
			}
			c.send(body + "\r\n")
			out := c.until(tag)
			if !strings.HasPrefix(out[len(out)-1], tc.want) {
				t.Fatalf("got %q, want %s", out, tc.want)
			}
			if got := calls.take(); got != tc.calls {
				t.Errorf("store calls %q, want %q", got, tc.calls)
			}
		})
	}
	// A MULTIAPPEND of several messages, their "+" answered from what the
	// last APPEND learned, reads the mailbox and the quota again before it
	// stores them (AppendMany checks neither): here the mailbox was renamed.
	t.Run("MULTIAPPEND", func(t *testing.T) {
		limit := int64(1 << 20) // room again
		if err := e.db.SetMailQuota(ctx, e.member.ID, &limit); err != nil {
			t.Fatal(err)
		}
		msg := "Subject: m\r\n\r\nmulti\r\n"
		c.send(fmt.Sprintf("c1 APPEND Trash {%d}\r\n", len(msg)))
		if l := c.line(); !strings.HasPrefix(l, "+") {
			t.Fatalf("APPEND: %q", l)
		}
		c.send(msg + "\r\n")
		if out := c.until("c1"); !strings.HasPrefix(out[len(out)-1], "c1 OK") {
			t.Fatalf("APPEND: %q", out)
		}
		calls.take()
		if err := e.mail.RenameMailbox(ctx, e.member.ID, "Trash", "Old trash"); err != nil {
			t.Fatal(err)
		}
		c.send(fmt.Sprintf("c2 APPEND Trash {%d}\r\n", len(msg)))
		if l := c.line(); !strings.HasPrefix(l, "+") {
			t.Fatalf("MULTIAPPEND: %q", l)
		}
		c.send(fmt.Sprintf("%s {%d}\r\n", msg, len(msg)))
		if l := c.line(); !strings.HasPrefix(l, "+") {
			t.Fatalf("MULTIAPPEND: %q", l)
		}
		c.send(msg + "\r\n")
		if out := c.until("c2"); !strings.HasPrefix(out[len(out)-1], "c2 NO [TRYCREATE]") {
			t.Fatalf("MULTIAPPEND to a renamed mailbox: %q", out)
		}
		if got := calls.take(); got != "Mailbox" {
			t.Errorf("store calls %q, want %q", got, "Mailbox")
		}
	})
	// The messages are where the OKs said: 4 in INBOX and the delivery, 2
	// in the Drafts renamed, 1 in the old Sent, 2 in the new, 1 in the old
	// Trash.
	for name, want := range map[string]int{"INBOX": 4 + 1, "Old drafts": 2, "Old sent": 1, "Sent": 2, "Old trash": 1} {
		mb, err := e.mail.Mailbox(ctx, e.member.ID, name)
		if err != nil {
			t.Fatal(err)
		}
		if msgs, err := e.mail.Messages(ctx, mb.ID); err != nil || len(msgs) != want {
			t.Errorf("%s: %d messages, %v; want %d", name, len(msgs), err, want)
		}
	}
}
