package campaign

import (
	"math/rand/v2"
	"testing"
)

// The band index against a map, under the churn of a full store: keys
// from a small space so that probe runs collide and wrap, puts that
// replace, conditional deletes that hit and miss.
func TestBandIndexMatchesMap(t *testing.T) {
	r := rand.New(rand.NewPCG(51, 52))
	idx := newBandIndex(3000)
	ref := map[uint32]uint32{}
	for i := range 200000 {
		k := 1 + r.Uint32N(3000)
		if i%7 == 0 {
			// Keys whose homes collide in the smallest table.
			k = 1 + r.Uint32N(50)
		}
		v := r.Uint32N(8)
		switch r.IntN(3) {
		case 0, 1:
			idx.put(k, v)
			ref[k] = v
		case 2:
			idx.delIf(k, v)
			if w, ok := ref[k]; ok && w == v {
				delete(ref, k)
			}
		}
		if idx.len() != len(ref) {
			t.Fatalf("step %d: len %d, want %d", i, idx.len(), len(ref))
		}
		if i%1000 == 0 {
			for k, v := range ref {
				if got, ok := idx.get(k); !ok || got != v {
					t.Fatalf("step %d: get(%d) = %d, %v; want %d", i, k, got, ok, v)
				}
			}
			for range 100 {
				k := 3001 + r.Uint32N(1<<20)
				if _, ok := idx.get(k); ok {
					t.Fatalf("step %d: absent key %d found", i, k)
				}
			}
		}
	}
	if len(idx.cells) > idx.limit {
		t.Errorf("table has %d cells, past its limit %d", len(idx.cells), idx.limit)
	}
	// Filled to the most keys it is sized for, it stays at its limit.
	full := newBandIndex(5000)
	for k := range uint32(5000) {
		full.put(k+1, k)
	}
	for k := range uint32(5000) {
		if v, ok := full.get(k + 1); !ok || v != k {
			t.Fatalf("full table: get(%d) = %d, %v", k+1, v, ok)
		}
	}
	if len(full.cells) != full.limit {
		t.Errorf("full table has %d cells, want its limit %d", len(full.cells), full.limit)
	}
}
