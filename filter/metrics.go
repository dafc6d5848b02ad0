package filter

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are the Classifier's Prometheus series. Label values come from
// small fixed sets: engine names and verdict classes. Build them once with
// NewMetrics and pass them in Options.Metrics to every classifier made on
// a configuration reload, so the series go on.
type Metrics struct {
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec
	verdicts *prometheus.CounterVec
	gaps     *prometheus.CounterVec
}

// gapLimits are the label values of outguard_unscanned_total.
var gapLimits = []string{LimitDepth, LimitParts, LimitPartBytes, LimitDecodedBytes, LimitArchiveDepth,
	LimitArchiveEntries, LimitArchiveBytes, LimitArchiveEncrypted, LimitArchiveUnreadable, LimitClamdStream, LimitClamdLimits}

// verdictTempfail is the verdicts_total label of a classification that
// ended in ErrTempfail.
const verdictTempfail = "tempfail"

// NewMetrics registers the classification metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "outguard_classification_duration_seconds",
			Help:    "Time taken to classify a message, per engine; engine=\"all\" is the whole classification.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"engine"}),
		errors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "outguard_scanner_errors_total",
			Help: "Classification engine failures (unreachable, timed out, bad answer), per engine.",
		}, []string{"engine"}),
		verdicts: f.NewCounterVec(prometheus.CounterOpts{
			Name: "outguard_verdicts_total",
			Help: "Classifications by outcome: clean, spam, phishing, virus, or tempfail when a failed engine deferred the message.",
		}, []string{"verdict"}),
		gaps: f.NewCounterVec(prometheus.CounterOpts{
			Name: "outguard_unscanned_total",
			Help: "Messages classified with content left unscanned (partially scanned), per limit that was reached.",
		}, []string{"limit"}),
	}
	for _, l := range gapLimits {
		m.gaps.WithLabelValues(l)
	}
	m.duration.WithLabelValues("all")
	for _, c := range classNames {
		m.verdicts.WithLabelValues(c)
	}
	m.verdicts.WithLabelValues(verdictTempfail)
	return m
}

// touch makes the series of engines visible from the start, so rates work
// at once.
func (m *Metrics) touch(engines []string) {
	for _, e := range engines {
		m.duration.WithLabelValues(e)
		m.errors.WithLabelValues(e)
	}
}
