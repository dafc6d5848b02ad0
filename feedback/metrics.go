package feedback

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// metrics are the intake's counters (docs/config-arf.md).
type metrics struct {
	ingested *prometheus.CounterVec
	outcomes *prometheus.CounterVec
	pruned   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	return &metrics{
		ingested: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "outguard_feedback_ingested_total",
			Help: "Third-party feedback reports received, by feedback type (abuse, fraud, virus, other, refused) and attribution (trace-token, message-id, identity-header, none).",
		}, []string{"type", "attribution"}),
		outcomes: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "outguard_feedback_complaints_total",
			Help: "Accepted feedback reports by outcome: counted toward automatic locking, duplicate, or not counted (unlisted reporter, unattributed, identity header only, ...).",
		}, []string{"outcome"}),
		pruned: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "outguard_feedback_pruned_total",
			Help: "Stored feedback reports removed by arf.feedback_retention.",
		}),
	}
}

// typeLabel is the type label of outguard_feedback_ingested_total.
func typeLabel(t string) string {
	switch t = strings.ToLower(t); t {
	case "abuse", "fraud", "virus":
		return t
	}
	return "other"
}
