package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/internal/store/sqlstore"
)

// RunACME is the conformance suite of what the ACME client keeps
// (internal/acme): objects by slash-separated key, and leases between nodes.
func RunACME(t *testing.T, open func(testing.TB) *sqlstore.DB) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, *sqlstore.DB)
	}{
		{"Objects", testACMEObjects},
		{"Folders", testACMEFolders},
		{"LockLease", testACMELockLease},
		{"LockRace", testACMELockRace},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

var acmeT0 = time.Date(2026, 12, 3, 10, 0, 0, 123456000, time.UTC)

func testACMEObjects(t *testing.T, db *sqlstore.DB) {
	ctx := context.Background()
	if _, _, err := db.ACMEGet(ctx, "acme/a.json"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing object: err = %v, want fs.ErrNotExist", err)
	}
	bin := []byte{0, 1, 2, 0xff, '\n'}
	if err := db.ACMEPut(ctx, "acme/a.json", bin, acmeT0); err != nil {
		t.Fatal(err)
	}
	got, at, err := db.ACMEGet(ctx, "acme/a.json")
	if err != nil || !bytes.Equal(got, bin) || !at.Equal(acmeT0) {
		t.Fatalf("get = %q, %v, %v; want %q, %v", got, at, err, bin, acmeT0)
	}
	// A second store replaces the value and its time.
	if err := db.ACMEPut(ctx, "acme/a.json", []byte("v2"), acmeT0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, at, err = db.ACMEGet(ctx, "acme/a.json")
	if err != nil || string(got) != "v2" || !at.Equal(acmeT0.Add(time.Hour)) {
		t.Fatalf("after replace: get = %q, %v, %v", got, at, err)
	}
	// An empty value is an object.
	if err := db.ACMEPut(ctx, "empty", nil, acmeT0); err != nil {
		t.Fatal(err)
	}
	if got, _, err := db.ACMEGet(ctx, "empty"); err != nil || len(got) != 0 {
		t.Fatalf("empty object: %q, %v", got, err)
	}
	if err := db.ACMEDelete(ctx, "acme/a.json"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.ACMEGet(ctx, "acme/a.json"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("deleted object: err = %v", err)
	}
	if err := db.ACMEDelete(ctx, "acme/a.json"); err != nil {
		t.Fatalf("deleting what is gone: %v", err)
	}
}

func testACMEFolders(t *testing.T, db *sqlstore.DB) {
	ctx := context.Background()
	// Names with LIKE's wildcards and a sibling that shares the prefix
	// without the slash: none of them is under "certificates/ca_1".
	keys := []string{
		"certificates/ca_1/mail.example.com/mail.example.com.crt",
		"certificates/ca_1/mail.example.com/mail.example.com.key",
		"certificates/ca_1/mta-sts.example.org/mta-sts.example.org.crt",
		"certificates/ca_12/other/other.crt",
		"certificates/caX1/x/x.crt",
		"certificates/ca_1",
		"certificates/ca%1/y.crt",
		"users/me@example.com/key",
	}
	for _, k := range keys {
		if err := db.ACMEPut(ctx, k, []byte(k), acmeT0); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.ACMEKeys(ctx, "certificates/ca_1")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{keys[0], keys[1], keys[2]}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("keys under certificates/ca_1 = %q, want %q", got, want)
	}
	all, err := db.ACMEKeys(ctx, "")
	if err != nil || len(all) != len(keys) {
		t.Fatalf("all keys = %q, %v", all, err)
	}
	if err := db.ACMEDelete(ctx, "certificates/ca_1/mail.example.com"); err != nil {
		t.Fatal(err)
	}
	got, _ = db.ACMEKeys(ctx, "certificates/ca_1")
	if !reflect.DeepEqual(got, []string{keys[2]}) {
		t.Fatalf("after deleting the folder mail.example.com: %q", got)
	}
	// Deleting a folder takes the key of the same name too, and nothing
	// that merely shares its prefix.
	if err := db.ACMEDelete(ctx, "certificates/ca_1"); err != nil {
		t.Fatal(err)
	}
	got, _ = db.ACMEKeys(ctx, "")
	want = []string{keys[6], keys[4], keys[3], keys[7]}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after deleting certificates/ca_1: %q, want %q", got, want)
	}
}

func testACMELockLease(t *testing.T, db *sqlstore.DB) {
	ctx := context.Background()
	lease := time.Minute
	ok, err := db.ACMETryLock(ctx, "issue_mail.example.com", "node-a", acmeT0, acmeT0.Add(lease))
	if err != nil || !ok {
		t.Fatalf("first lock: %v, %v", ok, err)
	}
	// Another node waits while the lease runs, however often it asks.
	for _, at := range []time.Time{acmeT0, acmeT0.Add(lease - time.Second)} {
		if ok, err := db.ACMETryLock(ctx, "issue_mail.example.com", "node-b", at, at.Add(lease)); err != nil || ok {
			t.Fatalf("node-b at %v while node-a holds: %v, %v", at, ok, err)
		}
	}
	// Other names are independent.
	if ok, err := db.ACMETryLock(ctx, "issue_other", "node-b", acmeT0, acmeT0.Add(lease)); err != nil || !ok {
		t.Fatalf("other name: %v, %v", ok, err)
	}
	// The holder extends its lease; node-b still waits past the first end.
	if err := db.ACMERenewLock(ctx, "issue_mail.example.com", "node-a", acmeT0.Add(2*lease)); err != nil {
		t.Fatal(err)
	}
	if ok, _ := db.ACMETryLock(ctx, "issue_mail.example.com", "node-b", acmeT0.Add(lease+time.Second), acmeT0.Add(3*lease)); ok {
		t.Fatal("node-b took an extended lease")
	}
	if err := db.ACMERenewLock(ctx, "issue_mail.example.com", "node-b", acmeT0.Add(3*lease)); err == nil {
		t.Fatal("node-b renewed a lease it does not hold")
	}
	// node-b's unlock leaves node-a's lease alone; node-a's own ends it.
	if err := db.ACMEUnlock(ctx, "issue_mail.example.com", "node-b"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := db.ACMETryLock(ctx, "issue_mail.example.com", "node-b", acmeT0, acmeT0.Add(lease)); ok {
		t.Fatal("node-b's unlock released node-a's lease")
	}
	if err := db.ACMEUnlock(ctx, "issue_mail.example.com", "node-a"); err != nil {
		t.Fatal(err)
	}
	if ok, err := db.ACMETryLock(ctx, "issue_mail.example.com", "node-b", acmeT0, acmeT0.Add(lease)); err != nil || !ok {
		t.Fatalf("after unlock: %v, %v", ok, err)
	}
	// A dead holder's lease is taken over once it has run out, and the
	// dead holder can no longer renew it.
	later := acmeT0.Add(lease + time.Second)
	if ok, err := db.ACMETryLock(ctx, "issue_mail.example.com", "node-c", later, later.Add(lease)); err != nil || !ok {
		t.Fatalf("taking over an expired lease: %v, %v", ok, err)
	}
	if err := db.ACMERenewLock(ctx, "issue_mail.example.com", "node-b", later.Add(lease)); err == nil {
		t.Fatal("the expired holder renewed a lease taken over")
	}
}

// testACMELockRace: of many nodes asking at once, exactly one gets the lease.
func testACMELockRace(t *testing.T, db *sqlstore.DB) {
	ctx := context.Background()
	const n = 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	var winners []string
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			holder := fmt.Sprintf("node-%d", i)
			ok, err := db.ACMETryLock(ctx, "race", holder, acmeT0, acmeT0.Add(time.Minute))
			if err != nil {
				errs <- err
				return
			}
			if ok {
				mu.Lock()
				winners = append(winners, holder)
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(winners) != 1 {
		t.Fatalf("winners = %q, want exactly one", winners)
	}
}
