package main

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// countingWriter counts its writes.
type countingWriter struct {
	mu     sync.Mutex
	writes int
	buf    bytes.Buffer
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	return w.buf.Write(p)
}

// Lines logged together go out in one write, whole and in order, and
// Close writes what is waiting.
func TestLogWriterBatches(t *testing.T) {
	w := &countingWriter{}
	l := newLogWriter(w, time.Hour) // only Close or a full batch flushes
	var want strings.Builder
	for i := 0; i < 100; i++ {
		line := strings.Repeat("x", i) + "\n"
		want.WriteString(line)
		l.Write([]byte(line))
	}
	if w.writes != 0 {
		t.Errorf("%d writes before the batch is due", w.writes)
	}
	l.Close()
	if w.writes != 1 || w.buf.String() != want.String() {
		t.Errorf("after Close: %d writes, output equal: %v; want 1 write of every line", w.writes, w.buf.String() == want.String())
	}
	// A full batch goes out at once; after Close lines go straight
	// through.
	w2 := &countingWriter{}
	l2 := newLogWriter(w2, time.Hour)
	big := strings.Repeat("y", logBatch) + "\n"
	l2.Write([]byte(big))
	if w2.writes != 1 {
		t.Errorf("a full batch took %d writes, want 1", w2.writes)
	}
	l2.Close()
	l2.Write([]byte("late\n"))
	if w2.writes != 2 || !strings.HasSuffix(w2.buf.String(), "late\n") {
		t.Errorf("a line after Close was not written at once")
	}
}

// The timer writes waiting lines without Close.
func TestLogWriterFlushesOnTimer(t *testing.T) {
	w := &countingWriter{}
	l := newLogWriter(w, time.Millisecond)
	defer l.Close()
	l.Write([]byte("one\n"))
	l.Write([]byte("two\n"))
	for i := 0; ; i++ {
		w.mu.Lock()
		got := w.buf.String()
		w.mu.Unlock()
		if got == "one\ntwo\n" {
			break
		}
		if i > 5000 {
			t.Fatalf("lines not written by the timer: %q", got)
		}
		time.Sleep(time.Millisecond)
	}
}
