package smtpclient

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/outguard/outguard/internal/deadline"
)

// deadlineConn is the network connection under a Conn (and under TLS
// when there is TLS). It ties the client's I/O to the context of the
// command in progress: every deadline the client sets is cut to
// the context's deadline, and when the context is cancelled the pending
// read or write fails at once. The client sets its per-command timeouts
// as usual; deadlineConn only ever shortens them.
type deadlineConn struct {
	net.Conn

	mu    sync.Mutex
	limit time.Time // the bound context's deadline; zero: none
	cut   bool      // the bound context ended
}

// longAgo is a deadline in the past: it fails pending I/O at once.
var longAgo = time.Unix(1, 0)

func (c *deadlineConn) clamp(t time.Time) time.Time {
	if c.cut {
		return longAgo
	}
	if !c.limit.IsZero() && (t.IsZero() || t.After(c.limit)) {
		return c.limit
	}
	return t
}

func (c *deadlineConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Conn.SetDeadline(c.clamp(t))
}

func (c *deadlineConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Conn.SetReadDeadline(c.clamp(t))
}

func (c *deadlineConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Conn.SetWriteDeadline(c.clamp(t))
}

// run calls f with ctx bound. It reports whether ctx ended while f ran
// (a cut), and f's error. After a cut the connection is in an unknown
// state (a command may be half sent or its reply unread) and must not be
// used again. An error caused by the end of ctx wraps ErrTimeout and
// ctx's error.
func (c *deadlineConn) run(ctx context.Context, f func() error) (cut bool, err error) {
	if err := ctx.Err(); err != nil {
		// Nothing was sent: the connection is still clean.
		return false, fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	only := deadline.Only(ctx)
	if !only && ctx.Done() == nil {
		// A context that never ends (context.Background) binds nothing.
		return false, f()
	}
	c.mu.Lock()
	c.limit, _ = ctx.Deadline()
	c.cut = false
	c.mu.Unlock()
	stopped := true
	if only {
		// It ends only at its deadline while f runs, and every I/O
		// deadline is already cut to that: nothing to watch.
		err = f()
	} else {
		stop := context.AfterFunc(ctx, func() {
			c.mu.Lock()
			c.cut = true
			c.Conn.SetDeadline(longAgo)
			c.mu.Unlock()
		})
		err = f()
		stopped = stop()
	}
	c.mu.Lock()
	cut = c.cut || !stopped
	limit := c.limit
	c.limit = time.Time{}
	c.mu.Unlock()
	cause := ctx.Err()
	if err != nil && cause == nil && !limit.IsZero() && !time.Now().Before(limit) {
		// The I/O deadline cut to ctx's deadline fired just before ctx's
		// own timer.
		cause = context.DeadlineExceeded
	}
	if cut || err != nil && cause != nil {
		cut = true
		if err != nil {
			err = fmt.Errorf("%w: %w (%v)", ErrTimeout, cause, err)
		}
	}
	return cut, err
}
