package quarantine

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	commitDuration prometheus.Histogram
	batchSize      prometheus.Histogram
	records        *prometheus.CounterVec
	writeErrors    prometheus.Counter
	commitFailures prometheus.Counter
	writable       prometheus.Gauge
	qMessages      prometheus.Gauge
	qBytes         prometheus.Gauge
	swept          *prometheus.CounterVec
}

// newMetrics registers the store's metrics on reg (nil: a private
// registry, so the Store works without metrics). queueDepth is sampled at
// scrape time.
func newMetrics(reg prometheus.Registerer, queueDepth func() float64) *metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	f := promauto.With(reg)
	m := &metrics{
		commitDuration: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "outguard_store_commit_duration_seconds",
			Help:    "Time to write and sync one group-commit round of the message log.",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2, 14),
		}),
		batchSize: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "outguard_store_commit_batch_size",
			Help:    "Operations written per group-commit round.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 7),
		}),
		records: f.NewCounterVec(prometheus.CounterOpts{
			Name: "outguard_store_records_total",
			Help: "Message log records written, by transaction status.",
		}, []string{"status"}),
		writeErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "outguard_store_write_errors_total",
			Help: "Operations the store failed to write (their records are lost).",
		}),
		commitFailures: f.NewCounter(prometheus.CounterOpts{
			Name: "outguard_store_commit_failures_total",
			Help: "Commit rounds the database refused (a full disk, an I/O error); the writes of a failed round are tried again one by one.",
		}),
		writable: f.NewGauge(prometheus.GaugeOpts{
			Name: "outguard_store_writable",
			Help: "1 while the message log can be written; 0 from a failed commit until one succeeds (mail that needs a record is refused meanwhile).",
		}),
		qMessages: f.NewGauge(prometheus.GaugeOpts{
			Name: "outguard_quarantine_messages",
			Help: "Quarantined messages whose content is stored.",
		}),
		qBytes: f.NewGauge(prometheus.GaugeOpts{
			Name: "outguard_quarantine_bytes",
			Help: "Stored (compressed) size of the quarantined messages.",
		}),
		swept: f.NewCounterVec(prometheus.CounterOpts{
			Name: "outguard_store_swept_total",
			Help: "Entries removed by retention, by kind (record, content, rollup).",
		}, []string{"kind"}),
	}
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "outguard_store_queue_depth",
		Help: "Log writes waiting for the group committer.",
	}, queueDepth)
	m.writable.Set(1)
	// Records are written with their outcome; released is reached only
	// later, by an update.
	for s := StatusAccepted; s < StatusReleased; s++ {
		m.records.WithLabelValues(s.String())
	}
	for _, k := range []string{"record", "content", "rollup"} {
		m.swept.WithLabelValues(k)
	}
	return m
}
