package baseline

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

// benchKeys and benchDomains stand for a provider's identities and the
// recipient domains they send to.
func benchInputs(keys int) ([]string, [][]string) {
	ks := make([]string, keys)
	for i := range ks {
		ks[i] = fmt.Sprintf("customer%d.example/user%d", i/10, i)
	}
	ds := make([][]string, 64)
	for i := range ds {
		ds[i] = []string{fmt.Sprintf("recipient%d.example", i)}
	}
	return ks, ds
}

// BenchmarkObserve is the cost of judging one message, one recipient, on a
// detector holding 10,000 identities, with the clock advancing 100ms per
// message so that hours roll over as in production (3.6 messages per
// identity and hour).
func BenchmarkObserve(b *testing.B) { benchObserve(b, false) }

// benchObserve is BenchmarkObserve; with deltas, on a fleet's node
// (Options.Deltas), the deltas taken every 10,000 messages as a round
// would.
func benchObserve(b *testing.B, deltas bool) {
	d := newDetector(b, Options{Deltas: deltas})
	keys, domains := benchInputs(10000)
	for i, k := range keys {
		d.Observe(k, monday, 1, domains[i%len(domains)])
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		at := monday.Add(time.Duration(i) * 100 * time.Millisecond)
		d.Observe(keys[i%len(keys)], at, 1, domains[(i*7)%len(domains)])
		i++
		if deltas && i%10000 == 0 {
			d.Deltas(func(string, *Delta) {})
		}
	}
}

// BenchmarkObserveParallel runs Observe from 25 goroutines per CPU
// (50 sessions on the 2 CPUs of the reference machine; see docs/baseline.md).
func BenchmarkObserveParallel(b *testing.B) {
	d := newDetector(b, Options{})
	keys, domains := benchInputs(10000)
	for i, k := range keys {
		d.Observe(k, monday, 1, domains[i%len(domains)])
	}
	var seq atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(25)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(seq.Add(1))
			at := monday.Add(time.Duration(i) * 100 * time.Millisecond)
			d.Observe(keys[i%len(keys)], at, 1, domains[(i*7)%len(domains)])
		}
	})
}

// BenchmarkProfileMemory measures the heap taken by 100,000 and 1,000,000
// identities, each with three active hours to three domains (a typical
// small sender), and the average size of their encodings. Run with
// -benchtime=1x.
func BenchmarkProfileMemory(b *testing.B) {
	for _, n := range []int{100000, 1000000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			keys, domains := benchInputs(n)
			var perProfile, encoded float64
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				d := newDetector(b, Options{MaxProfiles: n})
				for h := range 3 {
					at := monday.Add(time.Duration(9+h) * time.Hour)
					for i, k := range keys {
						d.Observe(k, at, 2, domains[(i+h)%len(domains)])
					}
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				if d.Len() != n {
					b.Fatalf("Len %d, want %d", d.Len(), n)
				}
				perProfile = float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
				total := 0
				buf := make([]byte, 0, maxEncodedLen)
				_ = d.Snapshot(false, func(_ string, p *Profile) error {
					buf, _ = p.AppendBinary(buf[:0])
					total += len(buf)
					return nil
				})
				encoded = float64(total) / float64(n)
				runtime.KeepAlive(d)
			}
			b.ReportMetric(perProfile, "heap-B/identity")
			b.ReportMetric(encoded, "encoded-B/identity")
			b.ReportMetric(0, "ns/op")
		})
	}
}

func TestSizes(t *testing.T) {
	t.Logf("Profile %d bytes, slot %d bytes in memory; largest encoding %d bytes; Delta %d bytes",
		unsafe.Sizeof(Profile{}), unsafe.Sizeof(slot{}), maxEncodedLen, unsafe.Sizeof(Delta{}))
}

// BenchmarkMerge is the node's share of a merging round per identity:
// merging a delta of ten messages to ten domains into a shared profile.
func BenchmarkMerge(b *testing.B) {
	d := newDetector(b, Options{Deltas: true})
	_, domains := benchInputs(1)
	for i := range 10 {
		d.Observe("k", monday, 1, domains[i])
	}
	var dl Delta
	d.Deltas(func(_ string, x *Delta) { dl = *x })
	base, _ := d.Load("k")
	b.ReportAllocs()
	for b.Loop() {
		p := base
		d.Merge(&p, &dl)
	}
}

// BenchmarkObserveDeltas is BenchmarkObserve on a fleet's node
// (Options.Deltas), with the deltas taken every 10,000 messages as a
// round would.
func BenchmarkObserveDeltas(b *testing.B) { benchObserve(b, true) }
