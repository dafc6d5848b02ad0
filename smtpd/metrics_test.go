package smtpd

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMetricsExposition(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	h := newHarness(t, func(o *Options, _ *ListenerOptions) { o.Metrics = m })
	r := dialRaw(t, h.addr)
	r.expect("EHLO c.test", 250)
	r.expect("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00alice\x00wrong")), 535)
	r.expect("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00alice\x00secret")), 235)
	r.expect("MAIL FROM:<alice@example.com>", 250)
	r.expect("RCPT TO:<bob@example.org>", 250)
	r.expect("DATA", 354)
	r.expect(plainMsg+".", 250)
	r.expect("MAIL FROM:<alice@example.com>", 250)
	r.expect("RCPT TO:<bob@example.org>", 250)
	r.expect("DATA", 354)
	r.expect("Subject: REFUSE\r\n\r\nx\r\n.", 550)

	want := `
# HELP outguard_smtp_auth_failures_total Failed SMTP AUTH attempts, by listener.
# TYPE outguard_smtp_auth_failures_total counter
outguard_smtp_auth_failures_total{listener="test"} 1
# HELP outguard_transactions_total Transactions that reached DATA, by outcome (accepted, quarantined, rejected, deferred, failed).
# TYPE outguard_transactions_total counter
outguard_transactions_total{outcome="accepted"} 1
outguard_transactions_total{outcome="quarantined"} 1
# HELP outguard_smtp_replies_total Replies outguard sent to clients, by command and code class (2xx, 4xx, 5xx).
# TYPE outguard_smtp_replies_total counter
outguard_smtp_replies_total{class="2xx",command="AUTH"} 1
outguard_smtp_replies_total{class="2xx",command="DATA"} 1
outguard_smtp_replies_total{class="2xx",command="MAIL"} 2
outguard_smtp_replies_total{class="2xx",command="RCPT"} 2
outguard_smtp_replies_total{class="5xx",command="AUTH"} 1
outguard_smtp_replies_total{class="5xx",command="DATA"} 1
# HELP outguard_smtp_sessions_active SMTP sessions currently open, by listener.
# TYPE outguard_smtp_sessions_active gauge
outguard_smtp_sessions_active{listener="test"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"outguard_smtp_auth_failures_total", "outguard_transactions_total", "outguard_smtp_replies_total", "outguard_smtp_sessions_active"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m.nextHopLatency); n == 0 {
		t.Errorf("no next-hop latency observed")
	}
}
