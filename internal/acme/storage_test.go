package acme

import (
	"context"
	"errors"
	"io/fs"
	"reflect"
	"testing"

	"github.com/postern/postern/internal/store/storetest"
)

// The adapter's folders, as certmagic walks them (listing the certificates
// of a CA, cleaning up old ones).
func TestStorageFolders(t *testing.T) {
	ctx := context.Background()
	s := newStorage(storetest.OpenSQLite(t))
	for _, k := range []string{
		"certificates/ca/a.example/a.example.crt",
		"certificates/ca/a.example/a.example.key",
		"certificates/ca/b.example/b.example.crt",
		"acme/ca/users/x/x.json",
	} {
		if err := s.Store(ctx, k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.List(ctx, "certificates/ca", false)
	if want := []string{"certificates/ca/a.example", "certificates/ca/b.example"}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("List non-recursive = %q, %v; want %q", got, err, want)
	}
	got, err = s.List(ctx, "certificates/ca/", true)
	if len(got) != 3 || err != nil {
		t.Errorf("List recursive = %q, %v", got, err)
	}
	got, _ = s.List(ctx, "", false)
	if want := []string{"acme", "certificates"}; !reflect.DeepEqual(got, want) {
		t.Errorf("List of the root = %q, want %q", got, want)
	}
	if _, err := s.List(ctx, "nothing", false); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("List of a missing folder: %v", err)
	}
	if !s.Exists(ctx, "certificates/ca/a.example") || !s.Exists(ctx, "certificates/ca/a.example/a.example.crt") || s.Exists(ctx, "certificates/ca/a.ex") {
		t.Error("Exists: folders and keys exist, a prefix that is neither does not")
	}
	if ki, err := s.Stat(ctx, "certificates/ca/a.example"); err != nil || ki.IsTerminal {
		t.Errorf("Stat of a folder = %+v, %v", ki, err)
	}
	if ki, err := s.Stat(ctx, "certificates/ca/b.example/b.example.crt"); err != nil || !ki.IsTerminal || ki.Size != int64(len("certificates/ca/b.example/b.example.crt")) {
		t.Errorf("Stat of a key = %+v, %v", ki, err)
	}
	if _, err := s.Stat(ctx, "certificates/zz"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat of nothing: %v", err)
	}
	if _, err := s.Load(ctx, "certificates/zz"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of nothing: %v", err)
	}
}

// Two lock holders in one process exclude each other, as two nodes do.
func TestStorageLockInProcess(t *testing.T) {
	ctx := context.Background()
	s := newStorage(storetest.OpenSQLite(t))
	if err := s.Lock(ctx, "issue_cert_a"); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.TryLock(ctx, "issue_cert_a"); err != nil || ok {
		t.Fatalf("second TryLock while held = %v, %v", ok, err)
	}
	if err := s.RenewLockLease(ctx, "issue_cert_a", leaseTime); err != nil {
		t.Fatal(err)
	}
	if err := s.Unlock(ctx, "issue_cert_a"); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.TryLock(ctx, "issue_cert_a"); err != nil || !ok {
		t.Fatalf("TryLock after Unlock = %v, %v", ok, err)
	}
	s.Unlock(ctx, "issue_cert_a")
	if err := s.Unlock(ctx, "issue_cert_a"); err == nil {
		t.Error("Unlock of a lock not held succeeded")
	}
}
