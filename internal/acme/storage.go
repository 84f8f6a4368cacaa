package acme

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
)

// Store keeps the ACME client's objects and leases (sqlstore.DB): in the
// database, so that every node sharing it uses the certificates one node
// obtained and answers the challenges of another's order.
type Store interface {
	ACMEPut(ctx context.Context, key string, value []byte, at time.Time) error
	// ACMEGet fails with fs.ErrNotExist for a missing key.
	ACMEGet(ctx context.Context, key string) ([]byte, time.Time, error)
	// ACMEDelete deletes key and every key under the folder key.
	ACMEDelete(ctx context.Context, key string) error
	// ACMEKeys lists every key under the folder prefix ("" for all).
	ACMEKeys(ctx context.Context, prefix string) ([]string, error)
	ACMETryLock(ctx context.Context, name, holder string, now, expires time.Time) (bool, error)
	ACMERenewLock(ctx context.Context, name, holder string, expires time.Time) error
	ACMEUnlock(ctx context.Context, name, holder string) error
}

// Lease timing: a node that dies holding a lock delays the others by at
// most leaseTime; the holder extends its lease every leaseTime/3, so a
// slow database round trip does not lose it.
const (
	leaseTime    = time.Minute
	lockPollTime = 500 * time.Millisecond
)

// storage is certmagic.Storage (with TryLocker and LockLeaseRenewer) over a
// Store.
type storage struct {
	st     Store
	now    func() time.Time
	prefix string // this process's part of each holder name
	seq    atomic.Uint64

	mu   sync.Mutex
	held map[string]*heldLock // by lock name: the locks this process holds
}

type heldLock struct {
	holder string
	stop   context.CancelFunc // stops the lease's renewal
}

var (
	_ certmagic.Storage          = (*storage)(nil)
	_ certmagic.TryLocker        = (*storage)(nil)
	_ certmagic.LockLeaseRenewer = (*storage)(nil)
)

func newStorage(st Store) *storage {
	b := make([]byte, 8)
	rand.Read(b)
	return &storage{st: st, now: time.Now, prefix: hex.EncodeToString(b), held: map[string]*heldLock{}}
}

func (s *storage) Store(ctx context.Context, key string, value []byte) error {
	return s.st.ACMEPut(ctx, key, value, s.now())
}

func (s *storage) Load(ctx context.Context, key string) ([]byte, error) {
	v, _, err := s.st.ACMEGet(ctx, key)
	return v, err
}

func (s *storage) Delete(ctx context.Context, key string) error {
	return s.st.ACMEDelete(ctx, key)
}

func (s *storage) Exists(ctx context.Context, key string) bool {
	if _, _, err := s.st.ACMEGet(ctx, key); err == nil {
		return true
	}
	keys, err := s.st.ACMEKeys(ctx, key)
	return err == nil && len(keys) > 0
}

// List returns the keys under path; without recursive, only its direct
// children, a folder standing for the keys under it.
func (s *storage) List(ctx context.Context, path string, recursive bool) ([]string, error) {
	path = strings.TrimSuffix(path, "/")
	keys, err := s.st.ACMEKeys(ctx, path)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("list %s: %w", path, fs.ErrNotExist)
	}
	if recursive {
		return keys, nil
	}
	var out []string
	seen := map[string]bool{}
	for _, k := range keys {
		rest := k
		if path != "" {
			rest = strings.TrimPrefix(k, path+"/")
		}
		child, _, _ := strings.Cut(rest, "/")
		if path != "" {
			child = path + "/" + child
		}
		if !seen[child] {
			seen[child] = true
			out = append(out, child)
		}
	}
	return out, nil
}

func (s *storage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	v, at, err := s.st.ACMEGet(ctx, key)
	if err == nil {
		return certmagic.KeyInfo{Key: key, Modified: at, Size: int64(len(v)), IsTerminal: true}, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return certmagic.KeyInfo{}, err
	}
	keys, lerr := s.st.ACMEKeys(ctx, key)
	if lerr != nil {
		return certmagic.KeyInfo{}, lerr
	}
	if len(keys) == 0 {
		return certmagic.KeyInfo{}, err
	}
	return certmagic.KeyInfo{Key: key, IsTerminal: false}, nil
}

// Lock waits until this process holds the lock name: every Lock call has a
// holder name of its own, so two goroutines of one process exclude each
// other as two nodes do.
func (s *storage) Lock(ctx context.Context, name string) error {
	for {
		ok, err := s.TryLock(ctx, name)
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(lockPollTime):
		}
	}
}

func (s *storage) TryLock(ctx context.Context, name string) (bool, error) {
	holder := fmt.Sprintf("%s-%d", s.prefix, s.seq.Add(1))
	now := s.now()
	ok, err := s.st.ACMETryLock(ctx, name, holder, now, now.Add(leaseTime))
	if err != nil || !ok {
		return false, err
	}
	// The lease is extended in the background until Unlock: obtaining a
	// certificate may take longer than one lease.
	rctx, stop := context.WithCancel(context.Background())
	s.mu.Lock()
	s.held[name] = &heldLock{holder: holder, stop: stop}
	s.mu.Unlock()
	go func() {
		t := time.NewTicker(leaseTime / 3)
		defer t.Stop()
		for {
			select {
			case <-rctx.Done():
				return
			case <-t.C:
				// A failure is retried at the next tick; the lease
				// still has two thirds of its time to run.
				_ = s.st.ACMERenewLock(rctx, name, holder, s.now().Add(leaseTime))
			}
		}
	}()
	return true, nil
}

func (s *storage) Unlock(ctx context.Context, name string) error {
	s.mu.Lock()
	h := s.held[name]
	delete(s.held, name)
	s.mu.Unlock()
	if h == nil {
		return fmt.Errorf("unlock %s: not held by this process", name)
	}
	h.stop()
	return s.st.ACMEUnlock(ctx, name, h.holder)
}

func (s *storage) RenewLockLease(ctx context.Context, name string, d time.Duration) error {
	s.mu.Lock()
	h := s.held[name]
	s.mu.Unlock()
	if h == nil {
		return fmt.Errorf("renew lock %s: not held by this process", name)
	}
	return s.st.ACMERenewLock(ctx, name, h.holder, s.now().Add(max(d, leaseTime)))
}
