package main

import (
	"io"
	"sync"
	"time"
)

// logWriter batches log lines: under load the daemon logs one line per
// transaction, and one write to standard error per line was a system call
// per message. A line is written at most logDelay after it was made, or
// sooner when logBatch bytes are waiting; Close writes what is left.
// slog's handlers write each record with one Write, so lines are never
// split.
type logWriter struct {
	mu      sync.Mutex
	w       io.Writer
	buf     []byte
	pending bool // a flush is scheduled
	closed  bool
	delay   time.Duration
}

const (
	logDelay = 50 * time.Millisecond
	logBatch = 32 << 10
)

func newLogWriter(w io.Writer, delay time.Duration) *logWriter {
	return &logWriter{w: w, delay: delay}
}

func (l *logWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return l.w.Write(p)
	}
	l.buf = append(l.buf, p...)
	if len(l.buf) >= logBatch {
		l.flushLocked()
		return len(p), nil
	}
	if !l.pending {
		l.pending = true
		time.AfterFunc(l.delay, l.flush)
	}
	return len(p), nil
}

func (l *logWriter) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending = false
	l.flushLocked()
}

func (l *logWriter) flushLocked() {
	if len(l.buf) == 0 {
		return
	}
	// A failed write to standard error has nowhere to be reported.
	l.w.Write(l.buf)
	l.buf = l.buf[:0]
	if cap(l.buf) > 4*logBatch {
		l.buf = nil
	}
}

// Close writes what is waiting; later writes go straight through.
func (l *logWriter) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushLocked()
	l.closed = true
	return nil
}
