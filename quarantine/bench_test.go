package quarantine

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// Benchmarks. The write benchmarks use real fsync on a file in
// b.TempDir(). The search and report benchmarks build a large log once per
// process (1,000,000 and 5,000,000 records with NoSync, in large rounds),
// which takes minutes: they only run with -bench, e.g.
//
//	go test -run XXX -bench 'Append|Quarantine' -benchtime 3s ./quarantine
//	go test -run XXX -bench SearchIdentity -benchtime 20x ./quarantine
//	go test -run XXX -bench Report30d -benchtime 10x -timeout 60m ./quarantine
//
// OUTGUARD_BENCH_RECORDS overrides the size of the large logs;
// OUTGUARD_BENCH_DIR keeps them in that folder and reuses them in later
// runs.

// benchRecord makes a realistic record for transaction i at t.
func benchRecord(rng *rand.Rand, i int, t time.Time, identities int) *Record {
	// An identity belongs to one outgoing user of one domain: 20 domains
	// of 5 users each.
	ident := rng.IntN(identities)
	d := ident % 20
	st := StatusAccepted
	v := VerdictClean
	switch p := rng.IntN(100); {
	case p < 5:
		st, v = StatusQuarantined, []Verdict{VerdictSpam, VerdictSpam, VerdictSpam, VerdictPhishing, VerdictVirus}[rng.IntN(5)]
	case p < 8:
		st, v = StatusRejected, VerdictNone
	case p < 9:
		st, v = StatusDeferred, VerdictNone
	case p < 10:
		st = StatusFailed
	}
	r := &Record{
		ID:         testID(t),
		Time:       t,
		Listener:   "submission",
		ClientIP:   netip.AddrFrom4([4]byte{198, 51, 100, byte(d*10 + rng.IntN(10))}),
		ClientPort: uint16(30000 + rng.IntN(30000)),
		User:       fmt.Sprintf("web%02d-%d", d, ident/20%5),
		Domain:     fmt.Sprintf("out%02d.example.net", d),
		Identity:   fmt.Sprintf("cust%06d@site%d.example", ident, ident%97),
		Sender:     fmt.Sprintf("cust%06d@site%d.example", ident, ident%97),
		Recipients: []Recipient{{Address: fmt.Sprintf("rcpt%d@mail%d.example", rng.IntN(1000), rng.IntN(50)), Code: 250, Text: "2.0.0 Ok"}},
		HeaderFrom: fmt.Sprintf("Customer %d <cust%06d@site%d.example>", ident, ident, ident%97),
		Subject:    fmt.Sprintf("Order confirmation #%d", rng.IntN(1000000)),
		MessageID:  fmt.Sprintf("<%d.%d@site%d.example>", t.UnixNano(), i, ident%97),
		Size:       int64(2000 + rng.IntN(40000)),
		Status:     st,
		Verdict:    v,
		Score:      float64(rng.IntN(200)) / 10,
		Duration:   time.Duration(50+rng.IntN(400)) * time.Millisecond,
		TraceToken: fmt.Sprintf("%016x", rng.Uint64()),
	}
	if rng.IntN(4) == 0 {
		r.Recipients = append(r.Recipients, Recipient{Address: fmt.Sprintf("rcpt%d@mail%d.example", rng.IntN(1000), rng.IntN(50)), Code: 250, Text: "2.0.0 Ok"})
	}
	if st != StatusRejected && st != StatusDeferred {
		r.NextHopReply = fmt.Sprintf("250 2.0.0 Ok: queued as %X", rng.Uint32())
	}
	if v > VerdictClean {
		r.Reasons = []string{"builtin:SUSPICIOUS_URL", "rspamd:BAYES_SPAM"}
	}
	return r
}

func openBenchStore(b *testing.B, noSync bool, opts Options) *Store {
	b.Helper()
	db, _ := openDB(b, noSync)
	s, err := New(db, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Stop)
	return s
}

// runProducers splits b.N calls of fn over n goroutines.
func runProducers(b *testing.B, n int, fn func(i int, rng *rand.Rand)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for p := range n {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(p), 9))
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				fn(i, rng)
			}
		})
	}
	wg.Wait()
}

func reportRate(b *testing.B, start time.Time) {
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
}

// reportCPU reports the CPU time the process spent per record since cpu
// (the committer's, the producers' and the garbage collector's): the
// wall time per record of the synced writes is mostly the disk's.
func reportCPU(b *testing.B, cpu time.Duration) {
	b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/record")
}

// BenchmarkAppend compares the group committer with one fsynced
// transaction per record, at 1 and 50 concurrent producers, with the same
// per-record work (encoding, 8 index entries, 30 rollup counters).
func BenchmarkAppend(b *testing.B) {
	base := time.Now()
	for _, producers := range []int{1, 50} {
		b.Run(fmt.Sprintf("committer/async/producers=%d", producers), func(b *testing.B) {
			s := openBenchStore(b, false, Options{})
			b.ResetTimer()
			start, cpu := time.Now(), processCPU()
			runProducers(b, producers, func(i int, rng *rand.Rand) {
				if err := s.Append(benchRecord(rng, i, base.Add(time.Duration(i)*time.Millisecond), 10000)); err != nil {
					b.Error(err)
				}
			})
			flush(b, s)
			reportRate(b, start)
			reportCPU(b, cpu)
		})
		b.Run(fmt.Sprintf("committer/wait/producers=%d", producers), func(b *testing.B) {
			s := openBenchStore(b, false, Options{})
			b.ResetTimer()
			start, cpu := time.Now(), processCPU()
			runProducers(b, producers, func(i int, rng *rand.Rand) {
				if err := s.AppendWait(context.Background(), benchRecord(rng, i, base.Add(time.Duration(i)*time.Millisecond), 10000)); err != nil {
					b.Error(err)
				}
			})
			reportRate(b, start)
			reportCPU(b, cpu)
		})
		b.Run(fmt.Sprintf("tx-per-record/producers=%d", producers), func(b *testing.B) {
			s := openBenchStore(b, false, Options{})
			b.ResetTimer()
			start, cpu := time.Now(), processCPU()
			runProducers(b, producers, func(i int, rng *rand.Rand) {
				o, err := s.recordOp(benchRecord(rng, i, base.Add(time.Duration(i)*time.Millisecond), 10000))
				if err != nil {
					b.Error(err)
					return
				}
				o.done = make(chan error, 1)
				s.commitRound([]*op{o})
				if err := <-o.done; err != nil {
					b.Error(err)
				}
			})
			reportRate(b, start)
			reportCPU(b, cpu)
		})
	}
}

// BenchmarkAppendCoalesced is the relay's write (AppendCoalesced, whose
// caller waits for the commit) from 50 producers, with the records made
// before the timer starts: the CPU per record is the store's alone. The
// traffic comes from one sender, as bench/relay.sh sends it, or from
// 10,000, whose counters and index entries are spread over many pages.
func BenchmarkAppendCoalesced(b *testing.B) {
	for _, senders := range []int{1, 10000} {
		b.Run(fmt.Sprintf("senders=%d/producers=50", senders), func(b *testing.B) {
			s := openBenchStore(b, false, Options{})
			rng := rand.New(rand.NewPCG(1, 2))
			base := time.Now()
			recs := make([]*Record, b.N)
			for i := range recs {
				recs[i] = benchRecord(rng, i, base.Add(time.Duration(i)*time.Millisecond), senders)
			}
			b.ReportAllocs()
			b.ResetTimer()
			start, cpu := time.Now(), processCPU()
			runProducers(b, 50, func(i int, _ *rand.Rand) {
				if err := s.AppendCoalesced(context.Background(), recs[i]); err != nil {
					b.Error(err)
				}
			})
			reportRate(b, start)
			reportCPU(b, cpu)
		})
	}
}

// BenchmarkRecordOp measures the work done in the appender's goroutine
// for one record (validation, encoding, index and rollup keys), without
// the commit; BenchmarkApplyBolt the committer's work for a round of 64
// records inside the transaction, without the commit and its fsync. The
// records are made before the timer starts.
func BenchmarkRecordOp(b *testing.B) {
	recs := benchRecords64(b)
	s := openBenchStore(b, true, Options{})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.recordOp(recs[i%len(recs)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkApplyBolt(b *testing.B) {
	recs := benchRecords64(b)
	db, _ := openDB(b, true)
	s, err := New(db, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Stop)
	// 10,000 records of the hour before, so that the B+trees have depth.
	rng := rand.New(rand.NewPCG(7, 8))
	for i := range 10000 {
		if err := s.Append(benchRecord(rng, i, recs[0].Time.Add(-time.Hour+time.Duration(i)*300*time.Millisecond), 10000)); err != nil {
			b.Fatal(err)
		}
	}
	flush(b, s)
	recs = benchRecords64(b)
	batch := make([]*op, len(recs))
	errs := make([]error, len(recs))
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		for i, r := range recs {
			if batch[i], err = s.recordOp(r); err != nil {
				b.Fatal(err)
			}
		}
		tx, err := db.Begin(true)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		var delta qDelta
		if err := applyBolt(tx, batch, errs, &delta); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		// Rolled back: every round writes the same ids into the same log.
		if err := tx.Rollback(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/record")
}

// benchRecords64 returns 64 records of benchRecord, a millisecond apart.
func benchRecords64(b *testing.B) []*Record {
	rng := rand.New(rand.NewPCG(5, 6))
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	recs := make([]*Record, 64)
	for i := range recs {
		recs[i] = benchRecord(rng, i, base.Add(time.Duration(i)*time.Millisecond), 10000)
	}
	return recs
}

// BenchmarkQuarantine measures synced quarantine writes (record plus
// compressed ~10 KB message) at 50 producers, alone and mixed with
// asynchronous appends (19 relayed records per quarantined one).
func BenchmarkQuarantine(b *testing.B) {
	raw := []byte(strings.Repeat(sampleRaw, 1) + strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing elit.\r\n", 160))
	base := time.Now()
	b.Run("producers=50", func(b *testing.B) {
		s := openBenchStore(b, false, Options{})
		b.SetBytes(int64(len(raw)))
		b.ResetTimer()
		start, cpu := time.Now(), processCPU()
		runProducers(b, 50, func(i int, rng *rand.Rand) {
			r := benchRecord(rng, i, base.Add(time.Duration(i)*time.Millisecond), 10000)
			r.Status, r.Verdict = StatusQuarantined, VerdictSpam
			if err := s.Quarantine(context.Background(), r, raw); err != nil {
				b.Error(err)
			}
		})
		reportRate(b, start)
		reportCPU(b, cpu)
	})
	b.Run("mixed/producers=50", func(b *testing.B) {
		s := openBenchStore(b, false, Options{})
		b.ResetTimer()
		start, cpu := time.Now(), processCPU()
		runProducers(b, 50, func(i int, rng *rand.Rand) {
			r := benchRecord(rng, i, base.Add(time.Duration(i)*time.Millisecond), 10000)
			var err error
			if i%20 == 0 {
				r.Status, r.Verdict = StatusQuarantined, VerdictSpam
				err = s.Quarantine(context.Background(), r, raw)
			} else {
				r.Status, r.Verdict = StatusAccepted, VerdictClean
				err = s.Append(r)
			}
			if err != nil {
				b.Error(err)
			}
		})
		flush(b, s)
		reportRate(b, start)
		reportCPU(b, cpu)
	})
}

// bigLog is a large log built once per process for the read benchmarks.
type bigLog struct {
	once  sync.Once
	dir   string
	db    *bbolt.DB
	s     *Store
	n     int
	ident string // an identity with quarantined messages
	end   time.Time
	err   error
}

var bigLogs = map[int]*bigLog{}
var bigLogsMu sync.Mutex

func benchRecords(def int) int {
	if v := os.Getenv("OUTGUARD_BENCH_RECORDS"); v != "" {
		var n int
		if _, err := fmt.Sscan(v, &n); err == nil && n > 0 {
			return n
		}
	}
	return def
}

// getBigLog returns a log of n records spread evenly over the 30 days
// before end, from 20 domains and 20,000 identities.
func getBigLog(b *testing.B, n int) *bigLog {
	bigLogsMu.Lock()
	l := bigLogs[n]
	if l == nil {
		l = &bigLog{n: n}
		bigLogs[n] = l
	}
	bigLogsMu.Unlock()
	l.once.Do(func() { l.err = l.build(b) })
	if l.err != nil {
		b.Fatal(l.err)
	}
	return l
}

func (l *bigLog) build(b *testing.B) error {
	var err error
	var path string
	keep := os.Getenv("OUTGUARD_BENCH_DIR")
	if keep != "" {
		path = filepath.Join(keep, fmt.Sprintf("outguard-bench-%d.db", l.n))
	} else {
		if l.dir, err = os.MkdirTemp("", "outguard-bench-"); err != nil {
			return err
		}
		path = filepath.Join(l.dir, "outguard.db")
	}
	_, statErr := os.Stat(path)
	reuse := statErr == nil
	if l.db, err = bbolt.Open(path, 0o600, &bbolt.Options{NoSync: true, NoFreelistSync: true}); err != nil {
		return err
	}
	l.end = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	if l.s, err = New(l.db, Options{MaxBatch: 20000, QueueSize: 40000, Now: func() time.Time { return l.end }}); err != nil {
		return err
	}
	if reuse {
		p, err := l.s.Search(Query{Statuses: []Status{StatusQuarantined}, Limit: 1})
		if err != nil || len(p.Records) == 0 {
			return fmt.Errorf("reusing %s: %v", path, err)
		}
		l.ident = p.Records[0].Identity
		b.Logf("reusing %s", path)
		return nil
	}
	span := 30 * 24 * time.Hour
	step := span / time.Duration(l.n)
	start := l.end.Add(-span)
	began := time.Now()
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range l.n {
		r := benchRecord(rng, i, start.Add(time.Duration(i)*step), 20000)
		if l.ident == "" && r.Status == StatusQuarantined {
			l.ident = r.Identity
		}
		if err := l.s.Append(r); err != nil {
			return err
		}
	}
	if err := l.s.Flush(context.Background()); err != nil {
		return err
	}
	// Steady state: retention keeps hourly per-key counters for 72 hours.
	if _, err := l.s.Sweep(l.end); err != nil {
		return err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	b.Logf("built a log of %d records in %s: %d bytes, %.0f bytes per 1,000 records", l.n, time.Since(began).Round(time.Second), fi.Size(), float64(fi.Size())/float64(l.n)*1000)
	_ = l.db.View(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bucketLog, bucketIndex, bucketRollup} {
			st := tx.Bucket(name).Stats()
			used := st.LeafInuse + st.BranchInuse
			alloc := st.LeafAlloc + st.BranchAlloc
			b.Logf("  %s: %d keys, %d bytes in use (%.0f per 1,000 records), %d allocated", name, st.KeyN, used, float64(used)/float64(l.n)*1000, alloc)
		}
		return nil
	})
	return nil
}

// BenchmarkSearchIdentity1M searches one identity's quarantined messages
// (first page of 50) in a log of 1,000,000 records.
func BenchmarkSearchIdentity1M(b *testing.B) {
	l := getBigLog(b, benchRecords(1000000))
	q := Query{Identity: l.ident, Statuses: []Status{StatusQuarantined}, Limit: 50}
	b.ResetTimer()
	for b.Loop() {
		p, err := l.s.Search(q)
		if err != nil || len(p.Records) == 0 {
			b.Fatalf("got %d records, %v", len(p.Records), err)
		}
	}
}

// BenchmarkSearchScan1M is the worst case for comparison: a "subject
// contains" filter with no index, over the last day of the same log.
func BenchmarkSearchScan1M(b *testing.B) {
	l := getBigLog(b, benchRecords(1000000))
	q := Query{Subject: "#12345", From: l.end.Add(-24 * time.Hour), Limit: 50}
	b.ResetTimer()
	for b.Loop() {
		if _, err := l.s.Search(q); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReport30d5M is a 30-day report grouped by identity over a log of
// 5,000,000 records, from the rollups.
func BenchmarkReport30d5M(b *testing.B) {
	l := getBigLog(b, benchRecords(5000000))
	for _, c := range []Class{ClassAll, ClassSpam} {
		b.Run(c.String(), func(b *testing.B) {
			q := ReportQuery{GroupBy: GroupIdentity, Class: c, From: l.end.Add(-30*24*time.Hour - 90*time.Minute), To: l.end.Add(-30 * time.Minute), Limit: 20}
			for b.Loop() {
				rows, err := l.s.Report(q)
				if err != nil || len(rows) == 0 {
					b.Fatalf("got %d rows, %v", len(rows), err)
				}
			}
		})
	}
}

// BenchmarkStoreSize reports the database size per 1,000 records for a
// log of 100,000 records.
func BenchmarkStoreSize(b *testing.B) {
	for b.Loop() {
		db, path := openDB(b, true)
		s, err := New(db, Options{MaxBatch: 20000, QueueSize: 40000})
		if err != nil {
			b.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(3, 4))
		const n = 100000
		start := time.Now().Add(-30 * 24 * time.Hour)
		for i := range n {
			if err := s.Append(benchRecord(rng, i, start.Add(time.Duration(i)*26*time.Second), 20000)); err != nil {
				b.Fatal(err)
			}
		}
		flush(b, s)
		if _, err := s.Sweep(time.Now()); err != nil {
			b.Fatal(err)
		}
		s.Stop()
		fi, err := os.Stat(path)
		if err != nil {
			b.Fatal(err)
		}
		used := map[string]int{}
		_ = db.View(func(tx *bbolt.Tx) error {
			for _, name := range [][]byte{bucketLog, bucketIndex, bucketRollup} {
				st := tx.Bucket(name).Stats()
				used[string(name)] = st.LeafInuse + st.BranchInuse
			}
			return nil
		})
		b.ReportMetric(float64(fi.Size())/n*1000, "file-bytes/1000rec")
		b.ReportMetric(float64(used["quarantine.log"])/n*1000, "log-bytes/1000rec")
		b.ReportMetric(float64(used["quarantine.idx"])/n*1000, "index-bytes/1000rec")
		b.ReportMetric(float64(used["quarantine.rollup"])/n*1000, "rollup-bytes/1000rec")
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, l := range bigLogs {
		if l.s != nil {
			l.s.Stop()
		}
		if l.db != nil {
			l.db.Close()
		}
		if l.dir != "" {
			os.RemoveAll(l.dir)
		}
	}
	os.Exit(code)
}

// BenchmarkReport30d1M is BenchmarkReport30d5M on the 1,000,000-record log.
func BenchmarkReport30d1M(b *testing.B) {
	l := getBigLog(b, benchRecords(1000000))
	q := ReportQuery{GroupBy: GroupIdentity, From: l.end.Add(-30*24*time.Hour - 90*time.Minute), To: l.end.Add(-30 * time.Minute), Limit: 20}
	for b.Loop() {
		if rows, err := l.s.Report(q); err != nil || len(rows) == 0 {
			b.Fatalf("got %d rows, %v", len(rows), err)
		}
	}
}
