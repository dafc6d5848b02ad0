package campaign

// bandIndex maps LSH band keys to ring slots. It is an open-addressing
// table with linear probing and backward-shift deletion, so the constant
// churn of a full store (16 keys in and 16 out per message) leaves no
// tombstones behind: lookups of absent keys, the common case, stay a probe
// or two long. Each cell holds key<<32 | slot, one memory access per
// probe; key 0 marks an empty cell (bandKeys never returns 0). The table
// doubles when three quarters full, up to limit cells, and never shrinks.
// limit is sized for the most keys the ring can hold (Bands*max) at a load
// of 0.7, so a full store needs no more, whatever power of two that is
// near; any size works because a key's home cell is found by
// multiplication, not masking.
type bandIndex struct {
	cells []uint64
	n     int
	limit int
}

const bandIndexMin = 1024

func newBandIndex(maxKeys int) bandIndex {
	return bandIndex{limit: max(bandIndexMin, maxKeys*10/7+1)}
}

func (t *bandIndex) home(k uint32) int {
	// Keys are already uniform hashes; the multiply spreads them anyway,
	// should a caller ever feed structured keys, and maps the result onto
	// [0, len(cells)).
	h := uint32((uint64(k) * 0x9e3779b97f4a7c15) >> 32)
	return int((uint64(h) * uint64(len(t.cells))) >> 32)
}

func (t *bandIndex) next(i int) int {
	if i++; i == len(t.cells) {
		return 0
	}
	return i
}

func cellKey(c uint64) uint32 { return uint32(c >> 32) }

func (t *bandIndex) len() int { return t.n }

func (t *bandIndex) get(k uint32) (uint32, bool) {
	if t.n == 0 {
		return 0, false
	}
	for i := t.home(k); ; i = t.next(i) {
		c := t.cells[i]
		switch cellKey(c) {
		case k:
			return uint32(c), true
		case 0:
			return 0, false
		}
	}
}

// put sets k to v, replacing any value k had.
func (t *bandIndex) put(k, v uint32) {
	if (t.n+1)*4 > len(t.cells)*3 && len(t.cells) < t.limit {
		t.grow()
	}
	for i := t.home(k); ; i = t.next(i) {
		switch cellKey(t.cells[i]) {
		case k:
			t.cells[i] = uint64(k)<<32 | uint64(v)
			return
		case 0:
			t.cells[i] = uint64(k)<<32 | uint64(v)
			t.n++
			return
		}
	}
}

// delIf removes k if it maps to v.
func (t *bandIndex) delIf(k, v uint32) {
	if t.n == 0 {
		return
	}
	i := t.home(k)
	for ; cellKey(t.cells[i]) != k; i = t.next(i) {
		if t.cells[i] == 0 {
			return
		}
	}
	if uint32(t.cells[i]) != v {
		return
	}
	t.n--
	// Backward shift: move later members of the probe run into the hole
	// when their home position allows it.
	for j := i; ; {
		t.cells[i] = 0
		for {
			j = t.next(j)
			if t.cells[j] == 0 {
				return
			}
			h := t.home(cellKey(t.cells[j]))
			// The entry at j stays unless its home lies cyclically
			// outside (i, j].
			if i <= j {
				if i < h && h <= j {
					continue
				}
			} else if i < h || h <= j {
				continue
			}
			break
		}
		t.cells[i] = t.cells[j]
		i = j
	}
}

func (t *bandIndex) grow() {
	size := min(max(bandIndexMin, 2*len(t.cells)), t.limit)
	old := t.cells
	t.cells = make([]uint64, size)
	t.n = 0
	for _, c := range old {
		if c != 0 {
			t.put(cellKey(c), uint32(c))
		}
	}
}
