package baseline

import (
	"fmt"
	"time"
)

// Level is how far an observation departs from what its identity usually
// does. The zero value is None.
type Level uint8

// Levels, in increasing order of severity.
const (
	// None: the identity sends as it usually does, or too little to matter.
	None Level = iota
	// Suspect: a sharp departure worth counting and showing, not acting on.
	Suspect
	// Lock: a departure sharp enough that the caller should lock the identity.
	Lock
)

// String returns "none", "suspect" or "lock".
func (l Level) String() string {
	switch l {
	case None:
		return "none"
	case Suspect:
		return "suspect"
	case Lock:
		return "lock"
	}
	return fmt.Sprintf("level(%d)", uint8(l))
}

// Signal names the measurement behind a Verdict. The values are stable and
// meant for logs, lock reasons and metric labels.
type Signal string

// Signals. The first three compare an identity past its warm-up with its own
// profile; the new_identity ones apply the absolute limits of the warm-up.
const (
	SignalVolume     Signal = "volume_burst"      // messages this hour
	SignalRecipients Signal = "recipients_burst"  // recipients this hour
	SignalNewDomains Signal = "new_domains_burst" // recipient domains never sent to before, this hour

	SignalNewIdentityVolume     Signal = "new_identity_volume"
	SignalNewIdentityRecipients Signal = "new_identity_recipients"
	SignalNewIdentityDomains    Signal = "new_identity_new_domains"
)

// Threshold is one level of one signal. A value reaches the level when it is
// at least Floor, at least Factor times the baseline and at least PeakFactor
// times the remembered peak. Under warm-up only Floor applies and the factors
// are 0.
type Threshold struct {
	Factor     float64
	PeakFactor float64
	Floor      float64
}

// Verdict is the outcome of one Observe: the level reached, the signal that
// reached it and the numbers behind it, so that the caller can write them
// into a lock's evidence as they are.
//
// When Level is None, Signal is empty and the numbers are those of the
// volume signal (messages this hour against the usual messages per hour).
type Verdict struct {
	Level  Level
	Signal Signal

	// Escalated is true for the one observation in the hour that first
	// raised the identity to Level. Callers that count suspects or lock
	// should act on it, and not on every later message of the same hour.
	Escalated bool

	// Warmup is true when the identity is too new for a profile and the
	// absolute limits of Options.Warmup* were applied.
	Warmup bool

	// Hour is the start (UTC) of the hour being counted.
	Hour time.Time

	// Value is the signal's count for the current hour, this message included.
	Value float64
	// Baseline is the identity's usual count in an hour in which it sends
	// (an exponentially weighted mean over its active hours), 0 under warm-up.
	Baseline float64
	// Peak is the identity's remembered peak hour for this signal, decayed
	// with Options.PeakHalfLife, 0 under warm-up.
	Peak float64
	// Factor is Value / max(Baseline, Options.MinBaseline); PeakFactor is
	// Value / max(Peak, Options.MinBaseline). Both are 0 under warm-up.
	Factor     float64
	PeakFactor float64

	// SuspectAt and LockAt are the thresholds the value was compared with.
	SuspectAt Threshold
	LockAt    Threshold
}

// String formats the verdict as one line of evidence.
func (v Verdict) String() string {
	if v.Warmup {
		return fmt.Sprintf("%s %s: %g this hour (new identity; suspect at %g, lock at %g)",
			v.Level, v.signalName(), v.Value, v.SuspectAt.Floor, v.LockAt.Floor)
	}
	return fmt.Sprintf("%s %s: %g this hour, usual %.3g (%.3gx), peak %.3g (%.3gx); suspect at %gx/%gx peak/%g, lock at %gx/%gx peak/%g",
		v.Level, v.signalName(), v.Value, v.Baseline, v.Factor, v.Peak, v.PeakFactor,
		v.SuspectAt.Factor, v.SuspectAt.PeakFactor, v.SuspectAt.Floor,
		v.LockAt.Factor, v.LockAt.PeakFactor, v.LockAt.Floor)
}

func (v Verdict) signalName() Signal {
	if v.Signal == "" {
		if v.Warmup {
			return SignalNewIdentityVolume
		}
		return SignalVolume
	}
	return v.Signal
}
