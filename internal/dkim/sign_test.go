package dkim_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rsa"
	"net/url"
	"strings"
	"testing"
	"time"

	msgauth "github.com/emersion/go-msgauth/dkim"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/dkim"
	"github.com/postern/postern/internal/dnsrecords"
	"github.com/postern/postern/internal/mailauth"
	"github.com/postern/postern/internal/mailauth/mailauthtest"
	"github.com/postern/postern/internal/store/sqlstore"
	"github.com/postern/postern/internal/store/storetest"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

// newRing opens a store with domain in it, created with its keys as
// `postern domain add` does.
func newRing(t *testing.T, db *sqlstore.DB, domains ...string) *dkim.Keyring {
	t.Helper()
	ring, err := dkim.NewKeyring(db, secret)
	if err != nil {
		t.Fatal(err)
	}
	db.SetDomainKeys(ring.NewDomainKeys)
	for _, d := range domains {
		if err := db.CreateDomain(context.Background(), &account.Domain{Name: d}); err != nil {
			t.Fatal(err)
		}
	}
	return ring
}

// publish puts the DKIM records `postern domain dns` prints for domain into
// the loopback DNS server, and returns a verifier that asks it.
func publish(t *testing.T, ring *dkim.Keyring, domain string) func(msg []byte) []*msgauth.Verification {
	t.Helper()
	keys, err := ring.Keys(context.Background(), domain)
	if err != nil {
		t.Fatal(err)
	}
	web, _ := url.Parse("https://mail." + domain)
	c := dnsrecords.Config{Domain: domain, MailHost: "mail." + domain, Web: web}
	for _, k := range keys {
		if k.Published() {
			c.DKIM = append(c.DKIM, dnsrecords.DKIMKey{Selector: k.Selector, Value: k.Public})
		}
	}
	srv := mailauthtest.Start(t)
	n := 0
	for _, r := range dnsrecords.Records(c) {
		if strings.HasSuffix(r.Name, "._domainkey."+domain) {
			srv.TXT(t, r.Name, r.Value)
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d DKIM records published for %s", n, domain)
	}
	res, err := mailauth.ParseResolver(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	return func(msg []byte) []*msgauth.Verification {
		t.Helper()
		vs, err := msgauth.VerifyWithOptions(bytes.NewReader(msg), &msgauth.VerifyOptions{
			LookupTXT: func(name string) ([]string, error) { return res.LookupTXT(context.Background(), name+".") },
		})
		if err != nil {
			t.Fatalf("verify: %v", err)
		}
		return vs
	}
}

const testMessage = "Received: from phone (127.0.0.1) by mail.example.com\r\n" +
	"From: Alice <alice@example.com>\r\n" +
	"To: bob@example.org,\r\n carol@example.org\r\n" +
	"Subject: Lunch  on Friday?\r\n" +
	"Date: Thu, 03 Dec 2026 10:00:00 +0900\r\n" +
	"Message-ID: <1@example.com>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"X-Mailer: Phone Mail\r\n" +
	"\r\n" +
	"Shall we meet at noon?  \r\n" +
	"\r\n" +
	"Alice\r\n"

// sigTags returns the tags of the DKIM-Signature fields in hdr.
func sigTags(t *testing.T, hdr []byte) []map[string]string {
	t.Helper()
	unfolded := strings.ReplaceAll(strings.ReplaceAll(string(hdr), "\r\n ", ""), "\r\n\t", "")
	var out []map[string]string
	for _, line := range strings.Split(strings.TrimSuffix(unfolded, "\r\n"), "\r\n") {
		v, ok := strings.CutPrefix(line, "DKIM-Signature:")
		if !ok {
			t.Fatalf("not a DKIM-Signature field: %q", line)
		}
		tags := map[string]string{}
		for _, kv := range strings.Split(v, ";") {
			k, val, _ := strings.Cut(kv, "=")
			tags[strings.TrimSpace(k)] = strings.Join(strings.Fields(val), "")
		}
		out = append(out, tags)
	}
	return out
}

// TestSignVerifies: both signatures of a message verify against the
// records domain dns prints, served by a DNS server on loopback; they are
// relaxed/relaxed, timestamped, without l= or x=, and From is
// oversigned. A changed body, a changed Subject or an added From fail
// both.
func TestSignVerifies(t *testing.T) {
	ctx := context.Background()
	db := storetest.OpenSQLite(t)
	ring := newRing(t, db, "example.com")
	verify := publish(t, ring, "example.com")
	s := dkim.NewSigner(ring)

	hdr, err := s.Sign(ctx, "Example.COM", []byte(testMessage))
	if err != nil {
		t.Fatal(err)
	}
	tags := sigTags(t, hdr)
	if len(tags) != 2 || tags[0]["a"] != "ed25519-sha256" || tags[1]["a"] != "rsa-sha256" {
		t.Fatalf("signatures %v", tags)
	}
	for _, tg := range tags {
		if tg["c"] != "relaxed/relaxed" || tg["d"] != "example.com" || tg["t"] == "" || tg["x"] != "" || tg["l"] != "" {
			t.Errorf("tags %v", tg)
		}
		if _, has := tg["l"]; has {
			t.Errorf("l= in %v", tg)
		}
		if _, has := tg["x"]; has {
			t.Errorf("x= in %v", tg)
		}
		h := strings.ToLower(tg["h"])
		if strings.Count(h, "from") != 2 || !strings.Contains(h, "message-id") || !strings.Contains(h, "date") ||
			strings.Contains(h, "received") || strings.Contains(h, "x-mailer") {
			t.Errorf("h=%s", tg["h"])
		}
	}
	signed := append(append([]byte{}, hdr...), testMessage...)
	vs := verify(signed)
	if len(vs) != 2 {
		t.Fatalf("%d verifications", len(vs))
	}
	for i, v := range vs {
		if v.Err != nil || v.Domain != "example.com" {
			t.Errorf("signature %d (%s): %v", i, tags[i]["s"], v.Err)
		}
	}

	for name, tamper := range map[string]func(string) string{
		"body":         func(m string) string { return strings.Replace(m, "at noon", "at one", 1) },
		"subject":      func(m string) string { return strings.Replace(m, "Friday", "Monday", 1) },
		"another From": func(m string) string { return "From: Mallory <m@example.net>\r\n" + m },
		"a Reply-To":   func(m string) string { return "Reply-To: m@example.net\r\n" + m },
	} {
		msg := append(append([]byte{}, hdr...), tamper(testMessage)...)
		for i, v := range verify(msg) {
			if v.Err == nil {
				t.Errorf("%s: signature %d still verifies", name, i)
			}
		}
	}
	// Relaxed canonicalization: what relays may do to white space and
	// header case leaves both signatures valid.
	relaxed := strings.Replace(testMessage, "Subject: Lunch  on Friday?", "subject:   Lunch on Friday?", 1)
	relaxed = strings.Replace(relaxed, "at noon?  \r\n", "at noon?\r\n", 1)
	for i, v := range verify(append(append([]byte{}, hdr...), relaxed...)) {
		if v.Err != nil {
			t.Errorf("relaxed: signature %d: %v", i, v.Err)
		}
	}
}

// TestSignWithoutKeys: a domain with no keys (or none here) is not signed.
func TestSignWithoutKeys(t *testing.T) {
	db := storetest.OpenSQLite(t)
	ring, err := dkim.NewKeyring(db, secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateDomain(context.Background(), &account.Domain{Name: "bare.example"}); err != nil {
		t.Fatal(err)
	}
	s := dkim.NewSigner(ring)
	for _, d := range []string{"bare.example", "elsewhere.example"} {
		if hdr, err := s.Sign(context.Background(), d, []byte(testMessage)); hdr != nil || err != nil {
			t.Errorf("%s: %q %v", d, hdr, err)
		}
	}
}

// TestRotationVerifies: after a rotation the new keys sign, and mail
// signed before with the old ones still verifies while their records stay
// published.
func TestRotationVerifies(t *testing.T) {
	ctx := context.Background()
	db := storetest.OpenSQLite(t)
	ring := newRing(t, db, "example.com")
	before, err := dkim.NewSigner(ring).Sign(ctx, "example.com", []byte(testMessage))
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := ring.Rotate(ctx, "example.com")
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := ring.Keys(ctx, "example.com")
	var published []dkim.StoredKey
	for _, k := range keys {
		if k.Published() {
			published = append(published, k)
		}
	}
	if len(keys) != 4 || len(published) != 4 {
		t.Fatalf("keys after rotation: %d, %d published", len(keys), len(published))
	}
	// The old pair stays published beside the new one.
	srv := mailauthtest.Start(t)
	for _, k := range published {
		srv.TXT(t, k.Selector+"._domainkey.example.com", k.Public)
	}
	res, _ := mailauth.ParseResolver(srv.Addr)
	check := func(msg []byte) []*msgauth.Verification {
		vs, err := msgauth.VerifyWithOptions(bytes.NewReader(msg), &msgauth.VerifyOptions{
			LookupTXT: func(name string) ([]string, error) { return res.LookupTXT(ctx, name+".") },
		})
		if err != nil {
			t.Fatal(err)
		}
		return vs
	}
	after, err := dkim.NewSigner(ring).Sign(ctx, "example.com", []byte(testMessage))
	if err != nil {
		t.Fatal(err)
	}
	tags := sigTags(t, after)
	if tags[0]["s"] != fresh[0].Selector || tags[1]["s"] != fresh[1].Selector {
		t.Errorf("signed with %s and %s, want the new %s and %s", tags[0]["s"], tags[1]["s"], fresh[0].Selector, fresh[1].Selector)
	}
	for _, hdr := range [][]byte{before, after} {
		for i, v := range check(append(append([]byte{}, hdr...), testMessage...)) {
			if v.Err != nil {
				t.Errorf("signature %d: %v", i, v.Err)
			}
		}
	}
}

// TestKeysAreRealKeys: the active keys are an Ed25519 key and an RSA key
// of 2048 bits whose public halves are the records.
func TestKeysAreRealKeys(t *testing.T) {
	db := storetest.OpenSQLite(t)
	ring := newRing(t, db, "example.com")
	keys, err := ring.ActiveDKIMKeys(context.Background(), "example.com")
	if err != nil || len(keys) != 2 {
		t.Fatalf("%+v %v", keys, err)
	}
	if _, ok := keys[0].Private.(ed25519.PrivateKey); !ok || keys[0].Algorithm != dkim.Ed25519 || !strings.HasPrefix(keys[0].Public, "v=DKIM1; k=ed25519; p=") {
		t.Errorf("first key %s %T %s", keys[0].Algorithm, keys[0].Private, keys[0].Public)
	}
	rk, ok := keys[1].Private.(*rsa.PrivateKey)
	if !ok || rk.N.BitLen() != 2048 || keys[1].Algorithm != dkim.RSA || !strings.HasPrefix(keys[1].Public, "v=DKIM1; k=rsa; p=") {
		t.Errorf("second key %s %T %s", keys[1].Algorithm, keys[1].Private, keys[1].Public)
	}
	if time.Since(keys[0].CreatedAt) > time.Hour || keys[0].Domain != "example.com" {
		t.Errorf("key %+v", keys[0])
	}
}
