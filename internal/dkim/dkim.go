// Package dkim signs the outgoing mail of local domains with DKIM
// (RFC 6376), with two keys per domain at once: Ed25519 (RFC 8463), which
// receivers are moving to, and RSA-2048, which every receiver checks. It
// also makes, seals and rotates those keys (keys.go): the private keys are
// kept in the database only sealed with a key derived from the secret key
// file, like the app passwords' HMAC key that never goes there at all.
//
// The package stands alone: the store implements its Store interface.
package dkim

import (
	"bytes"
	"context"
	"crypto"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-msgauth/dkim"
)

// Algorithms of the keys, as in the k= tag of their DNS record.
const (
	Ed25519 = "ed25519"
	RSA     = "rsa"
)

// Key is an active signing key of a domain, ready to sign.
type Key struct {
	Domain, Selector string
	Algorithm        string        // Ed25519 or RSA
	Private          crypto.Signer // ed25519.PrivateKey or *rsa.PrivateKey
	Public           string        // the DNS TXT value "v=DKIM1; k=…; p=…"
	CreatedAt        time.Time
}

// KeySource gives the active keys of a domain, none when it has none. The
// Keyring implements it over the store.
type KeySource interface {
	ActiveDKIMKeys(ctx context.Context, domain string) ([]Key, error)
}

// cacheTTL is how long the Signer keeps a domain's keys in memory. A
// rotation on another node is picked up within it (under a minute), and a
// busy domain's keys are unsealed twice a minute instead of per message.
const cacheTTL = 30 * time.Second

// cacheMax bounds the cache: past it, the entries are dropped and refilled.
const cacheMax = 4096

// Signer signs outgoing mail of local domains. It is safe for concurrent use.
type Signer struct {
	keys KeySource
	now  func() time.Time

	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	keys  []Key
	until time.Time
}

// NewSigner returns a Signer of the keys of src.
func NewSigner(keys KeySource) *Signer {
	return &Signer{keys: keys, now: time.Now, cache: map[string]cached{}}
}

// signedFields are the header fields signed, each instance present (RFC
// 6376 §5.4.1): what a reader sees and what threads the message. The
// oversigned ones are listed once more than they appear, so that a field
// of that name added in transit (a second From, a Reply-To) breaks the
// signature instead of being shown as signed.
var signedFields = []struct {
	name string
	over bool
}{
	{"From", true},
	{"Reply-To", true},
	{"Subject", true},
	{"To", true},
	{"Cc", true},
	{"Sender", false},
	{"Date", false},
	{"Message-ID", false},
	{"In-Reply-To", false},
	{"References", false},
	{"MIME-Version", false},
	{"Content-Type", false},
	{"Content-Transfer-Encoding", false},
	{"Content-Language", false},
	{"Resent-From", false},
	{"Resent-Sender", false},
	{"Resent-To", false},
	{"Resent-Cc", false},
	{"Resent-Date", false},
	{"Resent-Message-ID", false},
	{"List-Id", false},
	{"List-Unsubscribe", false},
	{"List-Unsubscribe-Post", false},
	{"Autocrypt", false},
	{"OpenPGP", false},
}

// Sign returns the DKIM-Signature header fields of msg as sent by a member
// of domain, one per active key (Ed25519 first, then RSA), each ending in
// CRLF, to be prepended to msg; nil, nil when the domain has no keys.
// Canonicalization is relaxed/relaxed, the whole body is signed (no l=),
// t= is the signing time and no x= is set: a message delayed in a queue
// for days must still verify.
func (s *Signer) Sign(ctx context.Context, domain string, msg []byte) ([]byte, error) {
	keys, err := s.active(ctx, strings.TrimSuffix(strings.ToLower(domain), "."))
	if err != nil || len(keys) == 0 {
		return nil, err
	}
	fields := headerKeys(msg)
	var out bytes.Buffer
	for _, k := range keys {
		sg, err := dkim.NewSigner(&dkim.SignOptions{
			Domain:                 k.Domain,
			Selector:               k.Selector,
			Signer:                 k.Private,
			Hash:                   crypto.SHA256,
			HeaderCanonicalization: dkim.CanonicalizationRelaxed,
			BodyCanonicalization:   dkim.CanonicalizationRelaxed,
			HeaderKeys:             fields,
		})
		if err != nil {
			return nil, fmt.Errorf("dkim: sign for %s with %s: %w", k.Domain, k.Selector, err)
		}
		_, err = sg.Write(msg)
		if cerr := sg.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("dkim: sign for %s with %s: %w", k.Domain, k.Selector, err)
		}
		out.WriteString(sg.Signature())
	}
	return out.Bytes(), nil
}

// active returns the domain's keys from the cache, or from the source.
func (s *Signer) active(ctx context.Context, domain string) ([]Key, error) {
	now := s.now()
	s.mu.Lock()
	c, ok := s.cache[domain]
	s.mu.Unlock()
	if ok && now.Before(c.until) {
		return c.keys, nil
	}
	keys, err := s.keys.ActiveDKIMKeys(ctx, domain)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if len(s.cache) >= cacheMax {
		clear(s.cache)
	}
	s.cache[domain] = cached{keys: keys, until: now.Add(cacheTTL)}
	s.mu.Unlock()
	return keys, nil
}

// headerKeys is the h= list for msg: each signed field as many times as it
// appears, once more for the oversigned ones.
func headerKeys(msg []byte) []string {
	count := map[string]int{}
	for _, name := range fieldNames(msg) {
		count[strings.ToLower(name)]++
	}
	var keys []string
	for _, f := range signedFields {
		n := count[strings.ToLower(f.name)]
		if f.over {
			n++
		}
		for range n {
			keys = append(keys, f.name)
		}
	}
	return keys
}

// fieldNames returns the names of the header fields of msg, in order. Lines
// may end in CRLF or LF; a line starting with white space continues the
// field above it.
func fieldNames(msg []byte) []string {
	var names []string
	for len(msg) > 0 {
		line := msg
		if i := bytes.IndexByte(msg, '\n'); i >= 0 {
			line, msg = msg[:i], msg[i+1:]
		} else {
			msg = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			break // the end of the header
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue
		}
		if name, _, ok := bytes.Cut(line, []byte(":")); ok {
			names = append(names, string(bytes.TrimRight(name, " \t")))
		}
	}
	return names
}
