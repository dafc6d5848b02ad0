// Package bdatsync lets a go-smtp session wait for the goroutine that
// go-smtp starts for a BDAT transfer (RFC 3030).
//
// go-smtp calls Session.Data for BDAT from a goroutine of its own and goes
// on reading commands meanwhile. When a transfer is reset (RSET, a refused
// chunk, the end of the connection) it closes the transfer's pipe and
// calls Session.Reset at once: the goroutine then still hands Data's
// result to a field of the connection that the next BDAT replaces, and
// closes the pipe's reader last. A session whose Reset returns before that
// lets a pipelined "BDAT n, RSET, MAIL, RCPT, BDAT m LAST" answer the
// second message with the first one's result. Reset calls Wait to close
// that window.
package bdatsync

import (
	"errors"
	"io"
	"runtime"
	"sync"
	"time"
)

// Limit bounds Wait: when the pipe is still open (STARTTLS during a
// transfer) the wait gives up rather than block the connection.
const Limit = 5 * time.Second

// Transfer tracks the BDAT transfer whose Data was started last. The zero
// value is ready; its methods may be called from any goroutine.
type Transfer struct {
	mu   sync.Mutex
	pr   *io.PipeReader
	done chan struct{}
}

// Begin is called first thing by Data with its reader. For BDAT (the
// reader is go-smtp's pipe) it records the transfer and returns the pipe
// and a function that Data must call, deferred, when it returns; for DATA
// it returns nil and a no-op.
func (t *Transfer) Begin(r io.Reader) (*io.PipeReader, func()) {
	pr, ok := r.(*io.PipeReader)
	if !ok {
		return nil, func() {}
	}
	done := make(chan struct{})
	t.mu.Lock()
	t.pr, t.done = pr, done
	t.mu.Unlock()
	return pr, func() { close(done) }
}

// Wait waits, at most Limit, until go-smtp's goroutine for the last
// transfer has handed Data's result on and closed the pipe's reader, and
// forgets the transfer. It returns at once when no transfer was begun
// since the last Wait.
func (t *Transfer) Wait() {
	t.mu.Lock()
	pr, done := t.pr, t.done
	t.pr, t.done = nil, nil
	t.mu.Unlock()
	if pr == nil {
		return
	}
	// Usually (the end of a message, a refused chunk) Data has returned
	// and the goroutine is done already: no goroutine or timer for that.
	select {
	case <-done:
		if readerClosed(pr) {
			return
		}
	default:
	}
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		<-done
		for !readerClosed(pr) {
			runtime.Gosched()
		}
	}()
	timer := time.NewTimer(Limit)
	defer timer.Stop()
	select {
	case <-closed:
	case <-timer.C:
	}
}

// readerClosed reports whether go-smtp's goroutine has closed pr, which it
// does last, after handing on Data's result. Called once Data has
// returned: a read then reports the writer's close (or waits the moment
// until the goroutine closes the reader) until the reader is closed.
func readerClosed(pr *io.PipeReader) bool {
	_, err := pr.Read(nil)
	return errors.Is(err, io.ErrClosedPipe)
}
