package baseline

import (
	"math/bits"
	"time"
)

// Delta is what one node added to an identity's profile since it last
// merged the profile with the one its fleet shares (docs/baseline.md,
// "Several nodes"): the counts and the hour sketch of the hours it counted
// (the last two), the level it reported in them, and the bits of the
// domains it learned as new. It holds nothing learned from past hours, so
// that merging deltas into a shared profile learns each hour once, there.
//
// The zero Delta adds nothing.
type Delta struct {
	first uint32 // the profile's first hour as the node knew it
	// parts[1] is the later hour, parts[0] the one before; a part with
	// hour 0 is empty.
	parts [2]deltaHour
	known [knownWords]uint64 // bits of the domains learned as new
}

// deltaHour is a node's counting in one hour.
type deltaHour struct {
	hour        uint32
	count       [numSignals]uint32
	level       Level
	hourDomains [hourWords]uint64
}

// IsZero reports whether d adds nothing.
func (d *Delta) IsZero() bool { return *d == Delta{} }

// Hour returns the start (UTC) of the latest hour d counts in; the zero
// Time when d counts none.
func (d *Delta) Hour() time.Time {
	h := max(d.parts[0].hour, d.parts[1].hour)
	if h == 0 {
		return time.Time{}
	}
	return hourTime(h)
}

// Messages returns the messages d counts, over its hours.
func (d *Delta) Messages() uint64 {
	return uint64(d.parts[0].count[sigVolume]) + uint64(d.parts[1].count[sigVolume])
}

// part returns the part of d for hour h, making it the latest when h is
// later than both, or nil when h is older than both (its counts are for an
// hour d no longer keeps).
func (d *Delta) part(h uint32) *deltaHour {
	switch {
	case d.parts[1].hour == h:
		return &d.parts[1]
	case d.parts[1].hour == 0 || h > d.parts[1].hour:
		if d.parts[1].hour != 0 {
			d.parts[0] = d.parts[1]
		}
		d.parts[1] = deltaHour{hour: h}
		return &d.parts[1]
	case d.parts[0].hour == h:
		return &d.parts[0]
	case h > d.parts[0].hour:
		d.parts[0] = deltaHour{hour: h}
		return &d.parts[0]
	}
	return nil
}

// Add adds the counting of newer to d, as if d's node had counted both:
// counts of one hour add up, sketches and known domains are joined, the
// levels give their maximum, and of more than two hours the latest two are
// kept. Add is commutative and associative.
func (d *Delta) Add(newer Delta) {
	d.first = minFirst(d.first, newer.first)
	for _, np := range newer.parts {
		if np.hour == 0 {
			continue
		}
		if p := d.part(np.hour); p != nil {
			p.add(&np)
		}
	}
	for i := range d.known {
		d.known[i] |= newer.known[i]
	}
}

func (h *deltaHour) add(o *deltaHour) {
	for s := range numSignals {
		h.count[s] = addSat(h.count[s], uint64(o.count[s]))
	}
	h.level = max(h.level, o.level)
	for i := range h.hourDomains {
		h.hourDomains[i] |= o.hourDomains[i]
	}
}

// minFirst is the earlier of two first hours, 0 standing for none.
func minFirst(a, b uint32) uint32 {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	}
	return min(a, b)
}

// record notes in d one message counted by p in its current hour, with
// recipients recipients; domain hashes are noted with recordDomain.
func (d *Delta) record(p *Profile, recipients int) *deltaHour {
	d.first = minFirst(d.first, p.first)
	h := d.part(p.hour)
	if h == nil {
		return nil
	}
	h.count[sigVolume] = addSat(h.count[sigVolume], 1)
	if recipients > 0 {
		h.count[sigRecipients] = addSat(h.count[sigRecipients], uint64(recipients))
	}
	return h
}

// setKnown sets in set the filter bits of domain hash x.
func setKnown(set *[knownWords]uint64, x uint64) {
	h1, h2 := uint32(x), uint32(x>>32)|1
	for i := range uint32(knownHashes) {
		b := (h1 + i*h2) % knownBits
		set[b/64] |= 1 << (b % 64)
	}
}

// merge adds d to p, the profile a fleet shares, as one node's counting:
// the first hour is the earlier of both; each of d's hours later than p's
// current hour first closes p's hour (learning it once, here, into the
// means and peaks, as roll does for a single node); the counts of d's hour
// equal to p's add up, sketches are joined and the levels give their
// maximum; counts of an hour p already closed are not learned any more.
// The domains d learned join p's current filter generation, which rotates
// first if it is full and has not rotated in p's current hour.
func (m *model) merge(p *Profile, d *Delta) {
	if d.first == 0 && d.parts[0].hour == 0 && d.parts[1].hour == 0 {
		for i := range p.known[0] {
			p.known[0][i] |= d.known[i]
		}
		return
	}
	first := minFirst(d.first, minFirst(d.parts[0].hour, d.parts[1].hour))
	if p.first == 0 {
		p.first, p.hour = first, first
	} else if first < p.first {
		p.first = first
	}
	for i := range d.parts {
		dh := &d.parts[i]
		if dh.hour == 0 {
			continue
		}
		if dh.hour > p.hour {
			p.roll(m, dh.hour)
		}
		if dh.hour != p.hour {
			continue
		}
		for s := range numSignals {
			p.count[s] = addSat(p.count[s], uint64(dh.count[s]))
		}
		p.level = max(p.level, dh.level)
		for w := range p.hourDomains {
			p.hourDomains[w] |= dh.hourDomains[w]
		}
	}
	var any uint64
	for _, w := range d.known {
		any |= w
	}
	if any == 0 {
		return
	}
	if !p.rotated && p.knownSet() >= knownRotate {
		p.known[1] = p.known[0]
		p.known[0] = [knownWords]uint64{}
		p.rotated = true
	}
	for i := range p.known[0] {
		p.known[0][i] |= d.known[i]
	}
}

// knownSet counts the bits set in the current filter generation.
func (p *Profile) knownSet() int {
	set := 0
	for _, w := range p.known[0] {
		set += bits.OnesCount64(w)
	}
	return set
}

// Merge adds the delta d of one node to p, the profile of the same
// identity a fleet shares, with the detector's options (the half-lives of
// the hours it learns when d's hours close p's). Merging the deltas of one
// hour gives the same profile in any order, and merging a.Add(b) gives the
// profile merging a then b gives.
//
// Merge then judges p's hour as Observe does, but raises p's level only
// to Lock: when the fleet's counts reach the lock level and no node
// reported it in this hour, the verdict has Escalated set, and the caller
// (which holds the shared profile's lock) locks as after Observe, once for
// the fleet. A lower level is left to the next Observe.
func (dt *Detector) Merge(p *Profile, d *Delta) Verdict {
	dt.m.merge(p, d)
	if p.first == 0 {
		return Verdict{}
	}
	v := p.judge(&dt.m)
	if v.Level == Lock && p.level < Lock {
		v.Escalated = true
		p.level = Lock
	}
	return v
}

// Deltas hands each profile's delta, counted since the previous call (or
// since Options.Deltas started it), to fn, and starts a new one; fn runs
// outside the shards' locks, and d is the caller's from then on (the
// detector keeps no reference to it). Without Options.Deltas it never
// calls fn.
func (dt *Detector) Deltas(fn func(key string, d *Delta)) {
	if !dt.deltas {
		return
	}
	type kd struct {
		key string
		d   Delta
	}
	for si := range dt.shards {
		s := &dt.shards[si]
		s.mu.Lock()
		if len(s.deltas) == 0 {
			s.mu.Unlock()
			continue
		}
		batch := make([]kd, 0, len(s.deltas))
		for i, di := range s.deltas {
			batch = append(batch, kd{s.slot(i).key, s.darena[di]})
		}
		clear(s.deltas)
		s.darena = s.darena[:0]
		s.mu.Unlock()
		for bi := range batch {
			fn(batch[bi].key, &batch[bi].d)
		}
	}
}

// delta returns slot i's delta, starting an empty one. The pointer is
// valid until the next call: the arena may move. The caller holds s.mu.
func (s *shard) delta(i uint32) *Delta {
	if di, ok := s.deltas[i]; ok {
		return &s.darena[di]
	}
	s.darena = append(s.darena, Delta{})
	s.deltas[i] = int32(len(s.darena) - 1)
	return &s.darena[len(s.darena)-1]
}

// Requeue gives key back a delta handed over by Deltas that could not be
// merged, to go with the next call, ahead of what was counted since. It
// reports false when key is not in memory any more: the caller keeps d.
func (dt *Detector) Requeue(key string, d Delta) bool {
	if !dt.deltas {
		return false
	}
	s := dt.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.index[key]
	if !ok {
		return false
	}
	cur := s.delta(i)
	d.Add(*cur)
	*cur = d
	return true
}

// Apply replaces key's profile in memory with shared, the fleet's profile
// after this node's delta was merged into it, and adds back what this
// node counted since it handed that delta over, so that the profile
// carries the fleet's counts and this node's latest. It reports whether
// key was in memory; a key that is not is left to Options.Fetch.
func (dt *Detector) Apply(key string, shared Profile) bool {
	s := dt.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.index[key]
	if !ok {
		return false
	}
	sl := s.slot(i)
	if di, ok := s.deltas[i]; ok {
		dt.m.merge(&shared, &s.darena[di])
		// The level this node reported in its current hour stays, so
		// that a level is not raised twice by the same node.
		if shared.hour == sl.p.hour {
			shared.level = max(shared.level, sl.p.level)
		}
	}
	sl.p = shared
	return true
}
