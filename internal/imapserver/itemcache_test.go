package imapserver

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/internal/mailstore"
)

// TestItemCacheBound: the cache keeps the most recently used entries
// within its octets, and keeps a copy of the FETCH items only.
func TestItemCacheBound(t *testing.T) {
	c := newItemCache(10 * (cachedOverhead + 100))
	item := func(n int) *mailstore.MessageIndex {
		return &mailstore.MessageIndex{Envelope: make([]byte, 100), BodyText: []byte(fmt.Sprint(n))}
	}
	for id := range int64(10) {
		if x := c.put(id, item(int(id))); x.BodyText != nil || len(x.Envelope) != 100 {
			t.Fatalf("put kept %+v", x)
		}
	}
	got := map[int64]*mailstore.MessageIndex{}
	if missing := c.get([]int64{0}, got); len(missing) != 0 || got[0] == nil {
		t.Fatalf("entry 0 missing: %v", missing)
	}
	c.put(10, item(10)) // evicts 1, the least recently used (0 was just read)
	got = map[int64]*mailstore.MessageIndex{}
	missing := c.get([]int64{0, 1, 2, 10}, got)
	if fmt.Sprint(missing) != "[1]" || len(got) != 3 {
		t.Errorf("missing %v, got %d", missing, len(got))
	}
	if c.size > c.max || len(c.items) != 10 || c.lru.Len() != 10 {
		t.Errorf("size %d of %d, %d entries, %d in the list", c.size, c.max, len(c.items), c.lru.Len())
	}
	c.put(99, &mailstore.MessageIndex{Envelope: make([]byte, c.max)}) // larger than the cache: not kept
	if _, ok := c.items[99]; ok || c.size > c.max {
		t.Errorf("an item larger than the cache was kept (size %d)", c.size)
	}
}

// TestFetchFromItemCache: sessions fetching ENVELOPE while messages are
// appended, flagged, expunged and moved elsewhere (through the store, as
// other sessions and deliveries do) always get each message's own
// envelope, whether from the store or from the cache the sessions share,
// on both engines.
func TestFetchFromItemCache(t *testing.T) {
	for _, pg := range []bool{false, true} {
		t.Run(map[bool]string{false: "sqlite", true: "postgres"}[pg], func(t *testing.T) {
			e := newEnv(t, envOptions{postgres: pg})
			ctx := context.Background()
			in := e.inbox(t)
			other, err := e.mail.CreateMailbox(ctx, e.member.ID, "Other", "")
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			subject := map[string]string{} // "mailbox/uid" -> subject
			add := func(n int) error {
				s := fmt.Sprintf("message %d", n)
				uid, err := e.mail.Append(ctx, in.ID, nil, time.Now(), []byte("From: a@example.org\r\nSubject: "+s+"\r\n\r\nbody\r\n"))
				if err == nil {
					mu.Lock()
					subject[fmt.Sprintf("INBOX/%d", uid)] = s
					mu.Unlock()
				}
				return err
			}
			for n := range 30 {
				if err := add(n); err != nil {
					t.Fatal(err)
				}
			}
			done := make(chan error, 1)
			go func() {
				defer close(done)
				for n := 30; n < 60; n++ {
					uids := []uint32{uint32(n - 29), uint32(n - 28)}
					var err error
					switch n % 4 {
					case 0:
						err = add(n)
					case 1:
						_, err = e.mail.StoreFlags(ctx, in.ID, uids, mailstore.FlagsAdd, []string{`\Seen`, `\Deleted`})
					case 2:
						_, err = e.mail.Expunge(ctx, in.ID, nil)
					case 3:
						var src, dst []uint32
						src, dst, _, err = e.mail.Move(ctx, in.ID, uids, other.ID)
						mu.Lock()
						for i := range src {
							subject[fmt.Sprintf("Other/%d", dst[i])] = subject[fmt.Sprintf("INBOX/%d", src[i])]
						}
						mu.Unlock()
					}
					if err != nil {
						done <- err
						return
					}
				}
			}()
			envelope := regexp.MustCompile(`^\* \d+ FETCH \(UID (\d+) ENVELOPE \((?:NIL|"[^"]*") "([^"]*)"`)
			// What the sessions fetched, checked once the writer is done: a
			// message is visible before its Append or Move returns and the
			// writer records its subject.
			type observed struct{ key, subject string }
			var seen []observed
			checked := 0
			check := func(c *client, box string, out []string) {
				t.Helper()
				for _, l := range out[:len(out)-1] {
					m := envelope.FindStringSubmatch(l)
					if m == nil {
						continue // EXPUNGE, EXISTS, FLAGS
					}
					checked++
					uid, _ := strconv.Atoi(m[1])
					seen = append(seen, observed{fmt.Sprintf("%s/%d", box, uid), m[2]})
				}
			}
			a, b := dial(t, e.addr), dial(t, e.addr)
			a.login()
			b.login()
			a.ok("s", "SELECT INBOX")
			b.ok("s", "EXAMINE INBOX")
			// At least a few rounds, however fast the writer is done: what
			// the sessions then fetch must still match.
			for running, round := true, 0; running || round < 5; round++ {
				select {
				case err := <-done: // nil once closed
					if err != nil {
						t.Fatal(err)
					}
					running = false
				default:
				}
				check(a, "INBOX", a.ok("f", "UID FETCH 1:* (UID ENVELOPE)"))
				check(b, "INBOX", b.ok("f", "FETCH 1:* (UID ENVELOPE)"))
				a.ok("n", "NOOP")
			}
			b.ok("s", "EXAMINE Other")
			check(b, "Other", b.ok("f", "FETCH 1:* (UID ENVELOPE)"))
			mu.Lock()
			n := len(subject)
			for _, o := range seen {
				if want := subject[o.key]; o.subject != want {
					t.Errorf("%s: subject %q, want %q", o.key, o.subject, want)
				}
			}
			mu.Unlock()
			if n < 40 || checked < 50 {
				t.Errorf("only %d messages were made, %d envelopes checked", n, checked)
			}
		})
	}
}
