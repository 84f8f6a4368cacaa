package imapserver

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
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
		if x := keepItems(c, id, item(int(id))); x.BodyText != nil || len(x.Envelope) != 100 {
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
	if c.used > c.max || len(c.items) != 10 || c.lru.Len() != 10 {
		t.Errorf("size %d of %d, %d entries, %d in the list", c.used, c.max, len(c.items), c.lru.Len())
	}
	c.put(99, &mailstore.MessageIndex{Envelope: make([]byte, c.max)}) // larger than the cache: not kept
	if _, ok := c.items[99]; ok || c.used > c.max {
		t.Errorf("an item larger than the cache was kept (size %d)", c.used)
	}
}

// TestBodyCacheBound: raw messages are kept within the cache's octets, and
// one over a sixteenth of it never.
func TestBodyCacheBound(t *testing.T) {
	const max = 16 * (cachedOverhead + 1000)
	c := newBodyCache(max)
	for id := range int64(20) {
		c.put(id, make([]byte, 1000))
	}
	if c.used > max || len(c.items) != 16 {
		t.Errorf("%d octets of %d in %d entries, want 16", c.used, max, len(c.items))
	}
	got := map[int64][]byte{}
	if missing := c.get([]int64{3, 4, 19}, got); fmt.Sprint(missing) != "[3]" || len(got[19]) != 1000 {
		t.Errorf("missing %v: the four oldest go", missing)
	}
	c.put(99, make([]byte, max/16+1))
	if _, ok := c.items[99]; ok {
		t.Error("a message over a sixteenth of the cache was kept")
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

// TestFetchBodiesFromCache: BODY[] answered from the raw messages the
// sessions share is each message's own, the first time (from the store)
// and after (from the cache), in another session, and after an expunge.
func TestFetchBodiesFromCache(t *testing.T) {
	for _, pg := range []bool{false, true} {
		t.Run(map[bool]string{false: "sqlite", true: "postgres"}[pg], func(t *testing.T) {
			e := newEnv(t, envOptions{postgres: pg})
			ctx := context.Background()
			in := e.inbox(t)
			for n := range 20 {
				if _, err := e.mail.Append(ctx, in.ID, nil, time.Now(), []byte(fmt.Sprintf("Subject: m\r\n\r\ntoken-%d.\r\n", n+1))); err != nil {
					t.Fatal(err)
				}
			}
			uidLine := regexp.MustCompile(`^\* \d+ FETCH \(UID (\d+) BODY\[\] \{\d+\}`)
			check := func(step string, out []string, want int) {
				t.Helper()
				got := 0
				for _, l := range out[:len(out)-1] {
					m := uidLine.FindStringSubmatch(l)
					if m == nil {
						continue
					}
					got++
					if !strings.Contains(l, "token-"+m[1]+".") {
						t.Errorf("%s: UID %s came with another body: %q", step, m[1], l)
					}
				}
				if got != want {
					t.Errorf("%s: %d bodies, want %d", step, got, want)
				}
			}
			a, b := dial(t, e.addr), dial(t, e.addr)
			a.login()
			b.login()
			a.ok("s", "SELECT INBOX")
			b.ok("s", "EXAMINE INBOX")
			check("first", a.ok("f", "UID FETCH 1:* (UID BODY.PEEK[])"), 20)
			check("again", a.ok("f", "UID FETCH 1:* (UID BODY.PEEK[])"), 20)
			check("other session", b.ok("f", "UID FETCH 5:15 (UID BODY.PEEK[])"), 11)
			a.ok("d", `UID STORE 3:6 +FLAGS.SILENT (\Deleted)`)
			a.ok("x", "EXPUNGE")
			check("after the expunge", a.ok("f", "UID FETCH 1:* (UID BODY.PEEK[])"), 16)
		})
	}
}
