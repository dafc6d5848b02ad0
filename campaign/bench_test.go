package campaign

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/outguard/outguard/internal/loadmsg"
)

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports CPU nanoseconds per operation next to ns/op: on a
// machine shared with other work, wall time per operation says more about
// the neighbours than about this code.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

// benchInputs returns n inputs of about 5 KB: half are copies of one of
// ten templated campaigns (the parcel phish with a 3.7 KB body of its
// own), half are texts of their own.
func benchInputs(n int) []Input {
	r := rand.New(rand.NewPCG(31, 32))
	var bodies [10]string
	for i := range bodies {
		bodies[i] = fiveKB(r)[:3700]
	}
	out := make([]Input, n)
	for i := range out {
		if i%2 == 0 {
			in := phishCopy(r, newRecipient(r))
			in.Text += "\n" + bodies[r.IntN(len(bodies))]
			out[i] = in
		} else {
			rc := newRecipient(r)
			out[i] = Input{Subject: "Meeting notes", Text: fiveKB(r), PerRecipient: rc.perRecipient()}
		}
	}
	return out
}

func BenchmarkCompute(b *testing.B) {
	in := benchInputs(64)
	b.SetBytes(int64(len(in[1].Text)))
	b.ReportAllocs()
	i := 0
	start := cpuTime()
	for b.Loop() {
		Compute(in[i%len(in)])
		i++
	}
	reportCPU(b, start)
}

// BenchmarkObserve is the cost per message of Compute plus Observe on a
// store with default options, from 50 identities of 50 users. Run it with
// -cpu 1,2: the parallel run has every P fingerprinting and observing at
// once, as concurrent sessions do.
func BenchmarkObserve(b *testing.B) {
	in := benchInputs(1024)
	b.Run("serial", func(b *testing.B) {
		s, _ := newStore(b, Options{})
		b.ReportAllocs()
		i := 0
		start := cpuTime()
		for b.Loop() {
			fp := Compute(in[i%len(in)])
			s.Observe(&fp, Message{TxID: "tx", Identity: idents[i%50], User: users[i%50], Recipients: 1})
			i++
		}
		reportCPU(b, start)
	})
	b.Run("parallel", func(b *testing.B) {
		s, _ := newStore(b, Options{})
		var next atomic.Uint64
		b.ReportAllocs()
		b.ResetTimer()
		start := cpuTime()
		defer reportCPU(b, start)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := int(next.Add(1))
				fp := Compute(in[i%len(in)])
				s.Observe(&fp, Message{TxID: "tx", Identity: idents[i%50], User: users[i%50], Recipients: 1})
			}
		})
	})
	// Observe alone, fingerprints computed beforehand: the time under the
	// store's lock.
	b.Run("observe-only", func(b *testing.B) {
		s, _ := newStore(b, Options{})
		fps := make([]Fingerprint, len(in))
		for i := range in {
			fps[i] = Compute(in[i])
		}
		b.ReportAllocs()
		i := 0
		start := cpuTime()
		defer reportCPU(b, start)
		for b.Loop() {
			s.Observe(&fps[i%len(fps)], Message{TxID: "tx", Identity: idents[i%50], User: users[i%50], Recipients: 1})
			i++
		}
	})
}

// BenchmarkObserveDistinct is Observe alone for messages that each start
// a campaign of their own (ordinary mail), on a full store: the lookup,
// the append and an eviction per message. The signature is made up from
// the loop counter.
func BenchmarkObserveDistinct(b *testing.B) {
	s, _ := newStore(b, Options{MaxEntries: 100000})
	var fp Fingerprint
	fp.HasSig = true
	seed := uint64(0)
	b.ReportAllocs()
	start := cpuTime()
	for b.Loop() {
		for k := range fp.Sig {
			fp.Sig[k] = uint16(splitmix(&seed))
		}
		s.Observe(&fp, Message{TxID: "tx", Identity: idents[seed%50], User: users[seed%50], Recipients: 1})
	}
	reportCPU(b, start)
}

var idents, users = func() (a, b []string) {
	for i := range 50 {
		a = append(a, fmt.Sprintf("box%d@customer%d.example", i, i))
		b = append(b, fmt.Sprintf("customer%d", i))
	}
	return a, b
}()

// BenchmarkMemory measures the heap held by a store of 100k fingerprints
// (runtime.MemStats after a GC, before and after): all distinct, so each is
// a campaign of its own; and grouped, 100 near-duplicates per campaign
// from 10 users each. Run it with -benchtime 1x.
func BenchmarkMemory(b *testing.B) {
	const n = 100000
	for _, tc := range []struct {
		name    string
		perCamp int
	}{{"distinct", 1}, {"grouped", 100}} {
		b.Run(tc.name, func(b *testing.B) {
			r := rand.New(rand.NewPCG(41, 42))
			fps := make([]Fingerprint, n)
			for i := range fps {
				fps[i].HasSig = true
				if i%tc.perCamp == 0 {
					for k := range fps[i].Sig {
						fps[i].Sig[k] = uint16(r.Uint32())
					}
				} else {
					// A near-duplicate: 8 of 64 values differ from the
					// campaign's first fingerprint.
					fps[i].Sig = fps[i-i%tc.perCamp].Sig
					for range 8 {
						fps[i].Sig[r.IntN(NumHashes)] = uint16(r.Uint32())
					}
				}
			}
			for range b.N {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				s, _ := newStore(b, Options{MaxEntries: n})
				for i := range fps {
					s.Observe(&fps[i], Message{
						TxID: fmt.Sprintf("01JDQ%021d", i), Identity: idents[i%10], User: users[i%10], Recipients: 1,
					})
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				st := s.Stats()
				if st.Entries != n {
					b.Fatalf("store holds %d fingerprints, want %d", st.Entries, n)
				}
				held := float64(after.HeapAlloc - before.HeapAlloc)
				b.ReportMetric(held/n, "B/fingerprint")
				b.ReportMetric(float64(st.Campaigns), "campaigns")
				t0 := time.Now()
				enc := s.Encode()
				b.ReportMetric(float64(time.Since(t0).Milliseconds()), "encode-ms")
				b.ReportMetric(float64(len(enc))/n, "encoded-B/fingerprint")
				t0 = time.Now()
				s2, _ := New(Options{MaxEntries: n, Now: s.opt.Now})
				if err := s2.Decode(enc); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(time.Since(t0).Milliseconds()), "decode-ms")
				runtime.KeepAlive(s)
			}
		})
	}
}

// BenchmarkComputeStage fingerprints the messages of the built-in engine's
// stage benchmarks (filter/bench_stage_test.go) as the pipeline hands them
// over: newsletter is the 5 KB newsletter of testdata/modern (its text and
// its HTML as text), plain5KB and plain50KB the text of cmd/outguard-load's
// message, which bench/relay.sh sends.
func BenchmarkComputeStage(b *testing.B) {
	news := parseMessage(b, "../testdata/modern/ham/a-061-outdoor-shop-spring-sale.eml").in
	for _, s := range []struct {
		name string
		in   Input
	}{
		{"newsletter", news},
		{"plain5KB", Input{Subject: "load test", Text: string(loadmsg.Body(5 << 10)), PerRecipient: []string{"sink", "", "sink"}}},
		{"plain50KB", Input{Subject: "load test", Text: string(loadmsg.Body(50 << 10)), PerRecipient: []string{"sink", "", "sink"}}},
	} {
		b.Run(s.name, func(b *testing.B) {
			b.SetBytes(int64(len(s.in.Text)))
			b.ReportAllocs()
			start := cpuTime()
			for b.Loop() {
				Compute(s.in)
			}
			reportCPU(b, start)
		})
	}
}
