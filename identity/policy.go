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
	numCounters
)

var counterNames = [numCounters]string{"spam", "phishing", "virus", "complaints", "messages", "recipients", "suspect"}

// String returns the counter's name as configuration spells it.
func (c Counter) String() string {
	if c >= 0 && c < numCounters {
		return counterNames[c]
	}
	return fmt.Sprintf("Counter(%d)", int(c))
}

// volume reports whether c counts volume (messages, recipients) rather than
// individual events whose transaction ids are kept as evidence.
func (c Counter) volume() bool { return c == CounterMessages || c == CounterRecipients }

// Counters lists every counter.
func Counters() []Counter {
	return []Counter{CounterSpam, CounterPhishing, CounterVirus, CounterComplaints, CounterMessages, CounterRecipients, CounterSuspect}
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
	DefaultWindow       = 10 * time.Minute
	DefaultSpam         = 5
	DefaultPhishing     = 2
	DefaultVirus        = 1
	DefaultComplaints   = 3
	DefaultSuspect      = 10
	DefaultLockDuration = time.Hour
	DefaultEscalate     = 3
)

// Limit is one counter's threshold: the identity is locked when Count
// events fall within Window. Count 0 turns the counter off.
type Limit struct {
	Count  int           `json:"count"`
	Window time.Duration `json:"window"`
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
