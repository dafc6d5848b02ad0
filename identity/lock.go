package identity

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Sentinel errors. Errors returned by the Manager wrap them; test with
// errors.Is.
var (
	// ErrNotFound: the target was never locked, or the identity has no
	// window state.
	ErrNotFound = errors.New("identity: not found")
	// ErrAlreadyLocked: Lock was called on a target whose lock is in force.
	// Locking is not idempotent so that a second admin cannot silently
	// replace the first one's reason or duration: unlock first.
	ErrAlreadyLocked = errors.New("identity: already locked")
	// ErrNotLocked: Unlock was called on a target with no lock in force
	// (never locked, unlocked, or expired).
	ErrNotLocked = errors.New("identity: not locked")
	// ErrInvalid: a target, request or observation is malformed.
	ErrInvalid = errors.New("identity: invalid argument")
	// ErrClosed: the Manager was closed.
	ErrClosed = errors.New("identity: manager closed")
)

// Actors the Manager itself uses. Admin actors are token names.
const (
	// ActorAuto locks on a spam, phishing, virus or volume threshold.
	ActorAuto = "auto"
	// ActorFeedback locks on the complaints threshold; pass it to Lock
	// when feedback processing locks directly.
	ActorFeedback = "feedback"
)

// MaxNameLength bounds domain and name of a Target.
const MaxNameLength = 512

// Kind is what a lock applies to.
type Kind string

const (
	// KindUser is an outgoing user: refused at MAIL.
	KindUser Kind = "user"
	// KindIdentity is an identity within an administrative domain: refused
	// after DATA.
	KindIdentity Kind = "identity"
)

// Target names what a lock applies to. Domain and Name are compared without
// regard to case.
type Target struct {
	Kind Kind `json:"kind"`
	// Domain is the administrative domain.
	Domain string `json:"domain"`
	// Name is the outgoing user's name or the identity.
	Name string `json:"name"`
}

// UserTarget returns the target of an outgoing user.
func UserTarget(domain, user string) Target { return Target{KindUser, domain, user} }

// IdentityTarget returns the target of an identity.
func IdentityTarget(domain, identity string) Target {
	return Target{KindIdentity, domain, identity}
}

func (t Target) String() string { return string(t.Kind) + " " + t.Name + " (" + t.Domain + ")" }

func (t Target) validate() error {
	if t.Kind != KindUser && t.Kind != KindIdentity {
		return fmt.Errorf("%w: kind %q: use user or identity", ErrInvalid, t.Kind)
	}
	if t.Domain == "" || t.Name == "" {
		return fmt.Errorf("%w: %s: domain and name are required", ErrInvalid, t)
	}
	if len(t.Domain) > MaxNameLength || len(t.Name) > MaxNameLength {
		return fmt.Errorf("%w: domain or name longer than %d bytes", ErrInvalid, MaxNameLength)
	}
	if hasControl(t.Domain) || hasControl(t.Name) {
		return fmt.Errorf("%w: control character in domain or name", ErrInvalid)
	}
	return nil
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// key is the index and bbolt key: kind, domain and name, lower case,
// NUL-separated (NUL cannot occur in a valid identity).
func (t Target) key() string {
	return string(t.Kind) + "\x00" + strings.ToLower(t.Domain) + "\x00" + strings.ToLower(t.Name)
}

// State is where a lock stands at a given time.
type State int

const (
	// StateActive: the lock is in force.
	StateActive State = iota + 1
	// StateExpired: a temporary lock whose expiry has passed.
	StateExpired
	// StateUnlocked: the lock was lifted by Unlock.
	StateUnlocked
)

func (s State) String() string {
	switch s {
	case StateActive:
		return "active"
	case StateExpired:
		return "expired"
	case StateUnlocked:
		return "unlocked"
	}
	return "unknown"
}

// Lock is one lock on a target, in force or ended. Values returned by the
// Manager are copies; the Evidence they point to must not be modified.
type Lock struct {
	Target
	Reason string `json:"reason"`
	// Actor is who locked: an admin token's name, ActorAuto or
	// ActorFeedback.
	Actor string `json:"actor"`
	// Automatic is set for locks made by Observe.
	Automatic bool `json:"automatic,omitempty"`
	// Escalated is set for an automatic lock made permanent because the
	// identity had already been automatically locked EscalateAfter times.
	Escalated bool      `json:"escalated,omitempty"`
	Start     time.Time `json:"start"`
	// Expires is the end of a temporary lock; zero for a permanent one.
	Expires time.Time `json:"expires,omitzero"`
	// Evidence is what triggered an automatic lock.
	Evidence *Evidence `json:"evidence,omitempty"`
	// Unlocked, UnlockedBy and UnlockReason are set by Unlock.
	Unlocked     time.Time `json:"unlocked,omitzero"`
	UnlockedBy   string    `json:"unlocked_by,omitempty"`
	UnlockReason string    `json:"unlock_reason,omitempty"`
}

// State returns where the lock stands at now.
func (l *Lock) State(now time.Time) State {
	switch {
	case !l.Unlocked.IsZero():
		return StateUnlocked
	case !l.Expires.IsZero() && !now.Before(l.Expires):
		return StateExpired
	}
	return StateActive
}

// Active reports whether the lock is in force at now.
func (l *Lock) Active(now time.Time) bool { return l.State(now) == StateActive }

// Evidence is what made an automatic lock or a WouldLock.
type Evidence struct {
	// User is the outgoing user of the observation that crossed.
	User string `json:"user,omitempty"`
	// Counter names the counter that reached its threshold.
	Counter string `json:"counter"`
	// Count is the counter's value in its window; Threshold and Window
	// are its limit.
	Count     int           `json:"count"`
	Threshold int           `json:"threshold"`
	Window    time.Duration `json:"window"`
	// TxIDs are the transactions counted: all of them for spam, phishing,
	// virus and complaints; the most recent ones (at most
	// MaxVolumeEvidence) for messages and recipients.
	TxIDs []string `json:"tx_ids"`
	// Counts holds every counter's value in its own window at the
	// crossing, by counter name.
	Counts map[string]int `json:"counts"`
	At     time.Time      `json:"at"`
}

// Action is the kind of a history entry.
type Action string

// History actions.
const (
	ActionLock   Action = "lock"
	ActionUnlock Action = "unlock"
	ActionExpire Action = "expire"
)

// HistoryEntry is one event in a target's history.
type HistoryEntry struct {
	Action Action    `json:"action"`
	At     time.Time `json:"at"`
	// Actor is who locked or unlocked; empty for an expiry.
	Actor     string    `json:"actor,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	Automatic bool      `json:"automatic,omitempty"`
	Expires   time.Time `json:"expires,omitzero"`
	Evidence  *Evidence `json:"evidence,omitempty"`
}

// LockRequest asks Lock to lock a target.
type LockRequest struct {
	Target Target
	Reason string
	// Actor is required: an admin token's name, or ActorFeedback.
	Actor string
	// Duration makes the lock temporary; 0 is permanent.
	Duration time.Duration
}

// ListFilter selects locks for List. Zero fields select everything.
type ListFilter struct {
	Kind   Kind
	Domain string
	// State keeps only locks in that state; 0 keeps all.
	State State
	// Limit bounds the result; 0 is no limit.
	Limit int
}

// EventType is the kind of an Event.
type EventType string

// Event types passed to Options.OnEvent.
const (
	EventLock      EventType = "lock"
	EventAutoLock  EventType = "auto-lock"
	EventUnlock    EventType = "unlock"
	EventExpire    EventType = "expire"
	EventWouldLock EventType = "would-lock"
)

// Event tells Options.OnEvent about a committed change.
type Event struct {
	Type   EventType
	Target Target
	At     time.Time
	// Lock is the lock concerned (a copy); nil for EventWouldLock.
	Lock *Lock
	// WouldLock is set for EventWouldLock.
	WouldLock *WouldLock
}

// WouldLock records a threshold crossing in monitor mode.
type WouldLock struct {
	// ID orders WouldLocks by creation.
	ID       uint64    `json:"id"`
	Target   Target    `json:"target"`
	At       time.Time `json:"at"`
	Evidence Evidence  `json:"evidence"`
}

// WouldLockFilter selects WouldLocks. Zero fields select everything.
type WouldLockFilter struct {
	Domain   string
	Identity string
	Since    time.Time
	// Limit bounds the result, newest first; 0 is no limit.
	Limit int
}
