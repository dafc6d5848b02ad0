package baseline

import (
	"math"
	"math/bits"
	"time"
)

// The three counted signals, as indexes into Profile.usual and Profile.peak.
const (
	sigVolume = iota
	sigRecipients
	sigNewDomains
	numSignals
)

// Sizes of the fixed sketches (see docs/baseline.md, "Sketches").
const (
	knownWords  = 16                   // 1024 bits per generation of known domains
	knownBits   = knownWords * 64      //
	knownHashes = 3                    // bits set per domain
	knownRotate = knownBits * 30 / 100 // rotate a generation once 30% of its bits are set
	hourWords   = 4                    // 256 bits: distinct domains in the current hour
	hourBits    = hourWords * 64       //
)

// Profile is the rolling profile of one identity. It has a fixed size and
// holds no pointers: counts of the current hour, exponentially weighted
// means over the hours in which the identity sent, decayed peak hours, and
// two small Bloom filters of the recipient domains it has sent to.
//
// The zero Profile is an identity never seen. A Profile is a value: copy it
// freely; the Detector's methods copy it in and out under their locks.
type Profile struct {
	first  uint32 // Unix hour of the first message; 0 for the zero Profile
	hour   uint32 // Unix hour of the current counts
	active uint32 // hours with at least one message that have been learned

	count [numSignals]uint32 // the current hour: messages, recipients, new domains
	level Level              // highest level reported in the current hour
	// rotated is set once the known domains rotated in the current hour.
	rotated bool

	usual    [numSignals]float32 // EWMA per active hour
	peak     [numSignals]float32 // decayed max of an hour, as of p.hour
	distinct float32             // EWMA of distinct recipient domains per active hour
	perMsg   float32             // EWMA of recipients per message, per active hour
	newShare float32             // EWMA of the share of new domains, per active hour

	hourDomains [hourWords]uint64     // linear-counting sketch of this hour's domains
	known       [2][knownWords]uint64 // Bloom filters: [0] current generation, [1] previous
}

// Stats are the numbers of a Profile, for display and evidence.
type Stats struct {
	FirstSeen   time.Time // start of the hour of the first message
	Hour        time.Time // start of the hour of the current counts
	ActiveHours int       // learned hours with at least one message

	// The current hour so far.
	Messages, Recipients, NewDomains, DistinctDomains float64

	// Usual values per active hour (exponentially weighted means).
	UsualMessages, UsualRecipients, UsualNewDomains, UsualDistinctDomains float64
	RecipientsPerMessage                                                  float64
	NewDomainShare                                                        float64 // 0..1

	// Remembered peak hours, decayed to Hour.
	PeakMessages, PeakRecipients, PeakNewDomains float64
}

// Stats returns the profile's numbers.
func (p *Profile) Stats() Stats {
	if p.first == 0 {
		return Stats{}
	}
	return Stats{
		FirstSeen:            hourTime(p.first),
		Hour:                 hourTime(p.hour),
		ActiveHours:          int(p.active),
		Messages:             float64(p.count[sigVolume]),
		Recipients:           float64(p.count[sigRecipients]),
		NewDomains:           float64(p.count[sigNewDomains]),
		DistinctDomains:      p.hourDistinct(),
		UsualMessages:        float64(p.usual[sigVolume]),
		UsualRecipients:      float64(p.usual[sigRecipients]),
		UsualNewDomains:      float64(p.usual[sigNewDomains]),
		UsualDistinctDomains: float64(p.distinct),
		RecipientsPerMessage: float64(p.perMsg),
		NewDomainShare:       float64(p.newShare),
		PeakMessages:         float64(p.peak[sigVolume]),
		PeakRecipients:       float64(p.peak[sigRecipients]),
		PeakNewDomains:       float64(p.peak[sigNewDomains]),
	}
}

// model is Options turned into what observe needs per call.
type model struct {
	alpha           float32 // EWMA weight of a new active hour
	peakDecayPerH   float64 // log2 decay of a peak per hour
	warmupHours     uint32
	warmupActive    uint32
	minBaseline     float64
	warmup          [numSignals]Limits
	floor           [numSignals]Limits
	suspectF, lockF float64
	peakSuspectF    float64
	peakLockF       float64
}

func newModel(o Options) model {
	m := model{
		alpha:         float32(1 - math.Exp2(-1/float64(o.UsualHalfLife))),
		peakDecayPerH: 1 / o.PeakHalfLife.Hours(),
		warmupHours:   uint32(min(o.Warmup/time.Hour, math.MaxUint32)),
		warmupActive:  uint32(min(o.WarmupActiveHours, math.MaxUint32)),
		minBaseline:   o.MinBaseline,
		warmup:        [numSignals]Limits{o.WarmupVolume, o.WarmupRecipients, o.WarmupNewDomains},
		floor:         [numSignals]Limits{o.VolumeFloor, o.RecipientsFloor, o.NewDomainsFloor},
		suspectF:      o.SuspectFactor,
		lockF:         o.LockFactor,
		peakSuspectF:  o.PeakSuspectFactor,
		peakLockF:     o.PeakLockFactor,
	}
	return m
}

var (
	profileSignals = [numSignals]Signal{SignalVolume, SignalRecipients, SignalNewDomains}
	warmupSignals  = [numSignals]Signal{SignalNewIdentityVolume, SignalNewIdentityRecipients, SignalNewIdentityDomains}
)

// unixHour returns the hour number of t, at least 1 so that 0 can mean
// "never seen".
func unixHour(t time.Time) uint32 {
	s := t.Unix()
	if s < 3600 {
		return 1
	}
	return uint32(min(s/3600, math.MaxUint32))
}

func hourTime(h uint32) time.Time { return time.Unix(int64(h)*3600, 0).UTC() }

func addSat(a uint32, b uint64) uint32 {
	if s := uint64(a) + b; s < math.MaxUint32 {
		return uint32(s)
	}
	return math.MaxUint32
}

// observe counts one message and judges the current hour. A time before
// the current hour counts in the current hour: the profile never goes back.
//
// dl, when not nil, records the message as this node's delta (see Delta).
func (p *Profile) observe(m *model, at time.Time, recipients int, domains []string, dl *Delta) Verdict {
	h := unixHour(at)
	if p.first == 0 {
		p.first, p.hour = h, h
	}
	if h > p.hour {
		p.roll(m, h)
	}
	p.count[sigVolume] = addSat(p.count[sigVolume], 1)
	if recipients > 0 {
		p.count[sigRecipients] = addSat(p.count[sigRecipients], uint64(recipients))
	}
	var dh *deltaHour
	if dl != nil {
		dh = dl.record(p, recipients)
	}
	for _, d := range domains {
		x, ok := hashDomain(d)
		if !ok {
			continue
		}
		w, bit := (x>>56)/64&(hourWords-1), uint64(1)<<((x>>56)%64)
		p.hourDomains[w] |= bit
		if dh != nil {
			dh.hourDomains[w] |= bit
		}
		if !p.knows(x) {
			p.learnDomain(x)
			p.count[sigNewDomains] = addSat(p.count[sigNewDomains], 1)
			if dl != nil {
				setKnown(&dl.known, x)
				if dh != nil {
					dh.count[sigNewDomains] = addSat(dh.count[sigNewDomains], 1)
				}
			}
		}
	}
	v := p.judge(m)
	if v.Level > p.level {
		v.Escalated = true
		p.level = v.Level
	}
	if dh != nil {
		dh.level = max(dh.level, p.level)
	}
	return v
}

// judge compares the current hour with the profile, or with the warm-up
// limits. The strongest level wins; between signals of the same level the
// first of volume, recipients and new domains is reported.
func (p *Profile) judge(m *model) Verdict {
	v := Verdict{Hour: hourTime(p.hour)}
	warm := p.hour-p.first < m.warmupHours || p.active < m.warmupActive
	best := -1
	var bestLevel Level
	for s := range numSignals {
		val := float64(p.count[s])
		var lvl Level
		if warm {
			lim := m.warmup[s]
			switch {
			case val >= lim.Lock:
				lvl = Lock
			case val >= lim.Suspect:
				lvl = Suspect
			}
		} else {
			lvl = m.level(s, val, float64(p.usual[s]), float64(p.peak[s]))
		}
		if best < 0 || lvl > bestLevel {
			best, bestLevel = s, lvl
		}
	}
	v.Level = bestLevel
	if bestLevel != None {
		if warm {
			v.Signal = warmupSignals[best]
		} else {
			v.Signal = profileSignals[best]
		}
	}
	val := float64(p.count[best])
	v.Value = val
	v.Warmup = warm
	if warm {
		v.SuspectAt = Threshold{Floor: m.warmup[best].Suspect}
		v.LockAt = Threshold{Floor: m.warmup[best].Lock}
		return v
	}
	v.Baseline = float64(p.usual[best])
	v.Peak = float64(p.peak[best])
	v.Factor = val / max(v.Baseline, m.minBaseline)
	v.PeakFactor = val / max(v.Peak, m.minBaseline)
	v.SuspectAt = Threshold{Factor: m.suspectF, PeakFactor: m.peakSuspectF, Floor: m.floor[best].Suspect}
	v.LockAt = Threshold{Factor: m.lockF, PeakFactor: m.peakLockF, Floor: m.floor[best].Lock}
	return v
}

// level applies the thresholds of signal s past warm-up.
func (m *model) level(s int, val, usual, peak float64) Level {
	f := val / max(usual, m.minBaseline)
	pf := val / max(peak, m.minBaseline)
	switch {
	case val >= m.floor[s].Lock && f >= m.lockF && pf >= m.peakLockF:
		return Lock
	case val >= m.floor[s].Suspect && f >= m.suspectF && pf >= m.peakSuspectF:
		return Suspect
	}
	return None
}

// roll closes the current hour: if the identity sent in it, the hour is
// learned into the means and peaks; then the peaks decay over the hours
// elapsed until h, and the counts of hour h start from zero.
func (p *Profile) roll(m *model, h uint32) {
	if n := p.count[sigVolume]; n > 0 {
		distinct := float32(p.hourDistinct())
		newShare := float32(0)
		if distinct > 0 {
			newShare = min(float32(p.count[sigNewDomains])/distinct, 1)
		}
		perMsg := float32(p.count[sigRecipients]) / float32(n)
		if p.active == 0 {
			for s := range numSignals {
				p.usual[s] = float32(p.count[s])
			}
			p.distinct, p.perMsg, p.newShare = distinct, perMsg, newShare
		} else {
			a := m.alpha
			for s := range numSignals {
				p.usual[s] += a * (float32(p.count[s]) - p.usual[s])
			}
			p.distinct += a * (distinct - p.distinct)
			p.perMsg += a * (perMsg - p.perMsg)
			p.newShare += a * (newShare - p.newShare)
		}
		for s := range numSignals {
			p.peak[s] = max(p.peak[s], float32(p.count[s]))
		}
		if p.active < math.MaxUint32 {
			p.active++
		}
	}
	decay := float32(math.Exp2(-float64(h-p.hour) * m.peakDecayPerH))
	for s := range numSignals {
		p.peak[s] *= decay
	}
	p.hour = h
	p.count = [numSignals]uint32{}
	p.level = None
	p.rotated = false
	p.hourDomains = [hourWords]uint64{}
}

// hourDistinct estimates the distinct domains of the current hour by linear
// counting over the 256-bit hour sketch.
func (p *Profile) hourDistinct() float64 {
	set := 0
	for _, w := range p.hourDomains {
		set += bits.OnesCount64(w)
	}
	if set == 0 {
		return 0
	}
	zeros := hourBits - set
	if zeros == 0 {
		zeros = 1 // saturated: report the largest estimate the sketch can give
	}
	return math.Round(-hourBits * math.Log(float64(zeros)/hourBits))
}

// knows reports whether domain hash x is in either generation.
func (p *Profile) knows(x uint64) bool {
	for g := range p.known {
		if p.inGen(g, x) {
			return true
		}
	}
	return false
}

func (p *Profile) inGen(g int, x uint64) bool {
	h1, h2 := uint32(x), uint32(x>>32)|1
	for i := range uint32(knownHashes) {
		b := (h1 + i*h2) % knownBits
		if p.known[g][b/64]&(1<<(b%64)) == 0 {
			return false
		}
	}
	return true
}

// learnDomain adds x to the current generation, first moving the current
// generation to the previous one when it is full, so that the filter keeps
// the identity's recent domains at a bounded false-positive rate. It
// rotates at most once an hour, so that no domain is forgotten within the
// hour and counted as new twice: an identity that sends to more domains in
// an hour than a generation holds overfills it instead, and its new domains
// are undercounted as the false-positive rate rises (docs/baseline.md).
func (p *Profile) learnDomain(x uint64) {
	if !p.rotated {
		set := 0
		for _, w := range p.known[0] {
			set += bits.OnesCount64(w)
		}
		if set >= knownRotate {
			p.known[1] = p.known[0]
			p.known[0] = [knownWords]uint64{}
			p.rotated = true
		}
	}
	setKnown(&p.known[0], x)
}

// hashDomain hashes a domain name without regard to ASCII case or a
// trailing dot, with a function fixed by this package so that encoded
// profiles stay valid across restarts and versions: 64-bit FNV-1a, then the
// SplitMix64 finaliser to spread the bits. ok is false for an empty name.
func hashDomain(d string) (x uint64, ok bool) {
	for len(d) > 0 && d[len(d)-1] == '.' {
		d = d[:len(d)-1]
	}
	if d == "" {
		return 0, false
	}
	x = 14695981039346656037
	for i := 0; i < len(d); i++ {
		c := d[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		x ^= uint64(c)
		x *= 1099511628211
	}
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x, true
}
