package outbox

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	for _, tc := range []struct {
		r        float64
		attempts int
		want     time.Duration
	}{
		{0, 1, 10 * time.Second},
		{0, 2, 20 * time.Second},
		{0, 3, 40 * time.Second},
		{0, 9, time.Minute},
		{0.5, 1, 7500 * time.Millisecond},
		{0.5, 9, 45 * time.Second},
	} {
		b := Backoff{Initial: 10 * time.Second, Max: time.Minute, Rand: func() float64 { return tc.r }}
		if got := b.Delay(tc.attempts); got != tc.want {
			t.Errorf("rand %v, attempts %d: got %v, want %v", tc.r, tc.attempts, got, tc.want)
		}
	}
	b := Backoff{Initial: 10 * time.Second, Max: time.Minute}
	seen := map[time.Duration]bool{}
	for range 100 {
		d := b.Delay(1)
		if d <= 5*time.Second || d > 10*time.Second {
			t.Fatalf("got %v, want (5s, 10s]", d)
		}
		seen[d] = true
	}
	if len(seen) < 2 {
		t.Error("no jitter")
	}
}

func TestEarliest(t *testing.T) {
	a, b := time.Unix(10, 0), time.Unix(20, 0)
	for _, tc := range []struct{ next, t, want time.Time }{
		{time.Time{}, a, a}, {a, time.Time{}, a}, {b, a, a}, {a, b, a}, {time.Time{}, time.Time{}, time.Time{}},
	} {
		if got := Earliest(tc.next, tc.t); !got.Equal(tc.want) {
			t.Errorf("Earliest(%v, %v) = %v, want %v", tc.next, tc.t, got, tc.want)
		}
	}
}

// TestRunner checks that a started runner runs a round at once, again on
// Wake, survives a panicking round, reports failed rounds, and stops.
func TestRunner(t *testing.T) {
	rounds := make(chan int)
	errs := make(chan error, 10)
	n := 0
	r := NewRunner(RunnerOptions{
		Round: func(ctx context.Context) (time.Time, error) {
			n++
			rounds <- n
			switch n {
			case 2:
				panic("round exploded")
			case 3:
				return time.Time{}, errors.New("store down")
			}
			return time.Time{}, nil
		},
		Now: time.Now, Idle: time.Hour, Retry: 0,
		OnError: func(err error) { errs <- err },
	})
	r.Start()
	if got := <-rounds; got != 1 {
		t.Fatalf("first round %d", got)
	}
	r.Wake()
	<-rounds // 2: panics
	if err := <-errs; err == nil {
		t.Fatal("panic not reported")
	}
	<-rounds // 3, right after the failed round (Retry 0): fails
	if err := <-errs; err == nil || err.Error() != "store down" {
		t.Fatalf("got %v", err)
	}
	<-rounds // 4, after Retry
	r.Stop()
	r.Stop()
	r.Start() // does nothing after Stop
	select {
	case got := <-rounds:
		t.Fatalf("round %d after Stop", got)
	default:
	}
}

func TestStopWithoutStart(t *testing.T) {
	r := NewRunner(RunnerOptions{Round: func(context.Context) (time.Time, error) { panic("ran") }, Now: time.Now, Idle: time.Hour, OnError: func(error) {}})
	r.Stop()
	r.Start()
}
