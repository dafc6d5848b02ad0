// Package deadline provides a context that ends at a deadline and starts
// no timer unless something waits on it.
//
// context.WithTimeout starts a timer and registers with its parent for
// every call, and an SMTP session makes several such contexts per
// message, one per step (MAIL, each RCPT, the check, the relay, the log
// commit), each bounded by the idle timeout. Most steps never wait on
// Done: the next hop's client bounds its I/O by the deadline itself
// (internal/smtpclient), the bbolt log answers long before it. A
// Context makes its timer only when Done is first called, and tells
// internal/smtpclient (Only) that nothing but its deadline ends it while
// the step runs, so the client need not watch for a cancellation.
package deadline

import (
	"context"
	"sync"
	"time"
)

// Context is a context.Context with a deadline and no values, whose
// parent is context.Background. It ends at its deadline, or when its
// maker calls Release, which it does only once the step that uses it
// has returned.
type Context struct {
	deadline time.Time

	mu    sync.Mutex
	done  chan struct{} // made by the first Done or AfterFunc
	timer *time.Timer   // ends c at the deadline
	err   error         // set when released, or at the deadline
	funcs map[int]func()
	next  int
}

// New returns a Context ending d from now. Call its Release once the step
// using it has returned (as with context.WithTimeout's cancel, and at
// the latest then).
func New(d time.Duration) *Context {
	return &Context{deadline: time.Now().Add(d)}
}

// Only reports whether ctx is a Context: one that, while the step it was
// made for runs, ends only at its deadline.
func Only(ctx context.Context) bool {
	_, ok := ctx.(*Context)
	return ok
}

func (c *Context) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *Context) Value(any) any { return nil }

func (c *Context) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.arm()
	return c.done
}

// arm makes done and starts the timer, once. c.mu is held.
func (c *Context) arm() {
	if c.done != nil {
		return
	}
	c.done = make(chan struct{})
	switch {
	case c.err != nil:
		close(c.done)
	case !time.Now().Before(c.deadline):
		c.err = context.DeadlineExceeded
		close(c.done)
	default:
		c.timer = time.AfterFunc(time.Until(c.deadline), c.expire)
	}
}

// AfterFunc runs f in its own goroutine once c ends, as context.AfterFunc
// does; contexts derived from c use it instead of a goroutine each that
// waits on Done.
func (c *Context) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.arm()
	if c.err != nil {
		go f()
		return func() bool { return false }
	}
	if c.funcs == nil {
		c.funcs = map[int]func(){}
	}
	id := c.next
	c.next++
	c.funcs[id] = f
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		_, ok := c.funcs[id]
		delete(c.funcs, id)
		return ok
	}
}

func (c *Context) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil && !time.Now().Before(c.deadline) {
		c.end(context.DeadlineExceeded)
	}
	return c.err
}

func (c *Context) expire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.end(context.DeadlineExceeded)
}

// Release ends c (context.Canceled), stopping its timer if Done started
// one.
func (c *Context) Release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.end(context.Canceled)
}

// end sets err once, closes done if made, and stops the timer. c.mu is
// held.
func (c *Context) end(err error) {
	if c.err != nil {
		return
	}
	c.err = err
	if c.timer != nil {
		c.timer.Stop()
	}
	if c.done != nil {
		close(c.done)
	}
	for _, f := range c.funcs {
		go f()
	}
	c.funcs = nil
}

func (c *Context) String() string { return "deadline.Context" }
