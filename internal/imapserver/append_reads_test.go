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

// TestAppendReadsOnce: an APPEND reads the store once before it stores the
// message, the destination mailbox with the quota: before the "+" of a
// synchronizing literal (the quota check that may refuse it unsent), or,
// for a non-synchronizing one, once it has come. A missing mailbox is
// still [TRYCREATE], over quota still [OVERQUOTA] before the literal.
func TestAppendReadsOnce(t *testing.T) {
	calls := &callCounter{}
	e := newEnv(t, envOptions{noTailer: true, quota: 8 << 10, wrapMail: func(m mailstore.Store) mailstore.Store {
		calls.Store = m
		return calls
	}})
	e.inbox(t) // the member's default mailboxes, made on first use
	c := dial(t, e.addr)
	c.login()
	calls.take()
	for _, tc := range []struct {
		name, command string
		size          int
		want, calls   string
	}{
		{"synchronizing", "a1 APPEND INBOX {%d}", 1024, "a1 OK [APPENDUID", "AppendTarget Append"},
		{"non-synchronizing", "a2 APPEND INBOX {%d+}", 1024, "a2 OK [APPENDUID", "AppendTarget Append"},
		{"MULTIAPPEND of one", "a3 APPEND Drafts (\\Seen) {%d}", 1024, "a3 OK [APPENDUID", "AppendTarget Append"},
		{"no such mailbox", "a4 APPEND Nowhere {%d}", 1024, "a4 NO [TRYCREATE]", "AppendTarget Mailbox"},
		{"no such mailbox, non-synchronizing", "a5 APPEND Nowhere {%d+}", 1024, "a5 NO [TRYCREATE]", "AppendTarget Mailbox"},
		{"over quota", "a6 APPEND INBOX {%d}", 7 << 10, "a6 NO [OVERQUOTA]", "AppendTarget"},
		{"over quota, non-synchronizing", "a7 APPEND INBOX {%d+}", 7 << 10, "a7 NO [OVERQUOTA]", "AppendTarget"},
	} {
		t.Run(tc.name, func(t *testing.T) {
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
}
