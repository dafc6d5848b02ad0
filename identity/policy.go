package identity

import (
	"fmt"
	"time"
)

// Counter names one sliding-window counter of an identity.
type Counter int

// The counters, in the order Usage and evidence list them.
const (
	CounterSpam Counter = iota
	CounterPhishing
	CounterVirus
	CounterComplaints
	CounterMessages
	CounterRecipients
	// CounterSuspect counts messages in the suspect band: relayed, but
	// uncertain enough that a burst of them should lock.
	CounterSuspect
	// CounterRefused counts recipients the next hop refused permanently
	// (5xx at RCPT, or every recipient of a message refused after DATA),
	// whatever the reason. Its threshold also needs the refused share of
	// the recipients tried in the same window (Limit.Share).
	CounterRefused
	// CounterRefusedPolicy, CounterRefusedUnknown and CounterRefusedOther
	// split CounterRefused by the refusal's class: 5.7.x (policy, spam),
	// 5.1.x (no such recipient, as a list-washing run meets) and any
	// other. They are counted whenever CounterRefused is, for the
	// evidence, and lock on their own threshold when it is set.
	CounterRefusedPolicy
	CounterRefusedUnknown
	CounterRefusedOther
	// CounterRefusedAfterData counts messages the next hop refused
	// permanently after DATA: it judged the content.
	CounterRefusedAfterData
	numCounters
)

var counterNames = [numCounters]string{"spam", "phishing", "virus", "complaints", "messages", "recipients", "suspect",
	"refused", "refused_policy", "refused_unknown", "refused_other", "refused_after_data"}

// String returns the counter's name as configuration spells it.
func (c Counter) String() string {
	if c >= 0 && c < numCounters {
		return counterNames[c]
	}
	return fmt.Sprintf("Counter(%d)", int(c))
}

// volume reports whether c counts volume (messages, recipients) rather than
// individual events whose transaction ids are kept as evidence.
func (c Counter) volume() bool {
	switch c {
	case CounterMessages, CounterRecipients, CounterRefused, CounterRefusedPolicy, CounterRefusedUnknown, CounterRefusedOther:
		return true
	}
	return false
}

// refusalClass reports whether c is one of CounterRefused's classes.
func (c Counter) refusalClass() bool {
	return c == CounterRefusedPolicy || c == CounterRefusedUnknown || c == CounterRefusedOther
}

// Counters lists every counter.
func Counters() []Counter {
	out := make([]Counter, numCounters)
	for c := range numCounters {
		out[c] = c
	}
	return out
}

// Bounds on thresholds, which keep the memory of one identity's windows
// small whatever the configuration says. Resolve and Observe clamp to them.
const (
	// MaxWindow is the longest window.
	MaxWindow = 7 * 24 * time.Hour
	// MaxEventThreshold bounds spam, phishing, virus and complaints, whose
	// windows remember each transaction id.
	MaxEventThreshold = 1000
	// MaxVolumeThreshold bounds messages and recipients, which are
	// counted in at most volumeSlots time slots per window.
	MaxVolumeThreshold = 10_000_000
)

// Defaults of DefaultThresholds.
const (
	DefaultWindow     = 10 * time.Minute
	DefaultSpam       = 5
	DefaultPhishing   = 2
	DefaultVirus      = 1
	DefaultComplaints = 3
	DefaultSuspect    = 10
	// DefaultRefused and DefaultRefusedShare lock an identity when the next
	// hop refused at least 20 of its recipients and at least 30% of those
	// it tried, within the window: a list-washing run.
	DefaultRefused      = 20
	DefaultRefusedShare = 0.3
	// DefaultRefusedAfterData locks after 3 messages refused after DATA.
	DefaultRefusedAfterData = 3
	DefaultLockDuration     = time.Hour
	DefaultEscalate         = 3
)

// Limit is one counter's threshold: the identity is locked when Count
// events fall within Window. Count 0 turns the counter off.
type Limit struct {
	Count  int           `json:"count"`
	Window time.Duration `json:"window"`
	// Share, for CounterRefused only, is the fraction (0 to 1) of the
	// recipients tried in the window that must have been refused too; 0
	// means the count alone decides.
	Share float64 `json:"share,omitempty"`
}

// Thresholds are the resolved limits of automatic locking, one per
// counter, indexed by Counter.
type Thresholds [numCounters]Limit

// DefaultThresholds returns the built-in thresholds: 5 spam, 2 phishing,
// 1 virus, 3 complaints or 10 suspect messages within 10 minutes;
// messages and recipients off.
func DefaultThresholds() Thresholds {
	var t Thresholds
	for c := range t {
		t[c].Window = DefaultWindow
	}
	t[CounterSpam].Count = DefaultSpam
	t[CounterPhishing].Count = DefaultPhishing
	t[CounterVirus].Count = DefaultVirus
	t[CounterComplaints].Count = DefaultComplaints
	t[CounterSuspect].Count = DefaultSuspect
	t[CounterRefused].Count = DefaultRefused
	t[CounterRefused].Share = DefaultRefusedShare
	t[CounterRefusedAfterData].Count = DefaultRefusedAfterData
	return t
}

// clamped returns t within the package's bounds: negative counts become 0,
// windows lie in [1s, MaxWindow].
func (t Thresholds) clamped() Thresholds {
	for c := range t {
		l := &t[c]
		hi := MaxEventThreshold
		if Counter(c).volume() {
			hi = MaxVolumeThreshold
		}
		l.Count = min(max(l.Count, 0), hi)
		l.Window = min(max(l.Window, time.Second), MaxWindow)
		if Counter(c) != CounterRefused {
			l.Share = 0
		}
		l.Share = min(max(l.Share, 0), 1)
	}
	return t
}

// ThresholdOverrides is one layer of threshold settings (global, domain or
// user); nil fields inherit from the layer below.
type ThresholdOverrides struct {
	// Window applies to every counter whose own window is not set in
	// this layer.
	Window *time.Duration
	// Count overrides a counter's threshold, indexed by Counter.
	Count [numCounters]*int
	// CounterWindow overrides one counter's window, indexed by Counter.
	CounterWindow [numCounters]*time.Duration
	// RefusedShare overrides CounterRefused's Limit.Share.
	RefusedShare *float64
}

// Resolve applies layers in order, later layers winning (global, then the
// administrative domain, then the user), on top of base. Within one layer a
// counter's own window beats the layer's Window. Nil layers are skipped.
func Resolve(base Thresholds, layers ...*ThresholdOverrides) Thresholds {
	t := base
	for _, l := range layers {
		if l == nil {
			continue
		}
		for c := range t {
			if l.Count[c] != nil {
				t[c].Count = *l.Count[c]
			}
			if c == int(CounterRefused) && l.RefusedShare != nil {
				t[c].Share = *l.RefusedShare
			}
			switch {
			case l.CounterWindow[c] != nil:
				t[c].Window = *l.CounterWindow[c]
			case l.Window != nil:
				t[c].Window = *l.Window
			}
		}
	}
	return t.clamped()
}

// Policy is how Observe treats an outgoing user's identities, resolved by
// the caller for that user.
type Policy struct {
	// Auto locks an identity when a threshold is crossed.
	Auto bool
	// Monitor counts and records a WouldLock on a crossing, never locks.
	// It wins over Auto.
	Monitor bool
	// Thresholds are the user's resolved thresholds.
	Thresholds Thresholds
	// LockDuration is how long an automatic lock lasts; 0 makes it
	// permanent.
	LockDuration time.Duration
	// EscalateAfter makes the automatic lock that follows this many ended
	// automatic locks of the same identity permanent; 0 never escalates.
	EscalateAfter int
}

// DefaultPolicy returns automatic locking with DefaultThresholds, one-hour
// locks and escalation after 3.
func DefaultPolicy() Policy {
	return Policy{Auto: true, Thresholds: DefaultThresholds(), LockDuration: DefaultLockDuration, EscalateAfter: DefaultEscalate}
}
