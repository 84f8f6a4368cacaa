package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/internal/account"
)

// fakeSessions records what a publisher writes.
type fakeSessions struct {
	writes []string // "full|delta opened=[ids] closed=[ids]"
	fail   error
	known  bool
}

func (f *fakeSessions) PublishSessions(ctx context.Context, node string, at, staleBefore time.Time, full bool, opened []account.LiveSession, closed []int64) (bool, error) {
	var ids []int64
	for _, s := range opened {
		ids = append(ids, s.ID)
	}
	slices.Sort(ids)
	kind := "delta"
	if full {
		kind = "full"
	}
	f.writes = append(f.writes, fmt.Sprintf("%s opened=%v closed=%v", kind, ids, closed))
	return f.known, f.fail
}

func (f *fakeSessions) ForgetNode(ctx context.Context, node string) error { return nil }

func (f *fakeSessions) LiveSessionsOf(ctx context.Context, memberID int64, aliveAfter time.Time) ([]account.LiveSession, error) {
	return nil, nil
}

// TestPublisher: the first write is the whole set; then only the
// changes, a session opened and closed in between never written; after a
// failed write, or when the store lost the node, the whole set again.
func TestPublisher(t *testing.T) {
	st := &fakeSessions{}
	p := newPublisher(st, time.Second, slog.New(slog.DiscardHandler), time.Now)
	if !strings.Contains(p.node, "-") {
		t.Errorf("node %q: no host part", p.node)
	}
	s := func(id int64) account.LiveSession { return account.LiveSession{ID: id, MemberID: 7, Protocol: "imap"} }
	p.open(s(1))
	p.open(s(2))
	p.close(1)
	p.flush()
	st.known = true
	p.open(s(3))
	p.close(2)
	p.open(s(4))
	p.close(4) // opened and closed between two writes
	p.flush()
	st.fail = errors.New("database down")
	p.open(s(5))
	p.flush()
	st.fail = nil
	p.flush()
	st.known = false // the node's row was lost
	p.close(3)
	p.flush()
	p.flush()
	want := []string{
		"full opened=[2] closed=[]",
		"delta opened=[3] closed=[2]",
		"delta opened=[5] closed=[]",
		"full opened=[3 5] closed=[]",
		"delta opened=[] closed=[3]",
		"full opened=[5] closed=[]",
	}
	if strings.Join(st.writes, "\n") != strings.Join(want, "\n") {
		t.Errorf("writes:\n%s\nwant:\n%s", strings.Join(st.writes, "\n"), strings.Join(want, "\n"))
	}
}
