package imapserver

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postern/postern/internal/mailstore"
)

// bodyCounter counts the store's reads of raw messages.
type bodyCounter struct {
	mailstore.Store
	reads *atomic.Int64
}

func (b bodyCounter) Bodies(ctx context.Context, ids []int64, fn func(id int64, body []byte) error) error {
	b.reads.Add(1)
	return b.Store.Bodies(ctx, ids, fn)
}

func (b bodyCounter) Body(ctx context.Context, id int64) ([]byte, error) {
	b.reads.Add(1)
	return b.Store.Body(ctx, id)
}

// A FETCH of sections of many messages reads their bodies a batch at a
// time (bounded in count and in bytes), and each response carries its own
// message's; messages expunged by another session after the FETCH's
// listing are left out.
func TestFetchBodiesInBatches(t *testing.T) {
	var reads atomic.Int64
	e := newEnv(t, envOptions{noTailer: true, wrapMail: func(m mailstore.Store) mailstore.Store { return bodyCounter{m, &reads} }})
	ctx := context.Background()
	inbox := e.inbox(t)
	const n = 150
	big := strings.Repeat("y", 700<<10) // two of these pass the batch's byte bound
	for i := 1; i <= n; i++ {
		text := "x"
		if i%40 == 0 {
			text = big
		}
		msg := fmt.Sprintf("Subject: m%d\r\n\r\n%s\r\n", i, text)
		if _, err := e.mail.Append(ctx, inbox.ID, nil, time.Time{}, []byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	c := dial(t, e.addr)
	c.login()
	c.ok("a1", "SELECT INBOX")
	if err := e.mail.Delete(ctx, inbox.ID, []uint32{5, 100}); err != nil {
		t.Fatal(err)
	}
	reads.Store(0)
	out := c.ok("a2", "UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
	out = out[:len(out)-1]
	if len(out) != n-2 {
		t.Fatalf("%d responses, want %d", len(out), n-2)
	}
	seen := map[int]bool{}
	for _, l := range out {
		var seq, uid int
		if _, err := fmt.Sscanf(l, "* %d FETCH (UID %d ", &seq, &uid); err != nil {
			t.Fatalf("response %q: %v", l, err)
		}
		if !strings.Contains(l, fmt.Sprintf("Subject: m%d\r\n", uid)) {
			t.Fatalf("UID %d got another message's header: %q", uid, l)
		}
		seen[uid] = true
	}
	if seen[5] || seen[100] {
		t.Fatalf("an expunged message was fetched: %v", seen)
	}
	// 148 messages in batches of at most 64, the two large ones each
	// ending a batch: 4 or 5 reads, not one per message.
	if r := reads.Load(); r < 3 || r > 6 {
		t.Fatalf("%d reads of bodies for %d messages", r, n-2)
	}
}
