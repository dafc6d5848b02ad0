package baseline

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Limits are the two levels of one absolute or floor limit, in counts per
// hour. Lock must be at least Suspect. math.Inf(1) switches a level off.
type Limits struct {
	Suspect float64
	Lock    float64
}

// Options configure a Detector. The zero value of every field means its
// default, which is given in the field's comment and in docs/baseline.md.
type Options struct {
	// MaxProfiles bounds the number of identities kept in memory. When it
	// is reached, a new identity evicts the least recently observed profile
	// of its shard (and hands it to OnEvict). Default 1<<20 (1,048,576).
	MaxProfiles int

	// Shards is the number of independently locked shards, rounded up to a
	// power of two. Default 64.
	Shards int

	// Warmup is how long after its first message an identity is judged by
	// the absolute Warmup* limits instead of its own profile. Default 7 days.
	Warmup time.Duration
	// WarmupActiveHours is the number of hours with at least one message an
	// identity must also have behind it before its profile is trusted.
	// Default 1: a newsletter that sends nothing but its weekly issue has
	// one active hour a week, and must be judged by its profile from its
	// second issue on.
	WarmupActiveHours int

	// WarmupVolume, WarmupRecipients and WarmupNewDomains are the absolute
	// per-hour limits under warm-up: messages, recipients and recipient
	// domains not sent to before. Defaults {200, 500}, {1000, 2500} and
	// {100, 300}.
	WarmupVolume     Limits
	WarmupRecipients Limits
	WarmupNewDomains Limits

	// SuspectFactor and LockFactor: past warm-up, an hour's count must be at
	// least this many times the identity's usual count to reach the level.
	// Defaults 10 and 20.
	SuspectFactor float64
	LockFactor    float64

	// PeakSuspectFactor and PeakLockFactor: it must also be at least this
	// many times the identity's remembered peak hour, so that a burst the
	// identity has made before (a weekly newsletter) is not a departure.
	// Defaults 3 and 5.
	PeakSuspectFactor float64
	PeakLockFactor    float64

	// VolumeFloor, RecipientsFloor and NewDomainsFloor are the absolute
	// per-hour counts below which a departure is not reported at all, so
	// that an identity that usually sends 1 message an hour may send 30.
	// Defaults {100, 300}, {500, 1500} and {50, 200}.
	VolumeFloor     Limits
	RecipientsFloor Limits
	NewDomainsFloor Limits

	// UsualHalfLife is the half-life, in active hours (hours in which the
	// identity sent), of the exponentially weighted means that make the
	// usual counts. Default 24.
	UsualHalfLife int

	// PeakHalfLife is the half-life, in time, of the remembered peak hours.
	// A burst that recurs within about 1.5 half-lives stays below
	// PeakSuspectFactor times the decayed peak. Default 28 days.
	PeakHalfLife time.Duration

	// MinBaseline is the smallest usual or peak count a factor is computed
	// against, so that a factor over an almost silent identity stays finite.
	// Default 1.
	MinBaseline float64

	// OnEvict, if set, is called with each profile evicted to make room,
	// on the goroutine that called Observe or Restore and with the lock of
	// the profile's shard held, so that a Fetch of the same key cannot
	// start before it returns. It must not block or call the Detector: a
	// caller that persists profiles puts the key and the profile in a map
	// of pending writes that its Fetch also reads, and writes them behind.
	OnEvict func(key string, p Profile)

	// Fetch, if set, is called by Observe for a key that is not in memory,
	// normally with no lock held (so it may read a database), to read the key's stored profile (decoded with
	// Profile.UnmarshalBinary); found false starts a new profile. With
	// OnEvict writing evicted profiles back, memory holds the recently
	// active identities and storage all of them. Fetch is on the path of
	// every first message of an identity since start or eviction. When
	// evictions in the key's shard race its reads twice in a row, Fetch is
	// called once more with the shard's lock held; it must not call the
	// Detector.
	Fetch func(key string) (p Profile, found bool)

	// Deltas makes the detector keep, beside each profile, what it counted
	// since the last call of Detector.Deltas: the counts, sketches and
	// domains of the message it observed (see Delta). A fleet whose nodes
	// share profiles merges the deltas into the shared profile with
	// Detector.Merge and hands the result back with Detector.Apply
	// (docs/baseline.md, "Several nodes"). It costs a Delta (about 250
	// bytes) per profile observed between two calls.
	Deltas bool

	// OnEvictDelta, if set with Deltas, is called like OnEvict with the
	// delta of an evicted profile, when it has one: the caller merges it
	// with the others of its next round.
	OnEvictDelta func(key string, d Delta)
}

// ErrOptions is wrapped by every error New returns for invalid Options.
var ErrOptions = errors.New("baseline: invalid options")

func (o Options) withDefaults() Options {
	def := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	defLimits := func(l *Limits, s, k float64) {
		def(&l.Suspect, s)
		def(&l.Lock, k)
	}
	if o.MaxProfiles == 0 {
		o.MaxProfiles = 1 << 20
	}
	if o.Shards == 0 {
		o.Shards = 64
	}
	if o.Warmup == 0 {
		o.Warmup = 7 * 24 * time.Hour
	}
	if o.WarmupActiveHours == 0 {
		o.WarmupActiveHours = 1
	}
	defLimits(&o.WarmupVolume, 200, 500)
	defLimits(&o.WarmupRecipients, 1000, 2500)
	defLimits(&o.WarmupNewDomains, 100, 300)
	def(&o.SuspectFactor, 10)
	def(&o.LockFactor, 20)
	def(&o.PeakSuspectFactor, 3)
	def(&o.PeakLockFactor, 5)
	defLimits(&o.VolumeFloor, 100, 300)
	defLimits(&o.RecipientsFloor, 500, 1500)
	defLimits(&o.NewDomainsFloor, 50, 200)
	if o.UsualHalfLife == 0 {
		o.UsualHalfLife = 24
	}
	if o.PeakHalfLife == 0 {
		o.PeakHalfLife = 28 * 24 * time.Hour
	}
	def(&o.MinBaseline, 1)
	return o
}

func (o Options) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrOptions, fmt.Sprintf(format, args...))
	}
	if o.MaxProfiles < 0 || o.Shards < 0 || o.Shards > 1<<16 {
		return bad("MaxProfiles must be >= 0 and Shards within 0..65536 (got %d, %d)", o.MaxProfiles, o.Shards)
	}
	if o.Warmup < 0 || o.WarmupActiveHours < 0 || o.UsualHalfLife < 0 {
		return bad("Warmup, WarmupActiveHours and UsualHalfLife must be >= 0")
	}
	if o.PeakHalfLife < time.Hour {
		return bad("PeakHalfLife must be at least 1h (got %s)", o.PeakHalfLife)
	}
	for _, l := range []struct {
		name string
		l    Limits
	}{
		{"WarmupVolume", o.WarmupVolume}, {"WarmupRecipients", o.WarmupRecipients},
		{"WarmupNewDomains", o.WarmupNewDomains}, {"VolumeFloor", o.VolumeFloor},
		{"RecipientsFloor", o.RecipientsFloor}, {"NewDomainsFloor", o.NewDomainsFloor},
	} {
		if !(l.l.Suspect > 0) || !(l.l.Lock >= l.l.Suspect) {
			return bad("%s: need 0 < Suspect <= Lock (got %g, %g)", l.name, l.l.Suspect, l.l.Lock)
		}
	}
	if !(o.SuspectFactor >= 1) || !(o.LockFactor >= o.SuspectFactor) || math.IsInf(o.LockFactor, 0) {
		return bad("need 1 <= SuspectFactor <= LockFactor < Inf (got %g, %g)", o.SuspectFactor, o.LockFactor)
	}
	if !(o.PeakSuspectFactor >= 1) || !(o.PeakLockFactor >= o.PeakSuspectFactor) || math.IsInf(o.PeakLockFactor, 0) {
		return bad("need 1 <= PeakSuspectFactor <= PeakLockFactor < Inf (got %g, %g)", o.PeakSuspectFactor, o.PeakLockFactor)
	}
	if !(o.MinBaseline > 0) || math.IsInf(o.MinBaseline, 0) {
		return bad("MinBaseline must be a positive number (got %g)", o.MinBaseline)
	}
	return nil
}
