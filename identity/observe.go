package identity

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Classes of an Observation.
const (
	ClassClean    = "clean"
	ClassSpam     = "spam"
	ClassPhishing = "phishing"
	ClassVirus    = "virus"
)

// Observation is one message of an identity, or one complaint about it.
type Observation struct {
	// Domain is the outgoing user's administrative domain.
	Domain string
	// User is the outgoing user, recorded in the evidence.
	User string
	// Identity is the extracted identity; "" is not counted.
	Identity string
	// TxID is the transaction's log id, named in the evidence.
	TxID string
	// Class is the verdict of a message: clean, spam, phishing or virus.
	// Empty for a complaint, or the next hop's refusal after DATA, about
	// a message already counted: it then counts neither as a message nor
	// toward recipients.
	Class string
	// Recipients is the message's recipient count.
	Recipients int
	// Complaint marks attributed third-party feedback about TxID.
	Complaint bool
	// Suspect marks a message the classifier put in the suspect band
	// (relayed, uncertain); it counts toward the suspect threshold.
	Suspect bool
	// Refused is what the next hop refused permanently of this message.
	Refused Refusals
	// Tried is how many recipients the next hop was asked to take; 0
	// means Recipients plus the recipients refused at RCPT.
	Tried int
}

// Refusals are the recipients of one message the next hop refused
// permanently (5xx), by class of the enhanced status code. A message
// refused after DATA counts every recipient the next hop had accepted at
// RCPT in its class, and AfterData.
type Refusals struct {
	// Policy: 5.7.x, refused by policy (spam, reputation, DMARC).
	Policy int
	// Unknown: 5.1.x, no such recipient or bad address.
	Unknown int
	// Other: any other permanent refusal.
	Other int
	// AfterData: the next hop refused the message after DATA.
	AfterData bool
	// AfterDataRecipients is how many of the counts above came from the
	// refusal after DATA (they were accepted at RCPT).
	AfterDataRecipients int
}

// Total is the number of refused recipients.
func (r Refusals) Total() int { return r.Policy + r.Unknown + r.Other }

// ClassOf sorts a permanent refusal by its enhanced status code (RFC
// 3463): "policy" for 5.7.x, "unknown" for 5.1.x, else "other".
func ClassOf(subject int) string {
	switch subject {
	case 7:
		return "policy"
	case 1:
		return "unknown"
	}
	return "other"
}

// Add counts n recipients refused with enhanced status code subject (the
// middle number of 5.x.y, RFC 3463).
func (r *Refusals) Add(subject, n int) {
	switch ClassOf(subject) {
	case "policy":
		r.Policy += n
	case "unknown":
		r.Unknown += n
	default:
		r.Other += n
	}
}

func (o *Observation) validate() error {
	switch o.Class {
	case "", ClassClean, ClassSpam, ClassPhishing, ClassVirus:
	default:
		return fmt.Errorf("%w: class %q: use clean, spam, phishing or virus", ErrInvalid, o.Class)
	}
	if o.Class == "" && !o.Complaint && !o.Refused.AfterData {
		return fmt.Errorf("%w: an observation without a class must be a complaint or a refusal after DATA", ErrInvalid)
	}
	if o.Recipients < 0 || o.Tried < 0 || o.Refused.Policy < 0 || o.Refused.Unknown < 0 || o.Refused.Other < 0 || o.Refused.AfterDataRecipients < 0 {
		return fmt.Errorf("%w: negative recipient count", ErrInvalid)
	}
	if o.Identity != "" {
		if err := IdentityTarget(o.Domain, o.Identity).validate(); err != nil {
			return err
		}
	}
	return nil
}

// Outcome is what Observe did.
type Outcome struct {
	// Locked is the automatic lock this observation triggered.
	Locked *Lock
	// WouldLock is the monitor-mode record this observation triggered.
	WouldLock *WouldLock
	// Crossed is the evidence of a crossing that caused neither, because
	// the identity was already locked.
	Crossed *Evidence
}

func windowKey(domain, ident string) string {
	return strings.ToLower(domain) + "\x00" + strings.ToLower(ident)
}

// Observe counts o for its identity under p and, when a counter reaches
// its threshold, locks the identity (p.Auto) or records a WouldLock
// (p.Monitor). With neither, or without an identity, it does nothing.
//
// Counting takes only the mutex of the identity's shard; concurrent
// observations of one identity are all counted and exactly one of them
// sees each crossing. Only a crossing writes to bbolt.
func (m *Manager) Observe(ctx context.Context, o Observation, p Policy) (Outcome, error) {
	if err := o.validate(); err != nil {
		return Outcome{}, err
	}
	if o.Identity == "" || (!p.Auto && !p.Monitor) {
		return Outcome{}, nil
	}
	if m.closed.Load() {
		return Outcome{}, ErrClosed
	}
	limits := p.Thresholds.clamped()
	key := windowKey(o.Domain, o.Identity)
	sh := m.shardOf(key)
	now := m.now()

	sh.mu.Lock()
	w := sh.windows[key]
	if w == nil {
		w = &window{Domain: o.Domain, Identity: o.Identity}
		sh.windows[key] = w
	}
	crossed := w.observe(now.UnixNano(), &o, limits)
	w.policy = p
	if m.fleet != nil {
		add := o.amounts()
		sh.countFleet(key, now.UnixNano(), &add, o.tried(), &limits)
	}
	var ev *Evidence
	var resets []int
	if crossed >= 0 {
		ev = w.evidence(crossed, now)
		resets = w.resetFleet(crossed)
	}
	sh.dirty[key] = w
	sh.mu.Unlock()

	if ev == nil {
		return Outcome{}, nil
	}
	if m.fleet != nil {
		// The crossing starts the counter afresh on every node.
		if err := m.fleet.resetCounters(ctx, key, resets, now.UnixNano()); err != nil {
			m.log.Warn("identity: recording a counter reset for the fleet", "err", err)
		}
	}
	return m.crossed(ctx, IdentityTarget(o.Domain, o.Identity), ev, "", p)
}

// Signal locks an identity for a signal found outside its counters (the
// baseline detector, a campaign: docs/baseline.md, docs/campaigns.md),
// as a crossing of its thresholds would under p: automatically, or as a
// WouldLock in monitor mode; with neither it does nothing. ev says what
// fired; reason is the lock's reason ("" derives one from ev).
func (m *Manager) Signal(ctx context.Context, domain, ident string, ev *Evidence, reason string, p Policy) (Outcome, error) {
	if ident == "" || (!p.Auto && !p.Monitor) {
		return Outcome{}, nil
	}
	if m.closed.Load() {
		return Outcome{}, ErrClosed
	}
	t := IdentityTarget(domain, ident)
	if err := t.validate(); err != nil {
		return Outcome{}, err
	}
	return m.crossed(ctx, t, ev, reason, p)
}

// crossed locks t for the crossing ev, or records a WouldLock.
func (m *Manager) crossed(ctx context.Context, t Target, ev *Evidence, reason string, p Policy) (Outcome, error) {
	if p.Monitor {
		wl, err := m.recordWouldLock(t, ev)
		if err != nil {
			return Outcome{}, err
		}
		return Outcome{WouldLock: wl}, nil
	}
	actor := ActorAuto
	if ev.Counter == CounterComplaints.String() {
		actor = ActorFeedback
	}
	if reason == "" {
		reason = fmt.Sprintf("%d %s in %s", ev.Count, ev.Counter, ev.Window)
	}
	l := &Lock{
		Target:    t,
		Reason:    reason,
		Actor:     actor,
		Automatic: true,
		Evidence:  ev,
	}
	got, err := m.writeLock(ctx, l, p.LockDuration, func(r *record) bool {
		return p.EscalateAfter > 0 && r.AutoEnded >= p.EscalateAfter
	})
	switch {
	case err == nil:
	case errors.Is(err, ErrAlreadyLocked):
		return Outcome{Crossed: ev}, nil
	default:
		return Outcome{}, err
	}
	m.metrics.autoLocks.Inc()
	m.emit(Event{Type: EventAutoLock, Target: t, At: got.Start, Lock: copyLock(&got)})
	return Outcome{Locked: &got}, nil
}

// recordWouldLock stores a WouldLock, dropping the oldest past
// Options.MaxWouldLocks.
func (m *Manager) recordWouldLock(t Target, ev *Evidence) (*WouldLock, error) {
	wl := &WouldLock{Target: t, At: ev.At, Evidence: *ev}
	if err := m.store.addWouldLock(wl, m.opts.MaxWouldLocks); err != nil {
		return nil, fmt.Errorf("identity: recording would-lock: %w", err)
	}
	m.metrics.wouldLocks.Inc()
	m.emit(Event{Type: EventWouldLock, Target: t, At: wl.At, WouldLock: wl})
	return wl, nil
}

// WouldLocks lists the recorded WouldLocks matching f, newest first.
func (m *Manager) WouldLocks(ctx context.Context, f WouldLockFilter) ([]WouldLock, error) {
	var out []WouldLock
	err := m.store.scanWouldLocks(ctx, func(wl WouldLock) (bool, error) {
		if !f.Since.IsZero() && wl.At.Before(f.Since) {
			return false, nil
		}
		if (f.Domain != "" && !strings.EqualFold(f.Domain, wl.Target.Domain)) ||
			(f.Identity != "" && !strings.EqualFold(f.Identity, wl.Target.Name)) {
			return true, nil
		}
		out = append(out, wl)
		return f.Limit <= 0 || len(out) < f.Limit, nil
	})
	return out, err
}

// CounterUsage is one counter of Usage.
type CounterUsage struct {
	Counter   string        `json:"counter"`
	Count     int           `json:"count"`
	Threshold int           `json:"threshold"`
	Window    time.Duration `json:"window"`
}

// Usage is how close an identity is to an automatic lock.
type Usage struct {
	Domain   string `json:"domain"`
	Identity string `json:"identity"`
	// User is the outgoing user last seen sending as the identity.
	User string `json:"user,omitempty"`
	// LastSeen is the time of the last observation.
	LastSeen time.Time `json:"last_seen"`
	// Counters are counted against the thresholds of the last
	// observation, in Counter order.
	Counters []CounterUsage `json:"counters"`
	// Lock is the lock in force, if any.
	Lock *Lock `json:"lock,omitempty"`
}

// Usage returns the identity's current window counts against its
// thresholds, or ErrNotFound when nothing of it is counted (never observed,
// or idle long enough to be forgotten).
func (m *Manager) Usage(ctx context.Context, domain, ident string) (Usage, error) {
	if err := IdentityTarget(domain, ident).validate(); err != nil {
		return Usage{}, err
	}
	if err := ctx.Err(); err != nil {
		return Usage{}, err
	}
	key := windowKey(domain, ident)
	sh := m.shardOf(key)
	now := m.now()
	sh.mu.Lock()
	w := sh.windows[key]
	if w == nil {
		sh.mu.Unlock()
		// A locked identity sends nothing that is counted, so its windows
		// empty and are forgotten; its lock keeps the counts that led to
		// it (Lock.Evidence), and the current ones are zero.
		if l, ok := m.Lookup(IdentityTarget(domain, ident)); ok {
			u := Usage{Domain: domain, Identity: ident, Lock: &l, Counters: []CounterUsage{}}
			if l.Evidence != nil {
				u.User = l.Evidence.User
			}
			return u, nil
		}
		return Usage{}, fmt.Errorf("%w: no counts for identity %s (%s)", ErrNotFound, ident, domain)
	}
	counts := w.counts(now.UnixNano())
	u := Usage{Domain: w.Domain, Identity: w.Identity, User: w.User, LastSeen: time.Unix(0, w.Last)}
	for c := range numCounters {
		u.Counters = append(u.Counters, CounterUsage{
			Counter:   c.String(),
			Count:     int(counts[c]),
			Threshold: w.Limits[c].Count,
			Window:    w.Limits[c].Window,
		})
	}
	sh.mu.Unlock()
	if l, ok := m.Lookup(IdentityTarget(domain, ident)); ok {
		u.Lock = &l
	}
	return u, nil
}
