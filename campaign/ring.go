package campaign

// entry is one stored fingerprint.
type entry struct {
	sig    [NumHashes]uint16
	exact  uint64
	at     int64 // Unix nanoseconds: when observed, or when confirmed
	c      *campaign
	attach []Digest
	kind   uint8 // kindSig | kindExact
}

const (
	kindSig uint8 = 1 << iota
	kindExact
)

const chunkEntries = 1024

// ring is a FIFO of at most max entries, oldest first, with the indexes
// that find candidates: LSH band keys, exact text hashes and attachment
// digests, each mapping to the slot of the newest entry with that key.
// Every key in an index points to a live slot: eviction removes the keys
// that still point to the evicted slot. Push, pop and probe are O(Bands +
// attachments); nothing scans the ring.
type ring struct {
	max        int
	chunks     [][]entry // allocated on demand, chunkEntries each
	head, tail uint64    // sequence numbers: oldest live, next to push
	bands      bandIndex
	exact      map[uint64]uint32
	attach     map[Digest]uint32
}

func newRing(max int) ring {
	return ring{
		max:    max,
		bands:  newBandIndex(Bands * max),
		exact:  make(map[uint64]uint32),
		attach: make(map[Digest]uint32),
	}
}

func (r *ring) len() int { return int(r.tail - r.head) }

func (r *ring) slot(seq uint64) uint32 { return uint32(seq % uint64(r.max)) }

func (r *ring) at(slot uint32) *entry {
	return &r.chunks[slot/chunkEntries][slot%chunkEntries]
}

// live reports whether seq names an entry still in the ring.
func (r *ring) live(seq uint64) bool { return seq >= r.head && seq < r.tail }

// oldest returns the oldest entry, or nil.
func (r *ring) oldest() *entry {
	if r.head == r.tail {
		return nil
	}
	return r.at(r.slot(r.head))
}

// push appends e; the caller has made room (len < max). It returns the
// entry's sequence number.
func (r *ring) push(e entry) uint64 {
	seq := r.tail
	s := r.slot(seq)
	for int(s/chunkEntries) >= len(r.chunks) {
		r.chunks = append(r.chunks, make([]entry, chunkEntries))
	}
	p := r.at(s)
	*p = e
	r.tail++
	if e.kind&kindSig != 0 {
		for _, k := range bandKeys(&p.sig) {
			r.bands.put(k, s)
		}
	}
	if e.kind&kindExact != 0 {
		r.exact[e.exact] = s
	}
	for _, d := range e.attach {
		r.attach[d] = s
	}
	return seq
}

// pop removes the oldest entry and returns its campaign.
func (r *ring) pop() *campaign {
	s := r.slot(r.head)
	p := r.at(s)
	if p.kind&kindSig != 0 {
		for _, k := range bandKeys(&p.sig) {
			r.bands.delIf(k, s)
		}
	}
	if p.kind&kindExact != 0 {
		if v, ok := r.exact[p.exact]; ok && v == s {
			delete(r.exact, p.exact)
		}
	}
	for _, d := range p.attach {
		if v, ok := r.attach[d]; ok && v == s {
			delete(r.attach, d)
		}
	}
	c := p.c
	*p = entry{}
	r.head++
	return c
}

// match is the best candidate a probe found.
type match struct {
	e     *entry
	agree int // agreeing signature values; NumHashes for exact and digest matches
}

// probeSig returns the entry whose signature agrees most with sig among
// the LSH candidates, if it agrees in at least minAgree values and accept
// takes its campaign.
func (r *ring) probeSig(sig *[NumHashes]uint16, minAgree int, accept func(*campaign) bool) match {
	var best match
	var seen [Bands]uint32
	n := 0
next:
	for _, k := range bandKeys(sig) {
		s, ok := r.bands.get(k)
		if !ok {
			continue
		}
		for _, v := range seen[:n] {
			if v == s {
				continue next
			}
		}
		seen[n] = s
		n++
		e := r.at(s)
		if e.kind&kindSig == 0 || !accept(e.c) {
			continue
		}
		if a := agree(sig, &e.sig); a >= minAgree && a > best.agree {
			best = match{e: e, agree: a}
		}
	}
	return best
}

func (r *ring) probeExact(h uint64, accept func(*campaign) bool) match {
	if s, ok := r.exact[h]; ok {
		if e := r.at(s); accept(e.c) {
			return match{e: e, agree: NumHashes}
		}
	}
	return match{}
}

func (r *ring) probeAttach(ds []Digest, accept func(*campaign) bool) match {
	for _, d := range ds {
		if s, ok := r.attach[d]; ok {
			if e := r.at(s); accept(e.c) {
				return match{e: e, agree: NumHashes}
			}
		}
	}
	return match{}
}
