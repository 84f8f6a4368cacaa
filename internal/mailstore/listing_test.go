package mailstore

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// model is the listing as a plain slice: every operation of Listing must
// give what the same operation on the slice gives.
func checkListing(t *testing.T, l Listing, want []MessageInfo) {
	t.Helper()
	if l.Len() != len(want) {
		t.Fatalf("Len %d, want %d", l.Len(), len(want))
	}
	for i := range want {
		if got := l.At(i); got.UID != want[i].UID || got.ModSeq != want[i].ModSeq || !slices.Equal(got.Flags, want[i].Flags) {
			t.Fatalf("At(%d) = %+v, want %+v", i, *got, want[i])
		}
	}
	if got := l.Messages(); len(got) != len(want) {
		t.Fatalf("Messages: %d", len(got))
	}
	var last uint32
	if len(want) > 0 {
		last = want[len(want)-1].UID
	}
	if l.LastUID() != last {
		t.Fatalf("LastUID %d, want %d", l.LastUID(), last)
	}
	for u := uint32(0); u <= last+2; u++ {
		wi, wok := slices.BinarySearchFunc(want, u, func(m MessageInfo, u uint32) int { return int(m.UID) - int(u) })
		if i, ok := l.Search(u); i != wi || ok != wok {
			t.Fatalf("Search(%d) = %d %v, want %d %v", u, i, ok, wi, wok)
		}
	}
	// Every chunk but the last is full: At depends on it.
	for c, ch := range l.chunks {
		if c < len(l.chunks)-1 && len(ch.msgs) != chunkLen || len(ch.msgs) == 0 {
			t.Fatalf("chunk %d of %d holds %d", c, len(l.chunks), len(ch.msgs))
		}
	}
	s := l.Summary()
	first, deleted := -1, 0
	var kws []string
	seen := map[string]bool{}
	for i, m := range want {
		if first < 0 && !slices.Contains(m.Flags, `\Seen`) {
			first = i
		}
		if slices.Contains(m.Flags, `\Deleted`) {
			deleted++
		}
		for _, f := range m.Flags {
			if f[0] != '\\' && !seen[f] {
				seen[f] = true
				kws = append(kws, f)
			}
		}
	}
	if s.FirstUnseen != first || !slices.Equal(s.Keywords, kws) || s.Deleted != deleted {
		t.Fatalf("Summary = %+v, want first unseen %d, keywords %v, %d deleted", s, first, kws, deleted)
	}
}

func TestListingAgainstSlice(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	flagSets := [][]string{nil, {`\Seen`}, {`\Seen`, "$Label1"}, {"Work"}, {`\Flagged`}, {`\Deleted`, `\Seen`}}
	var want []MessageInfo
	uid := uint32(0)
	add := func(n int) []MessageInfo {
		var out []MessageInfo
		for range n {
			uid += uint32(1 + r.IntN(3))
			out = append(out, MessageInfo{UID: uid, Flags: flagSets[r.IntN(len(flagSets))], ModSeq: 1})
		}
		return out
	}
	first := add(3*chunkLen + 17)
	want = slices.Clone(first)
	l := NewListing(first)
	checkListing(t, l, want)
	for step := range 200 {
		before, beforeWant := l, slices.Clone(want)
		switch r.IntN(4) {
		case 0, 1: // flags of some messages
			var infos []MessageInfo
			for i := 0; i < len(want); i += 1 + r.IntN(40) {
				m := want[i]
				m.Flags, m.ModSeq = flagSets[r.IntN(len(flagSets))], uint64(step+2)
				infos = append(infos, m)
				want[i] = m
			}
			r.Shuffle(len(infos), func(i, j int) { infos[i], infos[j] = infos[j], infos[i] }) // any order
			var found bool
			if l, found = l.Replace(infos); !found {
				t.Fatal("Replace did not find a UID it holds")
			}
		case 2: // arrivals
			infos := add(r.IntN(2 * chunkLen))
			want = append(want, infos...)
			l = l.Append(infos)
		case 3: // expunges
			gone := map[uint32]bool{}
			for i := 0; i < len(want); i += 1 + r.IntN(60) {
				gone[want[i].UID] = true
			}
			want = slices.DeleteFunc(want, func(m MessageInfo) bool { return gone[m.UID] })
			l = l.Filter(func(m *MessageInfo) bool { return !gone[m.UID] })
		}
		checkListing(t, l, want)
		checkListing(t, before, beforeWant) // never changed by what came after
	}
	if _, found := l.Replace([]MessageInfo{{UID: uid + 1}}); found {
		t.Fatal("Replace found a UID the listing does not hold")
	}
}

// A change copies the chunks it touches and shares the others.
func TestListingSharesUntouchedChunks(t *testing.T) {
	msgs := make([]MessageInfo, 10*chunkLen)
	for i := range msgs {
		msgs[i] = MessageInfo{UID: uint32(i + 1)}
	}
	l := NewListing(msgs)
	m := *l.At(5*chunkLen + 3)
	m.Flags = []string{`\Seen`}
	r, _ := l.Replace([]MessageInfo{m})
	for i := 0; i < l.Len(); i += chunkLen {
		if shared := l.SharesChunk(r, i); shared == (i/chunkLen == 5) {
			t.Fatalf("chunk %d shared: %v", i/chunkLen, shared)
		}
	}
	if len(l.At(5*chunkLen+3).Flags) != 0 {
		t.Fatal("Replace changed the listing it was called on")
	}
	a := l.Append([]MessageInfo{{UID: uint32(len(msgs) + 1)}})
	for i := 0; i < l.Len(); i += chunkLen {
		if !l.SharesChunk(a, i) {
			t.Fatalf("Append of a full listing copied chunk %d", i/chunkLen)
		}
	}
	if ChunkEnd(0) != chunkLen || ChunkEnd(chunkLen) != 2*chunkLen {
		t.Fatal("ChunkEnd")
	}
}
