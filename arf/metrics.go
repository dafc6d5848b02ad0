package arf

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	depth   prometheus.Gauge
	sent    prometheus.Counter
	retried prometheus.Counter
	expired prometheus.Counter
	failed  prometheus.Counter
}

// newMetrics registers the outbox metrics on reg; a nil reg registers none.
func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		depth: f.NewGauge(prometheus.GaugeOpts{
			Name: "outguard_arf_outbox_depth",
			Help: "ARF reports waiting in the outbox for delivery.",
		}),
		sent: f.NewCounter(prometheus.CounterOpts{
			Name: "outguard_arf_reports_sent_total",
			Help: "ARF reports delivered to the report relay.",
		}),
		retried: f.NewCounter(prometheus.CounterOpts{
			Name: "outguard_arf_reports_retried_total",
			Help: "ARF report delivery attempts that failed temporarily and will be retried.",
		}),
		expired: f.NewCounter(prometheus.CounterOpts{
			Name: "outguard_arf_reports_expired_total",
			Help: "ARF reports moved to the expired list undelivered (too old, or refused permanently).",
		}),
		failed: f.NewCounter(prometheus.CounterOpts{
			Name: "outguard_arf_reports_failed_total",
			Help: "ARF reports refused permanently (5xx) by the report relay; also counted as expired.",
		}),
	}
}
