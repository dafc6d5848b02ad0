package identity

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

var benchHeader = []byte("Received: from web1.example (web1.example [192.0.2.10])\r\n" +
	"\tby smarthost.example with ESMTPSA id 1234\r\n" +
	"\tfor <a@example.org>; Sat, 1 Mar 2026 12:00:00 +0000\r\n" +
	"X-AuthUser: customer-%d@hosting.example\r\n" +
	"From: Customer <customer@hosting.example>\r\n" +
	"To: a@example.org\r\n" +
	"Subject: invoice\r\n" +
	"Message-ID: <1234@web1.example>\r\n" +
	"Date: Sat, 1 Mar 2026 12:00:00 +0000\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: text/plain\r\n\r\n")

// BenchmarkPerMessage measures what one message costs this package on the
// SMTP path: the user lock check at MAIL, identity extraction, the
// identity lock check after DATA and window accounting, with 50 concurrent
// sessions spread over 1000 identities (or all on one, hot), and the
// write-behind flush running every second alongside.
func BenchmarkPerMessage(b *testing.B) {
	for _, bc := range []struct {
		name       string
		identities int
		volume     bool // messages and recipients thresholds on
	}{
		{"1000-identities-default-thresholds", 1000, false},
		{"1000-identities-volume-thresholds", 1000, true},
		{"one-hot-identity-volume-thresholds", 1, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			db, _ := testDB(b, boltBackend)
			m, err := openWith(db, Options{FlushInterval: time.Second}, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			rules := mustRules(b, RuleSpec{Kind: RuleHeader, Header: "X-AuthUser"}, RuleSpec{Kind: RuleEnvelopeSender})
			headers := make([][]byte, bc.identities)
			for i := range headers {
				headers[i] = []byte(fmt.Sprintf(string(benchHeader), i))
			}
			p := DefaultPolicy()
			if bc.volume {
				p.Thresholds[CounterMessages] = Limit{Count: 100_000, Window: time.Hour}
				p.Thresholds[CounterRecipients] = Limit{Count: 1_000_000, Window: time.Hour}
			}
			var seq atomic.Int64
			b.SetParallelism(max(1, 50/runtime.GOMAXPROCS(0)))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					n := seq.Add(1)
					if _, locked := m.CheckUser(dom, "web1"); locked {
						b.Error("user locked")
						return
					}
					res := rules.Extract(Input{Header: headers[n%int64(len(headers))], EnvelopeSender: "www@web1.example"})
					if _, locked := m.CheckIdentity(dom, res.Identity); locked {
						continue
					}
					o := Observation{Domain: dom, User: "web1", Identity: res.Identity, TxID: "01JTX00000000000000000000", Class: ClassClean, Recipients: 1}
					if _, err := m.Observe(ctx, o, p); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkExtract per occurrence: first may stop at the header, last and
// only read the whole header block.
func BenchmarkExtract(b *testing.B) {
	h := []byte(fmt.Sprintf(string(benchHeader), 7))
	for _, occ := range []Occurrence{OccurrenceFirst, OccurrenceLast, OccurrenceOnly} {
		b.Run(occ.String(), func(b *testing.B) {
			rules := mustRules(b, RuleSpec{Kind: RuleHeader, Header: "X-AuthUser", Occurrence: occ}, RuleSpec{Kind: RuleEnvelopeSender})
			b.ReportAllocs()
			for b.Loop() {
				if rules.Extract(Input{Header: h}).Identity == "" {
					b.Fatal("no identity")
				}
			}
		})
	}
}
