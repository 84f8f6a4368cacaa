package imapserver

import (
	"fmt"
	"math/rand/v2"
	"slices"
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
		sel := &selected{gone: map[uint32]bool{}}
		uid := uint32(0)
		var msgs []mailstore.MessageInfo
		for range r.IntN(600) {
			uid += 1 + uint32(r.IntN(3))
			msgs = append(msgs, mailstore.MessageInfo{UID: uid})
			if r.IntN(5) == 0 {
				sel.gone[uid] = true
			}
		}
		sel.list = mailstore.NewListing(msgs)
		for range r.IntN(4) {
			lo := 1 + uint32(r.IntN(int(uid)+5))
			hi := lo + uint32(r.IntN(300))
			if r.IntN(6) == 0 {
				hi = 0
			}
			sel.recent.AddRange(imap.UID(lo), imap.UID(hi))
		}
		if r.IntN(3) == 0 {
			sel.recentFrom = 1 + uint32(r.IntN(int(uid)+5))
		}
		var want uint32
		for i := range sel.count() {
			if !sel.isGone(i) && sel.isRecent(sel.msg(i).UID) {
				want++
			}
		}
		if got := sel.numRecent(); got != want {
			t.Fatalf("numRecent %d, want %d (recent %v, from %d)", got, want, sel.recent, sel.recentFrom)
		}
	}
}

// A listing's summary, made of its chunks' summaries, is what SELECT
// finds learning every message's flags and looking for the first without
// \Seen, whatever the order and sharing of the sets; and so is the summary
// of a listing made from it by a change.
func TestSummarizeListing(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	sets := [][]string{nil, {`\Seen`}, {`$Forwarded`, `\Seen`}, {`$label1`}, {`$Label1`, `\Flagged`}, {`Work`, `\Answered`, `\Seen`}}
	for range 500 {
		var infos []mailstore.MessageInfo
		for range r.IntN(700) {
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
		for i := range infos {
			infos[i].UID = uint32(i + 1)
		}
		list := mailstore.NewListing(infos)
		for _, l := range []mailstore.Listing{list, list} { // the second time from the chunks' summaries
			got := &selected{}
			sum := l.Summary()
			got.learnKeywords(sum.Keywords)
			if fmt.Sprint(got.kwList) != fmt.Sprint(want.kwList) || uint32(sum.FirstUnseen+1) != firstUnseen {
				t.Fatalf("summary %v %d, want %v %d", got.kwList, sum.FirstUnseen+1, want.kwList, firstUnseen)
			}
		}
		if len(infos) > 0 {
			// The last message unseen and labelled: the changed chunk's
			// summary is new, the others' are kept.
			m := infos[len(infos)-1]
			m.Flags = []string{"$Late"}
			changed, _ := list.Replace([]mailstore.MessageInfo{m})
			sum := changed.Summary()
			if !slices.Contains(sum.Keywords, "$Late") || sum.FirstUnseen < 0 || (firstUnseen == 0 && sum.FirstUnseen != len(infos)-1) {
				t.Fatalf("after a change: %+v (first unseen before %d)", sum, firstUnseen)
			}
		}
	}
}
