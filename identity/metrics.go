package identity

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	autoLocks   prometheus.Counter
	wouldLocks  prometheus.Counter
	refusals    *prometheus.CounterVec
	flushErrors prometheus.Counter

	listenErrors prometheus.Counter
	resyncs      prometheus.Counter
	rounds       prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, m *Manager) *metrics {
	f := promauto.With(reg)
	for _, k := range []Kind{KindUser, KindIdentity} {
		f.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "outguard_locks_active",
			Help:        "Locks in force, by kind (user or identity).",
			ConstLabels: prometheus.Labels{"kind": string(k)},
		}, func() float64 { return float64(m.activeLocks(k)) })
	}
	mt := &metrics{
		autoLocks: f.NewCounter(prometheus.CounterOpts{
			Name: "outguard_automatic_locks_total",
			Help: "Identities locked automatically on crossing a threshold.",
		}),
		wouldLocks: f.NewCounter(prometheus.CounterOpts{
			Name: "outguard_would_have_locked_total",
			Help: "Threshold crossings recorded in monitor mode instead of a lock.",
		}),
		refusals: f.NewCounterVec(prometheus.CounterOpts{
			Name: "outguard_lock_refusals_total",
			Help: "Transactions refused because of a lock, by kind (user or identity).",
		}, []string{"kind"}),
		flushErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "outguard_identity_flush_errors_total",
			Help: "Failed write-behind flushes of automatic-locking windows or expiry sweeps.",
		}),
	}
	for _, k := range []Kind{KindUser, KindIdentity} {
		mt.refusals.WithLabelValues(string(k))
	}
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "outguard_lock_index_age_seconds",
		Help: "How old the in-memory lock index may be: on PostgreSQL, the time since it was last known current (notifications flowing, or a full resync); 0 on bbolt.",
	}, func() float64 { return m.indexAge().Seconds() })
	mt.listenErrors = f.NewCounter(prometheus.CounterOpts{
		Name: "outguard_lock_notify_errors_total",
		Help: "Interruptions of the lock notifications from the PostgreSQL store (LISTEN), each followed by a reconnection and a full resync.",
	})
	mt.resyncs = f.NewCounter(prometheus.CounterOpts{
		Name: "outguard_lock_index_resyncs_total",
		Help: "Full reloads of the lock index from the PostgreSQL store.",
	})
	mt.rounds = f.NewCounter(prometheus.CounterOpts{
		Name: "outguard_fleet_count_rounds_total",
		Help: "Rounds that sent this node's window increments to the PostgreSQL store and read the other nodes' counts back.",
	})
	return mt
}

// activeLocks counts the locks of kind k in force now.
func (m *Manager) activeLocks(k Kind) int {
	now := m.now()
	n := 0
	m.index.Range(func(_, v any) bool {
		l := v.(*Lock)
		if l.Kind == k && l.Active(now) {
			n++
		}
		return true
	})
	return n
}
