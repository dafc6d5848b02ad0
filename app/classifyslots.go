package app

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outguard/outguard/smtpd"
)

// classifySlots bounds the messages parsed and classified at once, in all
// sessions (filter.limits.max_concurrent, docs/config-filter.md,
// "Limits"): a message's parse and the engines' work hold its decoded
// parts, so that memory is bounded by the slots, not by the sessions.
// A message waits for a slot as long as its transaction may; the engines'
// timeouts start once it has one.
type classifySlots struct {
	slots chan struct{}
	m     *slotMetrics
}

// slotMetrics are shared by the slots every reload makes.
type slotMetrics struct {
	waiting, busy prometheus.Gauge
}

func newSlotMetrics(reg prometheus.Registerer) *slotMetrics {
	m := &slotMetrics{
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{Name: "outguard_filter_messages_waiting",
			Help: "Messages waiting for a classification slot (filter.limits.max_concurrent)."}),
		busy: prometheus.NewGauge(prometheus.GaugeOpts{Name: "outguard_filter_messages_in_progress",
			Help: "Messages being parsed and classified."}),
	}
	if reg != nil {
		reg.MustRegister(m.waiting, m.busy)
	}
	return m
}

func newClassifySlots(n int, m *slotMetrics) *classifySlots {
	return &classifySlots{slots: make(chan struct{}, max(n, 1)), m: m}
}

// acquire takes a slot, or fails with a tempfail when ctx ends first (the
// session's deadline, the client gone, a shutdown): nothing was kept.
func (s *classifySlots) acquire(ctx context.Context) error {
	select {
	case s.slots <- struct{}{}:
	default:
		s.m.waiting.Inc()
		select {
		case s.slots <- struct{}{}:
			s.m.waiting.Dec()
		case <-ctx.Done():
			s.m.waiting.Dec()
			return fmt.Errorf("%w: waiting for a classification slot: %v", smtpd.ErrTempfail, context.Cause(ctx))
		}
	}
	s.m.busy.Inc()
	return nil
}

func (s *classifySlots) release() {
	s.m.busy.Dec()
	<-s.slots
}
