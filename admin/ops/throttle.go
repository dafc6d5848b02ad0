package ops

import (
	"container/list"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// ErrThrottled: too many failed sign-ins from this client or for this
// account; the caller must wait (ThrottledError.RetryAfter). 429.
var ErrThrottled = errors.New("too many failed sign-ins")

// ThrottledError is the error of a refused sign-in attempt: it says how
// long the client must wait. It matches ErrThrottled.
type ThrottledError struct {
	// Key is what is locked out: "ip 192.0.2.1" or "account alice".
	Key        string
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("%v: %s is refused for %d s", ErrThrottled, e.Key, int(math.Ceil(e.RetryAfter.Seconds())))
}

// Is makes errors.Is(err, ErrThrottled) true.
func (e *ThrottledError) Is(target error) bool { return target == ErrThrottled }

// ThrottleOptions set the sign-in throttle (docs/config-admin.md#sign-in-throttling).
// Zero values take the defaults.
type ThrottleOptions struct {
	// Failures within Window that lock a key out; default 5.
	Failures int
	// Window is the period failures are counted in; default 15 minutes.
	Window time.Duration
	// Lockout is the first lock-out's length; each further lock-out of
	// the same key doubles it, up to MaxLockout. Default 1 minute.
	Lockout time.Duration
	// MaxLockout bounds a lock-out; default 1 hour.
	MaxLockout time.Duration
	// MaxKeys bounds the keys remembered (least recently failed are
	// forgotten first); default 100,000.
	MaxKeys int
}

func (o *ThrottleOptions) defaults() {
	if o.Failures <= 0 {
		o.Failures = 5
	}
	if o.Window <= 0 {
		o.Window = 15 * time.Minute
	}
	if o.Lockout <= 0 {
		o.Lockout = time.Minute
	}
	if o.MaxLockout < o.Lockout {
		o.MaxLockout = max(time.Hour, o.Lockout)
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = 100_000
	}
}

// throttle counts failed sign-ins per key (a client address or an
// account name) in an LRU-bounded table: a flood from many addresses
// evicts the oldest keys instead of growing memory.
type throttle struct {
	o   ThrottleOptions
	mu  sync.Mutex
	lru *list.List // of *throttleEntry, most recent failure first
	by  map[string]*list.Element
}

type throttleEntry struct {
	key         string
	windowStart time.Time
	failures    int
	lockouts    int // consecutive lock-outs, for the doubling
	lockedUntil time.Time
	last        time.Time
}

func newThrottle(o ThrottleOptions) *throttle {
	o.defaults()
	return &throttle{o: o, lru: list.New(), by: map[string]*list.Element{}}
}

// check returns how long key is still locked out (0: not locked out).
func (t *throttle) check(key string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	el, ok := t.by[key]
	if !ok {
		return 0
	}
	e := el.Value.(*throttleEntry)
	if now.Before(e.lockedUntil) {
		return e.lockedUntil.Sub(now)
	}
	return 0
}

// fail counts a failure of key; it returns the length of the lock-out it
// starts, 0 when it starts none.
func (t *throttle) fail(key string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	var e *throttleEntry
	if el, ok := t.by[key]; ok {
		e = el.Value.(*throttleEntry)
		t.lru.MoveToFront(el)
	} else {
		for t.lru.Len() >= t.o.MaxKeys {
			old := t.lru.Back()
			delete(t.by, old.Value.(*throttleEntry).key)
			t.lru.Remove(old)
		}
		e = &throttleEntry{key: key}
		t.by[key] = t.lru.PushFront(e)
	}
	// A key quiet for the longest lock-out starts its doubling afresh.
	if !e.last.IsZero() && now.Sub(e.last) > t.o.MaxLockout+t.o.Window {
		e.lockouts = 0
	}
	e.last = now
	if e.failures == 0 || now.Sub(e.windowStart) > t.o.Window {
		e.windowStart, e.failures = now, 0
	}
	e.failures++
	if e.failures < t.o.Failures {
		return 0
	}
	d := t.o.Lockout << min(e.lockouts, 30)
	if d > t.o.MaxLockout || d <= 0 {
		d = t.o.MaxLockout
	}
	e.lockouts++
	e.failures = 0
	e.lockedUntil = now.Add(d)
	return d
}

// succeed forgets key's failures (an account that signed in).
func (t *throttle) succeed(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if el, ok := t.by[key]; ok {
		delete(t.by, key)
		t.lru.Remove(el)
	}
}

func (t *throttle) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lru.Len()
}
