// Package multimap holds values by key, for the sets of live things per
// member (sessions, event subscribers) that come and go with every login.
// A map of maps made and dropped a map per login; a map of small slices
// costs one small slice, or nothing when the key already has one.
package multimap

// Multimap is values by key; the zero value is empty and ready. It is not
// safe for concurrent use.
type Multimap[K comparable, V comparable] struct {
	m map[K][]V
	n int
}

// Add adds v under k (again, if it is there already).
func (mm *Multimap[K, V]) Add(k K, v V) {
	if mm.m == nil {
		mm.m = map[K][]V{}
	}
	mm.m[k] = append(mm.m[k], v)
	mm.n++
}

// Remove removes one v under k and reports whether there was one. The
// order of k's other values may change.
func (mm *Multimap[K, V]) Remove(k K, v V) bool {
	vs := mm.m[k]
	for i, x := range vs {
		if x != v {
			continue
		}
		last := len(vs) - 1
		vs[i] = vs[last]
		var zero V
		vs[last] = zero // drop the reference for the collector
		if last == 0 {
			delete(mm.m, k)
		} else {
			mm.m[k] = vs[:last]
		}
		mm.n--
		return true
	}
	return false
}

// Get returns k's values. The slice is the Multimap's: read it before the
// next Add or Remove, and do not modify it.
func (mm *Multimap[K, V]) Get(k K) []V { return mm.m[k] }

// Len returns the number of values under all keys.
func (mm *Multimap[K, V]) Len() int { return mm.n }
