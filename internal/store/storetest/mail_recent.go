package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/mailstore"
)

// testMailRecent: ClaimRecent hands each message to exactly one claimer
// (IMAP's \Recent, RFC 3501 §2.3.2), whatever brought it (APPEND, COPY,
// MOVE), and claims racing with appends neither overlap nor miss a UID.
func testMailRecent(t *testing.T, e *MailEnv) {
	ctx := context.Background()
	m := e.NewMember(t)
	box := e.Create(t, m, "Recent")
	wantEq(t, "new mailbox's RecentUID", box.RecentUID, uint32(1))
	claim := func(want string) {
		t.Helper()
		first, next, err := e.Mail.ClaimRecent(ctx, box)
		if err != nil {
			t.Fatal(err)
		}
		wantEq(t, "claim", fmt.Sprintf("%d:%d", first, next), want)
	}
	e.Append(t, box.ID, "one")
	e.Append(t, box.ID, "two")
	wantEq(t, "RecentUID before a claim", e.Box(t, m, "Recent").RecentUID, uint32(1))
	counts := func(want uint32) {
		t.Helper()
		c, err := e.Mail.Counts(ctx, box.ID)
		if err != nil {
			t.Fatal(err)
		}
		wantEq(t, "Counts.Recent", c.Recent, want)
	}
	counts(2)
	claim("1:3")
	counts(0)
	claim("3:3")
	wantEq(t, "RecentUID after the claim", e.Box(t, m, "Recent").RecentUID, uint32(3))
	opened, _, err := e.Mail.Open(ctx, m, "Recent")
	if err != nil {
		t.Fatal(err)
	}
	wantEq(t, "Open's RecentUID", opened.RecentUID, uint32(3))

	other := e.Create(t, m, "Other")
	e.Append(t, other.ID, "a")
	e.Append(t, other.ID, "b")
	e.Append(t, box.ID, "three")
	if _, _, _, err := e.Mail.Copy(ctx, other.ID, []uint32{1}, box.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := e.Mail.Move(ctx, other.ID, []uint32{2}, box.ID); err != nil {
		t.Fatal(err)
	}
	claim("3:6")
	for _, missing := range []mailstore.Mailbox{{ID: 1 << 40}, {ID: 1 << 40, MemberID: m, RecentUID: 1, UIDNext: 9}} {
		if _, _, err := e.Mail.ClaimRecent(ctx, missing); account.ErrorCode(err) != account.ENOTFOUND {
			t.Errorf("claim on a missing mailbox %+v: %v", missing, err)
		}
	}

	// Appends and claims at once: every UID is claimed exactly once.
	var mu sync.Mutex
	claimed := map[uint32]int{}
	take := func() error {
		first, next, err := e.Mail.ClaimRecent(ctx, box)
		mu.Lock()
		for u := first; u < next; u++ {
			claimed[u]++
		}
		mu.Unlock()
		return err
	}
	errs := parallel(16, func(i int) error {
		if i%2 == 0 {
			_, err := e.Mail.Append(ctx, box.ID, nil, EnforcedDate, []byte(fmt.Sprint("race ", i)))
			return err
		}
		return take()
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := take(); err != nil {
		t.Fatal(err)
	}
	next := e.Box(t, m, "Recent").UIDNext
	for u := uint32(6); u < next; u++ {
		if claimed[u] != 1 {
			t.Errorf("UID %d claimed %d times", u, claimed[u])
		}
	}
	wantEq(t, "claimed", len(claimed), int(next-6))
}
