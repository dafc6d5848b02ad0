package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/outguard/outguard/smtpd"
)

// TestClassifySlotsBound: never more holders than slots, whatever the
// number of callers; a caller whose context ends while it waits gets a
// tempfail and holds nothing; the gauges come back to zero.
func TestClassifySlotsBound(t *testing.T) {
	m := newSlotMetrics(prometheus.NewRegistry())
	s := newClassifySlots(3, m)
	var now, peak atomic.Int32
	var wg sync.WaitGroup
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.acquire(context.Background()); err != nil {
				t.Error(err)
				return
			}
			n := now.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(time.Millisecond)
			now.Add(-1)
			s.release()
		}()
	}
	wg.Wait()
	if p := peak.Load(); p != 3 {
		t.Errorf("at most %d held at once, want 3 (40 callers, 3 slots)", p)
	}
	for range 3 {
		if err := s.acquire(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := s.acquire(ctx); !errors.Is(err, smtpd.ErrTempfail) {
		t.Errorf("a wait that outlives its context: %v, want a tempfail", err)
	}
	if got := testutil.ToFloat64(m.waiting); got != 0 {
		t.Errorf("waiting gauge %v after the wait ended, want 0", got)
	}
	for range 3 {
		s.release()
	}
	if got := testutil.ToFloat64(m.busy); got != 0 {
		t.Errorf("in-progress gauge %v with every slot released, want 0", got)
	}
}

// TestClassificationOneAtATime: with filter.limits.max_concurrent 1,
// sessions sending at once all relay, their messages classified in turn.
func TestClassificationOneAtATime(t *testing.T) {
	e := newEnv(t, "", "filter:\n  limits: {max_concurrent: 1}\n")
	if got := cap(e.app.pipeline.slots.Load().slots); got != 1 {
		t.Fatalf("%d slots, want 1", got)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 12)
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- e.send("x@out.example.net", testMessage(fmt.Sprint("u", i), fmt.Sprint("turn ", i), strings.Repeat("A line of ordinary text.\r\n", 400)))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got := len(e.mail()); got != 12 {
		t.Errorf("%d messages relayed, want 12", got)
	}
}
