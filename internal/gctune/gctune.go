// Package gctune sets how much garbage Go's collector lets accumulate
// between collections, from the size of the live heap.
//
// With the runtime's default (GOGC=100) a collection starts when the heap
// has grown to twice what the last one left live. A relay's live heap is
// small (tens of MB at 50 sessions) and it allocates fast (every message
// is read, parsed and encoded), so that default collects many times a
// second. The Tuner lets the heap grow to a floor instead, as long as
// twice the live heap is smaller than the floor; above it, collections
// start at twice the live heap as before. The peak heap is thus about
// max(floor, 2 × live): the floor is memory the operator has already
// allotted (docs/config-smtp.md, "Memory").
package gctune

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

// MaxPercent is the highest GC percentage the Tuner sets: with an almost
// empty heap (an idle daemon), the heap still collects at 11 times its
// live size rather than only at the floor.
const MaxPercent = 1000

// Tuner re-reads the live heap after every collection and sets the GC
// percentage from it.
type Tuner struct {
	floor   int64
	stopped atomic.Bool
	percent atomic.Int64 // the percentage last set
	sample  []metrics.Sample
}

// Start starts a Tuner with the given floor in bytes. It returns nil,
// and tunes nothing, when GOGC is set in the environment (the operator's
// choice stands) or floor is not positive. A nil Tuner's methods do
// nothing.
func Start(floor int64) *Tuner {
	if os.Getenv("GOGC") != "" || floor <= 0 {
		return nil
	}
	t := &Tuner{floor: floor, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	t.percent.Store(100)
	t.adjust()
	t.arm()
	return t
}

// Percent returns the GC percentage the Tuner last set (100 for a nil
// Tuner: the runtime's default).
func (t *Tuner) Percent() int {
	if t == nil {
		return 100
	}
	return int(t.percent.Load())
}

// Stop gives the runtime back its default (GOGC=100).
func (t *Tuner) Stop() {
	if t == nil || t.stopped.Swap(true) {
		return
	}
	debug.SetGCPercent(100)
	t.percent.Store(100)
}

// sentinel is garbage from birth: its cleanup runs after the collection
// that finds it, which is how the Tuner hears of each collection.
type sentinel struct{ _ [16]byte }

func (t *Tuner) arm() {
	s := &sentinel{}
	runtime.AddCleanup(s, func(t *Tuner) {
		if t.stopped.Load() {
			return
		}
		t.adjust()
		t.arm()
	}, t)
}

// adjust sets the percentage from the live heap. It runs in the
// runtime's cleanup goroutine, one call at a time.
func (t *Tuner) adjust() {
	metrics.Read(t.sample)
	if t.sample[0].Value.Kind() != metrics.KindUint64 {
		return
	}
	p := Percentage(int64(t.sample[0].Value.Uint64()), t.floor)
	old := t.percent.Load()
	if p == old || (p != 100 && p > old-old/10 && p < old+old/10) {
		// Within 10% of the last setting: not worth a change.
		return
	}
	if t.stopped.Load() {
		return
	}
	debug.SetGCPercent(int(p))
	t.percent.Store(p)
}

// Percentage is the GC percentage that puts the next collection at the
// floor for a live heap of live bytes: at least 100 (twice the live
// heap) and at most MaxPercent.
func Percentage(live, floor int64) int64 {
	if live <= 0 {
		return MaxPercent
	}
	if floor <= 2*live {
		return 100
	}
	p := (floor - live) * 100 / live
	return min(max(p, 100), MaxPercent)
}
