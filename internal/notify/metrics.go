package notify

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	depth    prometheus.Gauge
	sent     *prometheus.CounterVec
	failures *prometheus.CounterVec
	expired  *prometheus.CounterVec
	dropped  prometheus.Counter
}

// newMetrics registers the notifier's metrics on reg; nil registers none.
func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		depth: f.NewGauge(prometheus.GaugeOpts{
			Name: "outguard_notify_outbox_depth",
			Help: "Notifications (webhook requests and mails) waiting in the outbox.",
		}),
		sent: f.NewCounterVec(prometheus.CounterOpts{
			Name: "outguard_notify_sent_total",
			Help: "Notifications delivered, by channel.",
		}, []string{"channel"}),
		failures: f.NewCounterVec(prometheus.CounterOpts{
			Name: "outguard_notify_failures_total",
			Help: "Notification delivery attempts that failed and will be retried, by channel.",
		}, []string{"channel"}),
		expired: f.NewCounterVec(prometheus.CounterOpts{
			Name: "outguard_notify_expired_total",
			Help: "Notifications dropped undelivered after their maximum age, by channel.",
		}, []string{"channel"}),
		dropped: f.NewCounter(prometheus.CounterOpts{
			Name: "outguard_notify_dropped_total",
			Help: "Events dropped because the notification outbox was full.",
		}),
	}
	for _, c := range []string{ChannelWebhook, ChannelMail} {
		m.sent.WithLabelValues(c)
		m.failures.WithLabelValues(c)
		m.expired.WithLabelValues(c)
	}
	return m
}
