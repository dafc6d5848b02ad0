package deadline

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"
)

func TestEndsAtDeadline(t *testing.T) {
	c := New(30 * time.Millisecond)
	defer c.Release()
	if d, ok := c.Deadline(); !ok || time.Until(d) > 30*time.Millisecond {
		t.Fatalf("Deadline() = %v, %v", d, ok)
	}
	if c.Err() != nil {
		t.Fatal("ended before its deadline")
	}
	<-c.Done()
	if !errors.Is(c.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err() = %v, want DeadlineExceeded", c.Err())
	}
}

// Without Done, Err still reports the deadline once passed, and no
// timer was started.
func TestErrWithoutDone(t *testing.T) {
	c := New(time.Millisecond)
	defer c.Release()
	time.Sleep(5 * time.Millisecond)
	if !errors.Is(c.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err() = %v, want DeadlineExceeded", c.Err())
	}
	if c.timer != nil {
		t.Error("a timer was started though nothing waited")
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("Done not closed after the deadline")
	}
}

func TestReleaseEnds(t *testing.T) {
	c := New(time.Hour)
	done := c.Done()
	c.Release()
	<-done
	if !errors.Is(c.Err(), context.Canceled) {
		t.Fatalf("Err() = %v, want Canceled", c.Err())
	}
	if c.timer.Stop() {
		t.Error("the timer still ran after release")
	}
	c.Release()
}

// Derived contexts end with it, through AfterFunc: no goroutine waits on
// Done for each of them.
func TestDerivedContexts(t *testing.T) {
	c := New(time.Hour)
	before := runtime.NumGoroutine()
	var kids []context.Context
	var cancels []context.CancelFunc
	for range 50 {
		k, cancel := context.WithTimeout(c, 2*time.Hour)
		kids = append(kids, k)
		cancels = append(cancels, cancel)
	}
	if n := runtime.NumGoroutine() - before; n > 5 {
		t.Errorf("%d goroutines for 50 derived contexts", n)
	}
	cancels[0]()
	if len(c.funcs) != 49 {
		t.Errorf("%d functions registered after one derived context was cancelled, want 49", len(c.funcs))
	}
	c.Release()
	for i, k := range kids {
		<-k.Done()
		if i > 0 && !errors.Is(k.Err(), context.Canceled) {
			t.Fatalf("derived %d: %v", i, k.Err())
		}
	}
	// After the end, AfterFunc runs at once.
	ran := make(chan struct{})
	context.AfterFunc(c, func() { close(ran) })
	<-ran
	for _, cancel := range cancels {
		cancel()
	}
}

func TestOnly(t *testing.T) {
	c := New(time.Second)
	defer c.Release()
	if !Only(c) {
		t.Error("Only(deadline.Context) = false")
	}
	k, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if Only(k) || Only(context.Background()) {
		t.Error("Only is true for another context")
	}
}
