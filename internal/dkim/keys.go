package dkim

import (
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"
)

// StoredKey is a key as the store keeps it: the private key sealed.
type StoredKey struct {
	Domain, Selector string
	Algorithm        string // Ed25519 or RSA
	Sealed           []byte // the sealed PKCS #8 private key; nil once retired
	Public           string // the DNS TXT value "v=DKIM1; k=…; p=…"
	CreatedAt        time.Time
	Active           bool      // signs new mail
	RetiredAt        time.Time // zero while the key is published
}

// Published says whether the key's TXT record must stay in DNS: while it
// signs, and after, until it is retired, for mail signed before still in
// flight.
func (k StoredKey) Published() bool { return k.RetiredAt.IsZero() }

// State is "active", "published" (inactive, its record still needed) or
// "retired".
func (k StoredKey) State() string {
	switch {
	case k.Active:
		return "active"
	case k.Published():
		return "published"
	}
	return "retired"
}

// Errors of a Store.
var (
	// ErrSelectorTaken: the domain has (or had) a key of that selector.
	ErrSelectorTaken = errors.New("dkim: selector already used by the domain")
	// ErrNoKey: no inactive, unretired key of that selector.
	ErrNoKey = errors.New("dkim: no such inactive key")
)

// Store keeps the sealed keys; sqlstore implements it. Domain names are
// lower case.
type Store interface {
	// DKIMKeys returns every key of the domain, retired ones too, oldest
	// first; none for an unknown domain.
	DKIMKeys(ctx context.Context, domain string) ([]StoredKey, error)
	// AddDKIMKeys stores keys as the domain's active keys and makes the
	// keys active until then inactive (still published), in one
	// transaction. With onlyIfNone nothing is stored when the domain
	// already has an active key, and added is false. A selector the domain
	// used before: ErrSelectorTaken.
	AddDKIMKeys(ctx context.Context, domain string, keys []StoredKey, onlyIfNone bool) (added bool, err error)
	// RetireDKIMKey marks the inactive, published key retired at at and
	// erases its sealed private key: ErrNoKey when there is no such key.
	RetireDKIMKey(ctx context.Context, domain, selector string, at time.Time) error
	// DomainsWithoutDKIMKeys lists the domains that have no active key.
	DomainsWithoutDKIMKeys(ctx context.Context) ([]string, error)
}

// sealInfo is the HKDF info of the sealing key: it derives a key for this
// use only from the secret key file, whose bytes are also the app
// passwords' HMAC key. A new sealing format gets a new info string.
const sealInfo = "postern dkim v1"

// sealVersion is the first byte of a sealed key.
const sealVersion = 1

// Keyring makes, seals, unseals and rotates the keys of the domains in a
// Store. It implements KeySource.
type Keyring struct {
	store Store
	aead  cipher.AEAD
	Now   func() time.Time // time.Now unless a test sets it
}

// NewKeyring returns the keyring of st, sealing with a key derived from
// secret (the secret key file's bytes, at least 32).
func NewKeyring(st Store, secret []byte) (*Keyring, error) {
	aead, err := newAEAD(secret)
	if err != nil {
		return nil, err
	}
	return &Keyring{store: st, aead: aead, Now: time.Now}, nil
}

func newAEAD(secret []byte) (cipher.AEAD, error) {
	if len(secret) < 32 {
		return nil, errors.New("dkim: the secret key is shorter than 32 bytes")
	}
	key, err := hkdf.Key(sha256.New, secret, nil, sealInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("dkim: derive the sealing key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("dkim: sealing cipher: %w", err)
	}
	// A random 96-bit nonce per seal: keys are sealed a few times a year
	// per domain, far below GCM's limit for random nonces.
	return cipher.NewGCMWithRandomNonce(block)
}

// sealAD binds a sealed key to its domain and selector: a sealed key
// copied to another row does not open.
func sealAD(domain, selector string) []byte {
	return []byte(domain + "\x00" + selector)
}

func (r *Keyring) seal(domain, selector string, pkcs8 []byte) []byte {
	return r.aead.Seal([]byte{sealVersion}, nil, pkcs8, sealAD(domain, selector))
}

// errUnseal says which key does not open, never why in terms of its bytes.
func errUnseal(domain, selector string) error {
	return fmt.Errorf("dkim: the key %s of %s does not open: it was sealed with another secret key file (was the file replaced, or is this node's not the other nodes'?), or its row was changed", selector, domain)
}

func (r *Keyring) unseal(k StoredKey) (crypto.Signer, error) {
	if len(k.Sealed) < 1 || k.Sealed[0] != sealVersion {
		return nil, errUnseal(k.Domain, k.Selector)
	}
	der, err := r.aead.Open(nil, nil, k.Sealed[1:], sealAD(k.Domain, k.Selector))
	if err != nil {
		return nil, errUnseal(k.Domain, k.Selector)
	}
	defer clear(der)
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("dkim: the key %s of %s is not a PKCS #8 key", k.Selector, k.Domain)
	}
	var signer crypto.Signer
	switch p := priv.(type) {
	case ed25519.PrivateKey:
		if k.Algorithm == Ed25519 {
			signer = p
		}
	case *rsa.PrivateKey:
		if k.Algorithm == RSA {
			signer = p
		}
	}
	if signer == nil {
		return nil, fmt.Errorf("dkim: the key %s of %s is not an %s key", k.Selector, k.Domain, k.Algorithm)
	}
	// The published record must be this key's, or every signature fails.
	if pub, err := publicRecord(signer.Public()); err != nil || pub != k.Public {
		return nil, fmt.Errorf("dkim: the key %s of %s does not match its public record", k.Selector, k.Domain)
	}
	return signer, nil
}

// publicRecord is the DNS TXT value of a public key (RFC 6376 §3.6.1; the
// Ed25519 key raw, RFC 8463 §4.2; the RSA key as SubjectPublicKeyInfo).
func publicRecord(pub crypto.PublicKey) (string, error) {
	switch p := pub.(type) {
	case ed25519.PublicKey:
		return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(p), nil
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(p)
		if err != nil {
			return "", err
		}
		return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der), nil
	}
	return "", fmt.Errorf("dkim: unsupported public key %T", pub)
}

// ActiveDKIMKeys returns the domain's active keys, unsealed, Ed25519 first.
func (r *Keyring) ActiveDKIMKeys(ctx context.Context, domain string) ([]Key, error) {
	all, err := r.store.DKIMKeys(ctx, domain)
	if err != nil {
		return nil, err
	}
	var out []Key
	for _, k := range all {
		if !k.Active {
			continue
		}
		priv, err := r.unseal(k)
		if err != nil {
			return nil, err
		}
		out = append(out, Key{Domain: k.Domain, Selector: k.Selector, Algorithm: k.Algorithm,
			Private: priv, Public: k.Public, CreatedAt: k.CreatedAt})
	}
	sort.SliceStable(out, func(i, j int) bool { return algoOrder(out[i].Algorithm) < algoOrder(out[j].Algorithm) })
	return out, nil
}

func algoOrder(a string) int {
	if a == Ed25519 {
		return 0
	}
	return 1
}

// Keys returns every key of the domain, retired ones too, oldest first.
func (r *Keyring) Keys(ctx context.Context, domain string) ([]StoredKey, error) {
	return r.store.DKIMKeys(ctx, domain)
}

// pair is a newly generated Ed25519 and RSA key, not yet sealed.
type pair struct {
	ed  ed25519.PrivateKey
	rsa *rsa.PrivateKey
}

func generate() (pair, error) {
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return pair{}, fmt.Errorf("dkim: generate an Ed25519 key: %w", err)
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return pair{}, fmt.Errorf("dkim: generate an RSA key: %w", err)
	}
	return pair{ed: ed, rsa: rk}, nil
}

// Selectors are named by the month of their creation and their algorithm,
// p202612e (Ed25519) and p202612r (RSA); a second pair the same month gets
// p202612e2 and p202612r2, and so on. A selector is never reused by its
// domain, retired or not: a resolver may still hold its old record.
func selectors(at time.Time, used []StoredKey) (ed, rs string) {
	taken := map[string]bool{}
	for _, k := range used {
		taken[k.Selector] = true
	}
	base := "p" + at.UTC().Format("200601")
	for n := 1; ; n++ {
		sfx := ""
		if n > 1 {
			sfx = strconv.Itoa(n)
		}
		ed, rs = base+"e"+sfx, base+"r"+sfx
		if !taken[ed] && !taken[rs] {
			return ed, rs
		}
	}
}

// sealPair seals p for domain under selectors that none of used has.
func (r *Keyring) sealPair(domain string, p pair, used []StoredKey) ([]StoredKey, error) {
	now := r.Now().UTC()
	edSel, rsSel := selectors(now, used)
	var out []StoredKey
	for _, k := range []struct {
		sel, algo string
		priv      crypto.Signer
	}{{edSel, Ed25519, p.ed}, {rsSel, RSA, p.rsa}} {
		der, err := x509.MarshalPKCS8PrivateKey(k.priv)
		if err != nil {
			return nil, fmt.Errorf("dkim: encode the %s key: %w", k.algo, err)
		}
		pub, err := publicRecord(k.priv.Public())
		if err != nil {
			return nil, err
		}
		out = append(out, StoredKey{Domain: domain, Selector: k.sel, Algorithm: k.algo,
			Sealed: r.seal(domain, k.sel, der), Public: pub, CreatedAt: now, Active: true})
		clear(der)
	}
	return out, nil
}

// NewDomainKeys returns a new sealed pair for a domain that has no keys
// yet, for the store to insert with the domain.
func (r *Keyring) NewDomainKeys(domain string) ([]StoredKey, error) {
	p, err := generate()
	if err != nil {
		return nil, err
	}
	return r.sealPair(domain, p, nil)
}

// Rotate makes a new pair the domain's active keys and returns it; the
// keys active until then stay published, inactive, until retired.
func (r *Keyring) Rotate(ctx context.Context, domain string) ([]StoredKey, error) {
	keys, _, err := r.add(ctx, domain, false)
	return keys, err
}

// add generates a pair and stores it; with onlyIfNone only when the
// domain has no active key (added false otherwise). A selector taken by a
// rotation on another node meanwhile is retried under the next names.
func (r *Keyring) add(ctx context.Context, domain string, onlyIfNone bool) ([]StoredKey, bool, error) {
	p, err := generate()
	if err != nil {
		return nil, false, err
	}
	for attempt := 0; ; attempt++ {
		used, err := r.store.DKIMKeys(ctx, domain)
		if err != nil {
			return nil, false, err
		}
		keys, err := r.sealPair(domain, p, used)
		if err != nil {
			return nil, false, err
		}
		added, err := r.store.AddDKIMKeys(ctx, domain, keys, onlyIfNone)
		if errors.Is(err, ErrSelectorTaken) && attempt < 3 {
			continue
		}
		if err != nil || !added {
			return nil, false, err
		}
		return keys, true, nil
	}
}

// Retire retires an inactive key: its record may leave DNS and its sealed
// private key is erased. An active key cannot be retired; rotate first.
func (r *Keyring) Retire(ctx context.Context, domain, selector string) error {
	keys, err := r.store.DKIMKeys(ctx, domain)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k.Selector != selector {
			continue
		}
		switch {
		case k.Active:
			return fmt.Errorf("the DKIM key %s of %s signs its mail: rotate first ('postern domain dkim rotate %s'), then retire it a week later", selector, domain, domain)
		case !k.Published():
			return fmt.Errorf("the DKIM key %s of %s is already retired", selector, domain)
		}
		err := r.store.RetireDKIMKey(ctx, domain, selector, r.Now().UTC())
		if errors.Is(err, ErrNoKey) {
			return fmt.Errorf("the DKIM key %s of %s changed meanwhile; run 'postern domain dkim list %s' and try again", selector, domain, domain)
		}
		return err
	}
	return fmt.Errorf("%s has no DKIM key %s; 'postern domain dkim list %s' shows its keys", domain, selector, domain)
}

// EnsureKeys gives keys to every domain that has no active key (a domain
// created before signing existed), calling made for each. Nodes doing it
// at once give each domain one pair: the store adds a pair only to a
// domain still without keys.
func (r *Keyring) EnsureKeys(ctx context.Context, made func(domain string, keys []StoredKey)) error {
	domains, err := r.store.DomainsWithoutDKIMKeys(ctx)
	if err != nil {
		return err
	}
	for _, d := range domains {
		keys, added, err := r.add(ctx, d, true)
		if err != nil {
			return fmt.Errorf("make the DKIM keys of %s: %w", d, err)
		}
		if added && made != nil {
			made(d, keys)
		}
	}
	return nil
}
