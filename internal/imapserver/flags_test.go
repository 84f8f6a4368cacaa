package imapserver

import (
	"fmt"
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

// summarize finds what learning every message's flags and looking for the
// first without \Seen find, whatever the order and sharing of the sets.
func TestSummarizeListing(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	sets := [][]string{nil, {`\Seen`}, {`$Forwarded`, `\Seen`}, {`$label1`}, {`$Label1`, `\Flagged`}, {`Work`, `\Answered`, `\Seen`}}
	for range 500 {
		var infos []mailstore.MessageInfo
		for range r.IntN(40) {
			f := sets[r.IntN(len(sets))]
			if r.IntN(2) == 0 {
				f = append([]string(nil), f...) // an equal set, not the same slice
			}
			infos = append(infos, mailstore.MessageInfo{Flags: f})
		}
		want := &selected{}
		var firstUnseen uint32
		for i := range infos {
			want.learnKeywords(infos[i].Flags)
			if firstUnseen == 0 && !hasFlag(infos[i].Flags, `\Seen`) {
				firstUnseen = uint32(i + 1)
			}
		}
		got := &selected{}
		sum := summarize(infos)
		got.learnKeywords(sum.kwList)
		if fmt.Sprint(got.kwList) != fmt.Sprint(want.kwList) || sum.firstUnseen != firstUnseen {
			t.Fatalf("summary %v %d, want %v %d", got.kwList, sum.firstUnseen, want.kwList, firstUnseen)
		}
	}
}
