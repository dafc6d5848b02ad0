// Package outbox schedules the delivery rounds of outguard's durable
// outboxes (the ARF report outbox and the notification outbox): a
// background goroutine that runs a round, sleeps until the next item is
// due or until new work wakes it, and survives a panicking round; and the
// jittered exponential backoff between attempts. What an item is, where
// it is stored and how it is delivered stay with each outbox.
package outbox

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"time"
)

// Backoff is the wait before a retry: Initial after the first failure,
// doubled after each further one up to Max, then jittered down to between
// half and all of that, so items that failed together (a receiver down)
// do not all come back at the same moment.
type Backoff struct {
	Initial, Max time.Duration
	// Rand returns a number in [0, 1); default math/rand/v2's Float64.
	// Returning 0 turns the jitter off (a test seam).
	Rand func() float64
}

// Delay returns the wait after the given number of failed attempts (1 for
// the first failure).
func (b Backoff) Delay(attempts int) time.Duration {
	d := b.Initial
	for i := 1; i < attempts && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	r := rand.Float64
	if b.Rand != nil {
		r = b.Rand
	}
	return d - time.Duration(float64(d/2)*r())
}

// Earliest returns the earlier of two times, a zero time standing for
// "none": the next time a round must run.
func Earliest(next, t time.Time) time.Time {
	if next.IsZero() || (!t.IsZero() && t.Before(next)) {
		return t
	}
	return next
}

// RoundFunc delivers every due item once and returns when the next one is
// due (zero when none is pending).
type RoundFunc func(ctx context.Context) (next time.Time, err error)

// Runner runs rounds in the background. Call order: NewRunner, Start once,
// Stop (idempotent, safe without Start; a Start after Stop does nothing).
// Wake may be called at any time.
type Runner struct {
	round   RoundFunc
	now     func() time.Time
	idle    time.Duration
	retry   time.Duration
	onError func(error)

	wake     chan struct{}
	mu       sync.Mutex
	started  bool
	stopOnce sync.Once
	cancel   context.CancelFunc
	done     chan struct{}
}

// RunnerOptions configure a Runner. Round, Now and OnError are required.
type RunnerOptions struct {
	Round RoundFunc
	Now   func() time.Time
	// Idle is the wait when nothing is pending; new work calls Wake.
	Idle time.Duration
	// Retry is the wait after a round that failed.
	Retry time.Duration
	// OnError receives the error of a failed round (a panic included).
	OnError func(error)
}

// NewRunner returns a Runner that has not started.
func NewRunner(o RunnerOptions) *Runner {
	return &Runner{round: o.Round, now: o.Now, idle: o.Idle, retry: o.Retry, onError: o.OnError,
		wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// Wake makes a sleeping runner start a round now; it never blocks.
func (r *Runner) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Start runs rounds in the background until Stop.
func (r *Runner) Start() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		return
	}
	r.started = true
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go r.run(ctx)
}

// Stop cancels the round in progress and waits for the goroutine to end.
func (r *Runner) Stop() {
	r.stopOnce.Do(func() {
		r.mu.Lock()
		started := r.started
		r.started = true // a Start after Stop does nothing
		r.mu.Unlock()
		if !started {
			close(r.done)
			return
		}
		r.cancel()
		<-r.done
	})
}

func (r *Runner) run(ctx context.Context) {
	defer close(r.done)
	for {
		next, err := r.safeRound(ctx)
		if ctx.Err() != nil {
			return
		}
		wait := r.idle
		if err != nil {
			r.onError(err)
			wait = r.retry
		} else if !next.IsZero() {
			wait = max(next.Sub(r.now()), 0)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-r.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// safeRound runs one round, turning a panic into an error so the
// goroutine survives.
func (r *Runner) safeRound(ctx context.Context) (next time.Time, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
		}
	}()
	return r.round(ctx)
}
