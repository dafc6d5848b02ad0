package quarantine

import (
	"bytes"

	"go.etcd.io/bbolt"
)

// idIter yields candidate record ids, newest (largest) first.
type idIter interface {
	// next returns the next id and its entry value: the index value for
	// index iterators, the encoded record for the log iterator.
	next() (id string, val []byte, ok bool)
	// fromIndex reports whether val is an index value.
	fromIndex() bool
}

// seekBefore positions c on the last key < target and returns it.
func seekBefore(c *bbolt.Cursor, target []byte) ([]byte, []byte) {
	k, _ := c.Seek(target)
	if k == nil {
		return c.Last()
	}
	return c.Prev()
}

// indexIter walks index keys prefix|id for ids in [lo, hi), descending.
// Empty lo or hi leaves that end open.
type indexIter struct {
	c       *bbolt.Cursor
	prefix  []byte
	lo      string
	hi      string
	started bool
	done    bool
}

func newIndexIter(b *bbolt.Bucket, prefix []byte, lo, hi string) *indexIter {
	return &indexIter{c: b.Cursor(), prefix: prefix, lo: lo, hi: hi}
}

func (it *indexIter) fromIndex() bool { return true }

func (it *indexIter) next() (string, []byte, bool) {
	if it.done {
		return "", nil, false
	}
	var k, v []byte
	if !it.started {
		it.started = true
		target := bytes.Clone(it.prefix)
		if it.hi == "" {
			target = append(target, 0xff)
		} else {
			target = append(target, idKey(it.hi)...)
		}
		k, v = seekBefore(it.c, target)
	} else {
		k, v = it.c.Prev()
	}
	if k == nil || !bytes.HasPrefix(k, it.prefix) || len(k) != len(it.prefix)+keyLen {
		it.done = true
		return "", nil, false
	}
	id := keyID(k[len(it.prefix):])
	if id < it.lo {
		it.done = true
		return "", nil, false
	}
	return id, v, true
}

// logIter walks the log bucket for ids in [lo, hi), descending.
type logIter struct {
	c       *bbolt.Cursor
	lo, hi  string
	started bool
	done    bool
}

func newLogIter(b *bbolt.Bucket, lo, hi string) *logIter {
	return &logIter{c: b.Cursor(), lo: lo, hi: hi}
}

func (it *logIter) fromIndex() bool { return false }

func (it *logIter) next() (string, []byte, bool) {
	if it.done {
		return "", nil, false
	}
	var k, v []byte
	switch {
	case it.started:
		k, v = it.c.Prev()
	case it.hi == "":
		k, v = it.c.Last()
	default:
		k, v = seekBefore(it.c, idKey(it.hi))
	}
	it.started = true
	if k == nil {
		it.done = true
		return "", nil, false
	}
	id := keyID(k)
	if id < it.lo {
		it.done = true
		return "", nil, false
	}
	return id, v, true
}

// unionIter merges index iterators, descending, without duplicates.
type unionIter struct {
	its  []idIter
	ids  []string
	vals [][]byte
	ok   []bool
	init bool
}

func newUnion(its []idIter) idIter {
	if len(its) == 1 {
		return its[0]
	}
	return &unionIter{its: its, ids: make([]string, len(its)), vals: make([][]byte, len(its)), ok: make([]bool, len(its))}
}

func (u *unionIter) fromIndex() bool { return true }

func (u *unionIter) next() (string, []byte, bool) {
	if !u.init {
		u.init = true
		for i, it := range u.its {
			u.ids[i], u.vals[i], u.ok[i] = it.next()
		}
	}
	best := -1
	for i := range u.its {
		if u.ok[i] && (best < 0 || u.ids[i] > u.ids[best]) {
			best = i
		}
	}
	if best < 0 {
		return "", nil, false
	}
	id, val := u.ids[best], u.vals[best]
	for i := range u.its {
		for u.ok[i] && u.ids[i] == id {
			u.ids[i], u.vals[i], u.ok[i] = u.its[i].next()
		}
	}
	return id, val, true
}
