package imapserver

import (
	"math/rand/v2"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/postern/postern/internal/mailstore"
)

// numRecent, which visits only the recent ranges, counts what testing every
// message with isRecent counts: random views with gaps and messages gone,
// random claimed ranges ("*" included), with and without EXAMINE's
// recentFrom overlapping them.
func TestNumRecentCountsEveryRecentMessage(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		sel := &selected{}
		uid := uint32(0)
		for range r.IntN(60) {
			uid += 1 + uint32(r.IntN(3))
			sel.msgs = append(sel.msgs, viewMsg{MessageInfo: &mailstore.MessageInfo{UID: uid}, gone: r.IntN(5) == 0})
		}
		for range r.IntN(4) {
			lo := 1 + uint32(r.IntN(int(uid)+5))
			hi := lo + uint32(r.IntN(10))
			if r.IntN(6) == 0 {
				hi = 0
			}
			sel.recent.AddRange(imap.UID(lo), imap.UID(hi))
		}
		if r.IntN(3) == 0 {
			sel.recentFrom = 1 + uint32(r.IntN(int(uid)+5))
		}
		var want uint32
		for i := range sel.msgs {
			if !sel.msgs[i].gone && sel.isRecent(sel.msgs[i].UID) {
				want++
			}
		}
		if got := sel.numRecent(); got != want {
			t.Fatalf("numRecent %d, want %d (recent %v, from %d)", got, want, sel.recent, sel.recentFrom)
		}
	}
}
