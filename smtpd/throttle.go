package smtpd

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"time"
)

// clientKey is what per-client limits and throttles count by: the
// address itself for IPv4, its first v6Bits bits for IPv6 (one customer
// usually holds a whole /64, and can use any address in it).
func clientKey(ip netip.Addr, v6Bits int) netip.Prefix {
	ip = ip.Unmap()
	if ip.Is4() || !ip.IsValid() {
		return netip.PrefixFrom(ip, ip.BitLen())
	}
	p, err := ip.Prefix(v6Bits)
	if err != nil {
		return netip.PrefixFrom(ip, ip.BitLen())
	}
	return p
}

// Errors of authThrottle.begin.
var (
	// errThrottled: the client has used up its failures in this window.
	errThrottled = errors.New("smtpd: authentication throttled")
	// errAuthWait: the client has as many attempts in flight as it has
	// failures left, and none ended in time.
	errAuthWait = errors.New("smtpd: too many authentication attempts in flight")
)

// authThrottle counts AUTH failures per client key in a fixed window, and
// counts the attempts in flight as failures to come: a client may have at
// most max-failures attempts running at once, so a burst of parallel
// guesses cannot run more verifications than the throttle allows.
//
// Windows expire in the order they began: expiry pops the oldest from a
// queue, so no call scans the whole table.
type authThrottle struct {
	max    int
	window time.Duration
	v6Bits int
	now    func() time.Time

	mu      sync.Mutex
	clients map[netip.Prefix]*throttleEntry
	// windows holds the start of every window, oldest first, from head on.
	windows []windowStart
	head    int
}

type throttleEntry struct {
	start    time.Time // the window's start; zero when no failure counts
	fails    int
	inflight int
	// changed is closed when an attempt ends, to wake the attempts
	// waiting for a place; nil when none waits.
	changed chan struct{}
}

type windowStart struct {
	key   netip.Prefix
	start time.Time
}

func newAuthThrottle(max int, window time.Duration, v6Bits int, now func() time.Time) *authThrottle {
	return &authThrottle{max: max, window: window, v6Bits: v6Bits, now: now, clients: map[netip.Prefix]*throttleEntry{}}
}

// expire ends the windows that began more than window ago. Called with mu
// held; each window is popped once, so the cost is constant on average.
func (t *authThrottle) expire(now time.Time) {
	for t.head < len(t.windows) {
		w := t.windows[t.head]
		if now.Sub(w.start) <= t.window {
			break
		}
		t.windows[t.head] = windowStart{}
		t.head++
		e := t.clients[w.key]
		if e == nil || !e.start.Equal(w.start) {
			continue // a later window replaced this one
		}
		e.start, e.fails = time.Time{}, 0
		if e.inflight == 0 {
			delete(t.clients, w.key)
		}
	}
	// Reuse the queue's space once most of it is popped.
	if t.head > 1024 && t.head*2 > len(t.windows) {
		n := copy(t.windows, t.windows[t.head:])
		clear(t.windows[n:])
		t.windows, t.head = t.windows[:n], 0
	}
}

// blocked reports whether ip has used up its failures.
func (t *authThrottle) blocked(ip netip.Addr) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expire(t.now())
	e := t.clients[clientKey(ip, t.v6Bits)]
	return e != nil && e.fails >= t.max
}

// begin takes a place for one attempt of ip. It waits while the attempts
// in flight fill the failures left, until ctx ends (errAuthWait); it
// returns errThrottled once the failures are used up. end must be called
// once with the attempt's outcome; it reports whether ip is now blocked.
func (t *authThrottle) begin(ctx context.Context, ip netip.Addr) (end func(failed bool) (blocked bool), err error) {
	key := clientKey(ip, t.v6Bits)
	for {
		t.mu.Lock()
		t.expire(t.now())
		e := t.clients[key]
		if e == nil {
			e = &throttleEntry{}
			t.clients[key] = e
		}
		if e.fails >= t.max {
			t.mu.Unlock()
			return nil, errThrottled
		}
		if e.fails+e.inflight < t.max {
			e.inflight++
			t.mu.Unlock()
			return func(failed bool) bool { return t.end(key, failed) }, nil
		}
		if e.changed == nil {
			e.changed = make(chan struct{})
		}
		ch := e.changed
		t.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, errAuthWait
		}
	}
}

func (t *authThrottle) end(key netip.Prefix, failed bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	t.expire(now)
	e := t.clients[key]
	if e == nil {
		return false // cannot happen: an entry with attempts in flight stays
	}
	e.inflight--
	if e.changed != nil {
		close(e.changed)
		e.changed = nil
	}
	if failed {
		if e.start.IsZero() {
			e.start = now
			t.windows = append(t.windows, windowStart{key: key, start: now})
		}
		e.fails++
	}
	if e.fails == 0 && e.inflight == 0 {
		delete(t.clients, key)
	}
	return e.fails >= t.max
}
