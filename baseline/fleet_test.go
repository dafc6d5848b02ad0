package baseline

import (
	"fmt"
	"math"
	"testing"
	"time"
)

// node is one node of a simulated fleet: a detector keeping deltas.
func newNode(t testing.TB, o Options) *Detector {
	t.Helper()
	o.Deltas = true
	return newDetector(t, o)
}

// takeDelta returns key's delta on d and starts a new one.
func takeDelta(t testing.TB, d *Detector, key string) Delta {
	t.Helper()
	var out Delta
	found := false
	d.Deltas(func(k string, dl *Delta) {
		if k == key {
			out, found = *dl, true
		}
	})
	if !found {
		t.Fatalf("no delta for %q", key)
	}
	return out
}

// round merges each node's deltas into shared, the fleet's profiles, and
// applies the result back to the node, as the PostgreSQL store's flush
// round does. It returns the merges that raised a profile to Lock.
func round(d *Detector, shared map[string]Profile) (locks int) {
	d.Deltas(func(key string, dl *Delta) {
		p := shared[key]
		if v := d.Merge(&p, dl); v.Escalated {
			locks++
		}
		shared[key] = p
		d.Apply(key, p)
	})
	return locks
}

// refresh applies the fleet's profiles to the node's profiles in memory,
// as the store's rounds do for the keys of the previous round.
func refresh(d *Detector, shared map[string]Profile) {
	for k, p := range shared {
		d.Apply(k, p)
	}
}

func merged(d *Detector, base Profile, deltas ...Delta) Profile {
	for i := range deltas {
		d.Merge(&base, &deltas[i])
	}
	return base
}

// TestMergeSameHour: two nodes' deltas of one hour merge in either order,
// one by one or added up first, into the profile one node seeing all the
// messages would have: counts add up, hour sketches and filters are joined.
func TestMergeSameHour(t *testing.T) {
	o := Options{}
	a, b, ref := newNode(t, o), newNode(t, o), newDetector(t, o)
	hour := monday.Add(9 * time.Hour)
	// A week of history on the reference and in the shared profile.
	for day := range 7 {
		for i := range 3 {
			at := monday.Add(time.Duration(day*24+9)*time.Hour - 7*24*time.Hour + time.Duration(i)*time.Minute)
			ref.Observe("k", at, 2, []string{fmt.Sprintf("old%d.example", i)})
		}
	}
	base, _ := ref.Load("k")
	a.Restore("k", base)
	b.Restore("k", base)
	for i := range 40 {
		at := hour.Add(time.Duration(i) * time.Minute)
		da, db := []string{fmt.Sprintf("a%d.example", i%7), "old1.example"}, []string{fmt.Sprintf("b%d.example", i%5)}
		a.Observe("k", at, 2, da)
		b.Observe("k", at, 3, db)
		ref.Observe("k", at, 2, da)
		ref.Observe("k", at, 3, db)
	}
	dA, dB := takeDelta(t, a, "k"), takeDelta(t, b, "k")
	want, _ := ref.Load("k")

	ab, ba := merged(a, base, dA, dB), merged(a, base, dB, dA)
	sum := dA
	sum.Add(dB)
	sum2 := dB
	sum2.Add(dA)
	if sum != sum2 {
		t.Error("Delta.Add is not commutative")
	}
	once := merged(a, base, sum)
	for name, got := range map[string]Profile{"A then B": ab, "B then A": ba, "A+B": once} {
		if got.count != want.count || got.hourDomains != want.hourDomains || got.known != want.known {
			t.Errorf("%s: counts %v, want %v; sketch equal %v, filters equal %v", name, got.count, want.count,
				got.hourDomains == want.hourDomains, got.known == want.known)
		}
		if got.usual != want.usual || got.peak != want.peak || got.active != want.active || got.first != want.first {
			t.Errorf("%s: learned %v %v %d first %d, want %v %v %d first %d", name, got.usual, got.peak, got.active, got.first,
				want.usual, want.peak, want.active, want.first)
		}
	}
	if want.count != [numSignals]uint32{80, 200, 12} {
		t.Errorf("the reference counted %v, want 80 messages, 200 recipients, 12 new domains", want.count)
	}
}

// TestDeltaAddAssociative: adding three deltas of two hours gives the same
// delta however grouped, and merging the sum gives what merging each does.
func TestDeltaAddAssociative(t *testing.T) {
	nodes := []*Detector{newNode(t, Options{}), newNode(t, Options{}), newNode(t, Options{})}
	h := monday.Add(9 * time.Hour)
	var ds []Delta
	for n, d := range nodes {
		for i := range 10 {
			d.Observe("k", h.Add(time.Duration(n*20+i)*time.Minute), 1, []string{fmt.Sprintf("d%d-%d.example", n, i)})
		}
		ds = append(ds, takeDelta(t, d, "k"))
	}
	left := ds[0]
	left.Add(ds[1])
	left.Add(ds[2])
	bc := ds[1]
	bc.Add(ds[2])
	right := ds[0]
	right.Add(bc)
	if left != right {
		t.Fatal("(a+b)+c differs from a+(b+c)")
	}
	if got := merged(nodes[0], Profile{}, left); got != merged(nodes[0], Profile{}, ds...) {
		t.Error("merging the sum differs from merging each")
	}
	if left.Messages() != 30 {
		t.Errorf("the sum counts %d messages, want 30", left.Messages())
	}
}

// TestMergeHourRollOverLearnsOnce: an hour counted by two nodes is learned
// once, by the shared profile, from the fleet's count, when the first
// delta of the next hour arrives; the second node's delta of the next hour
// does not learn it again. The result is what one node seeing everything
// learns.
func TestMergeHourRollOverLearnsOnce(t *testing.T) {
	o := Options{}
	shared := map[string]Profile{}
	o.Fetch = func(k string) (Profile, bool) { p, ok := shared[k]; return p, ok }
	a, b, ref := newNode(t, o), newNode(t, o), newDetector(t, Options{})
	h := monday.Add(9 * time.Hour)
	a.Observe("k", h, 1, []string{"x.example"})
	ref.Observe("k", h, 1, []string{"x.example"})
	round(a, shared)
	for i := 1; i < 30; i++ {
		at := h.Add(time.Duration(i) * time.Minute)
		node := a
		if i%3 != 0 {
			node = b
		}
		node.Observe("k", at, 1, []string{"x.example"})
		ref.Observe("k", at, 1, []string{"x.example"})
	}
	round(a, shared)
	round(b, shared)
	round(a, shared)
	// The next hour: each node rolls over on its own.
	for i := range 4 {
		at := h.Add(time.Hour + time.Duration(i)*time.Minute)
		a.Observe("k", at, 1, []string{"x.example"})
		b.Observe("k", at, 1, []string{"x.example"})
		ref.Observe("k", at, 1, []string{"x.example"})
		ref.Observe("k", at, 1, []string{"x.example"})
	}
	round(a, shared)
	round(b, shared)
	refresh(a, shared)
	got, want := shared["k"], mustLoad(t, ref, "k")
	if got.active != 1 || got.usual[sigVolume] != 30 || got.count[sigVolume] != 8 {
		t.Errorf("shared profile: %d active hours, usual %g, this hour %d; want 1, 30, 8", got.active, got.usual[sigVolume], got.count[sigVolume])
	}
	if got.Stats() != want.Stats() {
		t.Errorf("shared profile %+v\nwant (one node seeing all) %+v", got.Stats(), want.Stats())
	}
	for name, n := range map[string]*Detector{"A": a, "B": b} {
		if p := mustLoad(t, n, "k"); p.Stats() != want.Stats() {
			t.Errorf("node %s after the round: %+v\nwant %+v", name, p.Stats(), want.Stats())
		}
	}
}

func mustLoad(t testing.TB, d *Detector, key string) Profile {
	t.Helper()
	p, ok := d.Load(key)
	if !ok {
		t.Fatalf("%q not in memory", key)
	}
	return p
}

// TestDeltaAcrossTheHour: a node that counted in two hours between rounds
// sends both; the earlier is added to the shared hour before it closes.
func TestDeltaAcrossTheHour(t *testing.T) {
	a, b := newNode(t, Options{}), newNode(t, Options{})
	shared := map[string]Profile{}
	h := monday.Add(9 * time.Hour)
	b.Observe("k", h, 1, nil)
	round(b, shared)
	for i := range 5 {
		a.Observe("k", h.Add(50*time.Minute+time.Duration(i)*time.Minute), 1, nil)
	}
	for i := range 3 {
		a.Observe("k", h.Add(time.Hour+time.Duration(i)*time.Minute), 1, nil)
	}
	round(a, shared)
	p := shared["k"]
	if p.active != 1 || p.usual[sigVolume] != 6 || p.count[sigVolume] != 3 {
		t.Errorf("shared: %d active hours, usual %g, this hour %d; want 1, 6 (1 from B, 5 from A), 3", p.active, p.usual[sigVolume], p.count[sigVolume])
	}
	// A delta for an hour the shared profile closed meanwhile: its domains
	// are known, its counts not learned any more.
	late := newNode(t, Options{})
	late.Observe("k", h.Add(59*time.Minute), 1, []string{"late.example"})
	dl := takeDelta(t, late, "k")
	before := shared["k"]
	after := merged(a, before, dl)
	if after.count != before.count || after.active != before.active || after.usual != before.usual {
		t.Errorf("a late delta changed the counts or the learned hours: %+v -> %+v", before.Stats(), after.Stats())
	}
	x, _ := hashDomain("late.example")
	if !after.knows(x) {
		t.Error("the late delta's domain is not known")
	}
}

// TestFleetBurstLocksAtFleetCount: a new identity's burst spread over
// three nodes, each merging with the fleet after every message, reaches
// the lock level (500 messages under warm-up) at the 500th message of the
// fleet, once, when the nodes merge and read the fleet's profile after
// every message; three nodes judging alone would each need 500.
func TestFleetBurstLocksAtFleetCount(t *testing.T) {
	nodes := []*Detector{newNode(t, Options{}), newNode(t, Options{}), newNode(t, Options{})}
	shared := map[string]Profile{}
	h := monday.Add(9 * time.Hour)
	var locks []int
	for i := range 900 {
		n := nodes[i%3]
		v := n.Observe("new", h.Add(time.Duration(i)*time.Second), 1, nil)
		if v.Level == Lock && v.Escalated {
			locks = append(locks, i+1)
		}
		if round(n, shared) > 0 {
			t.Errorf("a round locked at message %d, after the node that observed it", i+1)
		}
		for _, other := range nodes {
			refresh(other, shared)
		}
	}
	if len(locks) != 1 || locks[0] != 500 {
		t.Errorf("lock escalations at fleet messages %v, want once at 500", locks)
	}
	if c := shared["new"].count[sigVolume]; c != 900 {
		t.Errorf("the shared profile counted %d messages, want 900", c)
	}
	// With rounds every 10 messages per node, no node's view reaches 500
	// before the fleet has 510; the merge that finds 510 locks, once.
	nodes = []*Detector{newNode(t, Options{}), newNode(t, Options{}), newNode(t, Options{})}
	shared = map[string]Profile{}
	locks = nil
	for i := range 900 {
		n := nodes[i%3]
		v := n.Observe("new", h.Add(time.Duration(i)*time.Second), 1, nil)
		if v.Level == Lock && v.Escalated {
			locks = append(locks, i+1)
		}
		if i%30 == 29 {
			for _, n := range nodes {
				if round(n, shared) > 0 {
					locks = append(locks, i+1)
				}
			}
			// The next round reads back what the later nodes merged.
			for _, n := range nodes {
				refresh(n, shared)
			}
		}
	}
	// Each node's view was 480 and its own 10 at most: the round at 510
	// locks, once for the fleet.
	if len(locks) != 1 || locks[0] != 510 {
		t.Errorf("lock escalations at fleet messages %v, want once, in the round at 510", locks)
	}
}

// TestRequeueAndEvictDelta: a delta that could not be merged goes back
// ahead of the counting since; an evicted profile's delta goes to
// OnEvictDelta.
func TestRequeueAndEvictDelta(t *testing.T) {
	var evicted map[string]Delta
	d := newNode(t, Options{MaxProfiles: 1, Shards: 1, OnEvictDelta: func(k string, dl Delta) {
		if evicted == nil {
			evicted = map[string]Delta{}
		}
		evicted[k] = dl
	}})
	h := monday.Add(9 * time.Hour)
	d.Observe("a", h, 1, nil)
	d.Observe("a", h, 1, nil)
	first := takeDelta(t, d, "a")
	d.Observe("a", h, 4, nil)
	if !d.Requeue("a", first) {
		t.Fatal("Requeue of a key in memory reported false")
	}
	if got := takeDelta(t, d, "a"); got.Messages() != 3 || got.parts[1].count[sigRecipients] != 6 {
		t.Errorf("after Requeue: %d messages, %d recipients; want 3, 6", got.Messages(), got.parts[1].count[sigRecipients])
	}
	d.Observe("a", h, 1, nil)
	d.Observe("b", h, 1, nil) // evicts a
	if dl, ok := evicted["a"]; !ok || dl.Messages() != 1 {
		t.Errorf("evicted delta of a: %v %d, want 1 message", ok, dl.Messages())
	}
	if d.Requeue("a", first) {
		t.Error("Requeue of an evicted key reported true")
	}
	if d.Apply("a", Profile{}) {
		t.Error("Apply of an evicted key reported true")
	}
	// Without Options.Deltas nothing is kept.
	plain := newDetector(t, Options{})
	plain.Observe("a", h, 1, nil)
	plain.Deltas(func(string, *Delta) { t.Error("Deltas handed a delta without Options.Deltas") })
}

// FuzzMerge merges the deltas of two nodes, counting at arbitrary steps of
// a clock, into a decoded shared profile in both orders: the result always
// encodes and decodes, never counts fewer messages of its hour than the
// deltas of that hour hold, and within one hour does not depend on the
// order.
func FuzzMerge(f *testing.F) {
	for _, p := range sampleProfiles(f) {
		b, _ := p.MarshalBinary()
		f.Add(b, []byte{0, 1, 2, 3}, []byte{1, 1, 200})
	}
	f.Add([]byte{encodingVersion, 0, 0, 0, 0, 0, 0, 0}, []byte{}, []byte{255, 0, 7})
	f.Fuzz(func(t *testing.T, stored, stepsA, stepsB []byte) {
		var base Profile
		if base.UnmarshalBinary(stored) != nil {
			return
		}
		start := monday.Add(9 * time.Hour)
		if base.first != 0 {
			start = hourTime(base.hour)
		}
		deltaOf := func(steps []byte) Delta {
			if len(steps) > 256 {
				steps = steps[:256]
			}
			d := newNode(t, Options{Shards: 1})
			d.Restore("k", base)
			at := start
			for _, s := range steps {
				at = at.Add(time.Duration(s) * time.Minute / 4)
				d.Observe("k", at, int(s%5), []string{fmt.Sprintf("d%d.example", s%9)})
			}
			var out Delta
			d.Deltas(func(_ string, dl *Delta) { out = *dl })
			return out
		}
		a, b := deltaOf(stepsA), deltaOf(stepsB)
		det := newDetector(t, Options{})
		ab, ba := base, base
		det.Merge(&ab, &a)
		det.Merge(&ab, &b)
		det.Merge(&ba, &b)
		det.Merge(&ba, &a)
		for _, p := range []Profile{ab, ba} {
			enc, _ := p.MarshalBinary()
			var q Profile
			if err := q.UnmarshalBinary(enc); err != nil || q != p {
				t.Fatalf("a merged profile does not survive its encoding: %v", err)
			}
			var want uint64
			for _, d := range []Delta{a, b} {
				for _, part := range d.parts {
					if part.hour == p.hour {
						want += uint64(part.count[sigVolume])
					}
				}
			}
			if uint64(p.count[sigVolume]) < min(want, math.MaxUint32) {
				t.Fatalf("merged %d messages in its hour, the deltas hold %d", p.count[sigVolume], want)
			}
		}
		if a.Hour() == b.Hour() && (a.parts[0].hour == 0 && b.parts[0].hour == 0) && ab.count != ba.count {
			t.Fatalf("one hour merged in two orders: %v and %v", ab.count, ba.count)
		}
	})
}
