package smtpd

import (
	"errors"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are the relay's Prometheus metrics. A nil *Metrics records
// nothing, so components work without one.
type Metrics struct {
	sessionsActive  *prometheus.GaugeVec
	connRefused     *prometheus.CounterVec
	transactions    *prometheus.CounterVec
	replies         *prometheus.CounterVec
	authFailures    *prometheus.CounterVec
	nextHopLatency  *prometheus.HistogramVec
	nextHopErrors   *prometheus.CounterVec
	poolIdle        prometheus.Gauge
	messageBytes    prometheus.Histogram
	messageMemBytes prometheus.Gauge
	spooled         *prometheus.CounterVec

	// The children of the per-command series of the commands the
	// sessions answer, kept once found (a label look-up hashes its
	// values under a lock, several times a message). The maps are
	// read-only after NewMetrics; a child is made at its first use, so
	// the exposition shows the same series as without them.
	replyBy   map[string]*[4]atomic.Value // prometheus.Counter by class: 2xx, 3xx, 4xx, 5xx
	latencyBy map[string]*atomic.Value    // prometheus.Observer
}

// Commands whose series are found in advance.
var (
	answeredCommands = []string{"AUTH", "MAIL", "RCPT", "DATA"}
	nextHopCommands  = []string{"connect", "mail", "rcpt", "data"}
)

// NewMetrics registers the relay's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		sessionsActive: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "outguard_smtp_sessions_active",
			Help: "SMTP sessions currently open, by listener.",
		}, []string{"listener"}),
		connRefused: f.NewCounterVec(prometheus.CounterOpts{
			Name: "outguard_smtp_connections_refused_total",
			Help: "Connections refused because a connection limit was reached, by listener and limit (total, per_ip).",
		}, []string{"listener", "limit"}),
		transactions: f.NewCounterVec(prometheus.CounterOpts{
			Name: "outguard_transactions_total",
			Help: "Transactions that reached DATA, by outcome (accepted, quarantined, rejected, deferred, failed).",
		}, []string{"outcome"}),
		replies: f.NewCounterVec(prometheus.CounterOpts{
			Name: "outguard_smtp_replies_total",
			Help: "Replies outguard sent to clients, by command and code class (2xx, 4xx, 5xx).",
		}, []string{"command", "class"}),
		authFailures: f.NewCounterVec(prometheus.CounterOpts{
			Name: "outguard_smtp_auth_failures_total",
			Help: "Failed SMTP AUTH attempts, by listener.",
		}, []string{"listener"}),
		nextHopLatency: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "outguard_nexthop_duration_seconds",
			Help:    "Time the next hop took to answer, by command (connect, mail, rcpt, data).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"command"}),
		nextHopErrors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "outguard_nexthop_errors_total",
			Help: "Next-hop commands that failed, by command and kind (unavailable, timeout, 4xx, 5xx).",
		}, []string{"command", "kind"}),
		poolIdle: f.NewGauge(prometheus.GaugeOpts{
			Name: "outguard_nexthop_pool_idle_connections",
			Help: "Idle connections to the next hop kept for reuse.",
		}),
		messageBytes: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "outguard_message_size_bytes",
			Help:    "Size of messages received at DATA.",
			Buckets: prometheus.ExponentialBuckets(1024, 4, 9),
		}),
		messageMemBytes: f.NewGauge(prometheus.GaugeOpts{
			Name: "outguard_smtp_message_memory_bytes",
			Help: "Memory held by the messages kept in memory while they are checked and relayed (bounded by limits.message_memory_bytes).",
		}),
		spooled: f.NewCounterVec(prometheus.CounterOpts{
			Name: "outguard_smtp_messages_spooled_total",
			Help: "Messages written to the spool folder instead of memory, by reason (size: over limits.spool_threshold; memory: limits.message_memory_bytes spent).",
		}, []string{"reason"}),
	}
	m.replyBy = make(map[string]*[4]atomic.Value, len(answeredCommands))
	for _, c := range answeredCommands {
		m.replyBy[c] = new([4]atomic.Value)
	}
	m.latencyBy = make(map[string]*atomic.Value, len(nextHopCommands))
	for _, c := range nextHopCommands {
		m.latencyBy[c] = new(atomic.Value)
	}
	return m
}

func codeClass(code int) string {
	switch {
	case code >= 200 && code < 300:
		return "2xx"
	case code >= 300 && code < 400:
		return "3xx"
	case code >= 400 && code < 500:
		return "4xx"
	default:
		return "5xx"
	}
}

func (m *Metrics) reply(command string, code int) {
	if m == nil {
		return
	}
	class := codeClass(code)
	byClass := m.replyBy[command]
	if byClass == nil {
		m.replies.WithLabelValues(command, class).Inc()
		return
	}
	slot := &byClass[class[0]-'2']
	c, _ := slot.Load().(prometheus.Counter)
	if c == nil {
		c = m.replies.WithLabelValues(command, class)
		slot.Store(c)
	}
	c.Inc()
}

func (m *Metrics) transaction(outcome string) {
	if m == nil {
		return
	}
	m.transactions.WithLabelValues(outcome).Inc()
}

func (m *Metrics) nextHop(command string, start time.Time, err error) {
	if m == nil {
		return
	}
	var o prometheus.Observer
	if slot := m.latencyBy[command]; slot != nil {
		if o, _ = slot.Load().(prometheus.Observer); o == nil {
			o = m.nextHopLatency.WithLabelValues(command)
			slot.Store(o)
		}
	} else {
		o = m.nextHopLatency.WithLabelValues(command)
	}
	o.Observe(time.Since(start).Seconds())
	if err == nil {
		return
	}
	kind := "unavailable"
	var serr *smtp.SMTPError
	switch {
	case errors.As(err, &serr):
		kind = strconv.Itoa(serr.Code/100) + "xx"
	case errors.Is(err, ErrNextHopTimeout):
		kind = "timeout"
	}
	m.nextHopErrors.WithLabelValues(command, kind).Inc()
}

func (m *Metrics) poolSize(n int) {
	if m == nil {
		return
	}
	m.poolIdle.Set(float64(n))
}

func (m *Metrics) sessionStart(listener string) {
	if m == nil {
		return
	}
	m.sessionsActive.WithLabelValues(listener).Inc()
}

func (m *Metrics) sessionEnd(listener string) {
	if m == nil {
		return
	}
	m.sessionsActive.WithLabelValues(listener).Dec()
}

func (m *Metrics) authFailure(listener string) {
	if m == nil {
		return
	}
	m.authFailures.WithLabelValues(listener).Inc()
}

func (m *Metrics) connRefusedInc(listener, limit string) {
	if m == nil {
		return
	}
	m.connRefused.WithLabelValues(listener, limit).Inc()
}

func (m *Metrics) messageSize(n int64) {
	if m == nil {
		return
	}
	m.messageBytes.Observe(float64(n))
}

func (m *Metrics) messageMemory(n int64) {
	if m == nil {
		return
	}
	m.messageMemBytes.Set(float64(n))
}

func (m *Metrics) spoolReason(reason string) {
	if m == nil {
		return
	}
	m.spooled.WithLabelValues(reason).Inc()
}
