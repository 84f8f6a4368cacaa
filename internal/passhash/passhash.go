// Package passhash hashes main passwords with argon2id and bounds how many
// hashes run at once, so that a flood of logins cannot exhaust memory: each
// hash takes Memory KiB, and at most Concurrency run together.
package passhash

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"
)

// Params of argon2id. The defaults are OWASP's: m=19 MiB, t=2, p=1.
type Params struct {
	Memory      uint32 // KiB
	Time        uint32
	Threads     uint8
	Concurrency int // hashes running at once; the rest wait
}

// Default are the OWASP Password Storage Cheat Sheet parameters.
var Default = Params{Memory: 19 * 1024, Time: 2, Threads: 1}

// DefaultConcurrency is half the CPUs Go may use, at least one. Hashing is
// what a flood of wrong passwords costs; with one hash per CPU a flood kept
// every CPU busy and correct app-password logins, which need no hash, fell to
// a sixth of their throughput (bench/, docs/benchmarks.md). Half the CPUs
// leaves the other half to everything else.
func DefaultConcurrency() int { return max(1, runtime.GOMAXPROCS(0)/2) }

// Hasher hashes and verifies main passwords.
type Hasher struct {
	p       Params
	slots   chan struct{}
	waiting atomic.Int32 // callers blocked in acquire
	dummy   string       // verified against for unknown users, so they cost the same
}

// New returns a Hasher; Concurrency 0 means DefaultConcurrency.
func New(p Params) *Hasher {
	if p.Concurrency <= 0 {
		p.Concurrency = DefaultConcurrency()
	}
	h := &Hasher{p: p, slots: make(chan struct{}, p.Concurrency)}
	h.dummy = encode(p, make([]byte, 16), h.derive("postern-dummy-password", make([]byte, 16), p))
	return h
}

// ErrMismatch is returned by Verify for a wrong password.
var ErrMismatch = errors.New("passhash: password does not match")

// Hash returns a PHC-format argon2id hash of pw with a random 16-byte salt.
func (h *Hasher) Hash(ctx context.Context, pw string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.done(time.Now())
	salt := make([]byte, 16)
	rand.Read(salt)
	return encode(h.p, salt, h.derive(pw, salt, h.p)), nil
}

// generated are the argon2id parameters of HashGenerated: the least the
// format allows.
var generated = Params{Memory: 64, Time: 1, Threads: 1}

// HashGenerated hashes a password drawn from crypto/rand with at least 100
// bits of entropy (an administrator's one-time password): its strength is
// its entropy, which no offline search can cover at any hash speed, so the
// memory-hard cost that protects passwords people choose buys nothing and
// would make importing ten thousand members take hours. The result is an
// ordinary argon2id PHC string that Verify reads.
func (h *Hasher) HashGenerated(pw string) string {
	salt := make([]byte, 16)
	rand.Read(salt)
	return encode(generated, salt, h.derive(pw, salt, generated))
}

// Verify checks pw against encoded; with encoded == "" it verifies against a
// dummy hash so that the cost is the same and the answer is ErrMismatch.
func (h *Hasher) Verify(ctx context.Context, encoded, pw string) error {
	if encoded == "" {
		encoded = h.dummy
		pw = "\x00" + pw // can never match the dummy
	}
	p, salt, want, err := decode(encoded)
	if err != nil {
		return err
	}
	if err := h.acquire(ctx); err != nil {
		return err
	}
	defer h.done(time.Now())
	got := h.derive(pw, salt, p)
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return ErrMismatch
	}
	return nil
}

func (h *Hasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	default:
	}
	h.waiting.Add(1)
	defer h.waiting.Add(-1)
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// done releases the slot of a hash that started at start. When other hashes
// are waiting (a burst, or a flood of wrong main passwords), the slot stays
// taken, idle, for as long again as the hash took: under contention hashing
// uses at most half of its Concurrency CPUs, and logins that need no hash
// (app passwords) keep the rest. The caller itself returns at once; only the
// next hash waits. (bench/ flood figure: with the slot released at once,
// app-password logins kept under half their throughput.)
func (h *Hasher) done(start time.Time) {
	if h.waiting.Load() > 0 {
		time.AfterFunc(time.Since(start), h.release)
		return
	}
	h.release()
}

func (h *Hasher) release() { <-h.slots }

func (h *Hasher) derive(pw string, salt []byte, p Params) []byte {
	return argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, 32)
}

func encode(p Params, salt, key []byte) string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

func decode(s string) (p Params, salt, key []byte, err error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return p, nil, nil, errors.New("passhash: not an argon2id hash")
	}
	var v int
	if _, err = fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return p, nil, nil, errors.New("passhash: unsupported argon2 version")
	}
	if _, err = fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return p, nil, nil, fmt.Errorf("passhash: bad parameters: %w", err)
	}
	if p.Memory > 1<<21 || p.Time > 64 || p.Threads == 0 { // refuse hashes that would exhaust us
		return p, nil, nil, errors.New("passhash: parameters out of range")
	}
	b64 := base64.RawStdEncoding
	if salt, err = b64.DecodeString(parts[4]); err != nil {
		return p, nil, nil, fmt.Errorf("passhash: bad salt: %w", err)
	}
	if key, err = b64.DecodeString(parts[5]); err != nil || len(key) == 0 {
		return p, nil, nil, errors.New("passhash: bad key")
	}
	return p, salt, key, nil
}
