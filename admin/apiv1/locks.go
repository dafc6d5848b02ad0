package apiv1

import "time"

// Target names what a lock applies to.
type Target struct {
	// Kind is user or identity.
	Kind string `json:"kind"`
	// Domain is the administrative domain.
	Domain string `json:"domain"`
	// Name is the outgoing user's name or the identity.
	Name string `json:"name"`
}

// Lock is one lock, in force or ended, with its state now.
type Lock struct {
	LockRecord
	// State is active, expired or unlocked.
	State string `json:"state"`
}

// LockRecord is a lock as recorded, without its state: the lock in force
// of Usage, and the fields of Lock.
type LockRecord struct {
	Target
	Reason string `json:"reason"`
	// Actor is who locked: an admin token's name, or the daemon's
	// automatic locking (auto, feedback).
	Actor string `json:"actor"`
	// Automatic is set for locks taken by automatic locking.
	Automatic bool `json:"automatic,omitempty"`
	// Escalated is set for an automatic lock made permanent because the
	// identity had been automatically locked too often.
	Escalated bool      `json:"escalated,omitempty"`
	Start     time.Time `json:"start"`
	// Expires is the end of a temporary lock; absent for a permanent one.
	Expires time.Time `json:"expires,omitzero"`
	// Evidence is what triggered an automatic lock.
	Evidence *Evidence `json:"evidence,omitempty"`
	// Unlocked, UnlockedBy and UnlockReason are set once unlocked.
	Unlocked     time.Time `json:"unlocked,omitzero"`
	UnlockedBy   string    `json:"unlocked_by,omitempty"`
	UnlockReason string    `json:"unlock_reason,omitempty"`
}

// Evidence is what made an automatic lock or a would-lock.
type Evidence struct {
	// User is the outgoing user of the observation that crossed.
	User string `json:"user,omitempty"`
	// Counter names the counter that reached its threshold.
	Counter string `json:"counter"`
	// Count is the counter's value in its window; Threshold and Window
	// (nanoseconds) are its limit.
	Count     int           `json:"count"`
	Threshold int           `json:"threshold"`
	Window    time.Duration `json:"window"`
	// TxIDs are the log ids of the transactions counted.
	TxIDs []string `json:"tx_ids"`
	// Counts holds every counter's value at the crossing, by name.
	Counts map[string]int `json:"counts"`
	At     time.Time      `json:"at"`
}

// HistoryEntry is one event of a lock target's history.
type HistoryEntry struct {
	// Action is lock, unlock or expire.
	Action string    `json:"action"`
	At     time.Time `json:"at"`
	// Actor is who locked or unlocked; empty for an expiry.
	Actor     string    `json:"actor,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	Automatic bool      `json:"automatic,omitempty"`
	Expires   time.Time `json:"expires,omitzero"`
	Evidence  *Evidence `json:"evidence,omitempty"`
}

// LockDetail is the answer of GET /api/v1/locks/...: the latest lock
// with the target's history (each automatic lock's evidence included).
type LockDetail struct {
	Lock    Lock           `json:"lock"`
	History []HistoryEntry `json:"history"`
}

// LockList is the answer of GET /api/v1/locks.
type LockList struct {
	Locks []Lock `json:"locks"`
}

// LockRequest is the body of POST /api/v1/locks.
type LockRequest struct {
	// Kind is user or identity.
	Kind string `json:"kind"`
	// Domain is the administrative domain: required for an identity
	// (a domain-scoped token may leave it out), checked for a user.
	Domain string `json:"domain"`
	// Name is the outgoing user or the identity.
	Name   string `json:"name"`
	Reason string `json:"reason"`
	// Duration makes the lock temporary ("90m", "12h", "7d"); "" is
	// permanent.
	Duration string `json:"duration"`
	// MessageID, optional, is the log id of the message the lock was
	// taken from (a console row): that message is taught to the content
	// model as spam, when its content is kept.
	MessageID string `json:"message_id,omitempty"`
}

// UnlockRequest is the body of DELETE /api/v1/locks/...; the reason is
// required (it may also come as the reason query parameter).
type UnlockRequest struct {
	Reason string `json:"reason"`
}

// Usage is the answer of GET /api/v1/identities/{domain}/{name}/usage:
// how close an identity is to an automatic lock.
type Usage struct {
	Domain   string `json:"domain"`
	Identity string `json:"identity"`
	// User is the outgoing user last seen sending as the identity.
	User string `json:"user,omitempty"`
	// LastSeen is the time of the last observation.
	LastSeen time.Time `json:"last_seen"`
	// Counters are counted against the thresholds of the last
	// observation.
	Counters []CounterUsage `json:"counters"`
	// Lock is the lock in force, if any (without its state).
	Lock *LockRecord `json:"lock,omitempty"`
}

// CounterUsage is one counter of Usage; Window is in nanoseconds.
type CounterUsage struct {
	Counter   string        `json:"counter"`
	Count     int           `json:"count"`
	Threshold int           `json:"threshold"`
	Window    time.Duration `json:"window"`
}

// WouldLock is a threshold crossing recorded in monitor mode.
type WouldLock struct {
	// ID orders would-locks by creation.
	ID       uint64    `json:"id"`
	Target   Target    `json:"target"`
	At       time.Time `json:"at"`
	Evidence Evidence  `json:"evidence"`
}

// WouldLockList is the answer of GET /api/v1/would-locks.
type WouldLockList struct {
	WouldLocks []WouldLock `json:"would_locks"`
}

// Notice is a customer notice (docs/config-notify.md, "Customer notice"):
// the answer of GET /api/v1/identities/{domain}/{name}/notice (a preview)
// and of POST to the same path (the notice queued for sending).
type Notice struct {
	Domain   string `json:"domain"`
	Identity string `json:"identity"`
	// To is the recipient; "" in a preview when there is none (the
	// identity is not an email address): sending is then refused.
	To      string `json:"to"`
	Subject string `json:"subject"`
	Body    string `json:"body"`
	// Sample is set in a preview when the identity is not locked: the
	// notice is rendered for a permanent lock taken now, and sending is
	// refused.
	Sample bool `json:"sample"`
	// Digest names this rendering: pass it as preview when sending, to
	// send only what was previewed.
	Digest string `json:"digest"`
	// Queued is set in the answer of a send.
	Queued bool `json:"queued"`
}

// NoticeRequest is the body of POST
// /api/v1/identities/{domain}/{name}/notice.
type NoticeRequest struct {
	// Reason is required: why the customer is told now (audit trail).
	Reason string `json:"reason"`
	// Preview, optional, is the digest of the previewed notice: the
	// send is refused (409) when the notice rendered now differs.
	Preview string `json:"preview,omitempty"`
}
