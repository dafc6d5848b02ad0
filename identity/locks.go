package identity

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// record is what bucketLocks holds per target.
type record struct {
	// Lock is the target's latest lock, in force or ended.
	Lock *Lock `json:"lock"`
	// Settled is set once the end of Lock has been accounted for in
	// History and AutoEnded (at Unlock, or by the sweep after expiry).
	Settled bool           `json:"settled,omitempty"`
	History []HistoryEntry `json:"history"`
	// Dropped counts history entries dropped past Options.MaxHistory.
	Dropped int `json:"dropped,omitempty"`
	// AutoEnded counts automatic locks that ended, by expiry or unlock:
	// the escalation count.
	AutoEnded int `json:"auto_ended,omitempty"`
}

func (m *Manager) addHistory(r *record, e HistoryEntry) {
	r.History = append(r.History, e)
	if over := len(r.History) - m.opts.MaxHistory; over > 0 {
		r.History = append(r.History[:0:0], r.History[over:]...)
		r.Dropped += over
	}
}

// settle accounts for the end of an expired lock. It reports whether r
// changed.
func (m *Manager) settle(r *record, now time.Time) bool {
	if r.Lock == nil || r.Settled || r.Lock.State(now) != StateExpired {
		return false
	}
	r.Settled = true
	if r.Lock.Automatic {
		r.AutoEnded++
	}
	m.addHistory(r, HistoryEntry{Action: ActionExpire, At: r.Lock.Expires, Automatic: r.Lock.Automatic})
	return true
}

// loadLocks fills the index with the locks not yet settled.
func (m *Manager) loadLocks(ctx context.Context) error {
	return m.store.scanRecords(ctx, "", func(key string, r *record) (bool, error) {
		if r.Lock != nil && !r.Settled {
			m.index.Store(key, r.Lock)
		}
		return true, nil
	})
}

// Lookup returns the lock in force on t, if any, from memory. It is the
// hot-path check and never touches the database.
func (m *Manager) Lookup(t Target) (Lock, bool) {
	v, ok := m.index.Load(t.key())
	if !ok {
		return Lock{}, false
	}
	l := v.(*Lock)
	if !l.Active(m.now()) {
		return Lock{}, false
	}
	return *l, true
}

// CheckUser is Lookup for an outgoing user at MAIL. When it finds a lock it
// counts a refusal in outguard_lock_refusals_total{kind="user"}, so call it
// only where a lock means refusing (or use Lookup and Refused).
func (m *Manager) CheckUser(domain, user string) (Lock, bool) {
	l, ok := m.Lookup(UserTarget(domain, user))
	if ok {
		m.Refused(KindUser)
	}
	return l, ok
}

// CheckIdentity is Lookup for an identity after DATA, counting a refusal
// like CheckUser. An empty identity is never locked.
func (m *Manager) CheckIdentity(domain, identity string) (Lock, bool) {
	if identity == "" {
		return Lock{}, false
	}
	l, ok := m.Lookup(IdentityTarget(domain, identity))
	if ok {
		m.Refused(KindIdentity)
	}
	return l, ok
}

// Refused counts one transaction refused because of a lock of kind k.
func (m *Manager) Refused(k Kind) {
	m.metrics.refusals.WithLabelValues(string(k)).Inc()
}

// Lock locks a target. It returns ErrAlreadyLocked, with the lock in force,
// when the target is already locked.
func (m *Manager) Lock(ctx context.Context, req LockRequest) (Lock, error) {
	if err := req.Target.validate(); err != nil {
		return Lock{}, err
	}
	if req.Actor == "" {
		return Lock{}, fmt.Errorf("%w: actor is required", ErrInvalid)
	}
	if req.Duration < 0 {
		return Lock{}, fmt.Errorf("%w: negative duration %s", ErrInvalid, req.Duration)
	}
	l := &Lock{Target: req.Target, Reason: req.Reason, Actor: req.Actor}
	got, err := m.writeLock(ctx, l, req.Duration, func(*record) bool { return false })
	if err != nil {
		return got, err
	}
	m.emit(Event{Type: EventLock, Target: l.Target, At: l.Start, Lock: copyLock(l)})
	return *l, nil
}

// writeLock stores l (Start and Expires filled in from the clock and d) as
// the target's lock unless one is in force. escalate is called on the
// settled record and reports whether the lock must be permanent instead.
func (m *Manager) writeLock(ctx context.Context, l *Lock, d time.Duration, escalate func(*record) bool) (Lock, error) {
	if err := ctx.Err(); err != nil {
		return Lock{}, err
	}
	if m.closed.Load() {
		return Lock{}, ErrClosed
	}
	key := l.Target.key()
	m.writeMu.Lock()
	now := m.now()
	var current, expired *Lock
	err := m.store.updateRecords(ctx, []string{key}, func(_ string, r *record) (*record, error) {
		if r == nil {
			r = &record{}
		}
		if m.settle(r, now) {
			expired = r.Lock
		}
		if r.Lock != nil && r.Lock.Active(now) {
			current = r.Lock
			return nil, ErrAlreadyLocked
		}
		l.Start = now
		if d > 0 {
			l.Expires = now.Add(d)
			if l.Automatic && escalate(r) {
				l.Expires = time.Time{}
				l.Escalated = true
			}
		}
		r.Lock, r.Settled = l, false
		m.addHistory(r, HistoryEntry{Action: ActionLock, At: now, Actor: l.Actor, Reason: l.Reason,
			Automatic: l.Automatic, Expires: l.Expires, Evidence: l.Evidence})
		return r, nil
	})
	if err == nil {
		m.index.Store(key, l)
	}
	m.writeMu.Unlock()
	if err == ErrAlreadyLocked {
		return *current, fmt.Errorf("%w: %s since %s by %s", ErrAlreadyLocked, l.Target, current.Start.UTC().Format(time.RFC3339), current.Actor)
	}
	if err != nil {
		return Lock{}, fmt.Errorf("identity: writing lock: %w", err)
	}
	if expired != nil {
		m.emit(Event{Type: EventExpire, Target: expired.Target, At: expired.Expires, Lock: copyLock(expired)})
	}
	return *l, nil
}

// Unlock lifts the lock in force on t. It returns ErrNotLocked when there
// is none. Unlocking an automatic lock counts toward escalation.
func (m *Manager) Unlock(ctx context.Context, t Target, actor, reason string) (Lock, error) {
	if err := t.validate(); err != nil {
		return Lock{}, err
	}
	if actor == "" {
		return Lock{}, fmt.Errorf("%w: actor is required", ErrInvalid)
	}
	if err := ctx.Err(); err != nil {
		return Lock{}, err
	}
	if m.closed.Load() {
		return Lock{}, ErrClosed
	}
	key := t.key()
	m.writeMu.Lock()
	now := m.now()
	var ended, expired *Lock
	notLocked := false
	err := m.store.updateRecords(ctx, []string{key}, func(_ string, r *record) (*record, error) {
		if r == nil {
			notLocked = true
			return nil, nil
		}
		changed := m.settle(r, now)
		if changed {
			expired = r.Lock
		}
		if r.Lock == nil || !r.Lock.Active(now) {
			notLocked = true
			if changed {
				// Keep the settled expiry even though there is
				// nothing to unlock: commit rather than fail.
				return r, nil
			}
			return nil, nil
		}
		l := *r.Lock
		l.Unlocked, l.UnlockedBy, l.UnlockReason = now, actor, reason
		r.Lock, r.Settled = &l, true
		if l.Automatic {
			r.AutoEnded++
		}
		m.addHistory(r, HistoryEntry{Action: ActionUnlock, At: now, Actor: actor, Reason: reason, Automatic: l.Automatic})
		ended = &l
		return r, nil
	})
	if err == nil {
		// Unlocked, or settled after expiry: either way no longer in
		// force.
		if ended != nil || expired != nil {
			m.index.Delete(key)
		}
	}
	m.writeMu.Unlock()
	if err != nil {
		return Lock{}, fmt.Errorf("identity: writing unlock: %w", err)
	}
	if expired != nil {
		m.emit(Event{Type: EventExpire, Target: expired.Target, At: expired.Expires, Lock: copyLock(expired)})
	}
	if notLocked {
		return Lock{}, fmt.Errorf("%w: %s", ErrNotLocked, t)
	}
	m.emit(Event{Type: EventUnlock, Target: ended.Target, At: now, Lock: copyLock(ended)})
	return *ended, nil
}

// Get returns the target's latest lock, in force or ended, or ErrNotFound
// if it was never locked.
func (m *Manager) Get(ctx context.Context, t Target) (Lock, error) {
	r, err := m.record(ctx, t)
	if err != nil {
		return Lock{}, err
	}
	return *r.Lock, nil
}

// History returns the target's lock, unlock and expiry events, oldest
// first, or ErrNotFound. An expiry not yet settled by the flush loop is
// included.
func (m *Manager) History(ctx context.Context, t Target) ([]HistoryEntry, error) {
	r, err := m.record(ctx, t)
	if err != nil {
		return nil, err
	}
	m.settle(r, m.now())
	return r.History, nil
}

// AutoLockCount returns how many automatic locks of t have ended, the count
// escalation compares with Policy.EscalateAfter.
func (m *Manager) AutoLockCount(ctx context.Context, t Target) (int, error) {
	r, err := m.record(ctx, t)
	if err != nil {
		return 0, err
	}
	m.settle(r, m.now())
	return r.AutoEnded, nil
}

func (m *Manager) record(ctx context.Context, t Target) (*record, error) {
	if err := t.validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r, err := m.store.getRecord(ctx, t.key())
	if err != nil {
		return nil, err
	}
	if r == nil || r.Lock == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, t)
	}
	return r, nil
}

// List returns the latest lock of each target matching f, ordered by kind,
// domain and name.
func (m *Manager) List(ctx context.Context, f ListFilter) ([]Lock, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := m.now()
	prefix := ""
	if f.Kind != "" {
		prefix = string(f.Kind) + "\x00"
		if f.Domain != "" {
			prefix += strings.ToLower(f.Domain) + "\x00"
		}
	}
	var out []Lock
	err := m.store.scanRecords(ctx, prefix, func(_ string, r *record) (bool, error) {
		l := r.Lock
		if l == nil || (f.Domain != "" && !strings.EqualFold(l.Domain, f.Domain)) || (f.State != 0 && l.State(now) != f.State) {
			return true, nil
		}
		out = append(out, *l)
		return f.Limit <= 0 || len(out) < f.Limit, nil
	})
	return out, err
}

// sweep settles every expired lock in the index: history, escalation count,
// EventExpire, and removal from the index.
func (m *Manager) sweep() error {
	now := m.now()
	var keys []string
	m.index.Range(func(k, v any) bool {
		if v.(*Lock).State(now) == StateExpired {
			keys = append(keys, k.(string))
		}
		return true
	})
	if len(keys) == 0 {
		return nil
	}
	m.writeMu.Lock()
	var expired []*Lock
	// Sorted, so that nodes sweeping at once take the records in the
	// same order.
	slices.Sort(keys)
	err := m.store.updateRecords(context.Background(), keys, func(_ string, r *record) (*record, error) {
		if r == nil || !m.settle(r, now) {
			return nil, nil
		}
		expired = append(expired, r.Lock)
		return r, nil
	})
	if err == nil {
		for _, key := range keys {
			if v, ok := m.index.Load(key); ok && v.(*Lock).State(now) == StateExpired {
				m.index.Delete(key)
			}
		}
	}
	m.writeMu.Unlock()
	if err != nil {
		return fmt.Errorf("identity: settling expired locks: %w", err)
	}
	for _, l := range expired {
		m.emit(Event{Type: EventExpire, Target: l.Target, At: l.Expires, Lock: copyLock(l)})
	}
	return nil
}

func copyLock(l *Lock) *Lock {
	c := *l
	return &c
}
