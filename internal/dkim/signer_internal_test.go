package dkim

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"sync"
	"testing"
	"time"
)

// countingSource serves keys from a map and counts the lookups.
type countingSource struct {
	mu    sync.Mutex
	keys  map[string][]Key
	calls int
}

func (c *countingSource) ActiveDKIMKeys(_ context.Context, domain string) ([]Key, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	return c.keys[domain], nil
}

func edKey(t *testing.T, domain, sel string) Key {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := publicRecord(priv.Public())
	return Key{Domain: domain, Selector: sel, Algorithm: Ed25519, Private: priv, Public: pub}
}

func selectorOf(t *testing.T, hdr []byte) string {
	t.Helper()
	_, v, _ := strings.Cut(strings.ReplaceAll(string(hdr), "\r\n", ""), ":")
	for _, tag := range strings.Split(v, ";") {
		if sel, ok := strings.CutPrefix(strings.TrimSpace(tag), "s="); ok {
			return sel
		}
	}
	t.Fatalf("no s= in %q", hdr)
	return ""
}

// TestSignerCache: keys are looked up once per domain within the cache's
// lifetime, a domain without keys too, and a rotation (on any node) is
// picked up when it ends, under a minute later.
func TestSignerCache(t *testing.T) {
	ctx := context.Background()
	src := &countingSource{keys: map[string][]Key{"example.com": {edKey(t, "example.com", "one")}}}
	s := NewSigner(src)
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	msg := []byte("From: a@example.com\r\n\r\nhi\r\n")
	sign := func(domain string) []byte {
		t.Helper()
		hdr, err := s.Sign(ctx, domain, msg)
		if err != nil {
			t.Fatal(err)
		}
		return hdr
	}
	for range 3 {
		if sel := selectorOf(t, sign("example.com")); sel != "one" {
			t.Fatalf("selector %s", sel)
		}
		if sign("bare.example") != nil {
			t.Fatal("signed for a domain without keys")
		}
	}
	if src.calls != 2 {
		t.Errorf("%d lookups for 6 signatures of 2 domains", src.calls)
	}
	src.mu.Lock()
	src.keys["example.com"] = []Key{edKey(t, "example.com", "two")}
	src.keys["bare.example"] = []Key{edKey(t, "bare.example", "first")}
	src.mu.Unlock()
	now = now.Add(cacheTTL - time.Second)
	if sel := selectorOf(t, sign("example.com")); sel != "one" {
		t.Errorf("within the cache's lifetime: %s", sel)
	}
	now = now.Add(time.Second)
	if sel := selectorOf(t, sign("example.com")); sel != "two" {
		t.Errorf("after the cache's lifetime: %s", sel)
	}
	if hdr := sign("bare.example"); hdr == nil || selectorOf(t, hdr) != "first" {
		t.Errorf("a domain's first keys: %q", hdr)
	}
	if cacheTTL >= time.Minute {
		t.Errorf("a rotation takes up to %s to reach every node", cacheTTL)
	}
}

// TestHeaderKeys: every instance of a signed field is signed, the
// oversigned ones once more; trace and unknown fields are not; folded
// lines and LF line ends are read right.
func TestHeaderKeys(t *testing.T) {
	msg := "Received: from a\n\tby b\n" +
		"From: a@example.com\r\n" +
		"to: b@example.org,\r\n  c@example.org\r\n" +
		"Comments: folded\r\n Cc: inside a field\r\n" +
		"Subject: one\r\n" +
		"Subject : two\r\n" +
		"Date: today\r\n" +
		"X-Mailer: x\r\n" +
		"Message-ID: <1@x>\r\n" +
		"\r\n" +
		"Cc: not a header\r\n"
	got := strings.Join(headerKeys([]byte(msg)), ":")
	want := "From:From:Reply-To:Subject:Subject:Subject:To:To:Cc:Date:Message-ID"
	if got != want {
		t.Errorf("h=%s\nwant %s", got, want)
	}
}
