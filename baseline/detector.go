package baseline

import (
	"hash/maphash"
	"math"
	"math/bits"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Detector keeps the profiles of up to Options.MaxProfiles identities in
// memory and judges each message against its identity's profile. It is safe
// for concurrent use: keys are spread over independently locked shards.
// When MaxProfiles are held, a new key evicts the least recently observed
// profile of its own shard.
type Detector struct {
	m       model
	onEvict func(string, Profile)
	// deltas: each shard keeps the delta of each profile (Options.Deltas).
	deltas       bool
	onEvictDelta func(string, Delta)
	fetch        func(string) (Profile, bool)
	seed         maphash.Seed
	shards       []shard
	max          int64
	count        atomic.Int64 // profiles held, over all shards
}

const (
	chunkSlots = 64
	noSlot     = math.MaxUint32
)

type shard struct {
	mu         sync.Mutex
	index      map[string]uint32 // key -> slot number
	chunks     []*[chunkSlots]slot
	used       uint32 // slots handed out so far
	evictions  uint64 // profiles removed so far, by eviction or Forget
	head, tail uint32 // most and least recently observed, noSlot when empty
	free       uint32 // a slot freed by Forget, noSlot if none
	// deltas holds, by slot, the index in darena of what was counted
	// since the last Deltas call (Options.Deltas); nil otherwise. The
	// arena is emptied, not freed, by Deltas, so that counting allocates
	// nothing once it has grown to the identities of a round.
	deltas map[uint32]int32
	darena []Delta
	_      [64]byte
}

// slot holds one profile in a shard's arena, linked into the shard's
// recency list by slot numbers rather than pointers, so that the arena
// holds one pointer (the key) per profile for the garbage collector.
type slot struct {
	p          Profile
	key        string
	prev, next uint32
	dirty      bool
}

// New returns a Detector with the given options, or an error wrapping
// ErrOptions that names the invalid field.
func New(o Options) (*Detector, error) {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	n := 1 << bits.Len(uint(o.Shards-1))
	d := &Detector{
		max:          int64(o.MaxProfiles),
		m:            newModel(o),
		onEvict:      o.OnEvict,
		deltas:       o.Deltas,
		onEvictDelta: o.OnEvictDelta,
		fetch:        o.Fetch,
		seed:         maphash.MakeSeed(),
		shards:       make([]shard, n),
	}
	for i := range d.shards {
		s := &d.shards[i]
		s.index = make(map[string]uint32)
		s.head, s.tail, s.free = noSlot, noSlot, noSlot
		if o.Deltas {
			s.deltas = make(map[uint32]int32)
		}
	}
	return d, nil
}

func (d *Detector) shard(key string) *shard {
	return &d.shards[maphash.String(d.seed, key)&uint64(len(d.shards)-1)]
}

// Observe counts one message of the identity key, sent at at to recipients
// recipients in recipientDomains (one entry per recipient or per distinct
// domain: repeats count once), and returns the verdict on the identity's
// current hour. A key not in memory is read with Options.Fetch, if set, or
// else starts a new profile; either may evict another profile (see
// Options.MaxProfiles).
//
// at should come from one clock for all callers; an at before the hour
// already being counted for key counts in that hour.
func (d *Detector) Observe(key string, at time.Time, recipients int, recipientDomains []string) Verdict {
	s := d.shard(key)
	s.mu.Lock()
	i, ok := s.index[key]
	var fetched Profile
	for try := 0; !ok && d.fetch != nil; try++ {
		if try == 2 {
			// Evictions in this shard keep racing the reads: read under
			// the lock, which OnEvict also holds.
			if p, found := d.fetch(key); found {
				fetched = p
			}
			break
		}
		// Read the stored profile without holding the shard, then look
		// again: another goroutine may have brought the key in meanwhile,
		// or brought it in and evicted it, making what was read stale.
		evictions := s.evictions
		s.mu.Unlock()
		p, found := d.fetch(key)
		s.mu.Lock()
		if i, ok = s.index[key]; ok {
			break
		}
		if s.evictions == evictions {
			if found {
				fetched = p
			}
			break
		}
	}
	if ok {
		s.touch(i)
	} else {
		i = d.insert(s, key)
		s.slot(i).p = fetched
	}
	sl := s.slot(i)
	var dl *Delta
	if d.deltas {
		dl = s.delta(i)
	}
	v := sl.p.observe(&d.m, at, recipients, recipientDomains, dl)
	sl.dirty = true
	s.mu.Unlock()
	return v
}

// Load returns a copy of key's profile, without counting as an observation
// for eviction.
func (d *Detector) Load(key string) (Profile, bool) {
	s := d.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.index[key]
	if !ok {
		return Profile{}, false
	}
	return s.slot(i).p, true
}

// Restore puts p, typically decoded from storage at start-up, as key's
// profile, replacing any profile in memory, and marks it clean for
// Snapshot. It may evict another profile like Observe.
func (d *Detector) Restore(key string, p Profile) {
	s := d.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.index[key]
	if ok {
		s.touch(i)
	} else {
		i = d.insert(s, key)
	}
	sl := s.slot(i)
	sl.p, sl.dirty = p, false
}

// Forget drops key's profile, so that its next message starts a new
// identity under warm-up. It reports whether there was one.
func (d *Detector) Forget(key string) bool {
	s := d.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.index[key]
	if !ok {
		return false
	}
	s.unlink(i)
	delete(s.index, key)
	delete(s.deltas, i)
	s.evictions++ // a Fetch of key in flight may have read what the caller is deleting
	sl := s.slot(i)
	*sl = slot{next: s.free}
	s.free = i
	d.count.Add(-1)
	return true
}

// Len returns the number of profiles in memory.
func (d *Detector) Len() int { return int(d.count.Load()) }

// Snapshot calls fn with every profile in memory, or with those changed
// since they were last handed to Snapshot or Restore when dirtyOnly is true.
// It copies one shard at a time under that shard's lock and calls fn
// outside it, so fn may take its time (a bbolt transaction) while Observe
// goes on; p is valid only during the call. A profile handed to fn is clean
// until its next Observe. If fn returns an error, Snapshot marks the
// profiles it has not handed over dirty again and returns the error.
func (d *Detector) Snapshot(dirtyOnly bool, fn func(key string, p *Profile) error) error {
	var batch []slot
	for si := range d.shards {
		s := &d.shards[si]
		batch = batch[:0]
		s.mu.Lock()
		for i := s.head; i != noSlot; {
			sl := s.slot(i)
			if sl.dirty || !dirtyOnly {
				batch = append(batch, slot{p: sl.p, key: sl.key})
				sl.dirty = false
			}
			i = sl.next
		}
		s.mu.Unlock()
		for bi := range batch {
			if err := fn(batch[bi].key, &batch[bi].p); err != nil {
				s.mu.Lock()
				for _, b := range batch[bi:] {
					if i, ok := s.index[b.key]; ok {
						s.slot(i).dirty = true
					}
				}
				s.mu.Unlock()
				return err
			}
		}
	}
	return nil
}

func (s *shard) slot(i uint32) *slot { return &s.chunks[i/chunkSlots][i%chunkSlots] }

// insert makes a slot for a new key at the head of s's recency list. When
// the detector holds MaxProfiles profiles it evicts the tail of s instead
// of growing, handing it to OnEvict. The count is reserved before growing,
// so the detector never holds more than MaxProfiles, except that an empty
// shard takes its first profile regardless (at most Shards over). The
// caller holds s.mu.
func (d *Detector) insert(s *shard, key string) uint32 {
	var i uint32
	grow := false
	if s.tail == noSlot {
		d.count.Add(1) // nothing to evict here
		grow = true
	}
	for !grow {
		c := d.count.Load()
		if c >= d.max {
			break
		}
		grow = d.count.CompareAndSwap(c, c+1)
	}
	switch {
	case !grow:
		i = s.tail
		s.unlink(i)
		sl := s.slot(i)
		delete(s.index, sl.key)
		s.evictions++
		if d.onEvict != nil {
			d.onEvict(sl.key, sl.p)
		}
		if di, ok := s.deltas[i]; ok {
			delete(s.deltas, i)
			if d.onEvictDelta != nil {
				d.onEvictDelta(sl.key, s.darena[di])
			}
		}
	case s.free != noSlot:
		i = s.free
		s.free = s.slot(i).next
	default:
		if s.used == noSlot {
			panic("baseline: shard full") // 2^32-1 profiles in one shard
		}
		i = s.used
		s.used++
		if int(i/chunkSlots) == len(s.chunks) {
			s.chunks = append(s.chunks, new([chunkSlots]slot))
		}
	}
	key = strings.Clone(key)
	*s.slot(i) = slot{key: key, prev: noSlot, next: noSlot}
	s.index[key] = i
	s.pushFront(i)
	return i
}

func (s *shard) touch(i uint32) {
	if s.head == i {
		return
	}
	s.unlink(i)
	s.pushFront(i)
}

func (s *shard) pushFront(i uint32) {
	sl := s.slot(i)
	sl.prev, sl.next = noSlot, s.head
	if s.head != noSlot {
		s.slot(s.head).prev = i
	}
	s.head = i
	if s.tail == noSlot {
		s.tail = i
	}
}

func (s *shard) unlink(i uint32) {
	sl := s.slot(i)
	if sl.prev != noSlot {
		s.slot(sl.prev).next = sl.next
	} else {
		s.head = sl.next
	}
	if sl.next != noSlot {
		s.slot(sl.next).prev = sl.prev
	} else {
		s.tail = sl.prev
	}
	sl.prev, sl.next = noSlot, noSlot
}
