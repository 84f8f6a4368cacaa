package multimap

import (
	"slices"
	"testing"
)

func TestMultimap(t *testing.T) {
	var mm Multimap[int64, string]
	if mm.Get(1) != nil || mm.Len() != 0 || mm.Remove(1, "a") {
		t.Fatal("the zero value is not empty")
	}
	mm.Add(1, "a")
	mm.Add(1, "b")
	mm.Add(1, "c")
	mm.Add(2, "a")
	mm.Add(1, "b") // twice
	if mm.Len() != 5 || len(mm.m) != 2 {
		t.Fatalf("Len %d keys %d, want 5 and 2", mm.Len(), len(mm.m))
	}
	if !mm.Remove(1, "b") || mm.Len() != 4 {
		t.Fatal("Remove of a value held twice")
	}
	got := slices.Sorted(slices.Values(mm.Get(1)))
	if !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("key 1 holds %v, want a b c", got)
	}
	if mm.Remove(1, "x") || mm.Remove(3, "a") {
		t.Fatal("Remove of a value not held reported true")
	}
	for _, v := range []string{"a", "b", "c"} {
		if !mm.Remove(1, v) {
			t.Fatalf("Remove(1, %s) = false", v)
		}
	}
	if mm.Get(1) != nil || len(mm.m) != 1 || mm.Len() != 1 {
		t.Fatalf("after emptying key 1: Get %v keys %d Len %d", mm.Get(1), len(mm.m), mm.Len())
	}
	if got := mm.Get(2); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("key 2 holds %v", got)
	}
}

// TestRemoveClearsSlot: a removed value's slot is zeroed, so that the
// slice's array keeps no reference to it.
func TestRemoveClearsSlot(t *testing.T) {
	var mm Multimap[int, *int]
	a, b := new(int), new(int)
	mm.Add(1, a)
	mm.Add(1, b)
	vs := mm.Get(1)
	mm.Remove(1, a)
	if vs[1] != nil {
		t.Error("the vacated slot still points to a value")
	}
	if vs[0] != b {
		t.Error("the remaining value moved away")
	}
}
