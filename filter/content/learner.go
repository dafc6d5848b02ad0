package content

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
)

// Store keeps a Learner's overlay. Implementations must make Save durable
// before returning. See BoltStore.
type Store interface {
	// Load returns the saved overlay, or nil, nil when there is none.
	Load() ([]byte, error)
	// Save replaces the saved overlay.
	Save(data []byte) error
}

// SharedStore is a Store that several nodes use at once (store.backend
// postgres; docs/content-model.md, "Several nodes"). Load and Save handle
// this node's own lessons; a Learner scores with the sum of its own and
// every other node's, which Refresh reads. See PgStore.
type SharedStore interface {
	Store
	// Others returns the overlays of the other nodes whose change stamp
	// differs from known, the stamps of all of them, and the generation.
	Others(known map[string]int64) (changed map[string][]byte, stamps map[string]int64, generation int64, err error)
	// ReplaceAll starts a new generation holding data as this node's
	// overlay and no other node's (Reset and Import of the whole fleet's
	// overlay), and returns it.
	ReplaceAll(data []byte) (generation int64, err error)
}

// Defaults of LearnerOptions.
const (
	DefaultMaxOverlay = 200_000
	DefaultRate       = 1.0
	DefaultMaxSteps   = 12
	DefaultMargin     = 1.0
)

// LearnerOptions configure a Learner. Zero fields take the defaults.
type LearnerOptions struct {
	// Store keeps the overlay across restarts; nil keeps it in memory
	// only.
	Store Store
	// MaxOverlay bounds the number of feature weights the overlay holds;
	// past it, the smallest adjustments are dropped. Default
	// DefaultMaxOverlay (about 1.6 MB in memory).
	MaxOverlay int
	// Rate is the step of one online gradient update; default
	// DefaultRate.
	Rate float64
	// MaxSteps bounds the gradient steps of one Learn; default
	// DefaultMaxSteps.
	MaxSteps int
	// Margin is how far past the threshold Learn pushes the taught
	// message: below Suspect-Margin for ham, at Spam+Margin for spam.
	// Default DefaultMargin.
	Margin float64
}

// Learner scores with a seed model plus a per-deployment overlay of weight
// adjustments that Learn changes by online gradient steps. The seed is
// never changed: Reset drops the overlay and gives the seed's scores back.
// A Learner is safe for concurrent use; Score takes a read lock only.
type Learner struct {
	seed *Model
	opts LearnerOptions

	// mu guards the overlay; Score takes it for reading. saveMu orders
	// the writes to Store, which happen outside mu so that scoring never
	// waits on the disk.
	mu      sync.RWMutex
	saveMu  sync.Mutex
	delta   map[uint32]float32
	bias    float32
	version uint64 // counts updates since the overlay was created
	learned uint64 // messages taught

	// fleet holds the other nodes' lessons on a SharedStore (nil
	// otherwise): delta, bias, version and learned above are this node's
	// own, and a score adds both.
	fleet *fleetOverlay
}

// fleetOverlay is the sum of the other nodes' overlays, and what Refresh
// needs to keep it current.
type fleetOverlay struct {
	delta      map[uint32]float32
	bias       float32
	version    uint64
	learned    uint64
	parts      map[string]*Learner // decoded overlays, by node
	stamps     map[string]int64
	generation int64
}

func newFleetOverlay() *fleetOverlay {
	return &fleetOverlay{delta: map[uint32]float32{}, parts: map[string]*Learner{}, stamps: map[string]int64{}}
}

// sum recomputes the totals from the parts.
func (fo *fleetOverlay) sum() {
	fo.delta = map[uint32]float32{}
	fo.bias, fo.version, fo.learned = 0, 0, 0
	for _, p := range fo.parts {
		for id, d := range p.delta {
			fo.delta[id] += d
		}
		fo.bias += p.bias
		fo.version += p.version
		fo.learned += p.learned
	}
}

// ErrBadOverlay is wrapped by errors about overlay data that cannot be
// read.
var ErrBadOverlay = errors.New("content: not a usable overlay")

// NewLearner returns a Learner over seed with the overlay loaded from
// opts.Store.
func NewLearner(seed *Model, opts LearnerOptions) (*Learner, error) {
	if seed == nil {
		return nil, errors.New("content: NewLearner: nil seed model")
	}
	if opts.MaxOverlay <= 0 {
		opts.MaxOverlay = DefaultMaxOverlay
	}
	if opts.Rate <= 0 {
		opts.Rate = DefaultRate
	}
	if opts.MaxSteps <= 0 {
		opts.MaxSteps = DefaultMaxSteps
	}
	if opts.Margin <= 0 {
		opts.Margin = DefaultMargin
	}
	l := &Learner{seed: seed, opts: opts, delta: map[uint32]float32{}}
	if _, ok := opts.Store.(SharedStore); ok {
		l.fleet = newFleetOverlay()
	}
	if opts.Store != nil {
		data, err := opts.Store.Load()
		if err != nil {
			return nil, fmt.Errorf("content: loading the overlay: %w", err)
		}
		if data != nil {
			if err := l.decode(data); err != nil {
				return nil, err
			}
		}
	}
	if l.fleet != nil {
		if err := l.Refresh(); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// Refresh reads the other nodes' lessons from a SharedStore, so that this
// node scores with them; the owner calls it periodically. A new generation
// (a reset or an import on any node) drops this node's own lessons too.
// It is a no-op on another Store.
func (l *Learner) Refresh() error {
	if l.fleet == nil {
		return nil
	}
	st := l.opts.Store.(SharedStore)
	l.saveMu.Lock()
	defer l.saveMu.Unlock()
	l.mu.RLock()
	known := make(map[string]int64, len(l.fleet.stamps))
	for n, s := range l.fleet.stamps {
		known[n] = s
	}
	generation := l.fleet.generation
	l.mu.RUnlock()
	changed, stamps, gen, err := st.Others(known)
	if err != nil {
		return fmt.Errorf("content: reading the other nodes' overlays: %w", err)
	}
	parts := map[string]*Learner{}
	for node, data := range changed {
		p := &Learner{opts: l.opts}
		if err := p.decode(data); err != nil {
			return fmt.Errorf("content: the overlay of node %q: %w", node, err)
		}
		parts[node] = p
	}
	l.mu.Lock()
	var saved []byte
	if gen != generation {
		if generation != 0 {
			// Another node reset or replaced the fleet's overlay.
			l.delta, l.bias, l.version, l.learned = map[uint32]float32{}, 0, 0, 0
			saved = l.encodeLocked()
		}
		l.fleet.parts = map[string]*Learner{}
		l.fleet.generation = gen
	}
	for node := range l.fleet.parts {
		if _, ok := stamps[node]; !ok {
			delete(l.fleet.parts, node)
		}
	}
	for node, p := range parts {
		l.fleet.parts[node] = p
	}
	l.fleet.stamps = stamps
	l.fleet.sum()
	l.mu.Unlock()
	// A lesson this node saved in the old generation, after the reset,
	// would carry it into the new one: save the empty overlay.
	return l.save(saved)
}

// Seed returns the seed model.
func (l *Learner) Seed() *Model { return l.seed }

// Version names what judges a message now: the seed's version, and the
// overlay's update count when it has one ("seed-ab12cd34ef56+7").
func (l *Learner) Version() string {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.versionLocked()
}

func (l *Learner) versionLocked() string {
	v := l.version
	if l.fleet != nil {
		v += l.fleet.version
	}
	if v == 0 {
		return l.seed.Version()
	}
	return l.seed.Version() + "+" + strconv.FormatUint(v, 10)
}

// Score returns the score of f and the version that gave it.
func (l *Learner) Score(f Features) (float64, string) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.scoreLocked(f), l.versionLocked()
}

func (l *Learner) scoreLocked(f Features) float64 {
	s := l.seed.Score(f) + float64(l.bias)
	var sum float32
	if len(l.delta) > 0 {
		for _, id := range f {
			sum += l.delta[id]
		}
	}
	if l.fleet != nil {
		s += float64(l.fleet.bias)
		if len(l.fleet.delta) > 0 {
			for _, id := range f {
				sum += l.fleet.delta[id]
			}
		}
	}
	if sum == 0 || len(f) == 0 {
		return s
	}
	return s + float64(sum)/math.Sqrt(float64(len(f)))
}

// Contribution is one feature's share of a score.
type Contribution struct {
	// Name is the feature's readable name, e.g. "w:invoice" (a body
	// word), "s:urgent" (a subject word), "h:bit.ly" (a link host).
	Name string
	// Value is the weight divided by √n: what it adds to the score.
	Value float64
}

// Explain returns the k features that add most to the score of f, in
// decreasing order, with names from names (features without a name are
// skipped).
func (l *Learner) Explain(f Features, names map[uint32]string, k int) []Contribution {
	if len(f) == 0 {
		return nil
	}
	l.mu.RLock()
	out := make([]Contribution, 0, len(f))
	norm := math.Sqrt(float64(len(f)))
	for _, id := range f {
		w := float64(l.seed.Weight(id) + l.delta[id])
		if l.fleet != nil {
			w += float64(l.fleet.delta[id])
		}
		if n, ok := names[id]; ok && w != 0 {
			out = append(out, Contribution{Name: n, Value: w / norm})
		}
	}
	l.mu.RUnlock()
	slices.SortFunc(out, func(a, b Contribution) int {
		switch {
		case a.Value > b.Value:
			return -1
		case a.Value < b.Value:
			return 1
		}
		return 0
	})
	if len(out) > k {
		out = out[:k]
	}
	return out
}

// Learn teaches that the message with features f is spam (or ham): it
// takes online gradient steps of the log loss on the overlay until the
// message scores past the model's threshold by the margin (at most
// MaxSteps steps), saves the overlay and returns the score before and
// after. The seed's thresholds decide: ham is pushed below Suspect-Margin,
// spam to Spam+Margin. Features in fixed (sorted; Extractor.Generic) count
// in the score but are not adjusted.
func (l *Learner) Learn(f, fixed Features, spam bool) (before, after float64, err error) {
	if len(f) == 0 {
		return 0, 0, errors.New("content: nothing to learn from: the message has no features")
	}
	l.saveMu.Lock()
	defer l.saveMu.Unlock()
	l.mu.Lock()
	before = l.scoreLocked(f)
	mid := float64(l.seed.Suspect+l.seed.Spam) / 2
	x := 1 / math.Sqrt(float64(len(f)))
	y := 0.0
	if spam {
		y = 1
	}
	done := func(z float64) bool {
		if spam {
			return z >= float64(l.seed.Spam)+l.opts.Margin
		}
		return z < float64(l.seed.Suspect)-l.opts.Margin
	}
	z := before
	for step := 0; step < l.opts.MaxSteps && !done(z); step++ {
		g := sigmoid(z-mid) - y
		// Every adjustable feature of the message moves by the same
		// amount, so the message's own score moves by up to Rate·|g| per
		// step.
		d := float32(-l.opts.Rate * g * x)
		for _, id := range f {
			if _, ok := slices.BinarySearch(fixed, id); !ok {
				l.delta[id] += d
			}
		}
		z = l.scoreLocked(f)
	}
	l.version++
	l.learned++
	l.prune()
	after = l.scoreLocked(f)
	data := l.encodeIfStored()
	l.mu.Unlock()
	return before, after, l.save(data)
}

// encodeIfStored encodes the overlay when there is a Store to save it to;
// l.mu must be held.
func (l *Learner) encodeIfStored() []byte {
	if l.opts.Store == nil {
		return nil
	}
	return l.encodeLocked()
}

// save writes data to the Store; the caller holds saveMu (so saves land
// in the order of the changes) but not mu.
func (l *Learner) save(data []byte) error {
	if data == nil {
		return nil
	}
	if err := l.opts.Store.Save(data); err != nil {
		return fmt.Errorf("content: saving the overlay: %w", err)
	}
	return nil
}

// prune drops the smallest adjustments once the overlay is over its bound,
// down to nine tenths of it, so that pruning is rare. One lesson moves all
// its features by the same amount, so ties are common: they are broken by
// id, which keeps the bound exact and the result deterministic.
func (l *Learner) prune() {
	if len(l.delta) <= l.opts.MaxOverlay {
		return
	}
	ids := make([]uint32, 0, len(l.delta))
	for id := range l.delta {
		ids = append(ids, id)
	}
	mag := func(id uint32) float64 { return math.Abs(float64(l.delta[id])) }
	slices.SortFunc(ids, func(a, b uint32) int {
		if c := cmp.Compare(mag(a), mag(b)); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	for _, id := range ids[:len(ids)-l.opts.MaxOverlay*9/10] {
		delete(l.delta, id)
	}
}

// OverlayInfo describes the overlay.
type OverlayInfo struct {
	// Seed is the seed model's version.
	Seed string `json:"seed"`
	// Version is the version that judges messages now.
	Version string `json:"version"`
	// Updates counts the overlay's changes; 0 for none.
	Updates uint64 `json:"updates"`
	// Learned counts the messages taught.
	Learned uint64 `json:"learned"`
	// Features is the number of adjusted weights.
	Features int `json:"features"`
	// MaxFeatures is the bound on Features.
	MaxFeatures int `json:"max_features"`
}

// Info describes the overlay.
func (l *Learner) Info() OverlayInfo {
	l.mu.RLock()
	defer l.mu.RUnlock()
	info := OverlayInfo{
		Seed: l.seed.Version(), Version: l.versionLocked(), Updates: l.version,
		Learned: l.learned, Features: len(l.delta), MaxFeatures: l.opts.MaxOverlay,
	}
	if l.fleet != nil {
		info.Updates += l.fleet.version
		info.Learned += l.fleet.learned
		for id := range l.fleet.delta {
			if _, own := l.delta[id]; !own {
				info.Features++
			}
		}
	}
	return info
}

// Reset drops the overlay: scores are the seed's again.
func (l *Learner) Reset() error {
	l.saveMu.Lock()
	defer l.saveMu.Unlock()
	l.mu.Lock()
	l.delta = map[uint32]float32{}
	l.bias = 0
	l.version, l.learned = 0, 0
	data := l.encodeIfStored()
	l.mu.Unlock()
	if l.fleet != nil {
		return l.replaceAll(data)
	}
	return l.save(data)
}

// replaceAll makes data, this node's overlay, the fleet's only one (a
// Reset or an Import); the caller holds saveMu.
func (l *Learner) replaceAll(data []byte) error {
	gen, err := l.opts.Store.(SharedStore).ReplaceAll(data)
	if err != nil {
		return fmt.Errorf("content: saving the overlay: %w", err)
	}
	l.mu.Lock()
	l.fleet = newFleetOverlay()
	l.fleet.generation = gen
	l.mu.Unlock()
	return nil
}

// Export returns the overlay in the format Import reads.
func (l *Learner) Export() []byte {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.fleet == nil {
		return l.encodeLocked()
	}
	// The whole fleet's overlay: this node's lessons and the others'.
	all := &Learner{delta: make(map[uint32]float32, len(l.delta)+len(l.fleet.delta)),
		bias: l.bias + l.fleet.bias, version: l.version + l.fleet.version, learned: l.learned + l.fleet.learned}
	for id, d := range l.delta {
		all.delta[id] = d
	}
	for id, d := range l.fleet.delta {
		all.delta[id] += d
	}
	return all.encodeLocked()
}

// Import replaces the overlay with data from Export (of this deployment or
// another) and saves it. The overlay's version continues from the higher of
// the two, so that log records never show one version for two overlays.
func (l *Learner) Import(data []byte) error {
	fresh := &Learner{seed: l.seed, opts: l.opts, delta: map[uint32]float32{}}
	if err := fresh.decode(data); err != nil {
		return err
	}
	l.saveMu.Lock()
	defer l.saveMu.Unlock()
	l.mu.Lock()
	current := l.version
	if l.fleet != nil {
		current += l.fleet.version
	}
	l.delta, l.bias, l.learned = fresh.delta, fresh.bias, fresh.learned
	l.version = max(current, fresh.version) + 1
	l.prune()
	saved := l.encodeIfStored()
	l.mu.Unlock()
	if l.fleet != nil {
		return l.replaceAll(saved)
	}
	return l.save(saved)
}

var overlayMagic = [8]byte{'O', 'G', 'C', 'O', 'V', 'E', 'R', '1'}

// encodeLocked writes magic, version, learned, bias, count, then sorted
// (id, delta) pairs, little-endian.
func (l *Learner) encodeLocked() []byte {
	ids := make([]uint32, 0, len(l.delta))
	for id := range l.delta {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	le := binary.LittleEndian
	out := make([]byte, 0, 32+8*len(ids))
	out = append(out, overlayMagic[:]...)
	out = le.AppendUint64(out, l.version)
	out = le.AppendUint64(out, l.learned)
	out = le.AppendUint32(out, math.Float32bits(l.bias))
	out = le.AppendUint32(out, uint32(len(ids)))
	for _, id := range ids {
		out = le.AppendUint32(out, id)
		out = le.AppendUint32(out, math.Float32bits(l.delta[id]))
	}
	return out
}

// decode reads encodeLocked's format into l, checking it whole.
func (l *Learner) decode(data []byte) error {
	le := binary.LittleEndian
	const hdr = 8 + 8 + 8 + 4 + 4
	if len(data) < hdr || !bytes.Equal(data[:8], overlayMagic[:]) {
		return fmt.Errorf("%w: no overlay header", ErrBadOverlay)
	}
	version, learned := le.Uint64(data[8:]), le.Uint64(data[16:])
	bias := math.Float32frombits(le.Uint32(data[24:]))
	n := uint64(le.Uint32(data[28:]))
	body := data[hdr:]
	if uint64(len(body)) != 8*n {
		return fmt.Errorf("%w: truncated or padded", ErrBadOverlay)
	}
	if n > uint64(l.opts.MaxOverlay)*2 {
		return fmt.Errorf("%w: %d features, more than twice the bound %d", ErrBadOverlay, n, l.opts.MaxOverlay)
	}
	if !finite(bias) {
		return fmt.Errorf("%w: bias is not finite", ErrBadOverlay)
	}
	delta := make(map[uint32]float32, n)
	for i := uint64(0); i < n; i++ {
		id := le.Uint32(body[8*i:])
		d := math.Float32frombits(le.Uint32(body[8*i+4:]))
		if !finite(d) {
			return fmt.Errorf("%w: weight %d is not finite", ErrBadOverlay, i)
		}
		delta[id] = d
	}
	l.delta, l.bias, l.version, l.learned = delta, bias, version, learned
	return nil
}
